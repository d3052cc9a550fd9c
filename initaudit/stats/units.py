"""Identical output units (IA104): units that start equal get equal gradients and stay equal.

Units are compared within the groups that really see the same input (conv groups, recurrent
directions, expert/head batches). Candidates are found by hashing each unit's stored bits
(a seeded random linear hash, exact integer arithmetic) on a sample of 64 features, or on all
of them when the sample leaves too many, then confirmed by exact comparison.
All-zero units are left to the zero/identity schemes (eye_ and dirac_ leave zero rows by
design).

Equal rows can also happen by chance when rows are short and values coarse (a bf16 or int8
grid): we only report when the expected number of chance collisions is negligible.

The hash reads the stored elements as unsigned integers, a bounded slab at a time, with no
conversion to float: equal values have equal bits except for the sign of zero, so the sign bit
is left out of the hash (masked, or multiplied away by even multipliers for 32-bit words).
Integer arithmetic wraps exactly, in any order: equal units always hash equal, and unequal
ones collide with probability ~2^-31, after which the exact comparison tells them apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from initaudit.graph.model import UnitLayout
from initaudit.stats import distinct
from initaudit.stats.values import CHUNK, Values, as_values

_SEED = 0x1A104
# Features hashed first (all of them for shorter units), and the most units those may leave
# to compare exactly before all features are hashed instead.
SAMPLED_FEATURES = 64
MAX_CANDIDATES = 256


@dataclass(frozen=True, kw_only=True)
class EqualUnits:
    n_units: int  # units compared (over all groups)
    groups: tuple[tuple[int, ...], ...]  # each: indices (along the unit axis) of equal units

    @property
    def n_duplicated(self) -> int:
        return sum(len(g) for g in self.groups)


def _blocks(arr: np.ndarray, lay: UnitLayout) -> Iterator[tuple[np.ndarray, int]]:
    """2-D (units x features) views of comparable units, with each block's index offset."""
    if lay.gates > 1 and arr.ndim == 3:
        gates, h = lay.gates, arr.shape[1] // lay.gates
        for d in range(arr.shape[0]):
            yield arr[d].reshape(gates, h, -1).transpose(1, 0, 2).reshape(h, -1), 0
        return
    if lay.batch_dims:
        lead = arr.shape[: lay.batch_dims]
        inner = UnitLayout(axis=lay.axis - lay.batch_dims)
        for idx in np.ndindex(*lead):
            for blk, _ in _blocks(arr[idx], inner):
                yield blk, 0
        return
    if lay.groups > 1:
        per = arr.shape[lay.group_axis] // lay.groups
        for g in range(lay.groups):
            part = np.take(arr, range(g * per, (g + 1) * per), axis=lay.group_axis)
            offset = g * per if lay.group_axis == lay.axis else 0
            yield np.moveaxis(part, lay.axis, 0).reshape(part.shape[lay.axis], -1), offset
        return
    yield np.moveaxis(arr, lay.axis, 0).reshape(arr.shape[lay.axis], -1), 0


def find_duplicate_units(
    arr: Values | np.ndarray, lay: UnitLayout, finite: bool = False
) -> EqualUnits | None:
    """Groups of equal non-zero units; ``finite`` says the values are known to be finite."""
    values = as_values(arr)
    if values.ndim == 0 or not -values.ndim <= lay.axis < values.ndim:
        return None
    groups: list[tuple[int, ...]] = []
    n_units = 0
    for block, offset in _blocks(values.stored, lay):
        units, feat = block.shape
        n_units += units
        if units < 2 or feat == 0:
            continue
        blk = Values(block, values.widen)
        if not _chance_negligible(blk):
            continue
        if not finite and not _all_finite(blk):
            continue
        for run in _candidates(block):
            groups.extend(_exact_groups(blk, run, offset))
    if not groups:
        return EqualUnits(n_units=n_units, groups=())
    return EqualUnits(n_units=n_units, groups=tuple(sorted(groups)))


