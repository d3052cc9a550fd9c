"""Fixed sinusoidal position tables: computed, not drawn, so no init scheme applies.

The original Transformer, fairseq, Marian and HF's ``create_sinusoidal_embeddings`` store
PE[pos, j] = sin(pos·ω_j) or cos(pos·ω_j), interleaved or in halves, with various ω. Rather
than test each layout, we test what they share: every column is a sinusoid along the
positions, so x[p-1] + x[p+1] = 2cos(ω)·x[p] holds exactly, with one constant per column.
A random table fails that at once; a position table passes up to storage rounding. A cosine
column of ω = 0 is all ones and a sine column all zeros: both satisfy it too.

The table is also bounded by 1, which the exact pass already knows, so nothing else pays.
"""

from __future__ import annotations

import numpy as np

from initaudit.stats import distinct
from initaudit.stats.values import Values

# Columns tested (evenly spaced), rows skipped at the start (fairseq zeroes its padding row).
COLUMNS = 32
SKIP_ROWS = 4
MIN_ROWS = 8
# A sin/cos table reaches ±1 (its ω = 0 cosine column is all ones, and sin(p·ω) comes close);
# a table that stays far below is no position table, whatever its recurrence residuals.
REACH = 0.5
# Largest recurrence residual per storage type: a few roundings of values bounded by 1.
_TOL = {"double": 1e-9, "float": 1e-5, "float16": 4e-3, "bfloat16": 3e-2}


def is_sinusoidal(values: Values, dtype: str, lo: float, hi: float) -> bool:
    """Whether ``values`` (positions x features, behind any leading axes of length 1: a
    ``[1, 2T-1, d]`` relative table) are a sinusoidal position table."""
    tol = _TOL.get(dtype)
    if values.ndim > 2 and all(d == 1 for d in values.shape[:-2]):
        values = values.view(lambda a: a.reshape(a.shape[-2:]))
    if tol is None or values.ndim != 2 or lo < -1.0 - tol or hi > 1.0 + tol:
        return False
    if max(-lo, hi) < REACH:
        return False  # the residual's tolerance is absolute: a table of tiny values passes it
    rows, cols = values.shape
    skip = SKIP_ROWS if rows >= MIN_ROWS + SKIP_ROWS else 0
    if rows - skip < MIN_ROWS or cols < 2:
        return False
    pick = distinct.unique(np.linspace(0, cols - 1, min(cols, COLUMNS)).astype(np.intp))
    # A random table fails on its first rows: test those (a few pages) before reading the
    # sampled columns down every row, which touches every page of a big embedding table.
    return _recurs(values[skip : skip + MIN_ROWS, pick], tol) and _recurs(values[skip:, pick], tol)


def _recurs(rows: np.ndarray, tol: float) -> bool:
    """Each column satisfies x[p-1] + x[p+1] = k·x[p] with one k, |k| <= 2, within ``tol``."""
    x = np.asarray(rows, dtype=np.float64)
    before, mid, after = x[:-2], x[1:-1], x[2:]
    energy = np.sum(mid * mid, axis=0)
    live = energy > 0
    if not live.any():
        return False  # all-zero columns: a constant table, judged as such elsewhere
    k = np.sum((before + after) * mid, axis=0)[live] / energy[live]
    residual = np.abs(before[:, live] + after[:, live] - k * mid[:, live])
    dead = np.abs(x[:, ~live])
    return bool(
        np.all(np.abs(k) <= 2.0 + tol)
        and float(residual.max()) <= 4 * tol
        and (dead.size == 0 or float(dead.max()) <= tol)
    )
