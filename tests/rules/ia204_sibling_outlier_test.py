"""IA204's median is statistics.median's, value for value."""

from __future__ import annotations

import random
import statistics

import pytest

from initaudit.rules.ia204_sibling_outlier import _median


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 12, 13])
def test_median_is_statistics_median(n: int) -> None:
    rng = random.Random(n)
    pool = [0.0, -0.0, 1e-300, 1e308, 0.02, 0.0200000001]
    for _ in range(200):
        values = [rng.choice([*pool, rng.random(), rng.gauss(0.0, 0.02)]) for _ in range(n)]
        got, want = _median(values), statistics.median(values)
        assert repr(got) == repr(want), values
