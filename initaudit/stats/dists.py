"""CDFs, log-densities and the KS distance of the three init families, from numpy and math.

scipy.stats costs about a second to import and scipy.special a quarter of one, on every run:
more than auditing a 100M-parameter model's values. These are the formulas scipy's ``norm``,
``uniform`` and ``truncnorm`` evaluate, in the same order, so the uniform CDF and the
log-densities are bit for bit scipy's. The normal CDF Φ is read off a table of ``math.erfc``
at a 2^-12 spacing, interpolated linearly: within 2e-9 of ``scipy.special.ndtr`` everywhere
(the error of linear interpolation is at most h²/8 · max|Φ''| = 1.8e-9), far below anything a
Kolmogorov–Smirnov decision can see (its acceptance margin is 0.01).
``tests/stats/dists_test.py`` compares them all with scipy.stats.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

import numpy as np

from initaudit.stats.model import TN_STD, Family

TN_A = 2.0  # truncated normals are cut at +-2 of their underlying sigma
_LOG_SQRT_2PI = float(np.log(np.sqrt(2 * np.pi)))  # scipy's _norm_pdf_logC, computed alike
_STEP = 2.0**-12  # of the Φ table
_EDGE = 9.0  # beyond ±9, Φ is 0 or 1 within 1.2e-19


def phi(z: float) -> float:
    """Φ(z), the standard normal CDF of one number: ``scipy.special.ndtr`` for a scalar."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


# Nodes of the Φ table: -_EDGE, -_EDGE + _STEP, ..., _EDGE (73,729; all exact binary fractions).
_NODES = round(2 * _EDGE / _STEP) + 1


@cache
def _phi_table() -> np.ndarray:
    """Φ at the nodes, NaN until a value falls into a cell next to them: all 73,729 cost
    ~20 ms of ``math.erfc``, while a small model's fits touch a few thousand."""
    return np.full(_NODES, np.nan)


def _filled(i: np.ndarray) -> np.ndarray:
    """The table with nodes ``i`` and ``i + 1`` computed; each node once per process, so a
    value is the same whichever fit, thread or tensor first needed it."""
    table = _phi_table()
    if np.isnan(table[i]).any() or np.isnan(table[i + 1]).any():
        need = np.zeros(_NODES, bool)
        need[i] = True
        need[i + 1] = True
        need &= np.isnan(table)
        nodes = np.flatnonzero(need)
        z = -_EDGE + nodes * _STEP  # exactly np.arange(-_EDGE, _EDGE + _STEP / 2, _STEP)[nodes]
        table[nodes] = np.asarray(np.frompyfunc(phi, 1, 1)(z), dtype=np.float64)
    return table


def ndtr(z: np.ndarray) -> np.ndarray:
    """Φ(z) elementwise, within 2e-9: linear interpolation between the table's nodes.

    The nodes are evenly spaced, so a value's cell is computed, not searched for
    (``np.interp`` does a binary search per value: three times slower).
    """
    t = np.clip(z, -_EDGE, _EDGE)
    t += _EDGE
    t *= 1.0 / _STEP
    i = np.minimum(t.astype(np.intp), _NODES - 2)
    t -= i
    table = _filled(i)
    low = table[i]
    return np.asarray(low + (table[i + 1] - low) * t)


def norm_cdf(x: np.ndarray, loc: float, scale: float) -> np.ndarray:
    """``scipy.stats.norm.cdf(x, loc, scale)``."""
    return ndtr((x - loc) / scale)


def uniform_cdf(x: np.ndarray, loc: float, scale: float) -> np.ndarray:
    """``scipy.stats.uniform.cdf(x, loc, scale)``: (x - loc) / scale clipped to [0, 1]."""
    return np.clip((x - loc) / scale, 0.0, 1.0)


def truncnorm_cdf(x: np.ndarray, loc: float, scale: float) -> np.ndarray:
    """``scipy.stats.truncnorm.cdf(x, -2, 2, loc, scale)``, as (Φ(z) - Φ(-2)) / mass."""
    z = (x - loc) / scale
    low = phi(-TN_A)
    mass = phi(TN_A) - low
    return np.clip((ndtr(z) - low) / mass, 0.0, 1.0)


def norm_logpdf(x: np.ndarray, scale: float) -> np.ndarray:
    """``scipy.stats.norm.logpdf(x, scale=scale)``."""
    z = x / scale
    return np.asarray((-(z**2) / 2.0 - _LOG_SQRT_2PI) - np.log(scale))


def truncnorm_logpdf(x: np.ndarray, a: float, b: float, scale: float) -> np.ndarray:
    """``scipy.stats.truncnorm.logpdf(x, a, b, scale=scale)`` for a < 0 < b."""
    z = x / scale
    log_mass = math.log1p(-phi(a) - phi(-b))
    out = ((-(z**2) / 2.0 - _LOG_SQRT_2PI) - log_mass) - np.log(scale)
    return np.where((z >= a) & (z <= b), out, -np.inf)


def family_cdf(family: Family, std: float, x: np.ndarray, loc: float = 0.0) -> np.ndarray:
    """The CDF at ``x`` of the family with this std (a truncated normal's sigma is std / TN_STD)."""
    if family == Family.UNIFORM:
        b = std * math.sqrt(3.0)
        return uniform_cdf(x, loc - b, 2 * b)
    if family == Family.TRUNC_NORMAL:
        return truncnorm_cdf(x, loc, std / TN_STD)
    return norm_cdf(x, loc, std)


def ks_statistic(sorted_sample: np.ndarray, cdf: np.ndarray) -> float:
    """scipy.stats.kstest's D: the largest gap between the empirical CDF's steps and ``cdf``."""
    above, below = _ecdf_steps(sorted_sample.size)
    return float(max(np.max(above - cdf), np.max(cdf - below)))


@lru_cache(maxsize=64)
def _ecdf_steps(n: int) -> tuple[np.ndarray, np.ndarray]:
    """i/n and (i-1)/n for i = 1..n: the empirical CDF just after and before each value."""
    i = np.arange(1, n + 1)
    above, below = i / n, (i - 1) / n
    above.flags.writeable = below.flags.writeable = False
    return above, below
