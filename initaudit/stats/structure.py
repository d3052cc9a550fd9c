"""Exact structure, decided before any statistics: constants, identity/dirac, orthogonality.

These are decisive where moments are not: a tensor either is ``eye_``/``dirac_``/
``orthogonal_`` up to storage rounding or it is not (init-reference §6: W·Wᵀ = g²·I holds to
6e-7 in fp32, far beyond what any moment test could tell).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from initaudit.stats.model import Family, SchemeFit
from initaudit.stats.moments import compute_stats
from initaudit.stats.values import Values


def constant_fit(value: float) -> SchemeFit:
    if value == 0.0:
        name, key = "zeros", "zeros"
    elif value == 1.0:
        name, key = "ones", "ones"
    else:
        name, key = f"constant({value:.6g})", "constant"
    return SchemeFit(scheme=name, key=key, family=Family.CONSTANT, statistic=0.0, n=0, matched=True)


def identity_fit(values: Values, nonzero: int | None) -> SchemeFit | None:
    """eye_ (2-D) or dirac_ (conv): one value g at (i, i[, centre]) and zeros elsewhere.

    ``nonzero`` is the count when already known; otherwise the values are counted a chunk at a
    time, stopping as soon as there are too many (any dense matrix stops in its first chunk).
    """
    if values.ndim < 2 or min(values.shape[:2]) < 2:
        return None
    k = min(values.shape[0], values.shape[1])
    if nonzero is None:
        nonzero = 0
        for _, chunk in values.chunks():
            nonzero += int(np.count_nonzero(chunk))
            if nonzero > k:
                return None
    if nonzero != k:
        return None
    nz = np.concatenate(
        [np.flatnonzero(chunk) + start for start, chunk in values.chunks()] or [np.zeros(0, int)]
    )
    if nz.size != k:
        return None
    picked = values.take(nz)
    g = float(picked[0])
    idx = np.unravel_index(nz, values.shape)
    centre = tuple(d // 2 for d in values.shape[2:])
    ok = (
        np.all(idx[0] == idx[1])
        and all(np.all(ax == c) for ax, c in zip(idx[2:], centre, strict=True))
        and np.all(picked == g)
    )
    if not ok:
        return None
    family = Family.IDENTITY if values.ndim == 2 else Family.DIRAC
    return SchemeFit(
        scheme=f"{family}(gain={g:.4g})",
        key=str(family),
        family=family,
        statistic=0.0,
        n=0,
        matched=True,
    )


# Relative tolerance of W·Wᵀ = g²·I per storage type (rounding of the entries); other storage
# (float8, quantized grids) is too coarse for an exact test.
ORTHO_TOL = {"double": 1e-6, "float": 1e-4, "float16": 2e-3, "bfloat16": 1e-2}


@lru_cache(maxsize=64)
def _row_sample(r: int) -> np.ndarray:
    """32 of ``r`` rows (sorted), a function of ``r`` only: a generator per tensor would cost
    ~0.3 ms holding the GIL."""
    pick = np.sort(np.random.default_rng(0x0A7).choice(r, size=min(r, 32), replace=False))
    pick.flags.writeable = False
    return pick


def _equal_norms(rows: np.ndarray, tol: float) -> bool:
    norms = np.einsum("ij,ij->i", rows, rows)
    mean_norm = float(np.mean(norms))
    return mean_norm > 0 and float(np.max(np.abs(norms - mean_norm))) <= 2 * tol * mean_norm


def orthogonal_fit(values: Values, tol: float | None, std: float | None) -> SchemeFit | None:
    """Rows (or columns, whichever are fewer) orthonormal up to a gain: torch and Keras alike.

    Sampled rows make the test cost O(k²·c) instead of O(r²·c), and only they are read. It is
    only trusted where a random matrix of the same std could not pass it: its Gram deviates by
    about 3/sqrt(c). ``std`` is the matrix's std when known (the ratio's numerator).
    """
    if values.ndim < 2 or tol is None:
        return None
    mat = values.view(lambda a: a.reshape(a.shape[0], -1))
    transposed = mat.shape[0] > mat.shape[1]
    r, c = mat.shape[::-1] if transposed else mat.shape
    if r < 2 or c < 4 or 3.0 / math.sqrt(c) < 2 * tol:
        return None
    pick = _row_sample(r)

    def rows_at(idx: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(mat[:, idx].T if transposed else mat[idx], dtype=np.float64)

    # Orthogonal rows have equal norms: a spread of norms well beyond ``tol`` already puts a
    # diagonal entry of the Gram matrix beyond it, so the full product is skipped (2x margin
    # for rounding). Random init: the spread is about sqrt(2/c), far beyond any tol, and two
    # rows already show it; they are read first (a column of a tall matrix is a strided read
    # across all of it), the other 30 only when the two agree.
    if not _equal_norms(rows_at(pick[:2]), tol):
        return None
    rows = rows_at(pick)
    if not _equal_norms(rows, tol):
        return None
    # einsum, not BLAS: see units._project (threaded BLAS on busy cores is 100x slower here).
    gram = np.einsum("ik,jk->ij", rows, rows)
    g2 = float(np.mean(np.diag(gram)))
    if g2 <= 0:
        return None
    dev = float(np.max(np.abs(gram - g2 * np.eye(len(rows))))) / g2
    if dev > tol:
        return None
    gain = math.sqrt(g2)
    expected = gain / math.sqrt(c)
    observed = std if std is not None else compute_stats(values).std
    return SchemeFit(
        scheme=f"orthogonal(gain={gain:.3g})",
        key="orthogonal",
        family=Family.ORTHOGONAL,
        statistic=dev,
        n=0,
        expected_std=expected,
        ratio=(observed or 0.0) / expected,
        matched=True,
    )
