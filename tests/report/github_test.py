"""--format github: one workflow-command annotation per finding, escaped as actions/toolkit does."""

from __future__ import annotations

from pathlib import Path

from initaudit.findings import Finding, Severity
from initaudit.report import github
from initaudit.report.model import ErrorEntry, FileResult, Report
from tests.report._golden import check_golden, run_format


def _render(*files: FileResult) -> str:
    return github.render(Report(files, "9.9.9"))


def test_golden(tmp_path: Path) -> None:
    code, out = run_format(tmp_path, "github")
    assert code == 2
    check_golden("report.github.txt", out)
    lines = out.splitlines()
    assert lines[0].startswith("::error file=models/mlp_zero_weight.onnx,line=1,title=initaudit ")
    assert lines[1].startswith(
        "::error file=models/not_onnx.onnx,line=1,title=initaudit not-onnx::cannot audit"
    )
    # TensorFlow names: ':' escaped in the title, kept as is in the message.
    assert lines[2].startswith(
        "::error file=models/tf_dense.onnx,line=1,"
        "title=initaudit IA101 (dense_1/kernel%3A0)::dense_1/kernel:0: all 256 values"
    )
    assert lines[3].startswith("::notice file=models/tf_dense.onnx,line=1,")


def test_escaping_of_names_and_messages() -> None:
    f = Finding(
        "IA201",
        Severity.WARNING,
        "dense/kernel:0",
        "node",
        "std is 250% of expected, see: a,b\r\nsecond line",
        fix="use x: y, z",
    )
    out = _render(FileResult("models/a,b:c%.onnx", findings=(f,)))
    assert out == (
        "::warning file=models/a%2Cb%3Ac%25.onnx,line=1,"
        "title=initaudit IA201 (dense/kernel%3A0)::"
        "dense/kernel:0: std is 250%25 of expected, see: a,b%0D%0Asecond line%0Afix: use x: y, z\n"
    )
    assert len(out.splitlines()) == 1


def test_severities_and_model_level_findings() -> None:
    findings = (
        Finding("IA101", Severity.ERROR, "w", None, "e"),
        Finding("IA203", Severity.WARNING, None, None, "depth"),
        Finding("IA301", Severity.INFO, "w", None, "i"),
    )
    lines = _render(FileResult("m.onnx", findings=findings)).splitlines()
    assert [ln.split(" ", 1)[0] for ln in lines] == ["::error", "::warning", "::notice"]
    assert lines[1] == "::warning file=m.onnx,line=1,title=initaudit IA203::depth"


def test_unreadable_file_is_an_error_annotation_and_clean_prints_nothing() -> None:
    assert _render(FileResult("ok.onnx")) == ""
    out = _render(FileResult("gone.onnx", ErrorEntry("not-found", "no such file")))
    assert out == (
        "::error file=gone.onnx,line=1,title=initaudit not-found::"
        "cannot audit this model: not-found: no such file\n"
    )
