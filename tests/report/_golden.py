"""The one fixture every format's golden file is made from, and the golden-file check.

Regenerate every golden file after an intended output change with

    INITAUDIT_UPDATE_GOLDEN=1 python -m pytest -q tests/report tests/cli_test.py

and review the diff like code.

Text, SARIF and GitHub goldens hold no number a dependency computes, so they are compared
byte for byte. The JSON golden holds each tensor's mean and std and the depth profile's log10
scales, which come out of numpy's float32 pairwise sums and of sums over numpy's
Gauss-Hermite nodes (an eigenvalue problem LAPACK solves): a numpy release, its BLAS or a CPU
that sums in another order moves their last digits (initaudit keeps ~5 significant digits of
them, stats/moments.py, and prints 6). So the
JSON golden is compared as text with every float literal masked (the format, key order and
indentation byte for byte), then number by number: exactly where initaudit's own arithmetic
fixes the value (``EXACT_KEYS``: extremes of stored values, expected std from the fans), and
to ``REL``/``ABS`` elsewhere.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np

from initaudit._version import __version__
from initaudit.cli import cli
from tests import _models as M
from tests._click import runner

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("INITAUDIT_UPDATE_GOLDEN") == "1"

# Floats initaudit computes itself, exactly: the extremes of the stored values and the
# expected std (math.sqrt of fans), each then rounded to 6 digits by Python.
EXACT_KEYS = frozenset({"min", "max", "expected_std"})
# Means, stds, ratios and log10 scales: numpy's summation order moves them by ~1e-5 relative
# at most (1e-7 absolute for a mean near 0); a real change (another scheme, fan, rounding
# rule or fixture) moves them by 1e-3 or more.
REL, ABS = 1e-4, 1e-6
FLOAT = re.compile(r"-?\d+(?:\.\d+(?:[eE][-+]?\d+)?|[eE][-+]?\d+)")

# A real PyTorch export with a zeroed fc2, a TensorFlow-style model (names with '/' and ':')
# whose hidden layer is zero (error) and whose head is zero (intentional: info), and a file
# that is not ONNX.
MODELS = ("models/mlp_zero_weight.onnx", "models/tf_dense.onnx", "models/not_onnx.onnx")


def make_models(folder: Path) -> None:
    (folder / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "fixtures/torch/mlp_zero_weight__legacy.onnx", folder / MODELS[0])
    ws = [
        M.torch_default((32, 16), 16),
        np.zeros((8, 32), np.float32),
        np.zeros((4, 8), np.float32),
    ]
    names = ["dense/kernel:0", "dense_1/kernel:0", "dense_2/kernel:0"]
    tf_dense = M.mlp(ws, names=names)
    tf_dense.producer_name = "tf2onnx"  # so its fixes are written for Keras
    M.save(tf_dense, folder / MODELS[1])
    shutil.copy(ROOT / "fixtures/broken/not_onnx.onnx", folder / MODELS[2])


def run_format(folder: Path, fmt: str) -> tuple[int, str]:
    """Run the CLI from ``folder`` on the fixture, ignoring any config above it."""
    make_models(folder)
    old = os.getcwd()
    os.chdir(folder)
    try:
        r = runner().invoke(cli, ["--isolated", "--format", fmt, *MODELS])
    finally:
        os.chdir(old)
    return r.exit_code, r.stdout


def check_golden(name: str, actual: str) -> None:
    # The version is written as a placeholder: bumping it touches initaudit/_version.py only.
    actual = actual.replace(f'"{__version__}"', '"<version>"')
    path = GOLDEN / name
    if UPDATE:
        path.write_text(actual, encoding="utf-8", newline="\n")
        return
    assert path.exists(), f"{path} is missing; create it with INITAUDIT_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    hint = f"{name} changed; if intended, regenerate (see {__name__})"
    if not name.endswith(".json"):
        assert actual == expected, hint
        return
    assert FLOAT.sub("#", actual) == FLOAT.sub("#", expected), hint
    assert_same_numbers(json.loads(actual), json.loads(expected), name)


def assert_same_numbers(actual: object, expected: object, where: str, key: str = "") -> None:
    """``actual`` is ``expected``: same structure and values, floats as the module says."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected), where
        for k, v in expected.items():
            assert_same_numbers(actual[k], v, f"{where}.{k}", k)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_numbers(a, e, f"{where}[{i}]", key)
    elif isinstance(expected, float) and not isinstance(actual, bool | str | None):
        assert isinstance(actual, int | float), where
        if key in EXACT_KEYS:
            assert actual == expected, f"{where}: {actual} != {expected}"
        else:
            ok = math.isclose(actual, expected, rel_tol=REL, abs_tol=ABS)
            assert ok, f"{where}: {actual} != {expected} (to {REL:g} relative, {ABS:g} absolute)"
    else:
        assert type(actual) is type(expected) and actual == expected, f"{where}: {actual!r}"