def _all_finite(blk: Values) -> bool:
    units, feat = blk.shape
    step = max(1, CHUNK // feat)
    return all(np.isfinite(blk[lo : lo + step]).all() for lo in range(0, units, step))


def _words(x: np.ndarray) -> np.ndarray:
    """One unsigned 32-bit word per element; all but 4-byte elements lose their sign bit here.

    1- and 2-byte elements are masked to their low 7/15 bits; 8-byte ones are masked and
    folded to 32 bits; 4-byte elements are viewed as they are (their hash multipliers are
    even, which drops bit 31).
    """
    size = x.dtype.itemsize
    if size == 4:
        return x.view(np.uint32)
    if size == 8:
        v = np.bitwise_and(x.view(np.uint64), np.uint64(0x7FFF_FFFF_FFFF_FFFF))
        return np.asarray(np.bitwise_xor(v, v >> np.uint64(32)).astype(np.uint32))
    return np.asarray(
        np.bitwise_and(x.view(f"u{size}"), (1 << (8 * size - 1)) - 1, dtype=np.uint32)
    )


def _hash_units(block: np.ndarray) -> np.ndarray:
    """A 32-bit linear hash of each unit (row) of the stored ``block``, sign bits ignored.

    Slabs follow the stored order: rows of units when units are the slow axis, else slabs of
    features (a transposed view's stored rows), so each slab is a contiguous read. einsum, not
    BLAS: no BLAS for integers, and no threaded BLAS oversubscribing the worker threads.
    """
    units, feat = block.shape
    mult = _multipliers(feat, block.dtype.itemsize == 4)
    h = np.zeros(units, np.uint32)
    by_units = block.strides[0] >= block.strides[1]
    step = max(1, CHUNK // (feat if by_units else units))
    for lo in range(0, units if by_units else feat, step):
        if by_units:
            h[lo : lo + step] = np.einsum("ij,j->i", _words(block[lo : lo + step]), mult)
        else:
            rows = _words(block[:, lo : lo + step].T)
            h += np.einsum("ji,j->i", rows, mult[lo : lo + step])
    return h


def _candidates(block: np.ndarray) -> list[np.ndarray]:
    """Runs of units that may be equal: equal on a sample of features, else on all of them.

    Equal units are equal on any features, so hashing SAMPLED_FEATURES of them finds every
    equal pair while reading a fraction of the tensor. Distinct random units almost never
    agree on 64 values; when many do (sparse or structured weights), the few candidates
    would not stay few, so the full hash decides which to compare.
    """
    feat = block.shape[1]
    if feat <= 2 * SAMPLED_FEATURES:
        return _equal_runs(_hash_units(block))
    runs = _equal_runs(_hash_units(block[:, _feature_sample(feat)]))
    if sum(len(r) for r in runs) <= MAX_CANDIDATES:
        return runs
    return _equal_runs(_hash_units(block))


@lru_cache(maxsize=64)
def _feature_sample(feat: int) -> np.ndarray:
    """Sorted positions of SAMPLED_FEATURES of ``feat`` features: a function of ``feat`` only
    (a new generator per tensor costs ~0.3 ms holding the GIL)."""
    rng = np.random.default_rng((_SEED, feat))
    cols = np.sort(rng.choice(feat, size=SAMPLED_FEATURES, replace=False))
    cols.flags.writeable = False
    return cols


@lru_cache(maxsize=64)
def _multipliers(feat: int, even: bool) -> np.ndarray:
    """The hash's random multipliers for units of ``feat`` features (see _hash_units)."""
    mult = np.random.default_rng((_SEED, feat, 1)).integers(0, 1 << 32, size=feat, dtype=np.uint32)
    if even:
        mult &= np.uint32(0xFFFF_FFFE)  # the sign bit's product wraps to 0
    mult.flags.writeable = False
    return mult


def _equal_runs(h: np.ndarray) -> list[np.ndarray]:
    """Indices of units sharing a hash, for each hash held by two or more units."""
    order = np.argsort(h, kind="stable")
    ranked = h[order]
    starts = np.flatnonzero(np.concatenate([[True], ranked[1:] != ranked[:-1], [True]]))
    shared = np.flatnonzero(np.diff(starts) > 1)
    return [order[starts[i] : starts[i + 1]] for i in shared]


def _exact_groups(blk: Values, idx: np.ndarray, offset: int) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = []
    rows = {int(i): blk[int(i)] for i in sorted(idx)}
    remaining = [i for i, row in rows.items() if np.any(row != 0)]
    while len(remaining) > 1:
        head = remaining[0]
        same = [r for r in remaining if np.array_equal(rows[r], rows[head])]
        if len(same) > 1:
            out.append(tuple(offset + s for s in same))
        remaining = [r for r in remaining if r not in same]
    return out


def _chance_negligible(blk: Values) -> bool:
    """Expected chance-equal pairs = pairs / distinct_values^features must be tiny.

    When two distinct values would already do (long units), seeing two in the first two
    units is enough; otherwise distinct values are counted on the block's first 65536.
    """
    units, feat = blk.shape
    if 2 * np.log(units) - feat * np.log(2) < np.log(1e-4):
        first = blk[:2]
        if first.min() != first.max():
            return True  # the expectation only falls as the count of distinct values grows
    sample = blk[: -(-65536 // feat)].reshape(-1)[:65536]
    values = max(distinct.count(sample), 1)
    log_expected = 2 * np.log(units) - feat * np.log(values)
    return bool(log_expected < np.log(1e-4))
