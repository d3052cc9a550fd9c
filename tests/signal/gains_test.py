"""The tabulated Gauss–Hermite rule is numpy's hermegauss(64), weights normalized."""

from __future__ import annotations

import numpy as np

from initaudit.signal.gains import NODES, WEIGHTS


def test_rule_is_hermegauss() -> None:
    """Bit for bit with the numpy that wrote it; within a few ulps of any other (its
    eigenvalue solve may round differently with another LAPACK)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(64)
    np.testing.assert_allclose(NODES, nodes, rtol=1e-14, atol=0)
    np.testing.assert_allclose(WEIGHTS, weights / weights.sum(), rtol=1e-12, atol=0)
    assert NODES.dtype == WEIGHTS.dtype == np.float64


def test_rule_integrates_gaussian_moments() -> None:
    assert abs(float(np.sum(WEIGHTS)) - 1.0) < 1e-15
    assert abs(float(np.sum(WEIGHTS * NODES**2)) - 1.0) < 1e-13
    assert abs(float(np.sum(WEIGHTS * NODES**4)) - 3.0) < 1e-12
