from __future__ import annotations

import numpy as np

from initaudit.stats.moments import CHUNK, compute_stats


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
