"""What a user sees from the command line: exit codes, text, JSON contract, stderr lines."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from initaudit._version import __version__
from initaudit.cli import cli
from tests import _models as M
from tests._click import runner
from tests.report._golden import assert_same_numbers, check_golden, run_format

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
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return M.save(M.clean_mlp(), tmp_path / "clean.onnx")


@pytest.fixture
def zero(tmp_path: Path) -> Path:
    ws = [M.torch_default((32, 16), 16), np.zeros((8, 32), np.float32), M.torch_default((4, 8), 8)]
    return M.save(M.mlp(ws), tmp_path / "zero.onnx")


def run(*args: str | Path) -> tuple[int, str, str]:
    r = runner().invoke(cli, ["--isolated", *(str(a) for a in args)])
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
    assert list(f)[:4] == ["path", "error", "tensors", "findings"]  # fields are only added
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
    assert doc["summary"] == {
        "files": 1,
        "errors": 1,
        "warnings": 0,
        "infos": 0,
        "file_errors": 0,
        "baselined": 0,
    }


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


@pytest.mark.parametrize(("fmt", "golden"), [("text", "report.txt"), ("json", "report.json")])
def test_golden(fmt: str, golden: str, tmp_path: Path) -> None:
    """Same fixture as the SARIF and GitHub golden files (tests/report/_golden.py)."""
    code, out = run_format(tmp_path, fmt)
    assert code == 2
    check_golden(golden, out)


def test_json_golden_allows_numpys_last_digits_not_a_real_change(tmp_path: Path) -> None:
    """The JSON golden's computed floats may move as numpy's summation order does (2e-5
    relative), never by a real change; stored extremes and fan-derived stds not at all."""
    _, out = run_format(tmp_path, "json")
    doc = json.loads(out)

    def moved(key: str, factor: float) -> dict:
        other = copy.deepcopy(doc)
        other["files"][0]["tensors"][0][key] *= factor
        return other

    assert_same_numbers(moved("std", 1 + 2e-5), doc, "report.json")
    for key, factor in (("std", 1 + 1e-3), ("ratio", 1 - 1e-3), ("min", 1 + 1e-9)):
        with pytest.raises(AssertionError):
            assert_same_numbers(moved(key, factor), doc, "report.json")


def test_select_and_ignore_by_code_or_prefix(zero: Path) -> None:
    assert run(zero, "--ignore", "IA101")[0] == 0
    assert run(zero, "--select", "IA102,IA103", "--select", "IA104")[0] == 0
    code, out, _ = run(zero, "--select", "ia1", "--ignore", "IA104")
    assert code == 1 and "IA101" in out
    assert run(zero, "--select", "IA2", "--extend-select", "IA101")[0] == 1
    # The most specific entry wins, as in ruff: IA101 stays selected under an IA1 ignore.
    assert run(zero, "--ignore", "IA1", "--extend-select", "IA101")[0] == 1


def test_unknown_rule_code_is_a_usage_error(zero: Path) -> None:
    code, _, err = run(zero, "--ignore", "IA104,IA9")
    assert code == 2
    assert "unknown rule code 'IA9' in --ignore; see 'initaudit --list-rules'" in err
    assert run(zero, "--select", "E501")[0] == 2


def test_explain_accepts_any_case_and_ignores_selection() -> None:
    code, out, _ = run("--explain", "ia104", "--ignore", "IA1")
    assert code == 0 and out.startswith("IA104 (duplicate-units)")


def _action() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with pre-commit ('.[test]')")
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    return action


def _step(action: dict, step_id: str) -> dict:
    [step] = [s for s in action["runs"]["steps"] if s.get("id") == step_id]
    return step


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    return subprocess.run(
        [bash, "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("sarif", ["false", "true"])
def test_action_run_step(sarif: str, zero: Path, clean: Path, tmp_path: Path) -> None:
    """The composite action's script, run as GitHub would (bash -e, inputs through env)."""
    step = _step(_action(), "run")
    (tmp_path / "models" / "deep").mkdir(parents=True)
    zero.rename(tmp_path / "models" / "deep" / "zero.onnx")
    clean.rename(tmp_path / "models" / "clean.onnx")
    outputs = tmp_path / "github_output"
    exe = Path(sys.executable).parent / "initaudit"
    env = {
        **os.environ,
        "GITHUB_OUTPUT": str(outputs),
        "INITAUDIT": str(exe),
        "INPUT_PATHS": "models/**/*.onnx",
        "INPUT_ARGS": "--isolated --fail-on warning",
        "INPUT_SARIF": sarif,
        "INPUT_SARIF_FILE": "out.sarif",
        "INPUT_HTML": "",
    }
    r = _bash(step["run"], tmp_path, env)
    assert r.returncode == 0, r.stderr  # the step passes; the action's last step fails the job
    assert "exit-code=1" in outputs.read_text().splitlines()
    if sarif == "true":
        doc = json.loads((tmp_path / "out.sarif").read_text())
        uris = {
            res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for res in doc["runs"][0]["results"]
        }
        assert uris == {"models/deep/zero.onnx"}
        # The log shows the text report, not only "exited with status 1".
        assert r.stdout.startswith("models/deep/zero.onnx: fc2.weight [Gemm /fc2/Gemm] IA101")
        assert "1 finding (1 error, 0 warnings, 0 info) in 2 files." in r.stdout
    else:
        assert r.stdout.startswith(
            "::error file=models/deep/zero.onnx,line=1,title=initaudit IA101"
        )


