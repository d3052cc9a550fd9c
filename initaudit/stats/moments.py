"""Exact statistics of a tensor in one chunked pass: counts, extremes, mean and spread.

Chunks bound the temporary memory (one piece's squares, never a copy of the tensor), and the
mean/M2 of each piece are merged in float64 with Chan's formula, so a tensor whose mean is
large relative to its spread keeps an accurate variance. Counts and extremes are exact; mean
and std agree with a float64 computation to about 6 significant digits.

Speed (README "Performance"): each chunk is worked on in cache-sized pieces, so the stored
bytes are read from memory once, and in the values' own float type (float32 for all but
double tensors): min, max, sum, squares and their sum and minimum; six vectorized passes
over cached data. numpy sums pairwise (about log2(n) roundings per result, ~1e-6 relative in
float32), and pieces are merged in float64, so the std keeps ~5 significant digits while
the piece's M2 = sum_sq - sum * mean does not cancel; a piece whose mean dominates its
spread (|mean| > 3 std) is redone in float64 around its mean. The squares also screen for
zeros and tiny values: a square that underflows to 0 sends the piece to an exact count.
A chunk holding a NaN or an infinity takes the plain path, which also locates it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from initaudit.stats.values import CHUNK, Values, as_values

# Elements of a chunk handled at a time (1 MB of float32 and 1 MB of its squares). Measured
# on the 350M-parameter benchmark: 64K pieces cost as much on one thread and scale worse on
# two (more numpy calls, each holding the GIL for its Python part); 512K pieces spill the cache.
PIECE = 1 << 18
# A piece's M2 = sum_sq - sum * mean is recomputed in float64 around the mean when it is below
# this fraction of sum_sq (|mean| > 3 std): then more than one of float32's digits cancelled.
CANCELLATION = 0.1
# No initializer produces a non-zero magnitude below this; uninitialized memory does.
TINY = 1e-30
# No init scheme produces magnitudes above this (N(0,1) on fan 1 with gain 2 stays below 20).
HUGE = 1e4


@dataclass(frozen=True, kw_only=True)
class TensorStats:
    size: int
    n_zero: int
    n_nan: int
    n_posinf: int
    n_neginf: int
    first_nonfinite: tuple[int, ...] | None
    n_tiny: int  # 0 < |x| < TINY
    n_huge: int  # finite |x| > HUGE
    huge_min: float | None  # the smallest |x| among those (a mask's one constant: = absmax)
    min: float | None  # over finite values
    max: float | None
    mean: float | None
    std: float | None  # population std over finite values

    @property
    def n_nonfinite(self) -> int:
        return self.n_nan + self.n_posinf + self.n_neginf

    @property
    def n_finite(self) -> int:
        return self.size - self.n_nonfinite

    @property
    def absmax(self) -> float | None:
        if self.min is None or self.max is None:
            return None
        return max(abs(self.min), abs(self.max))


def compute_stats(values: Values | np.ndarray) -> TensorStats:
    v = as_values(values)
    acc = _Accumulator()
    for start, chunk in v.chunks(CHUNK):
        acc.add(start, chunk)
    return acc.result(v.size, v.shape)


def _below(limit: float, dtype: np.dtype) -> np.floating:
    """The least ``dtype`` value t with x < limit <=> x < t for every ``dtype`` value x."""
    t = dtype.type(limit)
    up: np.floating = np.nextafter(t, dtype.type(np.inf))
    return up if float(t) < limit else t


class _Accumulator:
    """Counts, extremes and Chan-merged mean/M2 over the chunks of one tensor."""

    def __init__(self) -> None:
        self.n_zero = self.n_nan = self.n_pinf = self.n_ninf = self.n_tiny = self.n_huge = 0
        self.first_bad: int | None = None
        self.huge_min = math.inf
        self.lo, self.hi = math.inf, -math.inf
        self.count, self.mean, self.m2 = 0, 0.0, 0.0
        self._sq = np.empty(0, np.float32)  # one piece's squares, reused

    def _merge(self, size: int, cm: float, cm2: float) -> None:
        total = self.count + size
        delta = cm - self.mean
        self.mean += delta * size / total
        self.m2 += cm2 + delta * delta * self.count * size / total
        self.count = total

    def add(self, start: int, c: np.ndarray) -> None:
        # float32 squares and their sums overflow on garbage (|x| > 1e19): such a piece is
        # redone in float64, so numpy's warning would only be noise.
        with np.errstate(over="ignore", under="ignore"):
            if c.size and not self._add_finite(c):
                self._add_plain(start, c)

    def _add_finite(self, c: np.ndarray) -> bool:
        """One chunk without NaN or infinity, piece by piece; False (nothing counted) if not."""
        huge = c.dtype.type(HUGE)
        lo, hi, small, big, zeros = math.inf, -math.inf, 0, 0, 0
        if self._sq.size < min(PIECE, c.size) or self._sq.dtype != c.dtype:
            self._sq = np.empty(min(PIECE, c.size), c.dtype)
        pieces: list[tuple[int, float, float]] = []
        for pos in range(0, c.size, PIECE):
            p = c[pos : pos + PIECE]
            n = p.size
            plo, phi = float(p.min()), float(p.max())
            if not (math.isfinite(plo) and math.isfinite(phi)):
                return False
            lo, hi = min(lo, plo), max(hi, phi)
            sq = np.square(p, out=self._sq[:n])
            if float(sq.min()) < TINY * TINY:
                # A zero, a tiny value, or one whose square underflowed: count them exactly
                # (comparisons and a count of booleans: count_nonzero on floats is 4x slower
                # and holds the GIL).
                zeros += int(np.count_nonzero(p == 0))
                small += int(np.count_nonzero(np.abs(p) < _below(TINY, c.dtype)))
            if max(-plo, phi) > HUGE:
                over = (p > huge) | (p < -huge)
                big += int(np.count_nonzero(over))
                self.huge_min = min(self.huge_min, float(np.abs(p[over]).min()))
            total, total_sq = float(p.sum()), float(sq.sum())
            mean = total / n
            m2 = total_sq - total * mean
            if not (math.isfinite(total_sq) and m2 >= CANCELLATION * total_sq):
                # The mean dominates the spread (the difference kept few digits), or a square
                # overflowed float32: redo this piece in float64, around its mean.
                d = p.astype(np.float64)
                mean = float(d.mean())
                m2 = float(np.square(np.subtract(d, mean, out=d), out=d).sum())
            pieces.append((n, mean, m2))
        self.n_zero += zeros
        self.n_tiny += small - zeros
        self.n_huge += big
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        for n, mean, m2 in pieces:
            self._merge(n, mean, m2)
        return True

    def _add_plain(self, start: int, chunk: np.ndarray) -> None:
        c = np.asarray(chunk, dtype=np.float64)
        finite = np.isfinite(c)
        n_fin = int(np.count_nonzero(finite))
        if n_fin != c.size:
            nan = np.isnan(c)
            self.n_nan += int(np.count_nonzero(nan))
            self.n_pinf += int(np.count_nonzero(c == np.inf))
            self.n_ninf += int(np.count_nonzero(c == -np.inf))
            if self.first_bad is None:
                self.first_bad = start + int(np.argmin(finite))
            c = c[finite]
        if c.size == 0:
            return
        a = np.abs(c)
        self.n_zero += int(np.count_nonzero(a == 0))
        self.n_tiny += int(np.count_nonzero((a > 0) & (a < TINY)))
        over = a > HUGE
        self.n_huge += int(np.count_nonzero(over))
        if over.any():
            self.huge_min = min(self.huge_min, float(a[over].min()))
        self.lo = min(self.lo, float(c.min()))
        self.hi = max(self.hi, float(c.max()))
        cm = float(c.mean())
        self._merge(c.size, cm, float(np.square(c - cm).sum()))

    def result(self, n: int, shape: tuple[int, ...]) -> TensorStats:
        count = self.count
        first = (
            tuple(int(i) for i in np.unravel_index(self.first_bad, shape))
            if self.first_bad is not None
            else None
        )
        return TensorStats(
            size=n,
            n_zero=self.n_zero,
            n_nan=self.n_nan,
            n_posinf=self.n_pinf,
            n_neginf=self.n_ninf,
            first_nonfinite=first,
            n_tiny=self.n_tiny,
            n_huge=self.n_huge,
            huge_min=self.huge_min if self.n_huge else None,
            min=self.lo if count else None,
            max=self.hi if count else None,
            mean=self.mean if count else None,
            std=math.sqrt(max(self.m2, 0.0) / count) if count else None,
        )
