"""One fixed std used across a whole model is one recipe (HF's ``initializer_range``).

Configs ship 0.02 most often, but also 0.0134, 0.018, d^-0.5 or 0.01; every Linear, Conv and
Embedding the model's ``_init_weights`` reaches is then drawn N(0, σ²) (or truncated at ±2σ)
whatever its fans (transformers ``modeling_utils.py``, ``PreTrainedModel._init_weights``). Its
layers agree with each other, so σ is a scheme of this model: whether its scale hurts is
what the depth model (IA203) judges, not each layer's fans. A σ outside the band configs
use (1e-10, 1.0) is no recipe anyone ships, and IA201 keeps judging those weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from initaudit.graph.model import MATRIX_ROLES, WeightSite
from initaudit.stats.model import TN_STD, Family, Scheme, SchemeFit
from initaudit.stats.moments import TensorStats

# Weights that must share σ (within SHARED_TOL) for it to be the model's recipe: at least
# MIN_SHARED of them, a SHARED_SHARE of the model's gaussian weights, over two or more fans.
MIN_SHARED = 4
SHARED_SHARE = 0.25
SHARED_TOL = 0.04
# The stds configs ship (HF initializer_range 0.0134..0.05, d^-0.5 for d >= 100, timm 0.01).
PLAUSIBLE = (1e-3, 0.1)
_GAUSSIAN = (Family.NORMAL, Family.TRUNC_NORMAL)


def shared_std(
    sites: Sequence[WeightSite], moments: Sequence[TensorStats], fits: Sequence[SchemeFit]
) -> float | None:
    """The std most of the model's normal-looking weights share, across different fans, if
    any (the median of the largest cluster within SHARED_TOL)."""
    drawn = [
        (m.std, s.fan_in)
        for s, m, f in zip(sites, moments, fits, strict=True)
        if s.role in MATRIX_ROLES
        and f.family in _GAUSSIAN
        and m.std
        and m.std > 0
        and m.n_finite >= 256
    ]
    if len(drawn) < MIN_SHARED:
        return None
    drawn.sort()
    best: list[tuple[float, int | None]] = []
    lo = 0
    for hi in range(len(drawn)):
        while drawn[hi][0] > drawn[lo][0] * (1 + 2 * SHARED_TOL):
            lo += 1
        if hi - lo + 1 > len(best):
            best = drawn[lo : hi + 1]
    fans = {fan for _, fan in best}
    if len(best) < max(MIN_SHARED, SHARED_SHARE * len(drawn)) or len(fans) < 2:
        return None
    sigma = best[len(best) // 2][0]
    return sigma if PLAUSIBLE[0] <= sigma <= PLAUSIBLE[1] else None


def recipes(sigma: float) -> tuple[Scheme, ...]:
    """N(0, σ²), and a normal truncated at ±2 of its sigma whose final std is σ (HF configs
    that truncate), as the model's own fixed-std schemes."""
    label = f"{sigma:.3g}: one fixed std across the model (initializer_range)"
    return (
        Scheme(
            key="normal",
            label=f"normal(std={label})",
            family=Family.NORMAL,
            std=sigma,
            fix=f"nn.init.normal_(w, std={sigma:.3g})",
            fixed=True,
        ),
        Scheme(
            key="trunc_normal",
            label=f"trunc_normal(std={sigma / TN_STD:.3g}, at 2 std; final {label})",
            family=Family.TRUNC_NORMAL,
            std=sigma,
            fix=f"nn.init.trunc_normal_(w, std={sigma / TN_STD:.3g}, a=-2*s, b=2*s)",
            fixed=True,
        ),
    )


def near(std: float | None, sigma: float) -> bool:
    return std is not None and std > 0 and abs(math.log(std / sigma)) <= 2 * SHARED_TOL
