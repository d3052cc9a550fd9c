"""Default human format: ``path: tensor [op node] CODE severity: message``, grouped by file."""

from __future__ import annotations

import math

import click

from initaudit.findings import Finding, Severity
from initaudit.report.model import DISAGREE, DepthEntry, FileResult, Report

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
        # A multi-line fix (an override snippet) stays under its "fix:" label.
        text += "\n    fix: " + f.fix.replace("\n", "\n         ")
    return text


def _moment(log10: float | None) -> str:
    """A second moment from its log10, as a plain number (0.16, 5.4e-07)."""
    if log10 is None:
        return "n/a"
    if math.isinf(log10):
        return "0" if log10 < 0 else "overflow"
    return f"{10.0**log10:.2g}" if abs(log10) < 300 else f"1e{log10:+.0f}"


def _depth_table(fr: FileResult) -> list[str]:
    """--propagate: each layer's output E[x²], predicted and measured, one quantity, labelled;
    a footnote marks the layers where the two differ by more than DISAGREE."""
    width = max(len("layer"), *(len(d.tensor) for d in fr.depth))
    nodes = max(len("node"), *(len(d.node) for d in fr.depth))
    ops = max(len("op"), *(len(d.op_type) for d in fr.depth))
    rows = [
        f"{fr.path}: depth profile, E[x²] of each layer's output for inputs N(0, 1) "
        "(--propagate runs the model):",
        f"  {'layer':<{width}}  {'node':<{nodes}}  {'op':<{ops}}  {'predicted':>9}  "
        f"{'measured':>9}",
    ]
    rows += [
        f"  {d.tensor:<{width}}  {d.node:<{nodes}}  {d.op_type:<{ops}}  "
        f"{_moment(d.log10_output):>9}  {_moment(d.measured_log10_output):>9}" + _marks(d)
        for d in fr.depth
    ]
    if any(d.disagrees for d in fr.depth):
        rows.append(
            f"  * measured and predicted differ by more than {DISAGREE:g}×: on a † row, by the "
            "BatchNorm below; otherwise the prediction follows one step of an LSTM/GRU/RNN "
            "and bounds attention from above."
        )
    if any(d.batch_norm for d in fr.depth):
        rows.append(
            "  † a BatchNorm acts here (folded into the layer, or on its input): the exported "
            "graph applies its running statistics, the identity at init, while training "
            "normalizes by batch statistics, as the prediction does."
        )
    return rows


def _marks(d: DepthEntry) -> str:
    marks = ("*" if d.disagrees else "") + ("†" if d.batch_norm else "")
    return f" {marks}" if marks else ""


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
