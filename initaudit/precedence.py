"""One root cause, one finding: which findings are consequences of another one, decided once.

Rules judge independently, so one defect can fire several of them: a ``torch.empty`` tensor
is garbage (IA105), and its garbage also explodes the predicted signal forward and backward
(IA203 twice); a ``torch.rand`` query is one-sided (IA202), therefore far from its scheme's
scale (IA201) and unlike its siblings (IA204). The audit applies :func:`root_causes` after
the rules ran and after selection and overrides, so what it drops is always explained by a
finding that is *reported*: ignore the cause and its consequences come back.

The order (README "One root cause, one finding"):

1. On one tensor, an integrity finding (IA1xx: zero, constant, non-finite, duplicate units,
   garbage) is the root cause of every statistical finding (IA2xx, IA3xx, IA4xx) on it;
   garbage (IA105) also explains the NaN/Inf (IA103) and duplicate units (IA104) among it.
2. On one tensor, an offset (IA202, a one-sided draw) explains its scale (IA201), its
   distance from its siblings (IA204) and an unfit distribution (IA302); a wrong scale
   (IA201) explains its distance from its siblings (IA204).
3. A model-level depth finding (IA203) is a consequence when its largest contribution is a
   tensor with a reported IA1xx, IA201 or IA202 finding: fixing that tensor fixes the depth.

Consequences are dropped, not annotated: the root cause's own fix removes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from initaudit.findings import Finding

# cause -> the codes (or prefixes) it explains on the same tensor.
_STATISTICAL = ("IA2", "IA3", "IA4")
SAME_TENSOR: dict[str, tuple[str, ...]] = {
    "IA101": _STATISTICAL,
    "IA102": _STATISTICAL,
    "IA103": _STATISTICAL,
    "IA104": _STATISTICAL,
    "IA105": ("IA103", "IA104", *_STATISTICAL),
    "IA202": ("IA201", "IA204", "IA302"),
    "IA201": ("IA204",),
}
# Model-level findings that are consequences of a cause on the tensor they blame first.
MODEL_LEVEL: dict[str, tuple[str, ...]] = {
    "IA203": ("IA1", "IA201", "IA202"),
}


def _explains(cause: str, codes: Iterable[str]) -> bool:
    return any(cause.startswith(c) for c in codes)


def root_causes(findings: Sequence[Finding]) -> list[Finding]:
    """``findings`` without the ones another reported finding explains, in the same order."""
    by_tensor: dict[str, set[str]] = {}
    for f in findings:
        if f.tensor is not None:
            by_tensor.setdefault(f.tensor, set()).add(f.rule)
    kept = []
    for f in findings:
        if f.tensor is not None:
            others = by_tensor[f.tensor] - {f.rule}
            if any(_explains(f.rule, SAME_TENSOR.get(c, ())) for c in others):
                continue
        elif f.rule in MODEL_LEVEL and f.related:
            blamed = by_tensor.get(f.related[0], set())
            if any(_explains(c, MODEL_LEVEL[f.rule]) for c in blamed):
                continue
        kept.append(f)
    return kept
