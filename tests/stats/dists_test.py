"""The family CDFs and log-densities computed without scipy agree with scipy.stats."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from initaudit.stats import dists
from initaudit.stats.dists import family_cdf, ks_statistic

X = np.random.default_rng(0).standard_normal(5000) * 0.05


def test_normal_cdf_is_within_2e9_of_scipys_everywhere() -> None:
    z = np.concatenate([np.linspace(-40, 40, 400_001), [-np.inf, np.inf, 0.0]])
    err = np.abs(dists.ndtr(z) - special.ndtr(z))
    assert err.max() < 2e-9
    np.testing.assert_allclose(
        dists.norm_cdf(X, 0.01, 0.04), stats.norm.cdf(X, loc=0.01, scale=0.04), rtol=0, atol=2e-9
    )


def test_table_filled_on_demand_is_the_whole_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nodes computed as values reach them give what the whole table, computed at once over
    np.arange, gives: bit for bit, in any order of calls."""
    nodes = np.arange(-dists._EDGE, dists._EDGE + dists._STEP / 2, dists._STEP)
    whole = np.frompyfunc(dists.phi, 1, 1)(nodes).astype(np.float64)
    fresh = np.full(nodes.size, np.nan)
    monkeypatch.setattr(dists, "_phi_table", lambda: fresh)
    rng = np.random.default_rng(1)
    for scale in (0.5, 3.0, 12.0):
        z = rng.standard_normal(3000) * scale
        t = np.clip(z, -dists._EDGE, dists._EDGE)
        t = (t + dists._EDGE) * (1.0 / dists._STEP)
        i = np.minimum(t.astype(np.intp), nodes.size - 2)
        want = whole[i] + (whole[i + 1] - whole[i]) * (t - i)
        np.testing.assert_array_equal(dists.ndtr(z), want)
    seen = ~np.isnan(fresh)
    np.testing.assert_array_equal(fresh[seen], whole[seen])
    assert 0 < seen.sum() < nodes.size


# The uniform CDF and the log-densities evaluate scipy's formulas in scipy's order, so they agree
# to the last bit with today's scipy; another scipy release may reorder an operation and move a
# few ulps (~1e-16 relative). What initaudit does with them needs far less: the KS statistic is
# compared to scipy's to 1e-8 (below), and a log-likelihood sums at most 32768 log-densities,
# so 1e-12 each moves a sum by < 4e-8, against family decisions made on differences of order 1.
CDF_ATOL = 1e-12
LOGPDF_TOL = {"rtol": 1e-13, "atol": 1e-12}


def test_uniform_cdf_is_scipys() -> None:
    np.testing.assert_allclose(
        dists.uniform_cdf(X, -0.07, 0.14),
        stats.uniform.cdf(X, loc=-0.07, scale=0.14),
        rtol=0,
        atol=CDF_ATOL,
    )


def test_truncated_normal_cdf_agrees() -> None:
    want = stats.truncnorm.cdf(X, -2.0, 2.0, loc=0.002, scale=0.03)
    np.testing.assert_allclose(dists.truncnorm_cdf(X, 0.002, 0.03), want, rtol=0, atol=3e-9)


def test_log_densities_agree_with_scipys() -> None:
    np.testing.assert_allclose(
        dists.norm_logpdf(X, 0.04), stats.norm.logpdf(X, scale=0.04), **LOGPDF_TOL
    )
    a, b = -2.0 * (1 + 2.0**-11), 2.0 * (1 + 2.0**-11)
    np.testing.assert_allclose(
        dists.truncnorm_logpdf(X, a, b, 0.03),
        stats.truncnorm.logpdf(X, a, b, scale=0.03),
        **LOGPDF_TOL,
    )


@pytest.mark.parametrize("family", ["normal", "uniform", "trunc_normal"])
@pytest.mark.parametrize("scale", [1.0, 1.1, 0.7])
def test_ks_statistic_is_scipys_kstest(family: str, scale: float) -> None:
    """The statistic the fit decides on is scipy.stats.kstest's against the same scheme."""
    rng = np.random.default_rng(7)
    std = 0.05
    sample = np.sort(rng.standard_normal(3000) * std * scale)
    frozen = {
        "normal": stats.norm(scale=std),
        "uniform": stats.uniform(loc=-std * 3**0.5, scale=2 * std * 3**0.5),
        "trunc_normal": stats.truncnorm(-2, 2, scale=std / 0.8796256610342398),
    }[family]
    want = stats.kstest(sample, frozen.cdf).statistic
    assert ks_statistic(sample, family_cdf(family, std, sample)) == pytest.approx(want, abs=1e-8)
