"""Which settings apply to which model (settings.py): found from each file, like ruff; and the
selection mistakes that used to pass silently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from initaudit.cli import cli
from tests import _models as M
from tests._click import runner


def run(*args: str | Path) -> tuple[int, str, str]:
    r = runner().invoke(cli, [*map(str, args)])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


def _zero_model(path: Path) -> Path:
    ws = [M.torch_default((32, 16), 16), np.zeros((8, 32), np.float32), M.torch_default((4, 8), 8)]
    return M.save(M.mlp(ws), path)


@pytest.fixture
def two_projects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """proj_a never fails; proj_b excludes legacy/; the run starts from an unrelated folder."""
    for name in ("proj_a", "proj_b"):
        _zero_model(tmp_path / name / "models" / "zero.onnx")
    _zero_model(tmp_path / "proj_b" / "legacy" / "old.onnx")
    (tmp_path / "proj_a" / "pyproject.toml").write_text('[tool.initaudit]\nfail-on = "never"\n')
    (tmp_path / "proj_b" / "pyproject.toml").write_text('[tool.initaudit]\nexclude = ["legacy"]\n')
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return tmp_path


def test_the_config_is_found_from_the_models_location(two_projects: Path) -> None:
    """`cd /tmp && initaudit ~/proj/models/m.onnx` applies ~/proj/pyproject.toml."""
    code, out, _ = run(two_projects / "proj_a" / "models" / "zero.onnx")
    assert code == 0 and "IA101 error" in out  # reported, but proj_a's fail-on is never
    code, out, err = run(two_projects / "proj_b" / "legacy" / "old.onnx")
    assert code == 0 and "in 0 files" in out and "excluded" in err


def test_two_projects_in_one_run_each_keep_their_settings(two_projects: Path) -> None:
    code, out, _ = run("--format", "json", two_projects / "proj_a", two_projects / "proj_b")
    doc = json.loads(out)
    assert [Path(f["path"]).relative_to(two_projects).as_posix() for f in doc["files"]] == [
        "proj_a/models/zero.onnx",
        "proj_b/models/zero.onnx",  # legacy/ excluded by proj_b's own exclude
    ]
    assert code == 1  # proj_b's zero weight fails under proj_b's fail-on (error)
    assert run(two_projects / "proj_a")[0] == 0
    # The command line overrides every project alike.
    assert run("--fail-on", "never", two_projects / "proj_a", two_projects / "proj_b")[0] == 0


def test_config_applies_to_every_model_and_isolated_to_none(two_projects: Path) -> None:
    cfg = two_projects / "ci.toml"
    cfg.write_text('fail-on = "never"\n')
    assert run("--config", cfg, two_projects / "proj_b" / "models")[0] == 0
    assert run("--isolated", two_projects / "proj_a" / "models")[0] == 1


def test_a_model_under_no_project_gets_the_current_directorys_settings(
    two_projects: Path,
) -> None:
    loose = _zero_model(two_projects / "loose" / "zero.onnx")
    (two_projects / "elsewhere" / "pyproject.toml").write_text(
        '[tool.initaudit]\nignore = ["IA101"]\n'
    )
    assert run(loose)[0] == 0
    assert run(two_projects / "proj_b" / "models")[0] == 1  # proj_b's own settings


def test_a_mistake_in_any_projects_config_stops_the_run_before_the_work(
    two_projects: Path,
) -> None:
    (two_projects / "proj_b" / "pyproject.toml").write_text('[tool.initaudit]\nselect = ["IA9"]\n')
    code, out, err = run(two_projects / "proj_a", two_projects / "proj_b")
    assert code == 2 and out == ""
    assert err.startswith("initaudit: error: unknown rule code 'IA9' in ")


@pytest.mark.parametrize("empty", ["", " , ", ","])
def test_an_empty_select_is_an_error_not_no_rule(tmp_path: Path, empty: str) -> None:
    """`--select "$RULES"` with RULES unset used to run nothing and exit 0."""
    code, out, err = run("--isolated", "--select", empty, _zero_model(tmp_path / "m.onnx"))
    assert code == 2 and out == ""
    assert err == (
        f"initaudit: error: --select {empty!r} names no rule code (an empty variable?); give "
        "codes or prefixes (IA1), or --select ALL for every rule\n"
    )


def test_select_all_and_a_selection_that_selects_nothing(tmp_path: Path) -> None:
    model = _zero_model(tmp_path / "m.onnx")
    code, out, _ = run("--isolated", "--select", "ALL", model)
    assert code == 1 and "IA101" in out
    code, _, err = run("--isolated", "--select", "IA1", "--ignore", "IA1", model)
    assert code == 2
    assert "initaudit: error: no rule is selected" in err and "would check nothing" in err


def test_an_override_glob_that_matches_nothing_is_a_warning(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.initaudit.overrides]]\ntensors = ["fc2.*", "transfomer.*"]\nallow-zeros = true\n'
    )
    code, _, err = run(_zero_model(tmp_path / "m.onnx"))
    assert code == 0
    assert err == (
        "initaudit: warning: pyproject.toml: override #1: tensors glob 'transfomer.*' matches "
        "no tensor of the 1 audited model\n"
    )
