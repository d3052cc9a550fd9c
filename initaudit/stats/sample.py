"""A deterministic subsample for goodness-of-fit tests, with storage ties broken.

Goodness-of-fit tests cost O(k log k) in the sample size k, so a 100M-element tensor costs what
a 32k-element one does. Indices come from a fixed-seed generator: the same file always gives
the same sample and so the same report.

fp16/bf16/float8 storage and quantized grids put many values on exactly the same number; a KS
test against a continuous distribution then sees steps that are an artefact of storage. We
spread each tied value uniformly over half the local grid spacing (the rounding interval it came
from), which restores a continuous sample without moving any value off its rounding cell.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from initaudit.stats.values import Values, as_values

SAMPLE_SIZE = 32768
_SEED = 0x1A11


def subsample(values: Values | np.ndarray, k: int = SAMPLE_SIZE) -> np.ndarray:
    """Finite values, at most ``k`` of them, as float64 (all of them when there are fewer).

    Only the sampled elements are read and widened: from a memory map that is k page reads,
    whatever the tensor's size.
    """
    v = as_values(values)
    n = v.size
    if n <= k:
        out = np.asarray(v.array().reshape(-1), dtype=np.float64)
    else:
        out = np.asarray(v.take(_positions(n, k)), dtype=np.float64)
    return out[np.isfinite(out)]


@lru_cache(maxsize=16)
def _positions(n: int, k: int) -> np.ndarray:
    """The sorted sample positions: a function of (n, k) only, so shared by equal shapes."""
    idx = np.sort(np.random.default_rng(_SEED).integers(0, n, size=k))
    idx.flags.writeable = False
    return idx


def break_ties(sample: np.ndarray) -> np.ndarray:
    """Sorted sample; tied values (coarse storage grids) get deterministic sub-cell jitter."""
    s = np.sort(sample)
    if s.size < 2:
        return s
    # Distinct values of the sorted sample, counted without np.unique's second sort.
    if 1 + np.count_nonzero(np.diff(s)) > 0.5 * s.size:
        return s
    uniq = np.unique(s)
    if uniq.size < 2:
        return s
    gaps = np.diff(uniq)
    left = np.concatenate([gaps[:1], gaps])
    right = np.concatenate([gaps, gaps[-1:]])
    cell = np.minimum(left, right)
    where = np.searchsorted(uniq, s)
    jitter = _unit_jitter(s.size) * cell[where]
    return np.sort(s + jitter)


@lru_cache(maxsize=16)
def _unit_jitter(n: int) -> np.ndarray:
    """n deterministic uniforms in [-0.5, 0.5), shared by samples of one size."""
    u = np.random.default_rng(_SEED + 1).random(n) - 0.5
    u.flags.writeable = False
    return u
