"""Distinct values without ``np.unique``.

numpy 2.4's ``np.unique`` asks ``np.ma.is_masked`` of its input, and that first use imports
``numpy.ma``: about a tenth of ``import numpy`` again, on every run that reaches it. These
give what ``np.unique`` gives for the arrays the stats stage has (its default
``equal_nan=True``: every NaN counts as one value; -0.0 equals 0.0).
"""

from __future__ import annotations

import numpy as np


def unique(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)`` of an integer array: its distinct values, sorted."""
    s = np.sort(a, axis=None)
    if s.size < 2:
        return s
    keep = np.empty(s.size, bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def count(a: np.ndarray) -> int:
    """``len(np.unique(a))``: distinct values of an array of any real dtype, all NaNs one."""
    s = np.sort(a, axis=None)  # NaNs sort last
    nan = int(np.count_nonzero(np.isnan(s))) if s.dtype.kind == "f" else 0
    finite = s[: s.size - nan]
    distinct = 1 + int(np.count_nonzero(finite[1:] != finite[:-1])) if finite.size else 0
    return distinct + (1 if nan else 0)
