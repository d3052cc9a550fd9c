from __future__ import annotations

import math

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
@pytest.mark.parametrize("mean", [0.0, 0.5])
def test_pieces_agree_with_whole_chunk_float64(size: int, dtype: type, mean: float) -> None:
    """Extremes exactly; mean and std to 5 significant digits or better (float32 pieces)."""
    rng = np.random.default_rng(size)
    x = (rng.standard_normal(size) * 0.02 + mean).astype(dtype)
    if size > 100:
        x[size // 2] = np.nan  # that chunk takes the plain path; the others the fast one
    st = compute_stats(Values(x, widener(x.dtype)))
    widened = x.astype(np.float32) if dtype is np.float16 else x
    lo, hi, ref_mean, ref_std = _reference(widened)
    rel = 1e-12 if dtype is np.float64 else 1e-5
    assert (st.min, st.max) == (lo, hi)
    assert st.mean == pytest.approx(ref_mean, rel=rel, abs=rel * ref_std)
    assert st.std == pytest.approx(ref_std, rel=rel, abs=1e-15)


def test_float32_overflowing_squares_keep_a_finite_spread() -> None:
    """1e20 squared overflows float32: the piece is redone in float64, not reported as inf."""
    x = np.random.default_rng(5).standard_normal(1000).astype(np.float32)
    x[7] = 1e20
    st = compute_stats(x)
    assert st.n_huge == 1 and st.std is not None and math.isfinite(st.std)
    assert st.std == pytest.approx(float(x.astype(np.float64).std()), rel=1e-9)


@pytest.mark.parametrize("offset", [1.0, 1e3, 1e6])
def test_spread_survives_a_mean_far_larger_than_it(offset: float) -> None:
    """sum_sq - sum * mean cancels every digit of a 1e-6 spread around 1e6: the piece must be
    redone around its mean, not reported as constant or as noise."""
    x = offset + np.random.default_rng(3).standard_normal(CHUNK + 5) * 1e-6
    st = compute_stats(x)
    assert st.std == pytest.approx(float(x.std()), rel=1e-6)
    assert st.mean == pytest.approx(float(x.mean()), rel=1e-15)
