"""Identical output units (IA104): units that start equal get equal gradients and stay equal.

Units are compared within the groups that really see the same input (conv groups, recurrent
directions, expert/head batches). Candidates are found by a seeded random projection (one
matrix-vector product), then confirmed by exact comparison. All-zero units are left to the
zero/identity schemes (eye_ and dirac_ leave zero rows by design).

Equal rows can also happen by chance when rows are short and values coarse (a bf16 or int8
grid): we only report when the expected number of chance collisions is negligible.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from initaudit.graph.layout import UnitLayout

_SEED = 0x1A104


@dataclass(frozen=True)
class DuplicateUnits:
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


def find_duplicate_units(arr: np.ndarray, lay: UnitLayout) -> DuplicateUnits | None:
    if arr.ndim == 0 or not -arr.ndim <= lay.axis < arr.ndim:
        return None
    rng = np.random.default_rng(_SEED)
    groups: list[tuple[int, ...]] = []
    n_units = 0
    for block, offset in _blocks(arr, lay):
        units, feat = block.shape
        n_units += units
        if units < 2 or feat == 0:
            continue
        b = np.asarray(block, dtype=np.float64)
        if not np.isfinite(b).all():
            continue
        if not _chance_negligible(b):
            continue
        proj = b @ rng.standard_normal(feat)
        nonzero = np.any(b != 0, axis=1)
        order = np.argsort(proj, kind="stable")
        i = 0
        while i < len(order):
            j = i + 1
            while j < len(order) and proj[order[j]] == proj[order[i]]:
                j += 1
            if j - i > 1:
                groups.extend(_exact_groups(b, order[i:j], nonzero, offset))
            i = j
    if not groups:
        return DuplicateUnits(n_units, ())
    return DuplicateUnits(n_units, tuple(sorted(groups)))


def _exact_groups(
    b: np.ndarray, idx: np.ndarray, nonzero: np.ndarray, offset: int
) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = []
    remaining = [int(i) for i in sorted(idx) if nonzero[i]]
    while len(remaining) > 1:
        head = remaining[0]
        same = [r for r in remaining if np.array_equal(b[r], b[head])]
        if len(same) > 1:
            out.append(tuple(offset + s for s in same))
        remaining = [r for r in remaining if r not in same]
    return out


def _chance_negligible(b: np.ndarray) -> bool:
    """Expected chance-equal pairs = pairs / distinct_values^features must be tiny."""
    units, feat = b.shape
    sample = b.reshape(-1)[:65536]
    distinct = max(len(np.unique(sample)), 1)
    log_expected = 2 * np.log(units) - feat * np.log(distinct)
    return bool(log_expected < np.log(1e-4))
