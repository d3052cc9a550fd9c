"""Broken and hostile model files, seen from the command line: exit 2, one stderr line
``initaudit: PATH: CODE: message``, no traceback, and a JSON ``error`` entry with that code.
Unusual but valid files are audited; an internal bug is one line unless --debug; model and
data files are never written; output is byte-identical across runs and hash seeds."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from initaudit import cli as cli_module
from initaudit.errors import INPUT_ERROR_CODES
from tests import _fuzzing as F
from tests import _models as M
from tests._click import runner

# The module, not the initaudit.audit() function the package exports under the same name.
pipeline = importlib.import_module("initaudit.audit")
# The installed console script (what CI runs), else the same entry point through -m.
_EXE = Path(sys.executable).parent / "initaudit"
COMMAND = [str(_EXE)] if _EXE.exists() else [sys.executable, "-m", "initaudit"]


def run(*args: str | Path) -> tuple[int, str, str]:
    r = runner().invoke(cli_module.cli, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


def _edited(edit: Callable[[TensorProto], object]) -> Callable[[Path], Path]:
    """A 4-3 MLP whose first initializer (fc1.weight, 3x4 float) went through ``edit``."""

    def build(tmp: Path) -> Path:
        m = M.clean_mlp((4, 3))
        edit(m.graph.initializer[0])
        return M.save(m, tmp / "m.onnx")

    return build


def _bytes(data: bytes) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        (tmp / "m.onnx").write_bytes(data)
        return tmp / "m.onnx"

    return build


def _external(location: str | None, **entries: str) -> Callable[[Path], Path]:
    return lambda tmp: F.external_model(tmp, location, **entries)


def _symlink_out(tmp: Path) -> Path:
    (tmp / "secret.bin").write_bytes(b"\0" * 48)
    (tmp / "model").mkdir()
    os.symlink(tmp / "secret.bin", tmp / "model" / "link.bin")
    return F.external_model(tmp / "model", "link.bin")


def _function_bomb(tmp: Path) -> Path:
    m = M.clean_mlp((4, 3))
    F.self_calling_function(m, calls=4)  # 4**16 nodes once expanded
    return M.save(m, tmp / "m.onnx")


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipe.onnx")
    return tmp / "pipe.onnx"


_PARSE = ("not-onnx", "invalid-model")
_CLEAN = M.clean_mlp((4, 3)).SerializeToString()
_TENSOR = M.tensor("w", np.ones(4, np.float32)).SerializeToString()
BROKEN: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "missing": (lambda tmp: tmp / "nope.onnx", ("not-found",)),
    "fifo": (_fifo, ("not-a-file",)),
    "dev-zero": (lambda tmp: Path("/dev/zero"), ("not-a-file",)),
    "empty": (_bytes(b""), ("empty",)),
    "random-bytes": (_bytes(np.random.default_rng(7).bytes(4096)), _PARSE),
    "text": (_bytes(b"hello, this is not a model\n"), ("not-onnx",)),
    "truncated": (_bytes(_CLEAN[: len(_CLEAN) // 2]), (*_PARSE, "bad-tensor")),
    "tensor-not-model": (_bytes(_TENSOR), _PARSE),
    "raw-short": (_edited(lambda w: setattr(w, "raw_data", w.raw_data[:-4])), ("bad-tensor",)),
    "raw-long": (_edited(lambda w: setattr(w, "raw_data", w.raw_data + b"1234")), ("bad-tensor",)),
    "huge-dims": (_edited(lambda w: w.dims.__setitem__(0, 2**40)), ("bad-tensor",)),
    "negative-dims": (_edited(lambda w: w.dims.__setitem__(0, -3)), ("bad-tensor",)),
    "unknown-dtype": (_edited(lambda w: setattr(w, "data_type", 999)), ("bad-tensor",)),
    "complex-dtype": (_edited(lambda w: setattr(w, "data_type", 14)), ("bad-tensor",)),
    "rank-70": (_edited(lambda w: w.dims.extend([1] * 68)), ("too-large",)),
    "ext-missing": (_external("gone.bin"), ("external-data-missing",)),
    "ext-relative-escape": (_external("../data.bin"), ("external-data-escapes",)),
    "ext-absolute": (_external("/etc/passwd"), ("external-data-escapes",)),
    "ext-symlink-escape": (_symlink_out, ("external-data-escapes",)),
    "ext-offset-past-end": (_external("data.bin", offset="8"), ("external-data-invalid",)),
    "ext-length-short": (_external("data.bin", length="40"), ("bad-tensor",)),
    "ext-no-location": (_external(None, length="48"), ("external-data-invalid",)),
    "ext-empty-location": (_external(""), ("external-data-invalid",)),
    "nested-200-ifs": (_bytes(F.deep_if_model(200)), _PARSE),
    "function-bomb": (_function_bomb, ("too-large",)),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_input_is_one_stderr_line_and_exit_2(tmp_path: Path, case: str) -> None:
    build, codes = BROKEN[case]
    path = build(tmp_path)
    with F.time_limit(F.TIME_LIMIT):
        code, out, err = run(path)
        json_code, json_out, _ = run(path, "--format", "json")
    assert code == 2 and json_code == 2
    (line,) = err.splitlines()
    head = f"initaudit: {path}: "
    assert line.startswith(head), line
    got, message = line[len(head) :].split(": ", 1)
    assert got in codes and got in INPUT_ERROR_CODES and got != "internal", line
    assert "Traceback" not in out + err
    (entry,) = json.loads(json_out)["files"]
    assert entry["error"] == {"code": got, "message": message}


def test_non_regular_files_never_block_the_real_command(tmp_path: Path) -> None:
    """A FIFO with no writer blocks open(); /dev/zero never ends. Neither is opened."""
    os.mkfifo(tmp_path / "pipe.onnx")
    cmd = [*COMMAND, str(tmp_path / "pipe.onnx"), "/dev/zero"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2
    assert [ln.split(": ")[2] for ln in r.stderr.splitlines()] == ["not-a-file", "not-a-file"]


def _structural(name: str) -> onnx.ModelProto:
    """A model onnx.checker refuses for its graph, not its bytes (README "Error codes")."""
    w = M.tensor("W", M.torch_default((3, 4), 4))
    gemm = helper.make_node("Gemm", ["x", "W"], ["h"], transB=1, name="fc")
    relu = helper.make_node("Relu", ["h"], ["y"], name="act")
    nodes = [gemm, relu]
    outputs = [M.value_info("y", [1, 3])]
    if name == "cycle":  # the Gemm reads the output of the Relu it feeds
        nodes = [
            helper.make_node("Gemm", ["x", "W"], ["h"], transB=1, name="fc"),
            helper.make_node("Add", ["h", "z"], ["a"], name="add"),
            helper.make_node("Relu", ["a"], ["z"], name="act"),
            helper.make_node("Identity", ["z"], ["y"], name="out"),
        ]
    elif name == "self-loop":
        nodes = [gemm, helper.make_node("Add", ["h", "y"], ["y"], name="act")]
    elif name == "dangling-input":
        nodes = [helper.make_node("Gemm", ["x", "W", "ghost_bias"], ["h"], transB=1), relu]
    elif name == "duplicate-output":
        nodes = [gemm, relu, helper.make_node("Tanh", ["h"], ["y"], name="again")]
    elif name == "unproduced-output":
        outputs = [M.value_info("nowhere", [1, 3])]
    elif name == "mistyped-attribute":
        gemm = helper.make_node("Gemm", ["x", "W"], ["h"], name="fc")
        gemm.attribute.append(helper.make_attribute("transB", 1.0))
        nodes = [gemm, relu]
    return M.model(nodes, [w], [M.value_info("x", [1, 4])], outputs)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("cycle", "cycle through node"),
        ("self-loop", "cycle through node 'act'"),
        ("dangling-input", "reads 'ghost_bias', which no node"),
        ("duplicate-output", "node 'act' (Relu) and node 'again' (Tanh) both write 'y'"),
        ("unproduced-output", "graph output 'nowhere' is produced by no node"),
        ("mistyped-attribute", "node 'fc' (Gemm): attribute transB is stored as FLOAT"),
    ],
)
def test_a_graph_that_is_not_a_graph_is_an_input_error(
    tmp_path: Path, name: str, words: str
) -> None:
    """onnx.checker refuses each of these and no runtime loads them: never a clean audit."""
    m = _structural(name)
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(m, full_check=True)
    with F.time_limit(F.TIME_LIMIT):
        code, out, err = run(M.save(m, tmp_path / f"{name}.onnx"), "--format", "json")
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith(f"initaudit: {tmp_path / name}.onnx: invalid-model: ") and words in line
    (entry,) = json.loads(out)["files"]
    assert entry["error"]["code"] == "invalid-model" and entry["tensors"] == []


def _unusual(tmp: Path, name: str) -> Path:
    w = M.torch_default((3, 4), 4)
    x, y = [M.value_info("x", [1, 4])], [M.value_info("y", [1, 3])]
    gemm = helper.make_node("Gemm", ["x", "W", ""], ["y"], transB=1)
    if name == "float-data":
        t = helper.make_tensor("W", TensorProto.FLOAT, [3, 4], w.reshape(-1).tolist())
        m = M.model([gemm], [t, helper.make_tensor("E", TensorProto.FLOAT, [0, 4], [])], x, y)
    elif name == "cast-from-fp16":
        cast = helper.make_node("Cast", ["W16"], ["W"], to=TensorProto.FLOAT)
        m = M.model([cast, gemm], [M.tensor("W16", w.astype(np.float16))], x, y)
    else:  # external data without offset or length
        return F.external_model(tmp, "data.bin")
    return M.save(m, tmp / "m.onnx")


@pytest.mark.parametrize(
    ("name", "tensor", "dtype"),
    [("float-data", "W", "float"), ("cast-from-fp16", "W16", "float16"), ("external", "", "")],
)
def test_unusual_but_valid_files_are_audited(
    tmp_path: Path, name: str, tensor: str, dtype: str
) -> None:
    """float_data storage, a zero-element tensor, an omitted optional input, a weight reached
    through Cast from fp16, external data with no offset or length."""
    code, out, err = run(_unusual(tmp_path, name), "--format", "json")
    assert code in (0, 1) and err == ""
    (entry,) = json.loads(out)["files"]
    weight = {t["name"]: t for t in entry["tensors"]}[tensor or "fc1.weight"]
    assert entry["error"] is None
    assert (weight["role"], weight["fan_in"], weight["dtype"]) == ("weight", 4, dtype or "float")


def _boom(*args: object, **kwargs: object) -> object:
    raise RuntimeError("rule exploded\nsecond line")


def test_internal_error_is_one_line_unless_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = M.save(M.clean_mlp((4, 3)), tmp_path / "ok.onnx")
    bad = M.save(M.clean_mlp((4, 3)), tmp_path / "bad.onnx")
    real = pipeline._audit_loaded
    monkeypatch.setattr(
        pipeline,
        "_audit_loaded",
        lambda shown, *a: _boom() if shown == str(bad) else real(shown, *a),
    )
    code, out, err = run(ok, bad, "--format", "json")
    assert code == 2
    assert err == (
        f"initaudit: {bad}: internal: internal error (RuntimeError: rule exploded); "
        "rerun with --debug\n"
    )
    files = json.loads(out)["files"]
    assert [f["error"] and f["error"]["code"] for f in files] == [None, "internal"]
    with pytest.raises(SystemExit) as exited:
        cli_module.main([str(bad)])
    assert exited.value.code == 2
    assert capsys.readouterr().err == err
    r = runner().invoke(cli_module.cli, [str(bad), "--debug"])
    assert isinstance(r.exception, RuntimeError)  # re-raised for the traceback
    try:  # through the console entry point, --debug shows the traceback
        cli_module.main([str(bad), "--debug"])
    except RuntimeError as exc:  # Python prints it
        assert str(exc).startswith("rule exploded")
    except SystemExit as exc:  # or main prints it and keeps the contract's exit status
        assert exc.code == 2 and "Traceback" in capsys.readouterr().err


def test_error_outside_the_pipeline_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The entry point's last line of defence: a reporter that raises."""
    monkeypatch.setattr(importlib.import_module("initaudit.report.text"), "render", _boom)
    with pytest.raises(SystemExit) as exited:
        cli_module.main([str(M.save(M.clean_mlp((4, 3)), tmp_path / "m.onnx"))])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "initaudit: internal error: RuntimeError: rule exploded; rerun with --debug\n"
    )


