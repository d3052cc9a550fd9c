"""False-alarm rate on clean framework inits and detection rate per defect, by tensor size.

Run from the repository root (takes a few minutes on 2 cores):

    python benchmarks/scheme_accuracy.py [--seeds 10] [--out results.md]

Each case is a one-layer ONNX model (Gemm, transB=1, fan_out = fan_in capped at ~1M values)
followed by the scheme's activation, audited by initaudit's real pipeline. Clean draws use the
frameworks' formulas (tests/stats/fit_test.py); defects multiply a clean draw's scale by a
factor, or shift its mean by a multiple of its std. A false alarm is any warning or error on a
clean draw; a detection is the defect's rule (IA201 for scale, IA202 for offset).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from initaudit.audit import audit_file  # noqa: E402
from tests import _models as M  # noqa: E402
from tests.stats.fit_test import SCHEMES, _shape, draw  # noqa: E402

FANS = (16, 64, 256, 1024, 4096)
FACTORS = (0.1, 0.2, 1 / 3, 0.5, 1 / 1.5, 1.5, 2.0, 3.0, 5.0, 10.0)
SCALE_SCHEMES = (
    "pytorch_default",
    "kaiming_normal_relu",
    "xavier_uniform",
    "flax_lecun_normal",
    "hf_normal_002",
)
OFFSETS = (0.25, 0.5, 1.0)


def _rules(w: np.ndarray, act: str, tmp: Path) -> set[str]:
    m = M.single_op("Gemm", w.astype(np.float32), ["N", w.shape[1]], after=[(act, {})], transB=1)
    result = audit_file(M.save(m, tmp / "m.onnx"))
    return {f.rule for f in result.findings if f.severity.label in ("warning", "error")}


def _rate(hits: list[bool]) -> str:
    return f"{100.0 * sum(hits) / len(hits):.0f}%"


def run(seeds: int) -> str:
    tmp = Path(tempfile.mkdtemp())
    clean: dict[int, list[bool]] = defaultdict(list)
    scale: dict[tuple[float, int], list[bool]] = defaultdict(list)
    offset: dict[tuple[float, int], list[bool]] = defaultdict(list)
    for fan in FANS:
        o, i = _shape(fan)
        for name, (_, _, act, _) in SCHEMES.items():
            for seed in range(seeds):
                clean[fan].append(bool(_rules(draw(name, o, i, 1000 + seed), act, tmp)))
        for name in SCALE_SCHEMES:
            act = SCHEMES[name][2]
            for seed in range(seeds):
                w = draw(name, o, i, 2000 + seed)
                for f in FACTORS:
                    scale[(f, fan)].append("IA201" in _rules(w * f, act, tmp))
                for k in OFFSETS:
                    offset[(k, fan)].append("IA202" in _rules(w + k * w.std(), act, tmp))
    head = "| | " + " | ".join(f"fan_in {f} ({_shape(f)[0] * f} values)" for f in FANS) + " |"
    sep = "|---" * (len(FANS) + 1) + "|"
    lines = [
        "False alarms on clean draws (any warning or error), "
        f"{len(SCHEMES)} schemes x {seeds} seeds per size:",
        "",
        head,
        sep,
        "| clean | " + " | ".join(_rate(clean[f]) for f in FANS) + " |",
        "",
        f"IA201 detection rate, scale x factor, {len(SCALE_SCHEMES)} schemes x {seeds} "
        "seeds per cell:",
        "",
        head,
        sep,
    ]
    for fac in FACTORS:
        label = f"x{fac:.3g}" if fac >= 1 else f"x1/{1 / fac:.3g}"
        lines.append(f"| {label} | " + " | ".join(_rate(scale[(fac, f)]) for f in FANS) + " |")
    lines += ["", "IA202 detection rate, mean shifted by k std:", "", head, sep]
    for k in OFFSETS:
        lines.append(f"| +{k:g} std | " + " | ".join(_rate(offset[(k, f)]) for f in FANS) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    start = time.perf_counter()
    table = run(args.seeds)
    table += f"\n({time.perf_counter() - start:.0f} s)\n"
    if args.out:
        args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
