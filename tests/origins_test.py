"""Value matching of initializers to framework tensors, on models built with onnx.helper.

The framework adapters (tests/torch_test.py, tests/keras_test.py) check the same against real
exporters; these cases pin each transformation without torch or keras installed.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
from onnx import helper

from initaudit.origins import Norm, Part, Transform, View, map_origins
from tests import _models as M


def _graph(nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray]) -> onnx.ModelProto:
    return M.model(
        nodes,
        [M.tensor(name, value) for name, value in inits.items()],
        [M.value_info("x", None)],
        [M.value_info("y", None)],
    )


def _view(name: str, value: np.ndarray, transform: Transform = Transform.IDENTITY) -> View:
    return View(
        name=name,
        owner="nn.Linear",
        layer=name.rpartition(".")[0],
        value=value,
        transform=transform,
    )


def test_a_renamed_transposed_weight_is_named_after_its_parameter() -> None:
    w = M.torch_default((8, 16), 16)
    model = _graph(
        [helper.make_node("MatMul", ["x", "onnx::MatMul_6"], ["y"])], {"onnx::MatMul_6": w.T}
    )
    views = [_view("fc.weight", w), _view("fc.weight", w.T, Transform.TRANSPOSED)]
    origin = map_origins(model, views)["onnx::MatMul_6"]
    assert (origin.name, origin.transform) == ("fc.weight", Transform.TRANSPOSED)
    assert origin.label == "fc.weight (nn.Linear)"


def _bn(channels: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, Norm]:
    r = M.rng(seed)
    gamma, beta = r.uniform(0.5, 1.5, channels), r.uniform(-1, 1, channels)
    mean, var = r.uniform(-1, 1, channels), r.uniform(0.5, 2, channels)
    scale = gamma / np.sqrt(var + 1e-5)
    names = ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var")
    norm = Norm(
        name="bn",
        owner="nn.BatchNorm2d",
        pattern="bn.*",
        sources=names,
        scale_name="bn.weight",
        shift_name="bn.bias",
        scale=scale,
        shift=beta - mean * scale,
        after="conv",
    )
    return scale, beta - mean * scale, norm


def _conv(weight: str, bias: str) -> onnx.NodeProto:
    return helper.make_node("Conv", ["x", weight, bias], ["y"])


def test_a_batchnorm_folded_conv_is_one_tensor_from_two_layers() -> None:
    w = M.torch_default((4, 3, 3, 3), 27)
    b = M.torch_default((4,), 27, seed=2)
    scale, shift, norm = _bn(4)
    folded_w = (w * scale[:, None, None, None]).astype(np.float32)
    folded_b = (b * scale + shift).astype(np.float32)
    model = _graph(
        [_conv("onnx::Conv_11", "onnx::Conv_12")],
        {"onnx::Conv_11": folded_w, "onnx::Conv_12": folded_b},
    )
    views = [
        View(
            name="conv.weight",
            owner="nn.Conv2d",
            layer="conv",
            value=w,
            part=Part.WEIGHT,
            out_axis=0,
        ),
        View(name="conv.bias", owner="nn.Conv2d", layer="conv", value=b, part=Part.BIAS),
    ]
    found = map_origins(model, views, [norm])
    weight, bias = found["onnx::Conv_11"], found["onnx::Conv_12"]
    assert weight.transform is Transform.FOLDED
    assert weight.label == "conv.weight (nn.Conv2d), folded from conv.weight and bn.*"
    assert set(weight.sources) == {"conv.weight", *norm.sources}
    assert bias.label == "conv.bias (nn.Conv2d), folded from conv.bias and bn.*"
    assert found.unmatched == ()


def test_a_fold_creates_a_bias_from_the_norm_when_the_conv_had_none() -> None:
    """The legacy exporter adds a bias to a bias-free conv; a fresh BatchNorm scales by
    1/√(1+ε), too close to 1 for the exact index but still a fold."""
    w = M.torch_default((4, 3, 3, 3), 27)
    scale = np.full(4, 1 / np.sqrt(1 + 1e-5))
    norm = Norm(
        name="bn", owner="nn.BatchNorm2d", pattern="bn.*", sources=("bn.weight",),
        scale_name="bn.weight",
        shift_name="bn.bias", scale=scale, shift=np.zeros(4), after="conv",
    )  # fmt: skip
    inits = {
        "c.weight": (w * scale[:, None, None, None]).astype(np.float32),
        "c.b": np.zeros(4, np.float32),
    }
    model = _graph([_conv("c.weight", "c.b")], inits)
    view = View(
        name="conv.weight", owner="nn.Conv2d", layer="conv", value=w, part=Part.WEIGHT, out_axis=0
    )
    found = map_origins(model, [view], [norm])
    assert found["c.weight"].detail == "folded from conv.weight and bn.*"
    assert (
        found["c.b"].label
        == "bn.bias (nn.BatchNorm2d), folded from bn.* into conv (which has no bias)"
    )


def test_a_rescaled_weight_with_no_matching_norm_is_not_claimed() -> None:
    w = M.torch_default((4, 3, 3, 3), 27)
    _, _, norm = _bn(4)
    model = _graph([_conv("w", "")], {"w": (w * 3.0).astype(np.float32)})
    view = View(
        name="conv.weight", owner="nn.Conv2d", layer="conv", value=w, part=Part.WEIGHT, out_axis=0
    )
    found = map_origins(model, [view], [norm])
    assert found.get("w") is None
    assert found.unmatched == ("conv.weight",)


def test_equal_values_are_named_after_the_layer_that_reads_them() -> None:
    """A tied lm_head and its embedding hold the same numbers: the Gather reads the
    embedding, the MatMul the head, whatever name the exporter kept."""
    table = M.torch_default((20, 8), 8)
    nodes = [
        helper.make_node("Gather", ["head.weight", "x"], ["h"]),
        helper.make_node("MatMul", ["h", "val_2"], ["y"]),
    ]
    model = _graph(nodes, {"head.weight": table, "val_2": table.T})
    views = []
    for name, owner, ops in (
        ("emb.weight", "nn.Embedding", {"Gather"}),
        ("head.weight", "nn.Linear", {"MatMul"}),
    ):
        for value, transform in ((table, Transform.IDENTITY), (table.T, Transform.TRANSPOSED)):
            views.append(
                View(
                    name=name,
                    owner=owner,
                    layer=name[:-7],
                    value=value,
                    transform=transform,
                    ops=frozenset(ops),
                )
            )
    found = map_origins(model, views)
    assert found["head.weight"].label == "emb.weight (nn.Embedding); same values as head.weight"
    assert found["val_2"].label == "head.weight (nn.Linear); same values as emb.weight"


def test_merged_duplicates_name_the_rest_and_count_what_is_not_shown() -> None:
    ones = np.ones(8, np.float32)
    model = _graph(
        [helper.make_node("LayerNormalization", ["x", "n0.weight"], ["y"])], {"n0.weight": ones}
    )
    views = [
        View(name=f"n{i}.weight", owner="nn.LayerNorm", layer=f"n{i}", value=ones) for i in range(6)
    ]
    origin = map_origins(model, views)["n0.weight"]
    assert (
        origin.label
        == "n0.weight (nn.LayerNorm); same values as n1.weight, n2.weight, n3.weight and 2 more"
    )


def test_gate_reordered_recurrent_weights_are_found_by_their_view() -> None:
    w_ih = M.torch_default((16, 3), 4)
    onnx_w = np.stack([np.concatenate([np.split(w_ih, 4)[i] for i in (0, 3, 1, 2)])])
    model = _graph([helper.make_node("LSTM", ["x", "val_40", ""], ["y"])], {"val_40": onnx_w})
    view = View(
        name="rnn.weight_ih_l0", owner="nn.LSTM", layer="rnn", value=onnx_w,
        transform=Transform.GATES, detail="gates i,f,g,o → i,o,f,c",
    )  # fmt: skip
    assert map_origins(model, [view])["val_40"].label == (
        "rnn.weight_ih_l0 (nn.LSTM), gates i,f,g,o → i,o,f,c"
    )


def test_rows_gathered_from_a_table_at_export_are_named_with_their_span() -> None:
    table = M.torch_default((32, 8), 8)
    model = _graph([helper.make_node("Add", ["x", "val_3"], ["y"])], {"val_3": table[:6]})
    view = View(name="pos.weight", owner="nn.Embedding", layer="pos", value=table, table=True)
    assert map_origins(model, [view])["val_3"].label == "pos.weight (nn.Embedding), rows [0:6]"


def test_scalars_and_integer_tensors_are_not_matched() -> None:
    model = _graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        {"shape": np.array([1, 2], np.int64), "eps": np.array([1e-5], np.float32)},
    )
    view = View(name="n.eps", owner=None, layer="n", value=np.array([1e-5, 1e-5], np.float32))
    found = map_origins(model, [view])
    assert found.origins == ()
    assert found.unmatched == ("n.eps",)


def test_the_core_imports_no_framework() -> None:
    """torch and tensorflow load only through initaudit.torch / initaudit.keras: a user of
    the command line never pays their import time (seconds) or needs them installed."""
    code = (
        "import sys, initaudit, initaudit.cli, initaudit.origins; "
        "print(sorted({'torch', 'tensorflow', 'keras', 'tf2onnx'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_equal_tensors_of_two_layers_are_told_apart_by_the_nodes_scope() -> None:
    """Two zeroed layers hold the same numbers; each node's scope (``/fc2/MatMul``) says which
    layer's weight its initializer is."""
    zero = np.zeros((8, 8), np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "val_1"], ["h"], name="/fc2/MatMul"),
        helper.make_node("MatMul", ["h", "val_2"], ["y"], name="/fc3/MatMul"),
    ]
    model = _graph(nodes, {"val_1": zero, "val_2": zero.copy()})
    views = [_view("fc2.weight", zero), _view("fc3.weight", zero)]

    def scope(node: onnx.NodeProto) -> str | None:
        return node.name.split("/")[1]

    found = map_origins(model, views, scope=scope)
    assert found["val_1"].label == "fc2.weight (nn.Linear); same values as fc3.weight"
    assert found["val_2"].label == "fc3.weight (nn.Linear); same values as fc2.weight"
    assert map_origins(model, views)["val_2"].name == "fc2.weight"  # without scopes: a guess
