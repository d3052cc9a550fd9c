"""The family CDFs and log-densities computed without scipy.stats agree with scipy.stats."""

from __future__ import annotations

import numpy as np
from scipy import stats

from initaudit.stats import dists
from initaudit.stats.fit import ALPHA, CRIT_SAMPLE
from initaudit.stats.sample import SAMPLE_SIZE

X = np.random.default_rng(0).standard_normal(5000) * 0.05


def test_normal_and_uniform_cdfs_are_scipys_bit_for_bit() -> None:
    np.testing.assert_array_equal(
        dists.norm_cdf(X, 0.01, 0.04), stats.norm.cdf(X, loc=0.01, scale=0.04)
    )
    np.testing.assert_array_equal(
        dists.uniform_cdf(X, -0.07, 0.14), stats.uniform.cdf(X, loc=-0.07, scale=0.14)
    )


def test_truncated_normal_cdf_agrees_to_rounding() -> None:
    want = stats.truncnorm.cdf(X, -2.0, 2.0, loc=0.002, scale=0.03)
    np.testing.assert_allclose(dists.truncnorm_cdf(X, 0.002, 0.03), want, rtol=0, atol=1e-15)


def test_log_densities_are_scipys_bit_for_bit() -> None:
    np.testing.assert_array_equal(dists.norm_logpdf(X, 0.04), stats.norm.logpdf(X, scale=0.04))
    a, b = -2.0 * (1 + 2.0**-11), 2.0 * (1 + 2.0**-11)
    np.testing.assert_array_equal(
        dists.truncnorm_logpdf(X, a, b, 0.03), stats.truncnorm.logpdf(X, a, b, scale=0.03)
    )


def test_critical_value_of_the_sample_size_is_kstwos() -> None:
    assert float(stats.kstwo.isf(ALPHA, SAMPLE_SIZE)) == CRIT_SAMPLE
