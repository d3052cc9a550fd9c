"""--write-baseline / --baseline: accept today's findings, fail only on new ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from initaudit.cli import cli
from tests import _models as M
from tests._click import runner


def _zero_fc2(seed: int = 0, zero_fc1: bool = False) -> onnx.ModelProto:
    fc1 = np.zeros((32, 16), np.float32) if zero_fc1 else M.torch_default((32, 16), 16, seed)
    return M.mlp([fc1, np.zeros((8, 32), np.float32), M.torch_default((4, 8), 8, seed + 2)])


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    M.save(_zero_fc2(), tmp_path / "models" / "a.onnx")
    M.save(M.clean_mlp(), tmp_path / "models" / "b.onnx")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    r = runner().invoke(cli, ["--isolated", *args])
    return r.exit_code, r.stdout, r.stderr


def test_write_is_sorted_deterministic_and_keyed_by_names(project: Path) -> None:
    code, out, err = run("models/b.onnx", "models/a.onnx", "--write-baseline", "bl.json")
    assert code == 0 and out == ""
    assert err == "initaudit: wrote 1 baseline entry to bl.json\n"
    text = (project / "bl.json").read_text()
    assert json.loads(text) == {
        "version": 1,
        "tool": "initaudit",
        "findings": [{"path": "models/a.onnx", "tensor": "fc2.weight", "rule": "IA101"}],
    }
    assert "values" not in text and "message" not in text
    run("models/a.onnx", "models/b.onnx", "--write-baseline", "bl.json")
    assert (project / "bl.json").read_text() == text  # byte for byte, whatever the order given


def test_baselined_findings_pass_and_are_counted(project: Path) -> None:
    run("models/a.onnx", "--write-baseline", "bl.json")
    code, out, _ = run("models/a.onnx", "models/b.onnx", "--baseline", "bl.json")
    assert code == 0
    assert out == "0 findings (0 errors, 0 warnings, 0 info) in 2 files (1 baselined).\n"
    code, out, _ = run("models/a.onnx", "--baseline", "bl.json", "--format", "json")
    assert json.loads(out)["summary"]["baselined"] == 1


def test_new_finding_fails_and_old_stays_hidden_across_reexport(project: Path) -> None:
    run("models/a.onnx", "--write-baseline", "bl.json")
    # A re-export: every value changes (another seed), names stay, and fc1 is now zero too.
    M.save(_zero_fc2(seed=7, zero_fc1=True), project / "models" / "a.onnx")
    code, out, _ = run("./models/a.onnx", "--baseline", "bl.json")
    assert code == 1
    assert "fc1.weight" in out and "fc2.weight" not in out
    assert out.rstrip().endswith("in 1 file (1 baselined).")


def test_stale_entries_are_harmless_and_paths_are_relative_to_the_baseline(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("models/a.onnx", "--write-baseline", "bl.json")
    doc = json.loads((project / "bl.json").read_text())
    doc["findings"].append({"path": "gone.onnx", "tensor": None, "rule": "IA203"})
    (project / "bl.json").write_text(json.dumps(doc))
    monkeypatch.chdir(project / "models")
    code, out, _ = run("a.onnx", "--baseline", "../bl.json")
    assert code == 0 and "(1 baselined)" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read baseline bl.json"),
        ("{", "baseline bl.json is not JSON"),
        ('{"version": 9, "findings": []}', "expected an initaudit baseline version 1"),
        ('{"version": 1, "findings": [{"path": 1}]}', "malformed entry"),
    ],
)
def test_bad_baseline_is_a_usage_error(project: Path, content: str | None, message: str) -> None:
    if content is not None:
        (project / "bl.json").write_text(content)
    code, out, err = run("models/a.onnx", "--baseline", "bl.json")
    assert code == 2 and out == "" and message in err


def test_write_baseline_still_exits_2_on_unreadable_model(project: Path) -> None:
    (project / "models" / "bad.onnx").write_text("nope")
    code, _, err = run("models/a.onnx", "models/bad.onnx", "--write-baseline", "bl.json")
    assert code == 2 and "not-onnx" in err
    assert len(json.loads((project / "bl.json").read_text())["findings"]) == 1
