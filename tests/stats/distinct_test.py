"""unique and count give np.unique's answers."""

from __future__ import annotations

import numpy as np
import pytest

from initaudit.stats import distinct


@pytest.mark.parametrize("size", [0, 1, 2, 7, 1000])
def test_unique_is_np_unique_for_integers(size: int) -> None:
    rng = np.random.default_rng(size)
    for dtype in (np.intp, np.int64, np.int32):
        a = rng.integers(0, max(size // 3, 1), size=size).astype(dtype)
        got, want = distinct.unique(a), np.unique(a)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint16])
@pytest.mark.parametrize("size", [0, 1, 2, 5, 300])
def test_count_is_len_of_np_unique(dtype: type, size: int) -> None:
    """NaNs (of either sign) count once, -0.0 equals 0.0, infinities are values."""
    rng = np.random.default_rng(size)
    a = rng.integers(0, 5, size=size).astype(np.float64)
    if np.dtype(dtype).kind == "f":
        special = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0])
        a = np.where(rng.random(size) < 0.4, rng.choice(special, size=size), a)
    arr = a.astype(dtype)
    assert distinct.count(arr) == len(np.unique(arr)), arr
    assert distinct.count(arr.reshape(-1, 1)) == len(np.unique(arr))
