"""How numbers are written where people read them: one style for every message and report.

A factor (a ratio of two scales) is always ``≈N× larger`` or ``≈N× smaller`` with N ≥ 1 to
two significant digits: ``≈5.7× larger``, ``≈18× smaller``, ``≈2000× larger``,
``≈340,000× smaller``, from a million on ``≈3.4e+20× larger``. Never a fractional power of ten
(``1e+3.3``), a reciprocal (``1/6.26x``) or a leading ``x``. Measured values (a std, a mean)
keep three significant digits (``0.177``). README "Numbers in messages" says the same.

A leaf module: rules, reporters and the runtime all import it, and it imports nothing of
initaudit.
"""

from __future__ import annotations

import math

SAME = 1.05  # factors within 5% of 1 read "about the same"


def approx(x: float) -> str:
    """A positive magnitude to two significant digits: 5.7, 18, 2000, 34,000, 3.4e+20."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf"
    if x < 10:
        return f"{x:.2g}"
    rounded = float(f"{x:.1e}")  # two significant digits
    if rounded >= 1e6:
        return f"{x:.1e}"
    n = int(rounded)
    return f"{n:,}" if n >= 10_000 else str(n)


def factor(x: float) -> str:
    """``x`` (a ratio, > 0) as a factor: ``≈5.7× larger``, ``≈18× smaller``."""
    if not x > 0:
        return "0× (nothing left)" if x == 0 else "undefined"
    if math.isinf(x):
        return "infinitely larger (overflow)"
    if 1 / SAME <= x <= SAME:
        return "about the same"
    if x >= 1:
        return f"≈{approx(x)}× larger"
    return f"≈{approx(1 / x)}× smaller"


def than(x: float) -> str:
    """:func:`factor` ready for a comparison: ``≈5.7× larger than``, ``about the same as``."""
    f = factor(x)
    return f"{f} as" if f == "about the same" else f"{f} than"


def factor_log10(log10: float) -> str:
    """:func:`factor` of ``10**log10``: what the depth profile stores."""
    if math.isinf(log10):
        return "infinitely larger (overflow)" if log10 > 0 else "0× (nothing left)"
    if abs(log10) > 300:  # 10**log10 would overflow a float; the factor is still readable
        direction = "larger" if log10 > 0 else "smaller"
        return f"≈1e+{abs(log10):.0f}× {direction}"
    return factor(10.0**log10)


def value(x: float | None) -> str:
    """A measured value (std, mean, second moment) to three significant digits."""
    if x is None:
        return "n/a"
    return f"{x:.3g}"
