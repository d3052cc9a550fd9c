"""``--format github``: GitHub Actions workflow commands, one annotation per finding.

``::error file=PATH,line=1,title=initaudit IA101 (fc2.weight)::fc2.weight: message``

``file=`` is only the model path, because GitHub matches it against repository files (an
appended ``:graph/...`` would match nothing); the tensor goes in the title and the message.
Escaping follows actions/toolkit ``command.ts``: in the message ``%``, CR and LF; in property
values also ``:`` and ``,``, which TensorFlow names such as ``dense/kernel:0`` contain.
"""

from __future__ import annotations

from initaudit.findings import Finding, Severity
from initaudit.report.model import Report
from initaudit.report.sarif import repo_path

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(command: str, path: str, title: str, message: str) -> str:
    props = f"file={escape_property(path)},line=1,title={escape_property(title)}"
    return f"::{command} {props}::{escape_data(message)}"


def _finding(path: str, f: Finding) -> str:
    title = f"initaudit {f.rule}" + (f" ({f.tensor})" if f.tensor is not None else "")
    message = f"{f.tensor}: {f.message}" if f.tensor is not None else f.message
    if f.fix:
        message += f"\nfix: {f.fix}"
    return annotation(COMMANDS[f.severity], repo_path(path), title, message)


def render(report: Report) -> str:
    lines: list[str] = []
    for fr in sorted(report.files, key=lambda fr: repo_path(fr.path)):
        if fr.error is not None:
            text = f"cannot audit this model: {fr.error.code}: {fr.error.message}"
            lines.append(
                annotation("error", repo_path(fr.path), f"initaudit {fr.error.code}", text)
            )
        lines.extend(_finding(fr.path, f) for f in fr.findings)
    return "".join(line + "\n" for line in lines)
