"""Every rule fires on its bad cases and stays silent on its good ones; rule metadata is sane."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from initaudit.audit import audit_file
from initaudit.rules import ALL_RULES, CODES
from tests import _models as M
from tests.rules.cases import CASES, Case

SECTIONS = ("## What it checks", "## Why it matters", "## Example", "## Use instead")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(tmp_path: Path, case: Case) -> None:
    result = audit_file(M.save(case.build(), tmp_path / "m.onnx"))
    assert result.error is None
    if case.tensor is not None:
        assert case.tensor in {t.name for t in result.tensors}
    fired = {f.rule for f in result.findings if f.tensor == case.tensor}
    assert fired == case.expect
    severities = {f.severity.label for f in result.findings if f.tensor == case.tensor}
    if not case.expect:
        assert not [f for f in result.findings if f.severity.label == "error"]
    elif "-info-" in case.id:
        # Intentional patterns keep the finding, at info, and name the pattern.
        assert severities == {"info"}
        assert all("intentional" in f.message for f in result.findings if f.tensor == case.tensor)
    else:
        # A real defect is reported at the rule's default severity.
        defaults = {r.code: r.severity.label for r in ALL_RULES}
        assert severities == {defaults[c] for c in case.expect}


def test_rules_are_sorted_unique_and_documented() -> None:
    codes = [r.code for r in ALL_RULES]
    assert codes == sorted(set(codes))
    assert frozenset(codes) == CODES
    for rule in ALL_RULES:
        assert re.fullmatch(r"IA\d{3}", rule.code)
        doc = rule.explanation()
        positions = [doc.find(s) for s in SECTIONS]
        assert -1 not in positions and positions == sorted(positions), rule.code
        assert rule.summary and rule.name


def test_every_rule_has_a_bad_and_a_good_case() -> None:
    for rule in ALL_RULES:
        ids = [c.id for c in CASES if c.id.startswith(rule.code)]
        assert any("-bad-" in i for i in ids), rule.code
        assert any("-good-" in i for i in ids), rule.code
