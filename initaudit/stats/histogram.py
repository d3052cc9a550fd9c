"""A histogram of a tensor's values beside the density it should follow, for ``--html``.

The HTML report draws these; a reporter must not compute statistics, so the bins, the
normalized heights and the expected curve are all made here, from numbers only.

The values binned are the deterministic subsample the scheme fit uses (stats/sample.py): the
same file always gives the same picture, and a 100M-element tensor costs what a 32k one does.
The expected density is the identified scheme's, or, when none matched, the closest fan-based
scheme's (``SchemeFit.closest``): uniform, normal or normal truncated at ±2σ (init-reference
§6), at the expected std and centred on 0 as every init scheme is. The plotted range covers
both the values and the expected support, so a layer 20x too wide shows the expected curve as
a spike inside its histogram, and one 20x too narrow shows the opposite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from initaudit.stats.model import RANDOM_FAMILIES, TN_STD, Family, SchemeFit
from initaudit.stats.moments import TensorStats
from initaudit.stats.sample import subsample
from initaudit.stats.values import Values

BINS = 60
CURVE_POINTS = 241
NORMAL_REACH = 4.0  # a normal's curve is drawn out to this many std
_TN_MASS = math.erf(2.0 / math.sqrt(2.0))  # P(|z| <= 2) of a standard normal


@dataclass(frozen=True, kw_only=True)
class ExpectedDensity:
    """The density a scheme predicts, as a curve: ``y`` is a probability density at ``x``."""

    label: str  # the scheme, as SchemeFit/Scheme name it: "kaiming_uniform(fan_in, relu)"
    family: str  # uniform | normal | trunc_normal
    std: float
    matched: bool  # the values were identified as this scheme (else it is the closest one)
    x: tuple[float, ...]
    y: tuple[float, ...]


@dataclass(frozen=True, kw_only=True)
class Histogram:
    """``counts[i]`` values fell in ``[edges[i], edges[i + 1])`` (the last bin is closed);
    ``density`` is counts / (n · width), on the same scale as the expected curve."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    density: tuple[float, ...]
    n: int  # values binned: the subsample, or every finite value of a small tensor
    expected: ExpectedDensity | None


def histogram(values: Values, moments: TensorStats, fit: SchemeFit) -> Histogram | None:
    """The histogram of a tensor's finite values; None when it has none."""
    if moments.min is None or moments.max is None or moments.n_finite == 0:
        return None
    sample = subsample(values)
    if sample.size == 0:
        return None
    family, std, label = _expected(fit)
    reach = _reach(family, std) if family is not None and std is not None else 0.0
    lo, hi = min(moments.min, -reach), max(moments.max, reach)
    if not hi > lo:  # a constant tensor and no expected scheme: a bin around the value
        half = abs(lo) * 0.5 or 1.0
        lo, hi = lo - half, hi + half
    # The tensor's min and max may lie outside the sample; clip so no sampled value is lost.
    counts, edges = np.histogram(np.clip(sample, lo, hi), bins=BINS, range=(lo, hi))
    density = counts / (sample.size * np.diff(edges))
    expected = None
    if family is not None and std is not None and label is not None:
        x, y = _curve(family, std, lo, hi)
        expected = ExpectedDensity(
            label=label, family=family, std=std, matched=fit.matched, x=x, y=y
        )
    return Histogram(
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts),
        density=tuple(float(d) for d in density),
        n=int(sample.size),
        expected=expected,
    )


def _expected(fit: SchemeFit) -> tuple[str | None, float | None, str | None]:
    """Family, std and label of the scheme to draw: the matched one, else the closest."""
    if fit.matched and fit.closest is not None:
        c = fit.closest
        return c.family, c.std, c.label
    if fit.matched and fit.family in RANDOM_FAMILIES:
        return fit.family, fit.expected_std, fit.scheme
    if fit.closest is not None and fit.closest.std > 0:
        c = fit.closest
        return c.family, c.std, c.label
    return None, None, None


def _reach(family: str, std: float) -> float:
    """How far from 0 the expected density is worth drawing: its support, or 4 std."""
    if family == Family.UNIFORM:
        return std * math.sqrt(3.0)
    if family == Family.TRUNC_NORMAL:
        return 2.0 * std / TN_STD
    return NORMAL_REACH * std


def _curve(family: str, std: float, lo: float, hi: float) -> tuple[tuple[float, ...], ...]:
    """The density on [lo, hi]; bounded families get vertical edges at their support."""
    if family == Family.UNIFORM:
        b = std * math.sqrt(3.0)
        h = 1.0 / (2.0 * b)
        return (lo, -b, -b, b, b, hi), (0.0, 0.0, h, h, 0.0, 0.0)
    if family == Family.TRUNC_NORMAL:
        sigma = std / TN_STD
        a = 2.0 * sigma
        x = np.linspace(-a, a, CURVE_POINTS)
        y = _normal_pdf(x, sigma) / _TN_MASS
        xs = (lo, -a, *(float(v) for v in x), a, hi)
        ys = (0.0, 0.0, *(float(v) for v in y), 0.0, 0.0)
        return xs, ys
    x = np.linspace(lo, hi, CURVE_POINTS)
    return tuple(float(v) for v in x), tuple(float(v) for v in _normal_pdf(x, std))


def _normal_pdf(x: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * (x / sigma) ** 2) / (sigma * math.sqrt(2.0 * math.pi))
