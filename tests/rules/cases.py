"""Rule cases as data: each code has models that must and must not trigger it.

Each builder returns a ModelProto; ``expect`` is the full set of rule codes the audit must
report for the target tensor ``fc2.weight`` (or the named tensor).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

from tests import _models as M


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[], onnx.ModelProto]
    expect: frozenset[str]
    tensor: str | None = "fc2.weight"  # None: a model-level finding


def _mlp_with_fc2(fc2: np.ndarray, **kw: object) -> onnx.ModelProto:
    return M.mlp([M.torch_default((128, 64), 64, 1), fc2, M.torch_default((10, 128), 128, 3)], **kw)  # type: ignore[arg-type]


def _good() -> np.ndarray:
    return M.torch_default((128, 128), 128, 2)


def _copied_rows() -> np.ndarray:
    w = _good()
    w[1:8] = w[0]
    return w


def _nan() -> np.ndarray:
    w = _good()
    w[3, 5] = np.nan
    w[7, 1] = np.inf
    return w


def _garbage() -> np.ndarray:
    w = _good()
    w.flat[::7] = 1e20  # elementwise, like uninitialized memory (not whole rows)
    w.flat[1::11] = 1e-41
    return w


def _lstm(hidden: int = 8, dup: bool = False) -> onnx.ModelProto:
    w = M.torch_default((1, 4 * hidden, 6), hidden, 4)
    if dup:
        for g in range(4):
            w[0, g * hidden + 1] = w[0, g * hidden]
    r = M.torch_default((1, 4 * hidden, hidden), hidden, 5)
    node = onnx.helper.make_node("LSTM", ["x", "fc2.weight", "R"], ["Y"], hidden_size=hidden)
    return M.model(
        [node],
        [M.tensor("fc2.weight", w), M.tensor("R", r)],
        [M.value_info("x", [3, 1, 6])],
        [M.value_info("Y", None)],
    )


NONE: frozenset[str] = frozenset()
CASES: tuple[Case, ...] = (
    Case(
        "IA101-bad-zeros",
        lambda: _mlp_with_fc2(np.zeros((128, 128), np.float32)),
        frozenset({"IA101"}),
    ),
    Case("IA101-good-default", lambda: _mlp_with_fc2(_good()), NONE),
    Case("IA101-good-zero-bias", lambda: M.mlp([_good()], bias=True), NONE, "fc1.bias"),
    Case(
        "IA102-bad-constant",
        lambda: _mlp_with_fc2(np.full((128, 128), 0.05, np.float32)),
        frozenset({"IA102"}),
    ),
    Case("IA102-good-default", lambda: _mlp_with_fc2(_good()), NONE),
    Case("IA103-bad-nan-inf", lambda: _mlp_with_fc2(_nan()), frozenset({"IA103"})),
    Case("IA103-good-default", lambda: _mlp_with_fc2(_good()), NONE),
    Case("IA104-bad-copied-rows", lambda: _mlp_with_fc2(_copied_rows()), frozenset({"IA104"})),
    Case("IA104-bad-lstm-unit", lambda: _lstm(dup=True), frozenset({"IA104"})),
    Case("IA104-good-lstm", lambda: _lstm(), NONE),
    Case("IA104-good-default", lambda: _mlp_with_fc2(_good()), NONE),
    Case(
        "IA104-good-fp16-default",
        lambda: _mlp_with_fc2(_good(), data_type=onnx.TensorProto.FLOAT16),
        NONE,
    ),
    Case("IA105-bad-garbage", lambda: _mlp_with_fc2(_garbage()), frozenset({"IA105"})),
    Case("IA105-good-default", lambda: _mlp_with_fc2(_good()), NONE),
)


def _zero_head() -> onnx.ModelProto:
    return M.mlp(
        [
            M.torch_default((128, 64), 64, 1),
            M.torch_default((128, 128), 128, 2),
            np.zeros((10, 128), np.float32),
        ]
    )


def _zero_residual_branch() -> onnx.ModelProto:
    """x -> MatMul(W1) -> Relu -> MatMul(fc2.weight = 0) -> Add(x) -> Relu: zero_init_residual."""
    h = onnx.helper
    nodes = [
        h.make_node("MatMul", ["x", "W1"], ["a"]),
        h.make_node("Relu", ["a"], ["r"]),
        h.make_node("MatMul", ["r", "fc2.weight"], ["b"]),
        h.make_node("Add", ["b", "x"], ["s"]),
        h.make_node("Relu", ["s"], ["out"]),
    ]
    inits = [
        M.tensor("W1", M.torch_default((32, 32), 32)),
        M.tensor("fc2.weight", np.zeros((32, 32), np.float32)),
    ]
    return M.model(nodes, inits, [M.value_info("x", [2, 32])], [M.value_info("out", None)])


CASES = (
    *CASES,
    Case("IA101-info-zero-head", _zero_head, frozenset({"IA101"}), "fc3.weight"),
    Case("IA101-info-zero-residual-branch", _zero_residual_branch, frozenset({"IA101"})),
)


def _fc2(w: np.ndarray, act: str = "Relu", **kw: object) -> onnx.ModelProto:
    """fc1 (w.shape[1] <- 64) -> fc2 = w -> fc3 (10 <- w.shape[0]), PyTorch defaults around."""
    o, i = w.shape
    return M.mlp(
        [M.torch_default((i, 64), 64, 1), w, M.torch_default((10, o), o, 3)], act=act, **kw
    )  # type: ignore[arg-type]


def _normal(shape: tuple[int, ...], std: float, seed: int = 2) -> np.ndarray:
    return M.rng(seed).normal(0.0, std, size=shape).astype(np.float32)


def _siblings(outlier: bool, truncated: bool = False) -> onnx.ModelProto:
    """Six residual-free layers.{i}.fc.weight drawn kaiming_normal (relu); one left at PyTorch
    default (another family and scale, a plausible scheme on its own), or drawn from the
    truncated normal of the same std (one recipe, drawn the other way: not an outlier)."""
    ws = [_normal((64, 64), math.sqrt(2 / 64), seed=10 + k) for k in range(6)]
    if outlier:
        ws[3] = M.torch_default((64, 64), 64, 99)
    if truncated:
        z = M.rng(98).standard_normal((4 * 64 * 64,))
        z = z[np.abs(z) <= 2][: 64 * 64].reshape(64, 64) / 0.8796  # unit variance after the cut
        ws[3] = (z * math.sqrt(2 / 64)).astype(np.float32)
    names = [f"layers.{k}.fc.weight" for k in range(6)]
    return M.mlp(ws, names=names, bias=False)


def _mixture() -> np.ndarray:
    w = _normal((128, 128), 0.01)
    w[::2] = _normal((64, 128), 0.3, seed=7)
    return w


def _laplace_mlp() -> onnx.ModelProto:
    ws = [
        M.rng(k).laplace(0, 0.05, size=s).astype(np.float32)
        for k, s in enumerate([(128, 64), (128, 128), (10, 128)])
    ]
    return M.mlp(ws)


CASES = (
    *CASES,
    Case("IA201-bad-naive-normal", lambda: _fc2(_normal((128, 128), 1.0)), frozenset({"IA201"})),
    Case("IA201-bad-tiny-normal", lambda: _fc2(_normal((64, 64), 0.01)), frozenset({"IA201"})),
    Case(
        "IA201-bad-x10-default",
        lambda: _fc2(M.torch_default((128, 128), 128) * 10),
        frozenset({"IA201"}),
    ),
    Case("IA201-good-kaiming", lambda: _fc2(_normal((128, 128), math.sqrt(2 / 128))), NONE),
    # HF's fixed 0.02 is a recipe where norms or a residual stream reset the scale; in a plain
    # stack at fan_in 64 it keeps 1/80 of the signal per layer.
    Case(
        "IA201-bad-hf-normal-in-a-plain-stack",
        lambda: _fc2(_normal((64, 64), 0.02)),
        frozenset({"IA201"}),
    ),
    Case(
        "IA201-good-hf-normal-alone",
        lambda: M.mlp([_normal((64, 64), 0.02)], names=["fc2.weight"]),
        NONE,
    ),
    Case(
        "IA202-bad-one-sided-uniform",
        lambda: _fc2(M.rng(3).uniform(0, 0.2, size=(128, 128)).astype(np.float32)),
        frozenset({"IA202"}),
    ),
    Case("IA202-good-default", lambda: _fc2(M.torch_default((128, 128), 128)), NONE),
    Case(
        "IA204-bad-one-sibling-left-default",
        lambda: _siblings(True),
        frozenset({"IA204"}),
        "layers.3.fc.weight",
    ),
    Case("IA204-good-consistent-siblings", lambda: _siblings(False), NONE, "layers.3.fc.weight"),
    Case(
        "IA204-good-one-sibling-truncated",
        lambda: _siblings(False, truncated=True),
        NONE,
        "layers.3.fc.weight",
    ),
    Case(
        "IA301-bad-he-before-tanh",
        lambda: _fc2(_normal((128, 128), math.sqrt(2 / 128)), act="Tanh"),
        frozenset({"IA301"}),
    ),
    Case(
        "IA301-good-xavier-tanh",
        lambda: _fc2(
            M.rng(4).uniform(-1, 1, size=(128, 128)).astype(np.float32)
            * (5 / 3)
            * math.sqrt(6 / 256),
            act="Tanh",
        ),
        NONE,
    ),
    Case("IA302-bad-mixture", lambda: _fc2(_mixture()), frozenset({"IA302"})),
    Case("IA302-bad-trained-model", _laplace_mlp, frozenset({"IA302"}), None),
    Case("IA302-good-default", lambda: _fc2(M.torch_default((128, 128), 128)), NONE),
    Case(
        "IA401-bad-normal-bias",
        lambda: _fc2(M.torch_default((128, 128), 128), biases=[None, _normal((128,), 1.0)]),
        frozenset({"IA401"}),
        "fc2.bias",
    ),
    Case(
        "IA401-good-default-bias", lambda: _fc2(M.torch_default((128, 128), 128)), NONE, "fc2.bias"
    ),
)


def _deep_mlp(std: float, depth: int = 12) -> onnx.ModelProto:
    ws = [_normal((64, 64), std, seed=30 + k) for k in range(depth)]
    return M.mlp(ws, biases=[np.zeros(64, np.float32)] * depth)


def _deep_default(depth: int = 12) -> onnx.ModelProto:
    ws = [M.torch_default((64, 64), 64, 30 + k) for k in range(depth)]
    return M.mlp(ws, biases=[np.zeros(64, np.float32)] * depth)


CASES = (
    *CASES,
    # PyTorch's default before ReLU keeps 1/6 of the second moment per layer: no layer is
    # mis-scaled on its own (that would be IA201, and IA203 its consequence: precedence.py),
    # the depth is.
    Case("IA203-bad-deep-pytorch-default", _deep_default, frozenset({"IA203"}), None),
    Case("IA203-good-deep-he", lambda: _deep_mlp(math.sqrt(2 / 64)), NONE, None),
)
