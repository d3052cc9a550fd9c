"""Guard for behaviour-preserving changes: every report initaudit writes, byte for byte.

A refactor must not change a single report byte. Save the reports once before the change and
check them after every step:

    python benchmarks/report_guard.py save /tmp/guard     # before
    python benchmarks/report_guard.py check /tmp/guard    # after each step: exit 1 on a diff

What is saved, each from one whole ``python -m initaudit`` process over all the models at
once (so a file's report cannot depend on the ones before it without the guard seeing it):

* ``json``: ``--format json`` of every ``.onnx`` under fixtures/ (broken ones included: their
  error entries and the stderr lines are part of the contract) and of the small synthetic
  GPT-style models of benchmarks/bench_large.py (``--small`` sizes, written to DIR/models);
* ``text`` and ``sarif`` of the same files (messages, fixes, ordering);
* ``propagate``: ``--format json --propagate`` of the real PyTorch exports (measured depth);
* ``html``: ``--html`` of two fixtures (figures, tables: needs matplotlib);
* ``accuracy``: the tables of benchmarks/scheme_accuracy.py (``--seeds 2``), which exercise
  the scheme catalog and the fit on clean and defective draws (skipped with ``--quick``).

Stdout, stderr and the exit status of each run are compared. The files are written so a
plain ``diff -r`` of two guard folders shows where a difference is.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_large  # noqa: E402  (a sibling script, not a package)


def _models(workdir: Path) -> list[str]:
    fixtures = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "fixtures").rglob("*.onnx"))
    folder = workdir / "models"
    folder.mkdir(parents=True, exist_ok=True)
    small = bench_large.specs(argparse.Namespace(small=True, large=False, only=None))
    synthetic = []
    for spec in small:
        target = folder / f"{spec.stem}.onnx"
        if not target.exists():
            target = bench_large.write_model(spec, folder)
        synthetic.append(str(target))
    return fixtures + synthetic


def _run(args: list[str]) -> str:
    """One whole process; what it printed and how it exited, as one text."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "NO_COLOR": "1", "COLUMNS": "100"}
    proc = subprocess.run(
        [sys.executable, "-m", "initaudit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def _accuracy() -> str:
    proc = subprocess.run(
        [sys.executable, "benchmarks/scheme_accuracy.py", "--seeds", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    # The benchmark prints its own run time, "(44 s)"; that line is not behaviour.
    lines = [ln for ln in proc.stdout.splitlines() if not re.fullmatch(r"\(\d+ s\)", ln)]
    return f"exit {proc.returncode}\n" + "\n".join(lines) + "\n" + proc.stderr


def reports(workdir: Path, quick: bool) -> dict[str, str]:
    models = _models(workdir)
    torch_exports = [m for m in models if m.startswith("fixtures/torch/")]
    html = workdir / "report.html"
    out = {
        "json": _run(["--format", "json", "--fail-on", "never", "-j", "2", *models]),
        "text": _run(["--fail-on", "never", "-j", "1", *models]),
        "sarif": _run(["--format", "sarif", "--fail-on", "never", *models]),
        "propagate": _run(
            ["--format", "json", "--propagate", "--fail-on", "never", *torch_exports]
        ),
    }
    page = _run(
        [
            "--html",
            str(html),
            "-q",
            "fixtures/torch/mlp_naive_normal__dynamo.onnx",
            "fixtures/torch/hf_gpt2_tiny__dynamo.onnx",
        ]
    )
    out["html"] = page + (html.read_text(encoding="utf-8") if html.exists() else "<no page>")
    if not quick:
        out["accuracy"] = _accuracy()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("save", "check"))
    p.add_argument("folder", type=Path)
    p.add_argument("--quick", action="store_true", help="skip the scheme-accuracy tables")
    args = p.parse_args(argv)
    folder: Path = args.folder
    got = reports(folder, args.quick)
    if args.action == "save":
        for name, content in got.items():
            (folder / f"{name}.txt").write_text(content, encoding="utf-8")
        print(f"saved {len(got)} reports to {folder}")
        return 0
    failed = 0
    for name, content in got.items():
        saved_path = folder / f"{name}.txt"
        saved = saved_path.read_text(encoding="utf-8") if saved_path.exists() else ""
        if saved == content:
            print(f"{name}: identical")
            continue
        failed += 1
        diff = difflib.unified_diff(
            saved.splitlines(), content.splitlines(), "saved", "now", lineterm="", n=1
        )
        print(f"{name}: DIFFERENT")
        print("\n".join(list(diff)[:60]))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
