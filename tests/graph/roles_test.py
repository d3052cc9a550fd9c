"""Roles and tracing: what each stored tensor is, wherever the exporter put it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from initaudit.graph.build import build_graph
from initaudit.graph.model import WeightSite
from initaudit.load import load_model
from initaudit.stats.values import site_values
from tests import _models as M


def _sites(tmp_path: Path, m: onnx.ModelProto) -> dict[str, WeightSite]:
    return {s.name: s for s in build_graph(load_model(M.save(m, tmp_path / "m.onnx"))).sites}


def n(op: str, ins: list[str], out: str, **kw: object) -> onnx.NodeProto:
    return helper.make_node(op, ins, [out], **kw)


def _io(width: int = 16) -> tuple[list, list]:
    return [M.value_info("x", [2, width])], [M.value_info("out", None)]


def test_bias_add_after_matmul_gets_the_layer_fan_in(tmp_path: Path) -> None:
    nodes = [n("MatMul", ["x", "W"], "y"), n("Add", ["b", "y"], "out")]
    inits = [M.tensor("W", M.torch_default((16, 32), 16)), M.tensor("b", np.zeros(32, np.float32))]
    s = _sites(tmp_path, M.model(nodes, inits, *_io()))
    assert (s["b"].role, s["b"].fan_in) == ("bias", 16)


def test_layernorm_op_and_decomposed_affine(tmp_path: Path) -> None:
    ones, zeros = np.ones(16, np.float32), np.zeros(16, np.float32)
    nodes = [
        n("LayerNormalization", ["x", "g", "b"], "ln"),
        n("ReduceMean", ["ln"], "ms", axes=[-1]),
        n("Add", ["ms", "eps"], "v"),
        n("Sqrt", ["v"], "r"),
        n("Div", ["ln", "r"], "z"),
        n("Mul", ["z", "g2"], "zg"),
        n("Add", ["zg", "b2"], "out"),
    ]
    inits = [
        M.tensor("g", ones),
        M.tensor("b", zeros),
        M.tensor("eps", np.array(1e-5, np.float32)),
        M.tensor("g2", ones * 2),
        M.tensor("b2", zeros + 1),
    ]
    s = _sites(tmp_path, M.model(nodes, inits, *_io()))
    assert [s[k].role for k in ("g", "b", "g2", "b2")] == [
        "norm_scale",
        "norm_shift",
        "norm_scale",
        "norm_shift",
    ]
    assert s["eps"].role == "other"  # an op constant: only the integrity rules read it


def test_layer_scale_vector_and_broadcast_table(tmp_path: Path) -> None:
    nodes = [n("Mul", ["x", "gamma"], "y"), n("Mul", ["y", "table"], "out")]
    inits = [
        M.tensor("gamma", np.full(16, 1e-6, np.float32)),
        M.tensor("table", np.ones((1, 1, 2, 16), np.float32)),
    ]
    s = _sites(tmp_path, M.model(nodes, inits, *_io()))
    assert s["gamma"].role == "scale"
    assert s["table"].role == "other"


def test_constant_node_weight_is_audited_under_its_output_name(tmp_path: Path) -> None:
    w = M.torch_default((16, 8), 16)
    nodes = [
        helper.make_node("Constant", [], ["cw"], value=M.tensor("ignored", w)),
        n("MatMul", ["x", "cw"], "out"),
    ]
    s = _sites(tmp_path, M.model(nodes, [], *_io()))
    assert (s["cw"].role, s["cw"].fan_in, s["cw"].fan_out) == ("weight", 16, 8)


def test_weight_used_inside_if_subgraph(tmp_path: Path) -> None:
    branch = helper.make_graph(
        [n("MatMul", ["x", "W"], "yb")], "then", [], [M.value_info("yb", None)]
    )
    other = helper.make_graph([n("Identity", ["x"], "ye")], "else", [], [M.value_info("ye", None)])
    nodes = [helper.make_node("If", ["cond"], ["out"], then_branch=branch, else_branch=other)]
    m = M.model(
        nodes,
        [M.tensor("W", M.torch_default((16, 4), 16))],
        [M.value_info("x", [2, 16]), M.value_info("cond", [], onnx.TensorProto.BOOL)],
        [M.value_info("out", None)],
    )
    s = _sites(tmp_path, m)
    assert (s["W"].op_type, s["W"].fan_in) == ("MatMul", 16)


def test_subgraph_initializer_is_found(tmp_path: Path) -> None:
    branch = helper.make_graph(
        [n("MatMul", ["x", "Wsub"], "yb")],
        "then",
        [],
        [M.value_info("yb", None)],
        [M.tensor("Wsub", M.torch_default((16, 4), 16))],
    )
    other = helper.make_graph([n("Identity", ["x"], "ye")], "else", [], [M.value_info("ye", None)])
    nodes = [helper.make_node("If", ["cond"], ["out"], then_branch=branch, else_branch=other)]
    m = M.model(
        nodes,
        [],
        [M.value_info("x", [2, 16]), M.value_info("cond", [], onnx.TensorProto.BOOL)],
        [M.value_info("out", None)],
    )
    assert _sites(tmp_path, m)["Wsub"].role == "weight"


def test_weight_passed_into_local_function(tmp_path: Path) -> None:
    fn = helper.make_function(
        "local",
        "Lin",
        ["inp", "w"],
        ["o"],
        [n("MatMul", ["inp", "w"], "t"), n("Relu", ["t"], "o")],
        [helper.make_opsetid("", M.OPSET)],
    )
    nodes = [helper.make_node("Lin", ["x", "W"], ["out"], domain="local")]
    m = M.model(
        nodes,
        [M.tensor("W", M.torch_default((16, 8), 16))],
        *_io(),
        functions=[fn],
        extra_opsets=[("local", 1)],
    )
    s = _sites(tmp_path, m)["W"]
    assert (s.op_type, s.fan_in) == ("MatMul", 16)
    assert s.activation is not None and s.activation.kind == "relu"


def test_shared_initializer_audited_once_with_all_uses(tmp_path: Path) -> None:
    nodes = [
        n("Identity", ["g"], "g_alias"),
        n("LayerNormalization", ["x", "g", "b"], "l1"),
        n("LayerNormalization", ["l1", "g_alias", "b"], "out"),
    ]
    inits = [M.tensor("g", np.ones(16, np.float32)), M.tensor("b", np.zeros(16, np.float32))]
    s = _sites(tmp_path, M.model(nodes, inits, *_io()))
    assert len(s["g"].uses) == 2 and "g_alias" not in s


def test_tied_embedding_keeps_embedding_role(tmp_path: Path) -> None:
    nodes = [
        n("Gather", ["E", "ids"], "h"),
        n("Transpose", ["E"], "Et", perm=[1, 0]),
        n("MatMul", ["h", "Et"], "out"),
    ]
    m = M.model(
        nodes,
        [M.tensor("E", M.rng().standard_normal((50, 16)).astype(np.float32))],
        [M.value_info("ids", [2, 4], onnx.TensorProto.INT64)],
        [M.value_info("out", None)],
    )
    s = _sites(tmp_path, m)["E"]
    assert s.role == "embedding" and {u.op_type for u in s.uses} == {"Gather", "MatMul"}


def _qdq_model(q: np.ndarray, scale: np.ndarray, zp: np.ndarray, **attrs: object):
    nodes = [n("DequantizeLinear", ["Wq", "s", "zp"], "W", **attrs), n("Conv", ["x", "W"], "out")]
    inits = [M.tensor("Wq", q), M.tensor("s", scale), M.tensor("zp", zp)]
    return M.model(
        nodes, inits, [M.value_info("x", [1, 4, 8, 8])], [M.value_info("out", None)], opset=21
    )


def test_per_axis_quantized_conv_weight_is_dequantized(tmp_path: Path) -> None:
    q = M.rng().integers(-127, 128, size=(8, 4, 3, 3)).astype(np.int8)
    scale = np.linspace(0.01, 0.02, 8).astype(np.float32)
    zp = np.zeros(8, np.int8)
    p = M.save(_qdq_model(q, scale, zp, axis=0), tmp_path / "q.onnx")
    loaded = load_model(p)
    site = {s.name: s for s in build_graph(loaded).sites}["Wq"]
    assert (site.role, site.fan_in, site.quant is not None) == ("weight", 36, True)
    np.testing.assert_allclose(site_values(site, loaded.store), q * scale[:, None, None, None])
    assert "s" not in {s.name for s in build_graph(loaded).sites}


def test_blocked_int4_dequantization(tmp_path: Path) -> None:
    q = M.rng().integers(-8, 8, size=(8, 32)).astype(np.int8)
    scale = np.full((8, 2), 0.05, np.float32)
    nodes = [
        n("DequantizeLinear", ["Wq", "s"], "W", axis=1, block_size=16),
        n("Gemm", ["x", "W"], "out", transB=1),
    ]
    inits = [M.tensor("Wq", q, onnx.TensorProto.INT4), M.tensor("s", scale)]
    m = M.model(nodes, inits, [M.value_info("x", [2, 32])], [M.value_info("out", None)], opset=21)
    loaded = load_model(M.save(m, tmp_path / "q.onnx"))
    site = {s.name: s for s in build_graph(loaded).sites}["Wq"]
    np.testing.assert_allclose(site_values(site, loaded.store), q * 0.05)
    assert (site.fan_in, site.fan_out) == (32, 8)
