"""The tabulated critical values are scipy.stats.kstwo's, at every sample size the fit uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from initaudit.stats import kolmogorov
from initaudit.stats.fit import MIN_N
from initaudit.stats.sample import SAMPLE_SIZE

ROOT = Path(__file__).resolve().parents[2]


def test_table_is_what_scipy_computes() -> None:
    """The committed table is the generator's output (regenerate if ALPHA or sizes change).

    Compared to 1e-9, not bit for bit: scipy's kstwo.isf moves in its last digits between
    releases (up to 8e-13 between the scipy that wrote the table and today's), and the fit uses
    the critical value to 1e-6 against an acceptance margin of 0.01. 1e-9 still catches a table
    computed for another ALPHA or at other sizes.
    """
    want = kolmogorov.table()
    assert [n for n, _ in kolmogorov._TABLE] == [n for n, _ in want]
    got = np.array([v for _, v in kolmogorov._TABLE])
    assert np.max(np.abs(got - np.array([v for _, v in want]))) < 1e-9


def test_interpolated_critical_value_is_within_1e6_of_kstwo() -> None:
    sizes = sorted({*range(MIN_N, 200), *range(200, SAMPLE_SIZE + 1, 97), SAMPLE_SIZE})
    sizes += [n + d for n, _ in kolmogorov._TABLE for d in (-1, 1)]  # beside each node
    sizes = [n for n in sizes if MIN_N <= n <= SAMPLE_SIZE]
    got = np.array([kolmogorov.critical_value(n) for n in sizes])
    want = np.array([stats.kstwo.isf(kolmogorov.ALPHA, n) for n in sizes])
    assert np.max(np.abs(got - want)) < 1e-6


@pytest.mark.parametrize("n", [5, 31, 40000])
def test_sizes_outside_the_table_ask_scipy(n: int) -> None:
    assert kolmogorov.critical_value(n) == float(stats.kstwo.isf(kolmogorov.ALPHA, n))


def test_auditing_a_model_does_not_import_scipy() -> None:
    """scipy.special and scipy.stats cost ~1.2 s of imports together on every run."""
    code = (
        "import sys, initaudit; "
        "r = initaudit.audit('fixtures/torch/mlp_relu__dynamo.onnx'); "
        "assert r.files[0].tensors, r; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
