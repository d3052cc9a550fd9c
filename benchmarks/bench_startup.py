"""Whole-process time of initaudit on small models, side by side with ``import numpy``.

Run from the repository root (about a minute with the defaults on 2 cores)::

    python benchmarks/bench_startup.py [--repeat 15] [--out table.md] [--importtime]

A pre-commit hook starts a new process on every commit, so for small models the interpreter
start and the imports are the whole cost. Each round runs every command once, in an order that
rotates from round to round, so that a busy neighbour slows all of them alike; the table gives
the median over the rounds of the wall time and of the CPU time (user + sys, from wait4),
which a busy machine disturbs less, and both as a multiple of ``python -c "import numpy"``
measured in the same rounds. The target (issue 17) is a tiny model at most 2x import numpy.

Commands: ``python -c pass`` and ``python -c "import numpy"`` (the references); ``initaudit
--version``; ``initaudit -q TINY`` on one committed model; and pre-commit's real case, one
invocation on 1, 10 and 100 copies of it in a temporary folder. initaudit runs as the
installed console script when there is one (as pre-commit runs it), from the repository root,
reading its configuration as usual. Its modules are byte-compiled first, as ``pip install``
does: under PYTHONDONTWRITEBYTECODE=1 an editable checkout would otherwise compile every
module on every run. ``--importtime`` adds the slowest imports of one ``initaudit -q TINY``
(``python -X importtime``, cumulative microseconds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "fixtures" / "torch" / "mlp_relu__dynamo.onnx"
BATCHES = (1, 10, 100)


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One process: wall seconds from spawn to reaped, and its user + sys CPU seconds."""

    wall: float
    cpu: float


def _initaudit() -> list[str]:
    script = Path(sys.executable).parent / "initaudit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "initaudit"]


def commands(folder: Path) -> dict[str, list[str]]:
    """Label -> argv, references first."""
    py, ia = sys.executable, _initaudit()
    cmds = {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import numpy'": [py, "-c", "import numpy"],
        "initaudit --version": [*ia, "--version"],
        f"initaudit -q {TINY.name}": [*ia, "-q", str(TINY.relative_to(ROOT))],
    }
    for n in BATCHES:
        paths = sorted(str(p) for p in folder.glob(f"b{n}_*.onnx"))
        cmds[f"initaudit -q ({n} model{'s' if n > 1 else ''})"] = [*ia, "-q", *paths]
    return cmds


def run(cmd: list[str]) -> Sample:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1: the model has findings
        sys.exit(f"{' '.join(cmd[:4])} exited {code}: {err.decode(errors='replace')[-500:]}")
    return Sample(wall=wall, cpu=usage.ru_utime + usage.ru_stime)


def bench(cmds: dict[str, list[str]], repeat: int) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {label: [] for label in cmds}
    labels = list(cmds)
    for _ in range(2):  # warm the page cache and the byte-code of every module
        for label in labels:
            run(cmds[label])
    for i in range(repeat):
        k = i % len(labels)
        for label in labels[k:] + labels[:k]:
            out[label].append(run(cmds[label]))
    return out


def table(samples: dict[str, list[Sample]]) -> str:
    ref = samples["python -c 'import numpy'"]
    ref_wall = statistics.median(s.wall for s in ref)
    ref_cpu = statistics.median(s.cpu for s in ref)
    head = "| command | wall (median) | CPU (median) | wall / import numpy | CPU / import numpy |"
    lines = [head, "|---|---|---|---|---|"]
    for label, runs in samples.items():
        wall = statistics.median(s.wall for s in runs)
        cpu = statistics.median(s.cpu for s in runs)
        lines.append(
            f"| `{label}` | {wall:.3f} s | {cpu:.3f} s "
            f"| {wall / ref_wall:.2f}x | {cpu / ref_cpu:.2f}x |"
        )
    first, last = (f"({n} model{'s' if n > 1 else ''})" for n in (BATCHES[0], BATCHES[-1]))
    cpu = {k: statistics.median(s.cpu for s in v) for k, v in samples.items()}
    one = next(v for k, v in cpu.items() if k.endswith(first))
    many = next(v for k, v in cpu.items() if k.endswith(last))
    lines.append(
        f"\nEach model past the first: {(many - one) / (BATCHES[-1] - 1) * 1e3:.1f} ms CPU."
    )
    return "\n".join(lines) + "\n"


def importtime() -> str:
    """The slowest imports (cumulative) of one ``initaudit -q TINY``."""
    cmd = [sys.executable, "-X", "importtime", "-m", "initaudit", "-q", str(TINY)]
    err = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False).stderr
    rows = []
    for line in err.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or "cumulative" in line:
            continue
        rows.append((int(parts[1]), int(parts[0].split(":")[1]), parts[2].strip()))
    rows.sort(reverse=True)
    out = ["| cumulative | self | module |", "|---|---|---|"]
    out += [f"| {c / 1e3:.1f} ms | {s / 1e3:.1f} ms | `{name}` |" for c, s, name in rows[:25]]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=15, help="rounds (medians are taken over them)")
    p.add_argument("--out", type=Path, help="also write the table here")
    p.add_argument("--importtime", action="store_true", help="also list the slowest imports")
    args = p.parse_args(argv)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "initaudit")], check=True)
    folder = Path(tempfile.mkdtemp(prefix="initaudit-startup-"))
    try:
        for n in BATCHES:
            for i in range(n):
                shutil.copyfile(TINY, folder / f"b{n}_{i:03d}.onnx")
        text = table(bench(commands(folder), args.repeat))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    text += (
        f"\nMedians of {args.repeat} rounds, each command once a round in rotating order; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
        f"python {sys.version.split()[0]}.\n"
    )
    if args.importtime:
        text += "\n" + importtime()
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
