"""``--format sarif``: SARIF 2.1.0 for GitHub code scanning (README "SARIF").

An .onnx file has no lines, so each result points at the model file with ``startLine: 1``
and names the tensor as a logical location. GitHub computes fingerprints from the source
text when a result has none, which means nothing for a binary file, so each result carries
``partialFingerprints.primaryLocationLineHash`` = sha256 of ``path|tensor|rule``: an alert
then survives a re-export that keeps the names, and stays closed once fixed.

A model that could not be read is not a result (it is no finding about weights) but a
``toolExecutionNotifications`` entry, and the invocation's ``executionSuccessful`` is false.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from initaudit.findings import Finding, Severity
from initaudit.report.model import Report
from initaudit.rules import rule_by_code

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/initaudit/"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def repo_path(path: str) -> str:
    """The model path as given, normalized, with forward slashes; an absolute path below the
    current directory becomes relative, since code scanning wants repository paths."""
    p = os.path.normpath(path)
    if os.path.isabs(p):
        try:
            p = os.path.relpath(p)
        except ValueError:  # another drive on Windows
            return PurePath(p).as_posix()
        if p == os.pardir or p.startswith(os.pardir + os.sep):
            return Path(os.path.abspath(path)).as_posix()
    return PurePath(p).as_posix()


def _uri(path: str) -> str:
    shown = repo_path(path)
    if PurePath(shown).is_absolute():
        return Path(shown).as_uri()
    return quote(shown, safe="/-._~")


def fingerprint(path: str, f: Finding) -> str:
    key = f"{repo_path(path)}|{f.tensor or ''}|{f.rule}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _descriptor(code: str, fallback: Severity) -> dict[str, Any]:
    rule = rule_by_code(code)
    if rule is None:  # every finding comes from a rule; a baseline may still name an old code
        summary = code
        return {
            "id": code,
            "shortDescription": {"text": summary},
            "fullDescription": {"text": summary},
            "help": {"text": summary, "markdown": summary},
            "defaultConfiguration": {"level": LEVELS[fallback]},
        }
    explanation = rule.explanation()
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": explanation},
        "help": {"text": explanation, "markdown": explanation},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
    }


def _message(f: Finding) -> str:
    text = f"{f.tensor}: {f.message}" if f.tensor is not None else f.message
    return text + (f"\nfix: {f.fix}" if f.fix else "")


def _result(path: str, f: Finding, index: int) -> dict[str, Any]:
    location: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": {"uri": _uri(path)},
            "region": {"startLine": 1},
        }
    }
    if f.tensor is not None:
        location["logicalLocations"] = [{"name": f.tensor, "kind": "variable"}]
    return {
        "ruleId": f.rule,
        "ruleIndex": index,
        "level": LEVELS[f.severity],
        "message": {"text": _message(f)},
        "locations": [location],
        "partialFingerprints": {"primaryLocationLineHash": fingerprint(path, f)},
    }


def render(report: Report) -> str:
    found = sorted(
        ((fr.path, f) for fr in report.files for f in fr.findings),
        key=lambda pf: (repo_path(pf[0]), pf[1].sort_key()),
    )
    severities = {f.rule: f.severity for _, f in found}
    codes = sorted(severities)
    index = {code: i for i, code in enumerate(codes)}
    notifications = [
        {
            "level": "error",
            "message": {"text": f"{fr.path}: {fr.error.code}: {fr.error.message}"},
            "descriptor": {"id": fr.error.code},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(fr.path)}}}],
        }
        for fr in sorted(report.files, key=lambda fr: repo_path(fr.path))
        if fr.error is not None
    ]
    invocation: dict[str, Any] = {"executionSuccessful": not notifications}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    run = {
        "tool": {
            "driver": {
                "name": "initaudit",
                "version": report.version,
                "semanticVersion": report.version,
                "informationUri": INFORMATION_URI,
                "rules": [_descriptor(code, severities[code]) for code in codes],
            }
        },
        "invocations": [invocation],
        "results": [_result(path, f, index[f.rule]) for path, f in found],
    }
    doc = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
