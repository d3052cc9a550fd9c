"""Default human format: ``path: tensor [op node] CODE severity: message``, grouped by file."""

from __future__ import annotations

import click

from initaudit.findings import Finding, Severity
from initaudit.report.model import FileResult, Report

_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _line(path: str, f: Finding, colour: bool) -> str:
    where = f.source or (f.tensor if f.tensor is not None else "(model)")
    ctx = " ".join(x for x in (f.op_type, f.node) if x)
    sev = f.severity.label
    code = f.rule
    if colour:
        sev = click.style(sev, fg=_COLOURS[f.severity], bold=True)
        code = click.style(code, bold=True)
    head = f"{path}: {where}" + (f" [{ctx}]" if ctx else "")
    text = f"{head} {code} {sev}: {f.message}"
    if f.fix:
        text += f"\n    fix: {f.fix}"
    return text


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.2f}"


def _depth_table(fr: FileResult) -> list[str]:
    """--propagate: predicted and measured log10 second moment of each layer's output."""
    width = max(len(d.tensor) for d in fr.depth)
    rows = [
        f"{fr.path}: depth profile, log10 E[x²] of each layer's output (inputs N(0, 1)):",
        f"  {'layer':<{width}}  {'op':<10} predicted  measured",
    ]
    rows += [
        f"  {d.tensor:<{width}}  {d.op_type:<10} {_fmt(d.log10_output):>9}  "
        f"{_fmt(d.measured_log10_output):>8}"
        for d in fr.depth
    ]
    return rows


def render(report: Report, colour: bool = False, quiet: bool = False) -> str:
    lines: list[str] = []
    for fr in report.files:
        if fr.error is not None:
            continue  # already reported on stderr, one line per file
        lines.extend(_line(fr.path, f, colour) for f in fr.findings)
        if any(d.measured_log10_output is not None for d in fr.depth):
            lines.extend(_depth_table(fr))
        if fr.exporter and not quiet:
            lines.append(f"{fr.path}: exported in memory with {fr.exporter}")
    if not quiet:
        s = report.summary
        total = s.errors + s.warnings + s.infos
        audited = s.files - s.file_errors
        summary = (
            f"{_plural(total, 'finding')} ({_plural(s.errors, 'error')}, "
            f"{_plural(s.warnings, 'warning')}, {s.infos} info) in {_plural(audited, 'file')}"
        )
        if s.baselined:
            summary += f" ({s.baselined} baselined)"
        if s.file_errors:
            # Lead with the failure: a CI log must never read as a clean "0 findings".
            summary = (
                f"error: {_plural(s.file_errors, 'file')} could not be audited (see the "
                f"messages above); {summary}"
            )
        if lines:
            lines.append("")
        lines.append(summary + ".")
    return "\n".join(lines) + ("\n" if lines else "")
