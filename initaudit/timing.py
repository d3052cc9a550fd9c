"""Where a run's time goes: wall and CPU seconds per stage, when ``INITAUDIT_PROFILE=1``.

With the variable set, the command line prints one line per stage to stderr after the
report is written (README "Performance"); stdout and the exit status are unchanged. Unset,
:func:`stage` hands out one shared ``nullcontext`` and nothing is measured or kept.

Stages that run on the main thread alone (load, graph, measure, depth, rules, report) are
timed with the process's CPU clock, so ``measure`` counts every thread of the pool. The
per-tensor parts of ``measure`` (tied copies, moments, duplicates, fit, vectors) run on the
pool's threads: each is timed on its own thread's CPU clock and wall clock and summed over
tensors and threads, so on two threads their wall sum may exceed ``measure``'s wall.
Figures add up over the files of a run.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from types import TracebackType

ENABLED = os.environ.get("INITAUDIT_PROFILE", "") not in ("", "0")

# In the order a run goes through them; the indented ones are parts of ``measure``.
STAGES = ("load", "graph", "measure", "depth", "rules", "report")
PARTS = ("tied", "moments", "duplicates", "fit", "vectors")

_NULL: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
_totals: dict[str, list[float]] = {}  # stage -> [wall, cpu, calls]
_lock = threading.Lock()


class _Timer:
    __slots__ = ("_clock", "_cpu", "_name", "_wall")

    def __init__(self, name: str, clock: Callable[[], float]) -> None:
        self._name, self._clock = name, clock
        self._wall = self._cpu = 0.0

    def __enter__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), self._clock()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        wall, cpu = time.perf_counter() - self._wall, self._clock() - self._cpu
        with _lock:
            row = _totals.setdefault(self._name, [0.0, 0.0, 0.0])
            row[0] += wall
            row[1] += cpu
            row[2] += 1


def stage(name: str) -> contextlib.AbstractContextManager[None]:
    """Time a stage of the main thread (process CPU) while profiling; else do nothing."""
    return _Timer(name, time.process_time) if ENABLED else _NULL


def part(name: str) -> contextlib.AbstractContextManager[None]:
    """Time a per-tensor part on the thread that runs it (thread CPU); else do nothing."""
    return _Timer(name, time.thread_time) if ENABLED else _NULL


def summary() -> list[str]:
    """One line per stage that ran, then the process's own CPU total (imports included)."""
    lines = []
    for name in STAGES:
        lines.extend(_line(name, name))
        if name == "measure":
            lines.extend(line for p in PARTS for line in _line(p, "  " + p))
    lines.append(f"initaudit: profile: {'process':<12} cpu {time.process_time():8.3f} s")
    return lines


def _line(name: str, label: str) -> list[str]:
    row = _totals.get(name)
    if row is None:
        return []
    wall, cpu, calls = row
    return [f"initaudit: profile: {label:<12} wall {wall:8.3f} s  cpu {cpu:8.3f} s  x{calls:.0f}"]
