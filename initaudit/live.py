"""Audit a model exported in process, and name what was found the way its framework does.

``initaudit.torch`` and ``initaudit.keras`` export a live model to an in-memory ModelProto,
map its initializers back to the framework's tensors (:mod:`initaudit.origins`) and hand both
here: the normal pipeline audits the ModelProto, then each finding and tensor report gets its
``source`` (the framework name and layer class), messages name tensors as the user's code does,
and ``assert_clean`` turns a report into the one-line check of a pytest test.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

import onnx

import initaudit
from initaudit.audit import AuditOptions
from initaudit.config import Config
from initaudit.findings import Finding, Severity
from initaudit.origins import Origin, OriginMap
from initaudit.report import text
from initaudit.report.model import FileResult, Report

FailOn = Severity | str


def audit_exported(
    model: onnx.ModelProto,
    found: OriginMap,
    *,
    path: str,
    exporter: str,
    notes: tuple[str, ...] = (),
    config: Config | None = None,
    options: AuditOptions | None = None,
) -> Report:
    """Audit ``model`` and name each finding and tensor after the framework tensor it came
    from. ``path`` stands for the model in reports (``<torch TinyNet>``); ``exporter`` and
    ``notes`` (why a first exporter failed) are kept in the file's result; ``config`` and
    ``options`` are as for :func:`initaudit.audit`.

    Config overrides and ``ignore`` globs match the framework name as well as the ONNX name,
    so ``tensors = ["head.*"]`` works whatever the exporter called the head's weight."""
    report = initaudit.audit(model, config, options=options)
    cfg = config if config is not None else (options or AuditOptions()).config
    names = {o.tensor: o for o in found.origins}
    renames = {o.tensor: o.name for o in found.origins if o.name != o.tensor}
    files = tuple(_named(fr, names, renames, cfg, path, exporter, notes) for fr in report.files)
    return dataclasses.replace(report, files=files)


def _named(
    fr: FileResult,
    names: Mapping[str, Origin],
    renames: Mapping[str, str],
    config: Config,
    path: str,
    exporter: str,
    notes: tuple[str, ...],
) -> FileResult:
    findings = []
    for f in fr.findings:
        o = names.get(f.tensor or "")
        if o is not None and not config.keeps(f.rule, o.name):
            continue
        message = _renamed(f.message, renames)
        findings.append(dataclasses.replace(f, message=message, source=o.label if o else None))
    tensors = tuple(
        dataclasses.replace(t, source=o.label) if (o := names.get(t.name)) else t
        for t in fr.tensors
    )
    return dataclasses.replace(
        fr,
        path=path,
        tensors=tensors,
        findings=tuple(sorted(findings, key=Finding.sort_key)),
        notes=(*fr.notes, *notes),
        exporter=exporter,
    )


def _renamed(message: str, renames: Mapping[str, str]) -> str:
    """Replace whole ONNX tensor names in ``message`` (IA203 names the layers where the
    signal leaves its band) by their framework names; ``val_4`` never matches in ``val_46``."""
    if not renames:
        return message
    ordered = sorted(renames, key=len, reverse=True)
    pattern = re.compile(
        r"(?<![\w.:/])(" + "|".join(re.escape(n) for n in ordered) + r")(?![\w.:/])"
    )
    return pattern.sub(lambda m: renames[m.group(1)], message)


def assert_clean(report: Report, fail_on: FailOn = Severity.ERROR) -> Report:
    """Return ``report`` if no finding reaches ``fail_on``; else raise AssertionError whose
    message is the text report, so pytest shows exactly what the command line would."""
    level = fail_on if isinstance(fail_on, Severity) else Severity.parse(fail_on)
    if any(f.severity >= level for f in report.findings):
        shown = dataclasses.replace(report, fail_on=level)
        raise AssertionError("initaudit found problems:\n" + text.render(shown))
    return report
