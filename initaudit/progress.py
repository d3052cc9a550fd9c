"""The command line's progress bar: tensors and bytes measured, on stderr, for long audits.

Only on a terminal, never in CI (``CI`` set) or with ``--quiet``, and only once a file has
taken longer than :data:`DELAY`: a quick audit prints nothing extra. The audit calls it from
its worker threads, one call at a time: once before the first tensor, then after each.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

import click

from initaudit.stats.measure import Progress

DELAY = 0.5  # seconds into a file before its bar appears


def wanted(quiet: bool, stream: TextIO | None = None) -> bool:
    """A bar is shown on a terminal, outside CI, unless --quiet."""
    stream = sys.stderr if stream is None else stream
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false")
    return not quiet and not ci and stream.isatty()


class ProgressBar:
    """Callable as ``audit_paths(..., progress=bar)``; one click bar per file."""

    def __init__(self, stream: TextIO | None = None, delay: float | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.delay = DELAY if delay is None else delay
        self._path: str | None = None
        self._started = 0.0
        self._bar: Any = None

    def __call__(self, path: str, p: Progress) -> None:
        now = time.monotonic()
        if path != self._path:
            self.close()
            self._path, self._started = path, now
        if self._bar is None:
            if now - self._started < self.delay or p.tensors_done >= p.tensors_total:
                return
            self._bar = click.progressbar(
                length=max(p.bytes_total, 1),
                label=click.format_filename(path, shorten=True),
                file=self.stream,
                show_eta=True,
                item_show_func=_describe,
            )
            self._bar.__enter__()
        self._bar.update(p.bytes_done - self._bar.pos, current_item=p)
        if p.tensors_done >= p.tensors_total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def _describe(p: Progress | None) -> str:
    if p is None:
        return ""
    return (
        f"{p.tensors_done}/{p.tensors_total} tensors, "
        f"{p.bytes_done / 1e6:,.0f}/{p.bytes_total / 1e6:,.0f} MB"
    )


class StepBar:
    """A bar for a phase counted in steps (``--html``'s figures), shown like :class:`ProgressBar`:
    on a terminal, after :data:`DELAY`. Called with (done, total)."""

    def __init__(self, label: str, stream: TextIO | None = None, delay: float | None = None):
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.delay = DELAY if delay is None else delay
        self._started = time.monotonic()
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if time.monotonic() - self._started < self.delay or done >= total:
                return
            self._bar = click.progressbar(
                length=max(total, 1), label=self.label, file=self.stream, show_pos=True
            )
            self._bar.__enter__()
        self._bar.update(done - self._bar.pos)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