@pytest.mark.parametrize("exc", [AttributeError, RuntimeError, MemoryError, RecursionError])
def test_any_exception_from_a_rule_fails_the_file_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: type[BaseException]
) -> None:
    def broken_check(self: object, ctx: object) -> object:
        raise exc("buggy rule")

    from initaudit.rules import ALL_RULES

    monkeypatch.setattr(ALL_RULES[0], "check", broken_check)
    code, _, err = run(M.save(M.clean_mlp((4, 3)), tmp_path / "m.onnx"))
    assert code == 2
    tail = f"internal: internal error ({exc.__name__}: buggy rule); rerun with --debug\n"
    assert err.endswith(tail) and err.count("\n") == 1


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_model_and_external_data_are_never_written(tmp_path: Path) -> None:
    folder = tmp_path / "ext"
    shutil.copytree(F.EXTERNAL.parent, folder)
    before = _snapshot(folder)
    assert len(before) == 2  # the model and its .data file
    for fmt in ("text", "json"):
        code, _, err = run(folder / F.EXTERNAL.name, "--format", fmt)
        assert code in (0, 1) and err == ""
    assert _snapshot(folder) == before


_TORCH = ("mlp_duplicate_units__dynamo.onnx", "hf_bert_tiny__legacy.onnx", "gru__legacy.onnx")
DETERMINISM_FIXTURES = [*(F.FIXTURES / "torch" / name for name in _TORCH), F.EXTERNAL]


