"""[tool.initaudit]: discovery, precedence, validation, overrides, excludes, as users see them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from initaudit import load_config
from initaudit.cli import cli
from initaudit.config import THRESHOLDS, Config, Override
from initaudit.config_file import find_config
from initaudit.errors import ConfigError
from tests import _models as M
from tests._click import runner

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder, the current directory, holding a model whose fc2.weight is zero."""
    ws = [M.torch_default((32, 16), 16), np.zeros((8, 32), np.float32), M.torch_default((4, 8), 8)]
    M.save(M.mlp(ws), tmp_path / "models" / "zero.onnx")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str | Path) -> tuple[int, str, str]:
    r = runner().invoke(cli, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


def test_no_config_means_defaults(project: Path) -> None:
    assert find_config() is None
    assert run("models/zero.onnx")[0] == 1


def test_nearest_pyproject_with_the_table_wins_without_merging(project: Path) -> None:
    write(project / "pyproject.toml", '[tool.initaudit]\nignore = ["IA101"]\nfail-on = "info"\n')
    write(project / "sub" / "pyproject.toml", "[project]\nname = 'x'\n")  # no table: passed over
    assert run("models/zero.onnx")[0] == 0
    sub = project / "sub"
    assert find_config(sub) == project / "pyproject.toml"
    write(sub / "inner" / "pyproject.toml", '[tool.initaudit]\nselect = ["IA2"]\n')
    nearest = load_config(start=sub / "inner")
    # The inner file alone applies: the outer ignore and fail-on are not merged in.
    assert (nearest.select, nearest.ignore, nearest.fail_on) == (("IA2",), (), "error")


def test_cli_overrides_config(project: Path) -> None:
    write(project / "pyproject.toml", '[tool.initaudit]\nignore = ["IA101"]\n')
    assert run("models/zero.onnx")[0] == 0
    assert run("models/zero.onnx", "--select", "IA101")[0] == 1  # --select replaces it all
    assert run("models/zero.onnx", "--isolated")[0] == 1
    write(project / "pyproject.toml", '[tool.initaudit]\nfail-on = "never"\n')
    assert run("models/zero.onnx")[0] == 0
    assert run("models/zero.onnx", "--fail-on", "error")[0] == 1


def test_explicit_config_file_pyproject_or_initaudit_toml(project: Path) -> None:
    write(project / "pyproject.toml", '[tool.initaudit]\nignore = ["IA101"]\n')
    cfg = write(project / "ci" / "initaudit.toml", 'fail-on = "never"\n')
    code, out, _ = run("--config", str(cfg), "models/zero.onnx")
    assert code == 0 and "IA101" in out  # initaudit.toml alone: IA101 reported, never fails
    other = write(project / "other" / "pyproject.toml", "[tool.black]\n")
    code, _, err = run("--config", str(other), "models/zero.onnx")
    assert code == 2 and "no [tool.initaudit] table" in err
    assert run("--config", str(cfg), "--isolated", "models/zero.onnx")[0] == 2


def test_unknown_key_is_a_one_line_warning(project: Path) -> None:
    write(
        project / "pyproject.toml",
        '[tool.initaudit]\nfoo = 1\n[[tool.initaudit.overrides]]\ntensors = ["x"]\nbar = 2\n',
    )
    code, _, err = run("models/zero.onnx")
    assert code == 1
    assert err.splitlines() == [
        "initaudit: warning: unknown key 'foo' in pyproject.toml [tool.initaudit]",
        "initaudit: warning: unknown key 'bar' in pyproject.toml [[tool.initaudit.overrides]] #1",
        "initaudit: warning: pyproject.toml: override #1: tensors glob 'x' matches no tensor of "
        "the 1 audited model",
    ]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            'select = ["IA1", "XY1"]',
            "unknown rule code 'XY1' in pyproject.toml [tool.initaudit] select",
        ),
        ('ignore = ["IA9"]', "unknown rule code 'IA9'"),
        (
            '[[tool.initaudit.overrides]]\ntensors = ["a"]\nignore = ["IA7"]',
            "unknown rule code 'IA7'",
        ),
        ('fail-on = "fatal"', "'fail-on' must be one of error, warning, info, never"),
        ("select = 3", "'select' must be a list of strings"),
        (
            "[tool.initaudit.thresholds]\nscale-ratio = -1",
            "'scale-ratio' must be a positive number",
        ),
        ('[tool.initaudit.thresholds]\noffset-z = "6"', "'offset-z' must be a positive number"),
        ("[[tool.initaudit.overrides]]\nallow-zeros = true", "needs 'tensors' or 'nodes'"),
        ('[[tool.initaudit.overrides]]\nnodes = "n"\nallow-zeros = 1', "'allow-zeros' must be"),
        ("select = [", "pyproject.toml: invalid TOML"),
    ],
)
def test_bad_config_is_a_usage_error(project: Path, toml: str, message: str) -> None:
    write(project / "pyproject.toml", "[tool.initaudit]\n" + toml + "\n")
    code, out, err = run("models/zero.onnx")
    assert code == 2 and out == ""
    assert message in err


