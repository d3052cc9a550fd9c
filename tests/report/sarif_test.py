"""--format sarif: valid SARIF 2.1.0 holding what GitHub code scanning needs to track alerts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from initaudit.findings import Finding, Severity
from initaudit.report import sarif
from initaudit.report.model import ErrorEntry, FileResult, Report
from initaudit.rules import rule_by_code
from tests.report._golden import ROOT, check_golden, run_format

# The OASIS schema, shipped unchanged (tests/data/README.md says where it comes from).
SCHEMA = ROOT / "tests" / "data" / "sarif-schema-2.1.0.json"


def _validate(doc: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(doc)


@pytest.fixture
def golden_run(tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    code, out = run_format(tmp_path, "sarif")
    return code, json.loads(out), out


def test_golden(golden_run: tuple[int, dict[str, Any], str]) -> None:
    code, _, out = golden_run
    assert code == 2  # one model is unreadable
    check_golden("report.sarif", out)


def test_valid_against_the_official_schema(golden_run: tuple[int, dict[str, Any], str]) -> None:
    _validate(golden_run[1])


def test_what_code_scanning_reads(golden_run: tuple[int, dict[str, Any], str]) -> None:
    _, doc, _ = golden_run
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-2.1.0.json")
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["informationUri"]) == ("initaudit", sarif.INFORMATION_URI)
    # Only rules that fired, sorted, each fully described; ruleIndex points into that list.
    assert [r["id"] for r in driver["rules"]] == ["IA101"]
    rule = driver["rules"][0]
    assert rule["name"] == "zero-weight"
    assert rule["fullDescription"]["text"] == rule_by_code("IA101").explanation()  # type: ignore[union-attr]
    assert rule["help"]["markdown"] and rule["defaultConfiguration"] == {"level": "error"}
    results = run["results"]
    assert [(r["ruleIndex"], r["level"]) for r in results] == [
        (0, "error"),
        (0, "error"),
        (0, "note"),
    ]
    first = results[0]
    loc = first["locations"][0]
    assert loc["physicalLocation"] == {
        "artifactLocation": {"uri": "models/mlp_zero_weight.onnx"},
        "region": {"startLine": 1},
    }
    assert loc["logicalLocations"] == [{"name": "fc2.weight", "kind": "variable"}]
    expected = hashlib.sha256(b"models/mlp_zero_weight.onnx|fc2.weight|IA101").hexdigest()
    assert first["partialFingerprints"] == {"primaryLocationLineHash": expected}
    assert first["message"]["text"].startswith("fc2.weight: all 16384 values")


def test_unreadable_model_is_a_failed_invocation_not_a_result(
    golden_run: tuple[int, dict[str, Any], str],
) -> None:
    run = golden_run[1]["runs"][0]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    [note] = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and note["descriptor"] == {"id": "not-onnx"}
    uri = note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "models/not_onnx.onnx"
    assert all(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] != uri
        for r in run["results"]
    )


def _one(path: str, finding: Finding) -> dict[str, Any]:
    return json.loads(sarif.render(Report((FileResult(path, findings=(finding,)),), "9.9.9")))


def test_fingerprint_ignores_values_and_messages() -> None:
    a = Finding("IA101", Severity.ERROR, "fc2.weight", "/fc2/Gemm", "all 10 values are 0")
    b = Finding("IA101", Severity.ERROR, "fc2.weight", "node_7", "all 99 values are 0")
    assert sarif.fingerprint("m.onnx", a) == sarif.fingerprint("./m.onnx", b)
    c = Finding("IA102", Severity.ERROR, "fc2.weight", "/fc2/Gemm", "constant")
    assert sarif.fingerprint("m.onnx", a) != sarif.fingerprint("m.onnx", c)


def test_paths_model_level_findings_and_levels(tmp_path: Path) -> None:
    f = Finding("IA203", Severity.WARNING, None, None, "signal grows 1e6x through depth")
    doc = _one("models/my model.onnx", f)
    _validate(doc)
    result = doc["runs"][0]["results"][0]
    assert result["level"] == "warning" and "logicalLocations" not in result["locations"][0]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "models/my%20model.onnx"
    # A rule without a rule class (reserved code) is still described, from the contract table.
    assert doc["runs"][0]["tool"]["driver"]["rules"][0]["id"] == "IA203"
    assert sarif.repo_path(str(Path.cwd() / "a" / "b.onnx")) == "a/b.onnx"


def test_clean_run_has_no_rules_or_results() -> None:
    report = Report((FileResult("ok.onnx"), FileResult("bad.onnx", ErrorEntry("empty", "x"))), "1")
    doc = json.loads(sarif.render(report))
    _validate(doc)
    run = doc["runs"][0]
    assert run["tool"]["driver"]["rules"] == [] and run["results"] == []


def test_the_schema_is_oasis_and_rejects_what_code_scanning_would() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["id"] == (
        "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    )
    with pytest.raises(jsonschema.ValidationError, match="'tool' is a required property"):
        _validate({"version": "2.1.0", "runs": [{"results": []}]})
