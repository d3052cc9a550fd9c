from __future__ import annotations

import numpy as np

from initaudit.graph.model import UnitLayout
from initaudit.stats.decode import widener
from initaudit.stats.units import find_duplicate_units
from initaudit.stats.values import Values


def _w(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.1, 0.1, size=shape).astype(np.float32)


def test_rows_copied_are_grouped() -> None:
    w = _w(32, 16)
    w[5] = w[2]
    w[9] = w[2]
    dup = find_duplicate_units(w, UnitLayout(axis=0))
    assert dup is not None and dup.groups == ((2, 5, 9),)


def test_columns_for_matmul_layout() -> None:
    w = _w(16, 32)
    w[:, 7] = w[:, 3]
    assert find_duplicate_units(w, UnitLayout(axis=1)).groups == ((3, 7),)
    assert find_duplicate_units(w, UnitLayout(axis=0)).groups == ()


def test_grouped_conv_compares_within_groups_only() -> None:
    w = _w(8, 2, 3, 3)
    w[4] = w[0]  # same filter in group 0 and group 1 (groups=2): different inputs, fine
    assert find_duplicate_units(w, UnitLayout(axis=0, groups=2)).groups == ()
    w[1] = w[0]  # same group: symmetric
    assert find_duplicate_units(w, UnitLayout(axis=0, groups=2)).groups == ((0, 1),)


def test_zero_units_are_not_duplicates() -> None:
    w = np.eye(16, 8, dtype=np.float32)  # eye_ on a tall matrix leaves zero rows
    assert find_duplicate_units(w, UnitLayout(axis=0)).groups == ()


def test_chance_collisions_on_coarse_grid_are_not_reported() -> None:
    # 1-element rows on an int8-like grid collide by chance; that is not a bug.
    w = np.random.default_rng(0).integers(-3, 4, size=(64, 1)).astype(np.float32)
    assert find_duplicate_units(w, UnitLayout(axis=0)).groups == ()


def test_recurrent_hidden_unit_spans_all_gates() -> None:
    h, i = 6, 10
    w = _w(1, 4 * h, i)
    w[0, 1] = w[0, 0]  # unit 1 equals unit 0 in gate 0 only: not a duplicate unit
    assert find_duplicate_units(w, UnitLayout(axis=1, gates=4, batch_dims=1)).groups == ()
    for g in range(4):
        w[0, g * h + 1] = w[0, g * h]
    assert find_duplicate_units(w, UnitLayout(axis=1, gates=4, batch_dims=1)).groups == ((0, 1),)


def test_equal_units_found_in_stored_fp16_across_slabs() -> None:
    # MatMul layout (units are columns) big enough to be hashed in several slabs.
    w = _w(600, 2000).astype(np.float16)
    w[:, 1999] = w[:, 3]
    dup = find_duplicate_units(Values(w, widener(w.dtype)), UnitLayout(axis=1))
    assert dup is not None and dup.groups == ((3, 1999),)
    rows = np.ascontiguousarray(w.T)  # the same units as rows (Gemm transB layout)
    assert find_duplicate_units(Values(rows, widener(rows.dtype)), UnitLayout(axis=0)).groups == (
        (3, 1999),
    )


def test_signed_zeros_are_equal_values() -> None:
    for dtype in (np.float32, np.float64, np.float16):
        w = _w(16, 8).astype(dtype)
        w[4] = w[1]
        w[1, 2], w[4, 2] = 0.0, -0.0  # equal as numbers, different bits
        assert find_duplicate_units(w, UnitLayout(axis=0)).groups == ((1, 4),), dtype


def test_units_with_nan_skip_the_block_unless_known_finite() -> None:
    w = _w(16, 8)
    w[3] = w[2]
    w[0, 0] = np.nan
    assert find_duplicate_units(w, UnitLayout(axis=0)).groups == ()


def test_units_equal_but_for_one_feature_are_not_duplicates() -> None:
    """Long units are first hashed on 64 sampled features; a pair equal on those but not on
    the rest is a candidate that the exact comparison rejects, wherever the difference is."""
    for where in range(0, 600, 37):
        w = _w(600, 300)
        w[:, 7] = w[:, 3]
        w[where, 7] += 0.5
        assert find_duplicate_units(w, UnitLayout(axis=1)).groups == (), where


def test_sparse_units_report_only_the_real_pair() -> None:
    """One non-zero per unit: on 64 sampled features nearly all units look alike (zero), too
    many to compare one by one (every feature is hashed instead); only the real pair is equal."""
    units, feat = 400, 1000
    w = np.zeros((units, feat), np.float32)
    w[np.arange(units), np.arange(units) * 2] = np.linspace(0.1, 0.5, units, dtype=np.float32)
    w[250] = w[17]
    dup = find_duplicate_units(w, UnitLayout(axis=0))
    assert dup is not None and dup.groups == ((17, 250),)