def test_thresholds_documented_validated_and_read_through_config(project: Path) -> None:
    write(project / "pyproject.toml", "[tool.initaudit.thresholds]\nscale-ratio = 3\nnope = 1\n")
    warnings: list[str] = []
    cfg = load_config(warn=warnings.append)
    assert cfg.threshold("scale-ratio") == 3.0
    assert cfg.threshold("offset-z") == THRESHOLDS["offset-z"][0] == 6.0
    assert Config().threshold("depth-band") == 100.0
    assert warnings == [
        "unknown key 'nope' in pyproject.toml [tool.initaudit.thresholds] "
        "(known: scale-ratio, offset-z, depth-band)"
    ]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for key, (default, _) in THRESHOLDS.items():
        assert re.search(rf"\| `{key}` \| {default:g} \|", readme), f"README lacks {key}"


def test_overrides_ignore_allow_zeros_and_scheme(project: Path) -> None:
    write(
        project / "pyproject.toml",
        "[[tool.initaudit.overrides]]\n"
        'tensors = ["fc2.*"]\nallow-zeros = true\nscheme = "normal(std=0.02)"\n'
        "[[tool.initaudit.overrides]]\n"
        'nodes = ["/fc1/*"]\nignore = ["IA1"]\n',
    )
    assert run("models/zero.onnx")[0] == 0
    cfg = load_config()
    assert cfg.overrides == (
        Override(tensors=("fc2.*",), allow_zeros=True, scheme="normal(std=0.02)"),
        Override(nodes=("/fc1/*",), ignore=("IA1",)),
    )
    assert cfg.overrides_for("fc2.weight", None)[0].scheme == "normal(std=0.02)"
    assert cfg.keeps("IA103", "fc2.weight") and not cfg.keeps("IA102", "fc2.weight")
    assert not cfg.keeps("IA105", "fc1.bias", ["/fc1/Gemm"])
    # A node glob alone, matching the node that reads fc2.weight, also suppresses.
    write(
        project / "pyproject.toml",
        '[[tool.initaudit.overrides]]\nnodes = ["/fc2/*"]\nignore = ["IA101"]\n',
    )
    assert run("models/zero.onnx")[0] == 0


def test_exclude_applies_to_files_named_on_the_command_line(project: Path) -> None:
    """Like ruff --force-exclude: pre-commit passes excluded files by name."""
    write(project / "pyproject.toml", '[tool.initaudit]\nexclude = ["models/*"]\n')
    code, out, _ = run("models/zero.onnx")
    assert code == 0 and "in 0 files" in out
    (project / "sub").mkdir()
    cfg = load_config()
    # Globs are relative to the config file's folder, wherever the command runs.
    assert cfg.excludes("models/zero.onnx") and cfg.excludes(project / "models" / "zero.onnx")
    assert not Config(exclude=("legacy",)).excludes("models/zero.onnx")
    assert Config(exclude=("models",)).excludes("./models/zero.onnx")
    assert Config(exclude=("*_old.onnx",)).excludes("a/b/net_old.onnx")


def test_baseline_key_is_relative_to_the_config_file(project: Path) -> None:
    write(project / "pyproject.toml", '[tool.initaudit]\nbaseline = "ci/baseline.json"\n')
    assert load_config().baseline == str(project / "ci" / "baseline.json")
    code, _, err = run("models/zero.onnx")
    assert code == 2 and "cannot read baseline" in err
    # Creating the configured baseline the first time works, then it applies by itself.
    assert run("models/zero.onnx", "--write-baseline", "ci/baseline.json")[0] == 0
    code, out, _ = run("models/zero.onnx")
    assert code == 0 and "(1 baselined)" in out


