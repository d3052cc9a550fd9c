"""The activation after each weight, including the patterns exporters decompose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from initaudit.graph.build import build_graph
from initaudit.load import load_model
from tests import _models as M


def _act(tmp_path: Path, nodes, inits=()) -> tuple[str, bool]:
    """x -> MatMul(W) -> y0 -> nodes...; returns W's activation label and normalized flag."""
    w = M.torch_default((16, 16), 16)
    all_nodes = [helper.make_node("MatMul", ["x", "W"], ["y0"]), *nodes]
    m = M.model(
        all_nodes,
        [M.tensor("W", w), *inits],
        [M.value_info("x", [2, 16])],
        [M.value_info(all_nodes[-1].output[0], None)],
    )
    site = {s.name: s for s in build_graph(load_model(M.save(m, tmp_path / "m.onnx"))).sites}["W"]
    assert site.activation is not None
    return site.activation.label, site.activation.normalized


def _c(name: str, value: float) -> helper.TensorProto:
    return M.tensor(name, np.array(value, np.float32))


def n(op: str, ins: list[str], out: str, **kw: object) -> helper.NodeProto:
    return helper.make_node(op, ins, [out], **kw)


@pytest.mark.parametrize(
    ("op", "attrs", "label"),
    [
        ("Relu", {}, "relu"),
        ("LeakyRelu", {"alpha": 0.2}, "leaky_relu(alpha=0.2)"),
        ("LeakyRelu", {}, "leaky_relu(alpha=0.01)"),
        ("Tanh", {}, "tanh"),
        ("Sigmoid", {}, "sigmoid"),
        ("Selu", {}, "selu"),
        ("Elu", {}, "elu(alpha=1)"),
        ("Gelu", {}, "gelu"),
        ("Gelu", {"approximate": "tanh"}, "gelu(approximate=tanh)"),
        ("HardSwish", {}, "hardswish"),
        ("Mish", {}, "mish"),
        ("Softplus", {}, "softplus"),
    ],
)
def test_single_op_activations(tmp_path: Path, op: str, attrs: dict, label: str) -> None:
    assert _act(tmp_path, [n(op, ["y0"], "a", **attrs)]) == (label, False)


def test_through_bias_add_reshape_and_batchnorm(tmp_path: Path) -> None:
    ch = 16
    inits = [
        M.tensor("b", np.zeros(ch, np.float32)),
        M.tensor("shape", np.array([2, 16], np.int64)),
        *(
            M.tensor(k, v)
            for k, v in (
                ("s", np.ones(ch, np.float32)),
                ("sh", np.zeros(ch, np.float32)),
                ("mu", np.zeros(ch, np.float32)),
                ("var", np.ones(ch, np.float32)),
            )
        ),
    ]
    nodes = [
        n("Add", ["y0", "b"], "y1"),
        n("Reshape", ["y1", "shape"], "y2"),
        n("BatchNormalization", ["y2", "s", "sh", "mu", "var"], "y3"),
        n("Relu", ["y3"], "y4"),
    ]
    assert _act(tmp_path, nodes, inits) == ("relu", True)


def test_decomposed_gelu_erf(tmp_path: Path) -> None:
    nodes = [
        n("Div", ["y0", "sqrt2"], "d"),
        n("Erf", ["d"], "e"),
        n("Add", ["e", "one"], "a"),
        n("Mul", ["y0", "a"], "m"),
        n("Mul", ["m", "half"], "g"),
    ]
    inits = [_c("sqrt2", 1.4142135), _c("one", 1.0), _c("half", 0.5)]
    assert _act(tmp_path, nodes, inits) == ("gelu", False)


def test_decomposed_gelu_tanh(tmp_path: Path) -> None:
    nodes = [
        n("Mul", ["y0", "half"], "h"),
        n("Pow", ["y0", "three"], "p"),
        n("Mul", ["p", "k"], "pk"),
        n("Add", ["y0", "pk"], "s"),
        n("Mul", ["s", "c"], "sc"),
        n("Tanh", ["sc"], "t"),
        n("Add", ["t", "one"], "t1"),
        n("Mul", ["h", "t1"], "g"),
    ]
    inits = [
        _c("half", 0.5),
        _c("three", 3.0),
        _c("k", 0.044715),
        _c("c", 0.7978845),
        _c("one", 1.0),
    ]
    assert _act(tmp_path, nodes, inits) == ("gelu(approximate=tanh)", False)


def test_decomposed_silu_and_plain_sigmoid(tmp_path: Path) -> None:
    silu = [n("Sigmoid", ["y0"], "s"), n("Mul", ["y0", "s"], "m")]
    assert _act(tmp_path, silu) == ("silu", False)


def test_decomposed_mish_and_hardswish(tmp_path: Path) -> None:
    mish = [n("Softplus", ["y0"], "sp"), n("Tanh", ["sp"], "t"), n("Mul", ["y0", "t"], "m")]
    assert _act(tmp_path, mish) == ("mish", False)
    hs = [n("HardSigmoid", ["y0"], "h", alpha=1 / 6, beta=0.5), n("Mul", ["y0", "h"], "m")]
    assert _act(tmp_path, hs) == ("hardswish", False)


def test_relu6_as_clip(tmp_path: Path) -> None:
    nodes = [n("Clip", ["y0", "lo", "hi"], "c")]
    assert _act(tmp_path, nodes, [_c("lo", 0.0), _c("hi", 6.0)]) == ("relu6", False)


def test_decomposed_layernorm_then_relu(tmp_path: Path) -> None:
    nodes = [
        n("ReduceMean", ["y0"], "mu", axes=[-1]),
        n("Sub", ["y0", "mu"], "c"),
        n("Pow", ["c", "two"], "sq"),
        n("ReduceMean", ["sq"], "var", axes=[-1]),
        n("Add", ["var", "eps"], "ve"),
        n("Sqrt", ["ve"], "sd"),
        n("Div", ["c", "sd"], "z"),
        n("Mul", ["z", "gamma"], "zg"),
        n("Add", ["zg", "beta"], "zb"),
        n("Relu", ["zb"], "r"),
    ]
    inits = [
        _c("two", 2.0),
        _c("eps", 1e-5),
        M.tensor("gamma", np.ones(16, np.float32)),
        M.tensor("beta", np.zeros(16, np.float32)),
    ]
    assert _act(tmp_path, nodes, inits) == ("relu", True)


def test_residual_add_is_a_linear_end(tmp_path: Path) -> None:
    nodes = [n("Add", ["y0", "x"], "r"), n("Relu", ["r"], "a")]
    assert _act(tmp_path, nodes) == ("linear", False)


def test_next_linear_op_is_a_linear_end(tmp_path: Path) -> None:
    nodes = [n("MatMul", ["y0", "W2"], "z"), n("Relu", ["z"], "a")]
    assert _act(tmp_path, nodes, [M.tensor("W2", M.torch_default((16, 16), 16))]) == (
        "linear",
        False,
    )


def test_graph_output_is_linear(tmp_path: Path) -> None:
    assert _act(tmp_path, [n("Identity", ["y0"], "out")]) == ("linear", False)
