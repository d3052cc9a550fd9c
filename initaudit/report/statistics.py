"""``--statistics``: how many findings each rule made, most first (ruff's ``--statistics``).

Text is one line per rule, ``count<TAB>code<TAB>name``, the counts right-aligned; JSON is a
list of ``{"code", "name", "severity", "count"}`` in the same order. Baselined findings are not
counted (they are not in the report); files that could not be audited are said on stderr.
"""

from __future__ import annotations

import json
from collections import Counter

from initaudit.report.model import Report
from initaudit.rules import rule_by_code


def _rows(report: Report) -> list[tuple[str, str, str, int]]:
    counts = Counter(f.rule for f in report.findings)
    rows = []
    for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        rule = rule_by_code(code)
        name = rule.name if rule is not None else ""
        severity = rule.severity.label if rule is not None else ""
        rows.append((code, name, severity, n))
    return rows


def render(report: Report) -> str:
    rows = _rows(report)
    width = max((len(str(n)) for *_, n in rows), default=1)
    return "".join(f"{n:>{width}}\t{code}\t{name}\n" for code, name, _, n in rows)


def render_json(report: Report) -> str:
    doc = [
        {"code": code, "name": name, "severity": severity, "count": n}
        for code, name, severity, n in _rows(report)
    ]
    return json.dumps(doc, indent=2) + "\n"