def test_python_warning_by_default(project: Path) -> None:
    write(project / "initaudit.toml", "colour = true\n")
    with pytest.warns(UserWarning, match="unknown key 'colour' in initaudit.toml"):
        load_config(project / "initaudit.toml")
    with pytest.raises(ConfigError):
        load_config(project / "missing.toml")


def _zero_model(path: Path) -> Path:
    ws = [M.torch_default((32, 16), 16), np.zeros((8, 32), np.float32), M.torch_default((4, 8), 8)]
    return M.save(M.mlp(ws), path)


def test_unknown_codes_and_keys_get_did_you_mean(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    model = _zero_model(tmp_path / "m.onnx")
    code, _, err = run("--ignore", "IA1O1", model)
    assert code == 2
    assert err == (
        "initaudit: error: unknown rule code 'IA1O1' in --ignore; did you mean 'IA101'? see "
        "'initaudit --list-rules'\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        '[tool.initaudit]\nfial-on = "info"\nextend_select = ["IA101"]\n'
    )
    code, _, err = run(model)
    assert code == 1
    assert err.splitlines() == [
        "initaudit: warning: unknown key 'fial-on' in pyproject.toml [tool.initaudit]; did you "
        "mean 'fail-on'?",
        "initaudit: warning: unknown key 'extend_select' in pyproject.toml [tool.initaudit]; "
        "did you mean 'extend-select'?",
    ]


def test_a_config_error_is_one_line_without_the_usage_banner(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.initaudit]\nselect = [\n")
    code, _, err = run(_zero_model(tmp_path / "m.onnx"))
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith("initaudit: error: pyproject.toml: invalid TOML: ")
    assert "Usage:" not in err and "Try 'initaudit" not in err


def test_a_tool_initaudit_table_in_an_initaudit_toml_is_read(tmp_path: Path) -> None:
    """It used to drop every setting with only "unknown key 'tool'"."""
    model = _zero_model(tmp_path / "m.onnx")
    cfg = tmp_path / "initaudit.toml"
    cfg.write_text('[tool.initaudit]\nignore = ["IA101"]\n')
    assert run("--config", cfg, model) == (0, run("--config", cfg, model)[1], "")
    cfg.write_text('fail-on = "never"\n[tool.initaudit]\nignore = ["IA101"]\n')
    code, _, err = run("--config", cfg, model)
    assert code == 2 and "settings both at top level (fail-on) and in [tool.initaudit]" in err


@pytest.mark.parametrize(
    ("scheme", "message"),
    [
        ("kaiming_normal", "fan-based schemes are not declared"),
        ("normal(sdt=1.0)", "not a scheme initaudit understands; accepted: normal(std=S), "),
        ("normal(std=-1)", "not a scheme initaudit understands"),
        ("normal(std=e)", "not a scheme initaudit understands"),
        ("normal(std=0)", "the scale must be a positive number, not 0"),
    ],
)
def test_an_override_scheme_is_parsed_when_the_config_is_read(
    tmp_path: Path, monkeypatch, scheme: str, message: str
) -> None:
    """These were silently ignored, turned IA201 off, or were internal errors."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        f'[[tool.initaudit.overrides]]\ntensors = ["*"]\nscheme = "{scheme}"\n'
    )
    code, out, err = run(_zero_model(tmp_path / "m.onnx"))
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith(
        f"initaudit: error: pyproject.toml [[tool.initaudit.overrides]] #1: 'scheme' = {scheme!r}: "
    )
    assert message in line and "internal error" not in line


def test_a_declared_scheme_judges_the_tensor(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    ws = [M.rng(k).normal(0, 0.02, (64, 64)).astype(np.float32) for k in range(3)]
    model = M.save(M.mlp(ws), tmp_path / "m.onnx")
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.initaudit.overrides]]\ntensors = ["fc2.*"]\nscheme = "uniform(-0.5, 0.5)"\n'
    )
    code, out, _ = run("--select", "IA201", model)
    assert code == 0  # warnings
    (line,) = [ln for ln in out.splitlines() if "fc2.weight" in ln and "IA201" in ln]
    assert line.endswith(
        "fc2.weight [Gemm /fc2/Gemm] IA201 warning: std 0.0201 is ≈14× smaller than the 0.289 "
        "of the configured scheme uniform(-0.5, 0.5)"
    )
