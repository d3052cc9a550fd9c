"""What a user sees from the command line: exit codes, text, JSON contract, stderr lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from initaudit import __version__
from initaudit.cli import cli
from tests import _models as M

TENSOR_KEYS = [
    "name",
    "node",
    "op_type",
    "role",
    "shape",
    "dtype",
    "fan_in",
    "fan_out",
    "activation",
    "scheme",
    "mean",
    "std",
    "expected_std",
    "ratio",
]
FINDING_KEYS = ["rule", "severity", "tensor", "node", "message"]


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return M.save(M.clean_mlp(), tmp_path / "clean.onnx")


@pytest.fixture
def zero(tmp_path: Path) -> Path:
    ws = [M.torch_default((32, 16), 16), np.zeros((8, 32), np.float32), M.torch_default((4, 8), 8)]
    return M.save(M.mlp(ws), tmp_path / "zero.onnx")


def run(*args: str | Path) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


def test_clean_model_exits_0_with_summary(clean: Path) -> None:
    code, out, err = run(clean)
    assert code == 0 and err == ""
    assert out.strip() == "0 findings (0 errors, 0 warnings, 0 info) in 1 file."


def test_defect_exits_1_with_one_line_per_finding(zero: Path) -> None:
    code, out, _ = run(zero)
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith(f"{zero}: fc2.weight [Gemm /fc2/Gemm] IA101 error: all 256 values")
    assert out.rstrip().endswith("1 finding (1 error, 0 warnings, 0 info) in 1 file.")


def test_fail_on_never_and_quiet(zero: Path) -> None:
    code, out, _ = run(zero, "--fail-on", "never", "-q")
    assert code == 0
    assert "IA101" in out and "finding (" not in out


def test_bad_file_among_good_ones(clean: Path, zero: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    code, out, err = run(clean, bad, zero, "--format", "json")
    assert code == 2
    assert err.strip() == f"initaudit: {bad}: not-onnx: " + err.strip().split(": not-onnx: ")[1]
    assert len(err.strip().splitlines()) == 1
    doc = json.loads(out)
    assert [f["error"] and f["error"]["code"] for f in doc["files"]] == [None, "not-onnx", None]
    assert doc["files"][2]["findings"][0]["rule"] == "IA101"


def test_json_contract(zero: Path) -> None:
    code, out, _ = run(zero, "--format", "json")
    doc = json.loads(out)
    assert code == 1
    assert list(doc)[:4] == ["schema_version", "initaudit_version", "files", "summary"]
    assert doc["schema_version"] == 1 and doc["initaudit_version"] == __version__
    f = doc["files"][0]
    assert list(f) == ["path", "error", "tensors", "findings"]
    t = {t["name"]: t for t in f["tensors"]}["fc1.weight"]
    assert list(t)[: len(TENSOR_KEYS)] == TENSOR_KEYS
    assert (t["role"], t["shape"], t["dtype"], t["fan_in"], t["fan_out"], t["activation"]) == (
        "weight",
        [32, 16],
        "float",
        16,
        32,
        "relu",
    )
    assert list(f["findings"][0])[: len(FINDING_KEYS)] == FINDING_KEYS
    assert doc["summary"] == {"files": 1, "errors": 1, "warnings": 0, "infos": 0, "file_errors": 0}


def test_output_file_and_no_color(zero: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "report.txt"
    code, out, _ = run(zero, "-o", out_file)
    assert code == 1 and out == ""
    assert "\x1b[" not in out_file.read_text() and "IA101" in out_file.read_text()


def test_usage_errors_exit_2() -> None:
    assert run()[0] == 2
    assert run("--format", "xml", "m.onnx")[0] == 2
    assert run("--explain", "IA999")[0] == 2


def test_explain_and_list_rules() -> None:
    code, out, _ = run("--explain", "IA101")
    assert code == 0 and "## Example" in out and "## Use instead" in out
    code, out, _ = run("--list-rules")
    assert code == 0 and [ln.split()[0] for ln in out.splitlines()][:2] == ["IA101", "IA102"]


def test_output_is_deterministic_and_model_untouched(zero: Path) -> None:
    before = (zero.read_bytes(), os.stat(zero).st_mtime_ns)
    outs = {run(zero, "--format", "json")[1] for _ in range(3)}
    assert len(outs) == 1
    assert (zero.read_bytes(), os.stat(zero).st_mtime_ns) == before


def test_installed_console_script(zero: Path, tmp_path: Path) -> None:
    """The real entry point: colour off when piped, one stderr line for a missing file."""
    exe = Path(sys.executable).parent / "initaudit"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "initaudit"]
    r = subprocess.run(
        [*cmd, str(zero), str(tmp_path / "missing.onnx")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr == f"initaudit: {tmp_path / 'missing.onnx'}: not-found: no such file\n"
    assert "IA101" in r.stdout and "\x1b[" not in r.stdout
    assert "Traceback" not in r.stderr
