"""Default human format: ``path: tensor [op node] CODE severity: message``, grouped by file."""

from __future__ import annotations

import click

from initaudit.report.model import Finding, Report, Severity

_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _line(path: str, f: Finding, colour: bool) -> str:
    where = f.tensor if f.tensor is not None else "(model)"
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


def render(report: Report, colour: bool = False, quiet: bool = False) -> str:
    lines: list[str] = []
    for fr in report.files:
        if fr.error is not None:
            continue  # already reported on stderr, one line per file
        lines.extend(_line(fr.path, f, colour) for f in fr.findings)
    if not quiet:
        s = report.summary
        total = s.errors + s.warnings + s.infos
        audited = s.files - s.file_errors
        summary = (
            f"{_plural(total, 'finding')} ({_plural(s.errors, 'error')}, "
            f"{_plural(s.warnings, 'warning')}, {s.infos} info) in {_plural(audited, 'file')}"
        )
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