@pytest.mark.slow
def test_output_is_byte_identical_across_hash_seeds() -> None:
    """Set and dict orders must never leak into the report (PYTHONHASHSEED changes str hashes).

    Eight processes, each importing initaudit and auditing four models: slow, CI runs it."""
    runs = {}
    for fmt in ("text", "json"):
        for seed in ("0", "1", "2", "random"):
            env = {**os.environ, "PYTHONHASHSEED": seed, "NO_COLOR": "1"}
            argv = [*COMMAND, *map(str, DETERMINISM_FIXTURES), f"--format={fmt}", "--fail-on=never"]
            runs[fmt, seed] = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, cwd="/")
    outputs: dict[str, set[bytes]] = {"text": set(), "json": set()}
    for (fmt, _seed), proc in runs.items():
        stdout, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        outputs[fmt].add(stdout)
    assert len(outputs["text"]) == 1 and len(outputs["json"]) == 1
    (report,) = outputs["json"]
    assert len(json.loads(report)["files"]) == 4 and b"IA" in next(iter(outputs["text"]))


@pytest.mark.parametrize(("kind", "n"), [("fan-out", 20_000), ("slice-concat", 4_000)])
def test_wide_graphs_are_audited_in_linear_time(tmp_path: Path, kind: str, n: int) -> None:
    """A few-MB file must not keep CI busy for minutes: a value read by 20,000 nodes, or a
    Concat of 4,000 slices of one weight, is audited in linear time (both were quadratic:
    about 1.5 s and 0.3 s now, 5 s and 20 s before; the limit leaves room for a slow CI)."""
    path = F.wide_model(tmp_path / "wide.onnx", kind, n)
    with F.time_limit(4.0):
        code, _, err = run(path)
    assert code in (0, 1) and err == ""
