"""Where reports go (outputs.py) and the ruff/mypy habits of the command line: report files
into folders that do not exist yet, --output-format, --exit-zero, --statistics, --color."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from initaudit.cli import cli
from tests import _models as M
from tests._click import runner


def run(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    r = runner().invoke(cli, ["--isolated", *map(str, args)], env=env)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def zero(tmp_path: Path) -> Path:
    ws = [M.torch_default((32, 16), 16), np.zeros((8, 32), np.float32), M.torch_default((4, 8), 8)]
    return M.save(M.mlp(ws), tmp_path / "zero.onnx")


@pytest.mark.parametrize(
    ("option", "name"),
    [("-o", "report.json"), ("--write-baseline", "baseline.json"), ("--html", "r.html")],
)
def test_a_report_file_in_a_missing_folder_is_created(
    zero: Path, tmp_path: Path, option: str, name: str
) -> None:
    """These used to audit everything, then die with "internal error: FileNotFoundError"."""
    if option == "--html":
        pytest.importorskip("matplotlib", reason="--html needs the 'report' extra")
    target = tmp_path / "out" / "deeper" / name
    code, _, err = run(zero, option, target, "--format", "json")
    assert code == (0 if option == "--write-baseline" else 1), err
    assert "internal error" not in err
    assert target.stat().st_size > 0


def test_an_unwritable_report_path_fails_before_the_audit(zero: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where a folder should be")
    for option in ("-o", "--write-baseline"):
        code, out, err = run(zero, option, tmp_path / "taken" / "r.json")
        assert code == 2 and out == ""
        (line,) = err.splitlines()
        assert line.startswith(f"initaudit: error: {option if option != '-o' else '--output'} ")
        assert "cannot create the folder" in line
    code, _, err = run(zero, "-o", tmp_path)
    assert code == 2 and "is a directory" in err  # click's own check


def test_output_format_is_an_alias_of_format(zero: Path) -> None:
    assert run(zero, "--output-format", "json")[1] == run(zero, "--format", "json")[1]
    assert json.loads(run(zero, "--output-format", "json")[1])["schema_version"] == 1


def test_exit_zero_is_fail_on_never(zero: Path, tmp_path: Path) -> None:
    code, out, _ = run(zero, "--exit-zero")
    assert code == 0 and "IA101 error" in out
    # A model that cannot be read still fails the run.
    assert run(zero, tmp_path / "missing.onnx", "--exit-zero")[0] == 2
    code, _, err = run(zero, "--exit-zero", "--fail-on", "warning")
    assert code == 2 and "--exit-zero and --fail-on warning contradict" in err


def test_statistics_counts_findings_per_rule(zero: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.onnx"
    other.write_bytes(zero.read_bytes())
    code, out, _ = run(zero, other, "--statistics")
    assert code == 1 and out == "2\tIA101\tzero-weight\n"
    code, out, _ = run(zero, other, "--statistics", "--format", "json")
    assert json.loads(out) == [
        {"code": "IA101", "name": "zero-weight", "severity": "error", "count": 2}
    ]
    assert run(zero, "--statistics", "--format", "sarif")[0] == 2


def test_color_flag_and_force_color(zero: Path) -> None:
    plain = {"NO_COLOR": "", "FORCE_COLOR": ""}
    assert "\x1b[" not in run(zero, env=plain)[1]  # not a terminal
    assert "\x1b[" in run(zero, env={**plain, "FORCE_COLOR": "1"})[1]
    assert "\x1b[" in run(zero, "--color", "always", env={**plain, "NO_COLOR": "1"})[1]
    assert "\x1b[" not in run(zero, "--color", "never", env={**plain, "FORCE_COLOR": "1"})[1]
    # The user's opt-out wins over a CI system's FORCE_COLOR.
    assert "\x1b[" not in run(zero, env={"NO_COLOR": "1", "FORCE_COLOR": "1"})[1]