def test_action_html_input_writes_the_report_for_the_artifact(zero: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="--html needs the 'report' extra")
    action = _action()
    outputs = tmp_path / "github_output"
    env = {
        **os.environ,
        "GITHUB_OUTPUT": str(outputs),
        "INITAUDIT": str(Path(sys.executable).parent / "initaudit"),
        "INPUT_PATHS": str(zero),
        "INPUT_ARGS": "--isolated",
        "INPUT_SARIF": "false",
        "INPUT_SARIF_FILE": "out.sarif",
        "INPUT_HTML": "reports/initaudit.html",
    }
    assert _bash(_step(action, "run")["run"], tmp_path, env).returncode == 0
    assert (tmp_path / "reports" / "initaudit.html").read_text().startswith("<!DOCTYPE html>")
    assert "html-file=reports/initaudit.html" in outputs.read_text().splitlines()
    [upload] = [s for s in action["runs"]["steps"] if "upload-artifact" in s.get("uses", "")]
    assert upload["with"]["path"] == "${{ inputs.html }}"


def test_action_leaves_the_jobs_python_alone_and_caches_pip(tmp_path: Path) -> None:
    """setup-python used to switch the caller's whole job to Python 3.12."""
    action = _action()
    setup = _step(action, "python")
    assert setup["uses"].startswith("actions/setup-python@")
    assert setup["with"]["update-environment"] is False
    assert any("actions/cache@" in s.get("uses", "") for s in action["runs"]["steps"])
    assert "GITHUB_PATH" not in (ROOT / "action.yml").read_text()  # nothing added to PATH
    plan = _step(action, "plan")
    outputs = tmp_path / "out"
    env = {
        **os.environ,
        "GITHUB_OUTPUT": str(outputs),
        "RUNNER_TEMP": str(tmp_path),
        "ACTION_PATH": str(ROOT),
        "INPUT_EXTRAS": "runtime",
        "INPUT_HTML": "r.html",
    }
    assert _bash(plan["run"], tmp_path, env).returncode == 0
    lines = outputs.read_text().splitlines()
    assert "extras=runtime,report" in lines and f"version={__version__}" in lines
    bad = _bash(plan["run"], tmp_path, {**env, "INPUT_EXTRAS": "report; rm -rf /"})
    assert bad.returncode == 2 and "extras must be names" in bad.stdout


@pytest.mark.slow
def test_action_install_step_builds_its_own_venv(tmp_path: Path) -> None:
    """The install step pip-installs the action's checkout into a venv under RUNNER_TEMP, and
    initaudit runs from there."""
    step = _step(_action(), "install")
    outputs = tmp_path / "out"
    env = {
        **os.environ,
        "GITHUB_OUTPUT": str(outputs),
        "RUNNER_OS": "Linux",
        "ACTION_PATH": str(ROOT),
        "PYTHON": sys.executable,
        "VENV": str(tmp_path / "venv"),
        "EXTRAS": "",
    }
    r = _bash(step["run"], tmp_path, env)
    assert r.returncode == 0, r.stdout + r.stderr
    script = tmp_path / "venv" / "bin" / "initaudit"
    assert f"initaudit={script}" in outputs.read_text().splitlines()
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert version.stdout == f"initaudit, version {__version__}\n"


@pytest.mark.parametrize(
    "name",
    [
        "hf_gpt2_tiny__dynamo.onnx",
        "lstm_bidirectional__legacy.onnx",
        "embedding_tied_lm__dynamo.onnx",
        "mlp_duplicate_units__dynamo.onnx",
        "cnn_qdq_int8__legacy.onnx",
    ],
)
def test_jobs_do_not_change_a_byte_of_the_report(name: str) -> None:
    model = ROOT / "fixtures" / "torch" / name
    outputs = {run("--format", "json", "--fail-on", "never", "--jobs", j, model) for j in "12"}
    assert len(outputs) == 1
    code, out, err = outputs.pop()
    assert code == 0 and err == "" and json.loads(out)["files"][0]["tensors"]


def test_error_line_stays_one_line_for_a_path_with_a_newline(tmp_path: Path) -> None:
    weird = tmp_path / "two\nlines.onnx"
    weird.write_text("not a model")
    code, _, err = run(weird)
    assert code == 2 and err.count("\n") == 1 and "two\\nlines.onnx" in err
