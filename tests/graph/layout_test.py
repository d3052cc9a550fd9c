"""Fans from each op's ONNX layout, as the frameworks' init functions compute them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from initaudit.graph.build import build_graph
from initaudit.graph.model import WeightSite
from initaudit.load import load_model
from tests import _models as M


def _sites(tmp_path: Path, m) -> dict[str, WeightSite]:
    return {s.name: s for s in build_graph(load_model(M.save(m, tmp_path / "m.onnx"))).sites}


def _w(*shape: int) -> np.ndarray:
    return M.torch_default(shape, 16)


@pytest.mark.parametrize(
    ("op", "shape", "attrs", "slot", "fans"),
    [
        ("Gemm", (256, 512), {"transB": 1}, 1, (512, 256)),
        ("Gemm", (512, 256), {"transB": 0}, 1, (512, 256)),
        ("Gemm", (512, 256), {"transA": 1}, 0, (512, 256)),
        ("MatMul", (64, 32), {}, 1, (64, 32)),
        ("MatMul", (4, 64, 32), {}, 1, (64, 32)),  # batched experts: leading dim is batch
        ("MatMul", (32, 64), {}, 0, (64, 32)),  # W @ x
        ("Conv", (32, 16, 3, 3), {}, 1, (144, 288)),
        ("Conv", (32, 4, 3, 3), {"group": 4}, 1, (36, 288)),
        ("Conv", (32, 1, 3, 3), {"group": 32}, 1, (9, 288)),  # depthwise
        ("ConvTranspose", (64, 32, 4, 4), {}, 1, (512, 1024)),  # (C, M/g, k): torch quirk
        ("ConvTranspose", (64, 16, 3, 3), {"group": 2}, 1, (144, 576)),
        ("Einsum", (64, 4, 16), {"equation": "bsd,dhk->bshk"}, 1, (64, 64)),
    ],
)
def test_fans_per_op(tmp_path: Path, op, shape, attrs, slot, fans) -> None:
    m = M.single_op(op, _w(*shape), ["N", 8], slot=slot, **attrs)
    s = _sites(tmp_path, m)["W"]
    assert (s.fan_in, s.fan_out) == fans
    assert s.role == "weight"
    assert s.op_type == op


def test_recurrent_weights_and_bias(tmp_path: Path) -> None:
    h, i = 20, 12
    inits = [
        M.tensor("W", _w(1, 4 * h, i)),
        M.tensor("R", _w(1, 4 * h, h)),
        M.tensor("B", _w(1, 8 * h)),
    ]
    node = helper.make_node("LSTM", ["x", "W", "R", "B"], ["Y"], hidden_size=h)
    m = M.model([node], inits, [M.value_info("x", [5, 1, i])], [M.value_info("Y", None)])
    s = _sites(tmp_path, m)
    assert (s["W"].role, s["W"].fan_in, s["W"].hidden_size) == ("weight", i, h)
    assert (s["R"].role, s["R"].fan_in) == ("recurrent_weight", h)
    assert s["B"].role == "bias"
    assert s["W"].activation is not None and s["W"].activation.kind == "tanh"


def test_gather_table_is_embedding(tmp_path: Path) -> None:
    node = helper.make_node("Gather", ["E", "ids"], ["y"])
    m = M.model(
        [node],
        [M.tensor("E", _w(100, 32))],
        [M.value_info("ids", [2, 8], M.TensorProto.INT64)],
        [M.value_info("y", None)],
    )
    s = _sites(tmp_path, m)["E"]
    assert (s.role, s.fan_in, s.fan_out) == ("embedding", 32, 100)


def test_weight_through_transpose_identity_and_cast(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Identity", ["W"], ["W1"]),
        helper.make_node("Cast", ["W1"], ["W2"], to=M.FLOAT),
        helper.make_node("Transpose", ["W2"], ["Wt"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "Wt"], ["y"]),
    ]
    m = M.model(
        nodes, [M.tensor("W", _w(256, 64))], [M.value_info("x", [2, 64])], [M.value_info("y", None)]
    )
    s = _sites(tmp_path, m)["W"]
    # Stored (256, 64) = nn.Linear (out, in); MatMul sees (64, 256): fan_in 64.
    assert (s.fan_in, s.fan_out, s.op_type) == (64, 256, "MatMul")
    assert s.units is not None and s.units.axis == 0


def test_reshape_with_constant_shape(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Reshape", ["W", "shape"], ["W2"]),
        helper.make_node("MatMul", ["x", "W2"], ["y"]),
    ]
    inits = [M.tensor("W", _w(4, 16, 32)), M.tensor("shape", np.array([64, -1], np.int64))]
    m = M.model(nodes, inits, [M.value_info("x", [2, 64])], [M.value_info("y", None)])
    s = _sites(tmp_path, m)["W"]
    assert (s.fan_in, s.fan_out) == (64, 32)
