"""The one fixture every format's golden file is made from, and the golden-file check.

Regenerate every golden file after an intended output change with

    INITAUDIT_UPDATE_GOLDEN=1 python -m pytest -q tests/report tests/cli_test.py

and review the diff like code.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from initaudit.cli import cli
from tests import _models as M

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("INITAUDIT_UPDATE_GOLDEN") == "1"

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
        r = CliRunner().invoke(cli, ["--isolated", "--format", fmt, *MODELS])
    finally:
        os.chdir(old)
    return r.exit_code, r.stdout


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(actual, encoding="utf-8", newline="\n")
        return
    assert path.exists(), f"{path} is missing; create it with INITAUDIT_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} changed; if intended, regenerate (see {__name__})"
