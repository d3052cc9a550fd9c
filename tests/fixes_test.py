"""Fixes are written in the model's framework (its producer_name) and follow the model's own
convention when its weights agree on one (HF's N(0, 0.02))."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest

import initaudit
from initaudit.findings import Finding
from initaudit.fixes import BOTH, Framework, frameworks_of
from tests import _models as M


def _normal(shape: tuple[int, int], std: float, seed: int = 0) -> np.ndarray:
    return M.rng(seed).normal(0.0, std, size=shape).astype(np.float32)


def _with_producer(model: onnx.ModelProto, producer: str) -> onnx.ModelProto:
    model.producer_name = producer
    return model


def _fix(model: onnx.ModelProto, rule: str, tensor: str | None = None) -> str:
    found: list[Finding] = [
        f
        for f in initaudit.audit(model).findings
        if f.rule == rule and (tensor is None or f.tensor == tensor)
    ]
    assert found, initaudit.audit(model).findings
    return found[0].fix or ""


@pytest.mark.parametrize(
    ("producer", "expected"),
    [
        ("pytorch", (Framework.TORCH,)),
        ("onnxscript", (Framework.TORCH,)),
        ("tf2onnx", (Framework.KERAS,)),
        ("keras2onnx", (Framework.KERAS,)),
        ("", BOTH),
        ("skl2onnx", BOTH),
    ],
)
def test_the_producer_picks_the_framework(producer: str, expected: tuple[Framework, ...]) -> None:
    assert frameworks_of(producer) == expected


def _zero_hidden() -> onnx.ModelProto:
    ws = [M.torch_default((32, 16), 16), np.zeros((8, 32), np.float32), M.torch_default((4, 8), 8)]
    return M.mlp(ws)


def test_a_zero_weight_fix_speaks_the_producers_framework() -> None:
    torch_fix = _fix(_with_producer(_zero_hidden(), "pytorch"), "IA101")
    keras_fix = _fix(_with_producer(_zero_hidden(), "tf2onnx"), "IA101")
    both = _fix(_with_producer(_zero_hidden(), "unknown-tool"), "IA101")
    assert "kaiming_uniform_" in torch_fix and "keras" not in torch_fix
    assert "kernel_initializer=keras.initializers.HeNormal()" in keras_fix
    assert "kaiming" not in keras_fix and "nn.init" not in keras_fix
    assert both.startswith("PyTorch: ") and "; Keras: " in both


def _fc2(w: np.ndarray, act: str = "Relu", producer: str = "pytorch") -> onnx.ModelProto:
    ws = [M.torch_default((w.shape[1], 64), 64), w, M.torch_default((10, w.shape[0]), w.shape[0])]
    return _with_producer(M.mlp(ws, act=act), producer)


def test_a_keras_fix_names_the_initializer_with_the_same_std() -> None:
    """A mis-scaled layer before ReLU: PyTorch's kaiming_normal_ is Keras' HeNormal (both have
    std sqrt(2/fan_in)); before tanh, xavier with tanh's gain is VarianceScaling(25/9)."""
    relu = _fix(_fc2(_normal((128, 128), 1.0), producer="tf2onnx"), "IA201")
    assert relu.startswith("kernel_initializer=keras.initializers.HeNormal() gives std 0.125")
    tanh = _fix(_fc2(_normal((128, 128), 1.0), act="Tanh", producer="tf2onnx"), "IA201")
    assert tanh.startswith(
        'kernel_initializer=keras.initializers.VarianceScaling(scale=2.778, mode="fan_avg", '
        'distribution="uniform")'
    )
    torch_relu = _fix(_fc2(_normal((128, 128), 1.0)), "IA201")
    assert torch_relu.startswith("nn.init.kaiming_normal_(w, ")


def test_a_fix_follows_the_std_every_other_weight_uses() -> None:
    """Every layer N(0, 0.02) (HF's initializer_range) but one: the fix is N(0, 0.02), not the
    textbook kaiming/xavier that would make that layer the odd one out."""
    ws = [_normal((128, 64), 0.02, 1), _normal((128, 128), 1.0, 2), _normal((64, 128), 0.02, 3)]
    ws.append(_normal((10, 64), 0.02, 4))
    hf = _with_producer(M.mlp(ws, act="Gelu"), "pytorch")
    # fc2.weight, the odd one. (In this plain stack the 0.02 layers are IA201 too, since a
    # fixed std compounds there; their fix is the textbook scheme, not the 0.02 they have.)
    fix = _fix(hf, "IA201", "fc2.weight")
    assert fix == "nn.init.normal_(w, std=0.02) gives std 0.02 here"
    assert "std=0.02" not in _fix(hf, "IA201", "fc1.weight")
    keras = _fix(_with_producer(M.mlp(ws, act="Gelu"), "tf2onnx"), "IA201", "fc2.weight")
    assert (
        keras
        == "kernel_initializer=keras.initializers.RandomNormal(stddev=0.02) gives std 0.02 here"
    )


def test_without_a_shared_convention_the_textbook_scheme_is_suggested() -> None:
    fix = _fix(_fc2(_normal((128, 128), 1.0)), "IA201")
    assert "normal_(w, std=0.02)" not in fix
    assert math.isclose(
        float(fix.rsplit("std ", 1)[1].split()[0]), math.sqrt(2 / 128), rel_tol=1e-2
    )
