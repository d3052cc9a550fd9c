"""Histograms for the HTML report: normalized like the expected density, drawn where it matters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initaudit.stats.histogram import BINS, histogram
from initaudit.stats.model import NO_FIT, Scheme, SchemeFit
from initaudit.stats.moments import compute_stats
from initaudit.stats.values import as_values


def _fit(family: str, std: float, matched: bool = True) -> SchemeFit:
    scheme = Scheme(key="k", label=f"{family}(std={std})", family=family, std=std)
    return SchemeFit(
        scheme=scheme.label,
        key="k",
        family=family,
        statistic=0.01,
        n=100,
        expected_std=std,
        ratio=1.0,
        matched=matched,
        closest=scheme,
    )


def _hist(arr: np.ndarray, fit: SchemeFit = NO_FIT):
    v = as_values(arr.astype(np.float32))
    return histogram(v, compute_stats(v), fit)


def _area(x: tuple[float, ...], y: tuple[float, ...]) -> float:
    return sum((x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2 for i in range(len(x) - 1))


@pytest.mark.parametrize("family", ["uniform", "normal", "trunc_normal"])
def test_bars_and_curve_are_densities(family: str) -> None:
    arr = np.random.default_rng(0).normal(0, 0.1, size=(256, 256))
    h = _hist(arr, _fit(family, 0.1))
    assert h is not None and h.expected is not None
    assert len(h.edges) == BINS + 1 and len(h.counts) == BINS
    assert sum(h.counts) == h.n == 32768  # the fit's deterministic subsample
    widths = np.diff(h.edges)
    assert float(np.sum(np.array(h.density) * widths)) == pytest.approx(1.0)
    assert _area(h.expected.x, h.expected.y) == pytest.approx(1.0, abs=2e-3)
    assert h.expected.family == family and h.expected.matched


def test_range_covers_an_expected_scheme_far_wider_than_the_values() -> None:
    arr = np.random.default_rng(1).uniform(-0.01, 0.01, size=(64, 64))
    h = _hist(arr, _fit("uniform", 0.2, matched=False))
    assert h is not None and h.expected is not None
    bound = 0.2 * math.sqrt(3)
    assert h.edges[0] <= -bound and h.edges[-1] >= bound
    assert not h.expected.matched


def test_a_zero_tensor_is_one_spike_with_no_curve() -> None:
    h = _hist(np.zeros((16, 16)))
    assert h is not None
    assert h.expected is None
    assert h.edges[0] < 0 < h.edges[-1]
    assert max(h.counts) == 256 == sum(h.counts)


def test_outliers_beyond_the_sample_are_not_lost() -> None:
    arr = np.random.default_rng(2).normal(size=100_000)
    arr[7] = 50.0  # probably not sampled; the range still reaches it
    h = _hist(arr)
    assert h is not None
    assert h.edges[-1] == pytest.approx(50.0)
    assert sum(h.counts) == h.n


def test_same_values_same_histogram() -> None:
    arr = np.random.default_rng(3).normal(size=(300, 300))
    assert _hist(arr) == _hist(arr.copy())


def test_no_finite_values_no_histogram() -> None:
    assert _hist(np.full((4, 4), np.nan)) is None
