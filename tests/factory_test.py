"""``--factory MODULE:FUNCTION``: the model a user's code builds is audited like a file, and a
factory that cannot be imported or raises is an input error (exit 2, one line)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import Result

from initaudit.cli import cli
from tests._click import runner

# A factory module of the user's, next to the repository root: builds ONNX models in code, so
# these tests need neither torch nor keras (tests/torch_test.py runs a torch factory).
MODELS = """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    def _he(rng, shape):
        return rng.uniform(-1, 1, shape) * np.sqrt(6 / shape[1])

    def _mlp(hidden):
        rng = np.random.default_rng(0)
        ws = [_he(rng, (32, 16)), hidden, _he(rng, (8, 32))]
        inits, nodes, x = [], [], "x"
        for i, w in enumerate(ws, start=1):
            inits.append(numpy_helper.from_array(w.astype(np.float32), f"fc{i}.weight"))
            op = helper.make_node("Gemm", [x, f"fc{i}.weight"], [f"h{i}"], name=f"/fc{i}/Gemm")
            op.attribute.append(helper.make_attribute("transB", 1))
            nodes += [op, helper.make_node("Relu", [f"h{i}"], [f"r{i}"], name=f"/act{i}/Relu")]
            x = f"r{i}"
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])]
        outputs = [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", 8])]
        graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])

    def build_clean():
        return _mlp(_he(np.random.default_rng(1), (32, 32)))

    def build_zero():
        return _mlp(np.zeros((32, 32)))

    def build_broken():
        raise RuntimeError("config file missing")

    def build_nothing():
        return "not a model"
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "factorypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(textwrap.dedent(MODELS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the factory import adds the cwd
    for name in ("factorypkg", "factorypkg.models"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def _run(*args: str) -> Result:
    return runner().invoke(cli, ["--isolated", *args])


def test_a_factory_model_is_audited_under_the_factorys_name(repo: Path) -> None:
    result = _run("--factory", "factorypkg.models:build_zero")
    assert result.exit_code == 1, result.output
    assert "factorypkg.models:build_zero: fc2.weight [Gemm /fc2/Gemm] IA101 error" in result.stdout
    clean = _run("--factory", "factorypkg.models:build_clean")
    assert clean.exit_code == 0, clean.output


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        (
            "factorypkg.missing:build",
            "initaudit: factorypkg.missing:build: factory-failed: cannot import "
            "factorypkg.missing:build: ModuleNotFoundError: No module named 'factorypkg.missing'",
        ),
        (
            "factorypkg.models:build_broken",
            "initaudit: factorypkg.models:build_broken: factory-failed: "
            "factorypkg.models:build_broken() raised RuntimeError: config file missing",
        ),
        (
            "factorypkg.models:build_nothing",
            "initaudit: factorypkg.models:build_nothing: factory-failed: "
            "factorypkg.models:build_nothing() returned a str, not a torch.nn.Module, "
            "keras.Model or onnx.ModelProto",
        ),
        (
            "factorypkg.models",
            "initaudit: factorypkg.models: factory-failed: 'factorypkg.models' is not "
            "MODULE:FUNCTION (e.g. mypkg.models:build_resnet)",
        ),
    ],
)
def test_a_factory_that_fails_is_one_line_and_exit_2(repo: Path, spec: str, line: str) -> None:
    result = _run("--factory", spec, "--factory", "factorypkg.models:build_zero")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [line]
    assert "Traceback" not in result.output
    # The other factory is still audited, as another file would be.
    assert "factorypkg.models:build_zero: fc2.weight" in result.stdout


def test_debug_shows_the_factorys_traceback(repo: Path) -> None:
    result = _run("--debug", "--factory", "factorypkg.models:build_broken")
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "config file missing" in repr(result.exception.__cause__ or result.exception)


def test_configured_factories_run_when_no_model_is_given(repo: Path) -> None:
    (repo / "pyproject.toml").write_text(
        '[tool.initaudit]\nfactories = ["factorypkg.models:build_zero"]\n'
    )
    result = runner().invoke(cli, [])
    assert result.exit_code == 1, result.output
    assert "factorypkg.models:build_zero: fc2.weight [Gemm /fc2/Gemm] IA101 error" in result.stdout
