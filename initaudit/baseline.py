"""Baselines: accept today's findings, fail only on new ones (README "Baselines").

An entry is keyed by model path + tensor name + rule code, never by values or messages, so a
re-export that keeps the names matches the same entries even though every number moved. The
path is stored relative to the baseline file's folder, so the baseline holds wherever the
command is run from. Entries that no longer match anything are harmless (and dropped the next
time the baseline is written).

Format (JSON, sorted, no timestamps, so rewriting an unchanged baseline changes nothing)::

    {"version": 1, "tool": "initaudit",
     "findings": [{"path": "models/a.onnx", "tensor": "fc2.weight", "rule": "IA101"}]}

``tensor`` is null for a model-level finding.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

from initaudit.errors import ConfigError
from initaudit.findings import Finding
from initaudit.report.model import Report

VERSION = 1


@dataclass(frozen=True)
class Entry:
    path: str
    tensor: str | None
    rule: str

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.path, 0 if self.tensor is None else 1, self.tensor or "", self.rule)


@dataclass(frozen=True)
class Baseline:
    entries: frozenset[Entry]
    folder: str  # paths in entries are relative to this (absolute) folder


def _key_path(model: str, folder: str) -> str:
    absolute = os.path.abspath(model)
    try:
        return Path(os.path.relpath(absolute, folder)).as_posix()
    except ValueError:  # another drive on Windows: no relative path exists
        return Path(absolute).as_posix()


def _entry(path: str, f: Finding, folder: str) -> Entry:
    return Entry(_key_path(path, folder), f.tensor, f.rule)


def dumps(report: Report, baseline_file: str | os.PathLike[str]) -> tuple[str, int]:
    """The baseline JSON for every finding in ``report``, and how many entries it holds."""
    folder = os.path.dirname(os.path.abspath(baseline_file))
    entries = {_entry(fr.path, f, folder) for fr in report.files for f in fr.findings}
    doc = {
        "version": VERSION,
        "tool": "initaudit",
        "findings": [
            {"path": e.path, "tensor": e.tensor, "rule": e.rule}
            for e in sorted(entries, key=Entry.sort_key)
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n", len(entries)


def write(report: Report, baseline_file: str | os.PathLike[str]) -> int:
    """Write the baseline of ``report``; return the number of entries."""
    text, count = dumps(report, baseline_file)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(baseline_file)), exist_ok=True)
        with open(baseline_file, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    except OSError as exc:
        raise ConfigError(f"cannot write baseline {baseline_file}: {exc.strerror or exc}") from None
    return count


def load(baseline_file: str | os.PathLike[str]) -> Baseline:
    """Read a baseline; a missing or malformed file is a usage error (exit 2), not a pass."""
    try:
        with open(baseline_file, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read baseline {baseline_file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"baseline {baseline_file} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise ConfigError(f"baseline {baseline_file}: expected an initaudit baseline version 1")
    entries: set[Entry] = set()
    for item in doc.get("findings", []):
        ok = isinstance(item, dict) and isinstance(item.get("path"), str)
        ok = ok and isinstance(item.get("rule"), str) and isinstance(item.get("tensor"), str | None)
        if not ok:
            raise ConfigError(f"baseline {baseline_file}: malformed entry {item!r}")
        entries.add(Entry(item["path"], item["tensor"], item["rule"]))
    return Baseline(frozenset(entries), os.path.dirname(os.path.abspath(baseline_file)))


def apply(report: Report, baseline: Baseline, paths: Set[str] | None = None) -> Report:
    """``report`` without the findings the baseline lists, counting them in ``baselined``;
    only in the files whose path is in ``paths`` when given (a project's own baseline)."""
    files = []
    hidden = report.baselined
    for fr in report.files:
        if paths is not None and fr.path not in paths:
            files.append(fr)
            continue
        new = tuple(
            f for f in fr.findings if _entry(fr.path, f, baseline.folder) not in baseline.entries
        )
        hidden += len(fr.findings) - len(new)
        files.append(dataclasses.replace(fr, findings=new))
    return dataclasses.replace(report, files=tuple(files), baselined=hidden)
