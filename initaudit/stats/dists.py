"""CDFs and log-densities of the three init families, from scipy.special and numpy.

scipy.stats costs about a second to import (more than auditing a 100M-parameter model's
values), and freezing one of its distributions builds a new object, docstring and all. These
are the same formulas its ``norm``, ``uniform`` and ``truncnorm`` evaluate, in the same order,
so the normal and uniform CDFs and the log-densities are bit for bit scipy's; the truncated
normal's CDF is Φ-differences (scipy works in log space), equal to ~1e-17, far below anything
a Kolmogorov–Smirnov decision can see. ``tests/stats/dists_test.py`` compares them all.

scipy.stats is still used, lazily, for the Kolmogorov distribution (``kstwo``) of samples of
an unusual size and for p-values.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType

import numpy as np

TN_A = 2.0  # truncated normals are cut at +-2 of their underlying sigma
_LOG_SQRT_2PI = float(np.log(np.sqrt(2 * np.pi)))  # scipy's _norm_pdf_logC, computed alike


@cache
def special() -> ModuleType:
    from scipy import special as sc

    return sc


def norm_cdf(x: np.ndarray, loc: float, scale: float) -> np.ndarray:
    """``scipy.stats.norm.cdf(x, loc, scale)``."""
    return special().ndtr((x - loc) / scale)


def uniform_cdf(x: np.ndarray, loc: float, scale: float) -> np.ndarray:
    """``scipy.stats.uniform.cdf(x, loc, scale)``: (x - loc) / scale clipped to [0, 1]."""
    return np.clip((x - loc) / scale, 0.0, 1.0)


def truncnorm_cdf(x: np.ndarray, loc: float, scale: float) -> np.ndarray:
    """``scipy.stats.truncnorm.cdf(x, -2, 2, loc, scale)``, as (Φ(z) - Φ(-2)) / mass."""
    sc = special()
    z = (x - loc) / scale
    low = sc.ndtr(-TN_A)
    mass = sc.ndtr(TN_A) - low
    return np.clip((sc.ndtr(z) - low) / mass, 0.0, 1.0)


def norm_logpdf(x: np.ndarray, scale: float) -> np.ndarray:
    """``scipy.stats.norm.logpdf(x, scale=scale)``."""
    z = x / scale
    return (-(z**2) / 2.0 - _LOG_SQRT_2PI) - np.log(scale)


def truncnorm_logpdf(x: np.ndarray, a: float, b: float, scale: float) -> np.ndarray:
    """``scipy.stats.truncnorm.logpdf(x, a, b, scale=scale)`` for a < 0 < b."""
    sc = special()
    z = x / scale
    log_mass = sc.log1p(-sc.ndtr(a) - sc.ndtr(-b))
    out = ((-(z**2) / 2.0 - _LOG_SQRT_2PI) - log_mass) - np.log(scale)
    return np.where((z >= a) & (z <= b), out, -np.inf)
