from __future__ import annotations

import numpy as np
import pytest

from initaudit.stats.decode import widener
from initaudit.stats.moments import CHUNK, compute_stats
from initaudit.stats.values import Values


def test_moments_match_numpy_across_chunks() -> None:
    x = np.random.default_rng(0).normal(3.0, 0.01, size=CHUNK * 2 + 17).astype(np.float32)
    st = compute_stats(x)
    assert abs(st.mean - float(x.astype(np.float64).mean())) < 1e-9
    assert abs(st.std - float(x.astype(np.float64).std())) / st.std < 1e-6
    assert (st.min, st.max) == (float(x.min()), float(x.max()))


def test_non_finite_counted_and_located_and_excluded_from_moments() -> None:
    x = np.ones((4, 5), np.float32)
    x[2, 3] = np.nan
    x[3, 0] = np.inf
    x[3, 1] = -np.inf
    st = compute_stats(x)
    assert (st.n_nan, st.n_posinf, st.n_neginf) == (1, 1, 1)
    assert st.first_nonfinite == (2, 3)
    assert st.mean == 1.0 and st.std == 0.0


def test_garbage_magnitudes_counted() -> None:
    x = np.array([1e20, 1e-41, 0.0, 0.1, -3e5], np.float32)
    st = compute_stats(x)
    assert (st.n_huge, st.n_tiny, st.n_zero) == (2, 1, 1)


def test_empty_tensor() -> None:
    st = compute_stats(np.zeros((0, 4), np.float32))
    assert st.size == 0 and st.mean is None


def _reference(values: np.ndarray) -> tuple[float, ...]:
    """The plain algorithm: each chunk copied to float64 whole, its mean and M2 merged."""
    flat = values.reshape(-1)
    count, mean, m2, lo, hi = 0, 0.0, 0.0, np.inf, -np.inf
    for start in range(0, flat.size, CHUNK):
        c = np.asarray(flat[start : start + CHUNK], dtype=np.float64)
        c = c[np.isfinite(c)]
        if c.size == 0:
            continue
        lo, hi = min(lo, float(c.min())), max(hi, float(c.max()))
        cm = float(c.mean())
        cm2 = float(np.square(c - cm).sum())
        total = count + c.size
        delta = cm - mean
        mean += delta * c.size / total
        m2 += cm2 + delta * delta * count * c.size / total
        count = total
    return lo, hi, mean, float(np.sqrt(max(m2, 0.0) / count))


@pytest.mark.parametrize("size", [1, 100, 65537, CHUNK, CHUNK * 2 + 70001])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_piecewise_pass_is_bit_identical_to_whole_chunk_float64(size: int, dtype: type) -> None:
    rng = np.random.default_rng(size)
    x = (rng.standard_normal(size) * 0.02 + 0.5).astype(dtype)
    if size > 100:
        x[size // 2] = np.nan  # that chunk takes the plain path; the others the fast one
    st = compute_stats(Values(x, widener(x.dtype)))
    widened = x.astype(np.float32) if dtype is np.float16 else x
    assert (st.min, st.max, st.mean, st.std) == _reference(widened)
