"""Signal propagation (IA203) on generated deep models: both verdicts, as the issue lists."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from initaudit.audit import AuditOptions, audit_file
from initaudit.config import Config
from initaudit.report.model import FileResult
from tests import _models as M

WIDTH, DEPTH = 64, 30


def _mlp(std_fn, act: str = "Relu", depth: int = DEPTH, uniform: bool = False):
    r = M.rng(5)
    ws = []
    for _ in range(depth):
        s = std_fn(WIDTH)
        w = (
            r.uniform(-s * math.sqrt(3), s * math.sqrt(3), (WIDTH, WIDTH))
            if uniform
            else (r.normal(0, s, (WIDTH, WIDTH)))
        )
        ws.append(w.astype(np.float32))
    zero = [np.zeros(WIDTH, np.float32)] * depth
    return M.mlp(ws, act=act, biases=zero)


# IA203 alone: on these models every layer is often also mis-scaled (IA201), and a reported
# IA201 on the largest contribution makes IA203 a consequence (precedence.py). These tests
# judge the depth model itself.
DEPTH_ONLY = AuditOptions(config=Config(select=("IA203",)))


def _audit(tmp_path: Path, m: onnx.ModelProto) -> FileResult:
    return audit_file(M.save(m, tmp_path / "m.onnx"), DEPTH_ONLY)


def _ia203(result: FileResult) -> list[str]:
    return [f.message for f in result.findings if f.rule == "IA203"]


def test_he_relu_mlp_is_stable(tmp_path: Path) -> None:
    result = _audit(tmp_path, _mlp(lambda n: math.sqrt(2 / n)))
    assert _ia203(result) == []
    assert all(abs(d.log10_forward) < 0.5 for d in result.depth)
    assert len(result.depth) == DEPTH


def test_standard_normal_mlp_explodes(tmp_path: Path) -> None:
    msgs = _ia203(_audit(tmp_path, _mlp(lambda n: 1.0)))
    (fwd,) = [m for m in msgs if m.startswith("forward")]
    assert "forward activations explode" in fwd and "fc2.weight" in fwd
    assert any(m.startswith("backward gradients explode") for m in msgs)


def test_small_normal_mlp_vanishes(tmp_path: Path) -> None:
    msgs = _ia203(_audit(tmp_path, _mlp(lambda n: 0.01)))
    assert any("forward activations vanish" in m for m in msgs)
    assert any("backward gradients vanish" in m for m in msgs)


def test_pytorch_default_relu_mlp_vanishes_about_6x_per_layer(tmp_path: Path) -> None:
    result = _audit(tmp_path, _mlp(lambda n: 1 / math.sqrt(3 * n), uniform=True))
    assert any("vanish" in m for m in _ia203(result))
    steps = [
        b.log10_forward - a.log10_forward
        for a, b in zip(result.depth, result.depth[1:], strict=False)
    ]
    assert all(abs(s - math.log10(1 / 6)) < 0.1 for s in steps[:10])


def test_xavier_tanh_mlp_is_stable(tmp_path: Path) -> None:
    """Glorot's xavier (gain 1) on square tanh layers: sigma_w² = 1, the edge of chaos."""
    result = _audit(tmp_path, _mlp(lambda n: math.sqrt(2 / (n + n)), act="Tanh"))
    assert _ia203(result) == []


def test_tanh_gain_5_3_gradients_explode_slowly(tmp_path: Path) -> None:
    """sigma_w² = 25/9 is in tanh's chaotic phase (Schoenholz et al. 2017): the gradient
    grows by E[sigma_w² tanh'(h)²] ~ 1.24 per layer at the forward fixed point."""
    result = _audit(tmp_path, _mlp(lambda n: 5 / 3 * math.sqrt(1 / n), act="Tanh"))
    (msg,) = _ia203(result)
    assert msg.startswith("backward gradients explode")


def _n(op: str, ins: list[str], out: str, **kw: object) -> onnx.NodeProto:
    return helper.make_node(op, ins, [out], **kw)


def _resnet(blocks: int = 12, c: int = 16, size: int = 8) -> onnx.ModelProto:
    """Conv-BN-ReLU-Conv-BN + identity, ReLU; kaiming_normal(fan_out) convs (torchvision)."""
    r = M.rng(6)
    nodes, inits, x = [], [], "x"
    std = math.sqrt(2 / (c * 9))
    for b in range(blocks):
        p = f"layer{b}"
        for k in (1, 2):
            inits += [
                M.tensor(f"{p}.conv{k}.weight", r.normal(0, std, (c, c, 3, 3)).astype(np.float32)),
                M.tensor(f"{p}.bn{k}.weight", np.ones(c, np.float32)),
                M.tensor(f"{p}.bn{k}.bias", np.zeros(c, np.float32)),
                M.tensor(f"{p}.bn{k}.mean", np.zeros(c, np.float32)),
                M.tensor(f"{p}.bn{k}.var", np.ones(c, np.float32)),
            ]
        nodes += [
            _n("Conv", [x, f"{p}.conv1.weight"], f"{p}/c1", pads=[1, 1, 1, 1]),
            _n(
                "BatchNormalization",
                [f"{p}/c1", f"{p}.bn1.weight", f"{p}.bn1.bias", f"{p}.bn1.mean", f"{p}.bn1.var"],
                f"{p}/b1",
            ),
            _n("Relu", [f"{p}/b1"], f"{p}/r1"),
            _n("Conv", [f"{p}/r1", f"{p}.conv2.weight"], f"{p}/c2", pads=[1, 1, 1, 1]),
            _n(
                "BatchNormalization",
                [f"{p}/c2", f"{p}.bn2.weight", f"{p}.bn2.bias", f"{p}.bn2.mean", f"{p}.bn2.var"],
                f"{p}/b2",
            ),
            _n("Add", [f"{p}/b2", x], f"{p}/s"),
            _n("Relu", [f"{p}/s"], f"{p}/out"),
        ]
        x = f"{p}/out"
    return M.model(nodes, inits, [M.value_info("x", [1, c, size, size])], [M.value_info(x, None)])


def _transformer(layers: int = 6, d: int = 64) -> onnx.ModelProto:
    """Pre-LN blocks, HF-style N(0, 0.02) projections, token embedding input."""
    r = M.rng(7)
    nodes = [_n("Gather", ["wte", "ids"], "h0")]
    inits = [M.tensor("wte", r.normal(0, 0.02, (128, d)).astype(np.float32))]
    h = "h0"
    for i in range(layers):
        p = f"h.{i}"

        def w(name: str, shape: tuple[int, int], p: str = p, inits: list = inits) -> str:
            inits.append(M.tensor(f"{p}.{name}", r.normal(0, 0.02, shape).astype(np.float32)))
            return f"{p}.{name}"

        for ln in ("ln_1", "ln_2"):
            inits += [
                M.tensor(f"{p}.{ln}.weight", np.ones(d, np.float32)),
                M.tensor(f"{p}.{ln}.bias", np.zeros(d, np.float32)),
            ]
        nodes += [
            _n("LayerNormalization", [h, f"{p}.ln_1.weight", f"{p}.ln_1.bias"], f"{p}/a"),
            _n("MatMul", [f"{p}/a", w("q", (d, d))], f"{p}/q"),
            _n("MatMul", [f"{p}/a", w("k", (d, d))], f"{p}/k"),
            _n("MatMul", [f"{p}/a", w("v", (d, d))], f"{p}/v"),
            _n("Transpose", [f"{p}/k"], f"{p}/kt", perm=[0, 2, 1]),
            _n("MatMul", [f"{p}/q", f"{p}/kt"], f"{p}/s"),
            _n("Softmax", [f"{p}/s"], f"{p}/pr", axis=-1),
            _n("MatMul", [f"{p}/pr", f"{p}/v"], f"{p}/att"),
            _n("MatMul", [f"{p}/att", w("o", (d, d))], f"{p}/o"),
            _n("Add", [h, f"{p}/o"], f"{p}/r1"),
            _n("LayerNormalization", [f"{p}/r1", f"{p}.ln_2.weight", f"{p}.ln_2.bias"], f"{p}/m"),
            _n("MatMul", [f"{p}/m", w("fc", (d, 4 * d))], f"{p}/f"),
            _n("Gelu", [f"{p}/f"], f"{p}/g"),
            _n("MatMul", [f"{p}/g", w("proj", (4 * d, d))], f"{p}/pj"),
            _n("Add", [f"{p}/r1", f"{p}/pj"], f"{p}/r2"),
        ]
        h = f"{p}/r2"
    return M.model(
        nodes, inits, [M.value_info("ids", [1, 8], onnx.TensorProto.INT64)], [M.value_info(h, None)]
    )


@pytest.mark.parametrize("build", [_resnet, _transformer], ids=["resnet_bn", "transformer_ln"])
def test_normalized_residual_networks_are_stable(tmp_path: Path, build) -> None:
    result = _audit(tmp_path, build())
    assert _ia203(result) == []
    assert result.depth and all(d.log10_forward is not None for d in result.depth)


def test_depth_profile_in_json(tmp_path: Path) -> None:
    import json

    from initaudit.cli import cli
    from tests._click import runner

    path = M.save(_mlp(lambda n: 0.01, depth=4), tmp_path / "m.onnx")
    out = runner().invoke(cli, [str(path), "--format", "json"]).stdout
    depth = json.loads(out)["files"][0]["depth"]
    assert [d["tensor"] for d in depth] == [f"fc{i}.weight" for i in range(1, 5)]
    assert depth[0]["log10_forward"] > depth[-1]["log10_forward"]
    assert set(depth[0]) >= {"tensor", "node", "op_type", "log10_forward", "log10_backward"}


AGREE = 0.3  # decades: prediction and measurement within a factor of 2


@pytest.mark.parametrize(
    "build",
    [
        lambda: _mlp(lambda n: math.sqrt(2 / n), depth=10),
        lambda: _mlp(lambda n: 0.01, depth=10),
        lambda: _mlp(lambda n: 1 / math.sqrt(3 * n), depth=10, uniform=True),
        lambda: _mlp(lambda n: math.sqrt(1 / n), act="Tanh", depth=10),
        # Wide enough for the units to be about independent (at 16 channels an identity
        # BatchNorm leaves per-channel offsets the model does not see), large enough
        # that zero padding is a small share of the positions.
        lambda: _resnet(4, c=64, size=32),
        lambda: _transformer(3),
    ],
    ids=["he_relu", "normal_001", "pytorch_default", "xavier_tanh", "resnet_bn", "transformer"],
)
def test_prediction_agrees_with_measurement(tmp_path: Path, build) -> None:
    """--propagate runs the real model (onnx's reference evaluator, or onnxruntime) on seeded
    inputs. Attention outputs (probs·V) are bounded above by the prediction: near-uniform
    attention at init averages V over the sequence, which the graph does not fix."""
    path = M.save(build(), tmp_path / "m.onnx")
    result = audit_file(path, AuditOptions(propagate={}))
    assert result.notes == ()
    checked = 0
    for d in result.depth:
        assert d.measured_log10_output is not None and d.log10_output is not None
        if d.tensor.endswith(".o"):
            assert d.measured_log10_output <= d.log10_output + AGREE
            continue
        assert abs(d.measured_log10_output - d.log10_output) < AGREE, d
        checked += 1
    assert checked >= 4


def test_propagate_on_the_command_line(tmp_path: Path) -> None:
    from initaudit.cli import cli
    from tests._click import runner

    path = M.save(_mlp(lambda n: math.sqrt(2 / n), depth=3), tmp_path / "m.onnx")
    r = runner().invoke(cli, [str(path), "--propagate", "--input-shape", "x=4x64"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    (k,) = [k for k, line in enumerate(lines) if "depth profile" in line]
    assert lines[k].endswith(
        "depth profile, E[x²] of each layer's output for inputs N(0, 1) "
        "(--propagate runs the model):"
    )
    assert lines[k + 1].split() == ["layer", "node", "op", "predicted", "measured"]
    # One quantity per layer, as plain numbers: no log10 (+0.32), no 1e+0.3.
    name, node, op, predicted, measured = lines[k + 4].split()
    assert (name, node, op) == ("fc3.weight", "/fc3/Gemm", "Gemm")
    assert 0.3 < float(measured) / float(predicted) < 3
    bad = runner().invoke(cli, [str(path), "--input-shape", "x=4xq"])
    assert bad.exit_code == 2


def _scaled_embedding(emb_std: float, scale: float, per_layer: float = 1.0) -> onnx.ModelProto:
    """ids -> Gather(embedding) -> Mul(scale) -> 6 He-ReLU layers, each output times
    ``per_layer`` (a constant multiply after a layer: that one does compound)."""
    d, vocab, r = 64, 500, M.rng(9)
    inits = [
        M.tensor("emb", (r.standard_normal((vocab, d)) * emb_std).astype(np.float32)),
        M.tensor("scale", np.array(scale, np.float32)),
        M.tensor("k", np.array(per_layer, np.float32)),
    ]
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"]),
        helper.make_node("Mul", ["e", "scale"], ["h0"]),
    ]
    for i in range(6):
        w = (r.standard_normal((d, d)) * math.sqrt(2 / d)).astype(np.float32)
        inits.append(M.tensor(f"fc{i}.weight", w))
        nodes += [
            helper.make_node("MatMul", [f"h{i}", f"fc{i}.weight"], [f"m{i}"]),
            helper.make_node("Relu", [f"m{i}"], [f"r{i}"]),
            helper.make_node("Mul", [f"r{i}", "k"], [f"h{i + 1}"]),
        ]
    return M.model(
        nodes,
        inits,
        [M.value_info("ids", ["B", "T"], onnx.TensorProto.INT64)],
        [M.value_info("h6", None)],
    )


@pytest.mark.parametrize(
    ("emb_std", "scale"),
    [(0.02, 16.0), (64**-0.5, 64**0.5)],
    ids=["gemma_embedding_times_sqrt_d", "transformer_embedding_times_sqrt_d"],
)
def test_a_constant_rescale_of_the_embedding_is_not_depth(
    tmp_path: Path, emb_std: float, scale: float
) -> None:
    """Gemma and the original Transformer multiply the embedding by sqrt(d_model) once: the
    reset moves (x256 or x64 in second moment), nothing compounds, nothing is reported."""
    assert _ia203(_audit(tmp_path, _scaled_embedding(emb_std, scale))) == []


def test_a_constant_multiply_after_every_layer_still_compounds(tmp_path: Path) -> None:
    messages = _ia203(_audit(tmp_path, _scaled_embedding(0.02, 16.0, per_layer=3.0)))
    assert messages and "explode" in messages[0]


def _conv_stack(names: str) -> onnx.ModelProto:
    """Eight 3x3 convs of 16 channels drawn N(0, 0.02), each followed by ReLU."""
    r, inits, nodes, x = M.rng(4), [], [], "x"
    for i in range(8):
        w = names.format(i)
        inits.append(M.tensor(w, (r.standard_normal((16, 16, 3, 3)) * 0.02).astype(np.float32)))
        nodes += [
            helper.make_node("Conv", [x, w], [f"c{i}"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
        ]
        x = f"r{i}"
    return M.model(nodes, inits, [M.value_info("x", [1, 16, 8, 8])], [M.value_info(x, None)])


def test_small_convs_vanish_unless_a_batchnorm_was_folded_into_them(tmp_path: Path) -> None:
    """The legacy exporter names a Conv weight it folded an eval BatchNorm into onnx::Conv_N
    (dynamo says so in the node's metadata): that BatchNorm renormalizes in training."""
    assert _ia203(_audit(tmp_path, _conv_stack("conv{}.weight")))
    assert _ia203(_audit(tmp_path, _conv_stack("onnx::Conv_{}"))) == []


def _small_then_normalized(small_layers: int) -> onnx.ModelProto:
    """``small_layers`` Linear+ReLU layers drawn N(0, 0.002) (x1/3900 in second moment each),
    a LayerNormalization, then 4 He-ReLU layers: DCGAN's shape (one small conv before BN)."""
    r, d, inits, nodes, x = M.rng(6), 64, [], [], "x"
    stds = [0.002] * small_layers + [None] + [math.sqrt(2 / d)] * 4
    for i, std in enumerate(stds):
        if std is None:
            ones, zeros = np.ones(d, np.float32), np.zeros(d, np.float32)
            inits += [M.tensor("ln.w", ones), M.tensor("ln.b", zeros)]
            nodes.append(helper.make_node("LayerNormalization", [x, "ln.w", "ln.b"], ["ln"]))
            x = "ln"
            continue
        w = (r.standard_normal((d, d)) * std).astype(np.float32)
        inits.append(M.tensor(f"fc{i}.weight", w))
        nodes += [
            helper.make_node("MatMul", [x, f"fc{i}.weight"], [f"m{i}"]),
            helper.make_node("Relu", [f"m{i}"], [f"r{i}"]),
        ]
        x = f"r{i}"
    return M.model(nodes, inits, [M.value_info("x", ["N", d])], [M.value_info(x, None)])


def test_one_small_layer_before_a_reset_is_a_scale_not_depth(tmp_path: Path) -> None:
    """Depth is compounding: one layer's x1/3900 right before a normalization is that layer's
    scale (IA201's business); two in a row compound and are reported."""
    assert _ia203(_audit(tmp_path, _small_then_normalized(1))) == []
    messages = _ia203(_audit(tmp_path, _small_then_normalized(2)))
    assert any("forward activations vanish" in m for m in messages), messages


def _rmsnorm(nodes: list, x: str, out: str, d: int, inits: list) -> None:
    """RMSNorm as exporters below opset 23 write it: x / sqrt(mean(x²) + eps) * gamma."""
    inits.append(M.tensor(f"{out}.g", np.ones(d, np.float32)))
    nodes += [
        _n("Mul", [x, x], f"{out}/sq"),
        _n("ReduceMean", [f"{out}/sq", "axes"], f"{out}/ms", keepdims=1),
        _n("Add", [f"{out}/ms", "eps"], f"{out}/mse"),
        _n("Sqrt", [f"{out}/mse"], f"{out}/rms"),
        _n("Div", [x, f"{out}/rms"], f"{out}/n"),
        _n("Mul", [f"{out}/n", f"{out}.g"], out),
    ]


def _rms_stack_with_wide_head(blocks: int = 4, d: int = 64, vocab: int = 4000) -> onnx.ModelProto:
    """Pre-norm residual MLP blocks with decomposed RMSNorm, a final RMSNorm and a head of
    ``vocab`` outputs drawn N(0, 1) (T5's tied lm_head): fan_out·E[w²] = 4000 at the head."""
    r = M.rng(8)
    inits = [
        M.tensor("axes", np.array([-1], np.int64)),
        M.tensor("eps", np.array(1e-6, np.float32)),
    ]
    nodes: list = []
    h = "x"
    for i in range(blocks):
        _rmsnorm(nodes, h, f"b{i}.norm", d, inits)
        for name, shape in ((f"b{i}.wi", (d, 4 * d)), (f"b{i}.wo", (4 * d, d))):
            w = (r.standard_normal(shape) / math.sqrt(shape[0])).astype(np.float32)
            inits.append(M.tensor(name, w))
        nodes += [
            _n("MatMul", [f"b{i}.norm", f"b{i}.wi"], f"b{i}/f"),
            _n("Relu", [f"b{i}/f"], f"b{i}/a"),
            _n("MatMul", [f"b{i}/a", f"b{i}.wo"], f"b{i}/o"),
            _n("Add", [h, f"b{i}/o"], f"b{i}/r"),
        ]
        h = f"b{i}/r"
    _rmsnorm(nodes, h, "final", d, inits)
    inits.append(M.tensor("head", r.standard_normal((d, vocab)).astype(np.float32)))
    nodes.append(_n("MatMul", ["final", "head"], "logits"))
    return M.model(nodes, inits, [M.value_info("x", [2, d])], [M.value_info("logits", None)])


def test_a_decomposed_rmsnorm_resets_the_gradient_too(tmp_path: Path) -> None:
    """Forward, x / sqrt(mean(x²)) is a reset; backward it must be one too, or a wide head's
    fan_out·E[w²] reads as gradients exploding through every block (T5 was reported)."""
    assert _ia203(_audit(tmp_path, _rms_stack_with_wide_head())) == []


def _cnn_maxpool() -> onnx.ModelProto:
    """MNIST-style: Conv-ReLU-MaxPool(2x2) twice, then a Linear head; PyTorch defaults."""
    h = helper
    c1 = M.torch_default((8, 1, 3, 3), 9, 1)
    c2 = M.torch_default((16, 8, 3, 3), 72, 2)
    fc = M.torch_default((10, 16 * 5 * 5), 400, 3)
    nodes = [
        h.make_node("Conv", ["x", "conv1.weight"], ["a"], pads=[0, 0, 0, 0]),
        h.make_node("Relu", ["a"], ["ra"]),
        h.make_node("MaxPool", ["ra"], ["pa"], kernel_shape=[2, 2], strides=[2, 2]),
        h.make_node("Conv", ["pa", "conv2.weight"], ["b"]),
        h.make_node("Relu", ["b"], ["rb"]),
        h.make_node("MaxPool", ["rb"], ["pb"], kernel_shape=[2, 2], strides=[2, 2]),
        h.make_node("Flatten", ["pb"], ["f"]),
        h.make_node("Gemm", ["f", "fc.weight"], ["y"], transB=1),
    ]
    inits = [M.tensor("conv1.weight", c1), M.tensor("conv2.weight", c2), M.tensor("fc.weight", fc)]
    return M.model(nodes, inits, [M.value_info("x", [4, 1, 26, 26])], [M.value_info("y", None)])


def test_max_pooling_after_relu_raises_the_second_moment(tmp_path: Path) -> None:
    """The largest of a 2x2 window of ReLU outputs has about twice their second moment: a plain
    MNIST CNN was predicted at 1e-2.3 where the forward pass measures 1e-1.3 before pooling
    was modelled; each layer now agrees with the measurement."""
    result = audit_file(M.save(_cnn_maxpool(), tmp_path / "m.onnx"), AuditOptions(propagate={}))
    assert result.notes == ()
    for d in result.depth:
        assert d.measured_log10_output is not None and d.log10_output is not None
        assert abs(d.measured_log10_output - d.log10_output) < 0.3, d


def _masked_mean_pool() -> onnx.ModelProto:
    """Keras Embedding(mask_zero) -> GlobalAveragePooling1D -> Dense, as tf2onnx writes it:
    the mask comes from the token ids (Equal, Not, Cast) and the average is a ReduceSum of
    the masked embeddings over the sequence, divided by the mask's sum."""
    h, r = helper, M.rng(4)
    emb = r.uniform(-0.05, 0.05, (100, 16)).astype(np.float32)
    dense = r.uniform(-1, 1, (16, 4)).astype(np.float32) * math.sqrt(6 / 20)
    nodes = [
        h.make_node("Gather", ["emb", "ids"], ["e"]),
        h.make_node("Equal", ["ids", "zero"], ["pad"]),
        h.make_node("Not", ["pad"], ["keep"]),
        h.make_node("Cast", ["keep"], ["m"], to=TensorProto.FLOAT),
        h.make_node("Unsqueeze", ["m", "axis2"], ["m3"]),
        h.make_node("Mul", ["e", "m3"], ["em"]),
        h.make_node("ReduceSum", ["em", "axis1"], ["s"], keepdims=0),
        h.make_node("ReduceSum", ["m3", "axis1"], ["n"], keepdims=0),
        h.make_node("Div", ["s", "n"], ["avg"]),
        h.make_node("MatMul", ["avg", "dense"], ["y"]),
    ]
    inits = [
        M.tensor("emb", emb),
        M.tensor("dense", dense),
        M.tensor("zero", np.array(0, np.int64)),
        M.tensor("axis1", np.array([1], np.int64)),
        M.tensor("axis2", np.array([2], np.int64)),
    ]
    ids = M.value_info("ids", [4, 12], TensorProto.INT64)
    return M.model(nodes, inits, [ids], [M.value_info("y", None)])


def test_a_masked_average_of_embeddings_is_not_a_vanishing_signal(tmp_path: Path) -> None:
    """Predicted at 1e-36 (a mean of a zero-mean signal read as zero, the mask's booleans as
    a signal) where the model measures about 1e-4: now within a decade, and no IA203."""
    result = audit_file(
        M.save(_masked_mean_pool(), tmp_path / "m.onnx"), AuditOptions(propagate={})
    )
    (dense,) = result.depth
    assert dense.measured_log10_output is not None and dense.log10_output is not None
    assert abs(dense.measured_log10_output - dense.log10_output) < 1.0, dense
    assert [f.rule for f in result.findings if f.rule == "IA203"] == []


def test_the_gradient_finding_blames_the_layer_that_scales_it(tmp_path: Path) -> None:
    """6 He-initialized ReLU layers with only fc3 x100: both directions name fc3, not its
    neighbour (the backward step into fc2's output is fc3's weight)."""
    r = M.rng(12)
    ws = [r.normal(0, math.sqrt(2 / WIDTH), (WIDTH, WIDTH)).astype(np.float32) for _ in range(6)]
    ws[2] *= 100
    msgs = _ia203(_audit(tmp_path, M.mlp(ws, biases=[np.zeros(WIDTH, np.float32)] * 6)))
    assert len(msgs) == 2, msgs
    for msg in msgs:
        top = msg.split("largest contributions: ")[1]
        assert top.startswith("fc3.weight"), msg


class _Net:
    """A test graph's nodes and initializers: HF's N(0, 0.02) weights and unit LayerNorms."""

    def __init__(self, seed: int, d: int) -> None:
        self.r, self.d = M.rng(seed), d
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []

    def w(self, name: str, shape: tuple[int, int]) -> str:
        self.inits.append(M.tensor(name, self.r.normal(0, 0.02, shape).astype(np.float32)))
        return name

    def ln(self, x: str, name: str, **attrs: float) -> str:
        self.inits.append(M.tensor(f"{name}.w", np.ones(self.d, np.float32)))
        self.inits.append(M.tensor(f"{name}.b", np.zeros(self.d, np.float32)))
        ins = [x, f"{name}.w", f"{name}.b"]
        self.nodes.append(_n("LayerNormalization", ins, f"{name}/out", **attrs))
        return f"{name}/out"


def _block_variant(kind: str, layers: int = 4, d: int = 16) -> onnx.ModelProto:
    """Narrow transformer-like blocks with HF's N(0, 0.02) projections (each branch alone
    would shrink ~1e-4: d * 0.02² per layer), three real layouts:

    * ``parallel``: GPT-J/CodeGen, attention and MLP run from one LayerNorm and both are
      added to the stream: h + attn(ln(h)) + mlp(ln(h));
    * ``post_branch_norm``: Swin-v2/OLMo-2, the branch output is normalized before the Add:
      h + ln(mlp(h));
    * ``classifier``: pre-LN blocks, a final LayerNorm, then transformers' sequence
      classification head, a pooler (tanh) and a classifier, both N(0, 0.02);
    * ``front_end``: Whisper's encoder, two N(0, 0.02) layers with GELU (its convs) into
      pre-LN blocks and a final LayerNorm: the small front-end output is read only through
      normalizations;
    * ``qk_norm_rotary``: Gemma-3's block, pre- and post-branch norms, q and k normalized
      then rotated (q·cos + rotate_half(q)·sin: a sum of two functions of one normalized
      value, not a residual Add).
    """
    net = _Net(11, d)
    r, inits, nodes, w, ln = net.r, net.inits, net.nodes, net.w, net.ln
    inits.append(M.tensor("wte", r.normal(0, 0.02, (64, d)).astype(np.float32)))
    nodes.append(_n("Gather", ["wte", "ids"], "h0"))

    def mlp(x: str, p: str) -> str:
        nodes.extend(
            [
                _n("MatMul", [x, w(f"{p}.fc", (d, 4 * d))], f"{p}/f"),
                _n("Gelu", [f"{p}/f"], f"{p}/g"),
                _n("MatMul", [f"{p}/g", w(f"{p}.proj", (4 * d, d))], f"{p}/pj"),
            ]
        )
        return f"{p}/pj"

    def attn(x: str, p: str) -> str:
        nodes.extend(
            [
                _n("MatMul", [x, w(f"{p}.v", (d, d))], f"{p}/v"),
                _n("MatMul", [f"{p}/v", w(f"{p}.o", (d, d))], f"{p}/o"),
            ]
        )
        return f"{p}/o"

    def rotary(x: str, p: str) -> str:
        """x·cos + rotate_half(x)·sin, cos and sin constant tables (HF's apply_rotary_pos_emb)."""
        half = d // 2
        for name, v in (
            ("cos", np.cos(np.arange(8)[:, None] * 0.1 * np.arange(d)[None, :])),
            ("sin", np.sin(np.arange(8)[:, None] * 0.1 * np.arange(d)[None, :])),
            ("lo", np.array([0])),
            ("mid", np.array([half])),
            ("hi", np.array([d])),
            ("ax", np.array([-1])),
            ("scaling", np.array(d**-0.5)),
        ):
            if not any(t.name == name for t in inits):
                dtype = np.float32 if name in ("cos", "sin", "scaling") else np.int64
                inits.append(M.tensor(name, v.astype(dtype)))
        nodes.extend(
            [
                _n("Slice", [x, "lo", "mid", "ax"], f"{p}/x1"),
                _n("Slice", [x, "mid", "hi", "ax"], f"{p}/x2"),
                _n("Neg", [f"{p}/x2"], f"{p}/nx2"),
                _n("Concat", [f"{p}/nx2", f"{p}/x1"], f"{p}/rot", axis=-1),
                _n("Mul", [x, "cos"], f"{p}/xc"),
                _n("Mul", [f"{p}/rot", "sin"], f"{p}/rs"),
                _n("Add", [f"{p}/xc", f"{p}/rs"], f"{p}/out"),
            ]
        )
        return f"{p}/out"

    def qk_attn(x: str, p: str) -> str:
        """Gemma-3/OLMo-2 attention: q and k normalized per head, then rotated."""
        q = rotary(ln(_mm(x, w(f"{p}.q", (d, d)), f"{p}/q"), f"{p}.q_norm"), f"{p}/qr")
        k = rotary(ln(_mm(x, w(f"{p}.k", (d, d)), f"{p}/k"), f"{p}.k_norm"), f"{p}/kr")
        nodes.extend(
            [
                _n("Transpose", [k], f"{p}/kt", perm=[1, 0]),
                _n("MatMul", [q, f"{p}/kt"], f"{p}/qk"),
                _n("Mul", [f"{p}/qk", "scaling"], f"{p}/scores"),
                _n("Softmax", [f"{p}/scores"], f"{p}/probs", axis=-1),
                _n("MatMul", [f"{p}/probs", _mm(x, w(f"{p}.v", (d, d)), f"{p}/v")], f"{p}/ctx"),
            ]
        )
        return _mm(f"{p}/ctx", w(f"{p}.o", (d, d)), f"{p}/o")

    def _mm(x: str, weight: str, out: str) -> str:
        nodes.append(_n("MatMul", [x, weight], out))
        return out

    h = "h0"
    if kind == "front_end":
        # Whisper's conv fans: 3 taps x 80 mel bins, then 3 x d_model (here 128 each).
        nodes[0] = _n("MatMul", ["feats", w("conv1", (8 * d, 8 * d))], "c1")
        nodes += [
            _n("Gelu", ["c1"], "g1"),
            _n("MatMul", ["g1", w("conv2", (8 * d, d))], "c2"),
            _n("Gelu", ["c2"], "h0"),
        ]
    for i in range(layers):
        p = f"h.{i}"
        if kind == "parallel":
            a = ln(h, f"{p}.ln")
            nodes.append(_n("Add", [attn(a, f"{p}.attn"), mlp(a, f"{p}.mlp")], f"{p}/branches"))
            nodes.append(_n("Add", [h, f"{p}/branches"], f"{p}/out"))
        elif kind == "post_branch_norm":
            nodes.append(_n("Add", [h, ln(attn(h, f"{p}.attn"), f"{p}.ln1")], f"{p}/r1"))
            nodes.append(
                _n("Add", [f"{p}/r1", ln(mlp(f"{p}/r1", f"{p}.mlp"), f"{p}.ln2")], f"{p}/out")
            )
        elif kind == "qk_norm_rotary":
            a = ln(h, f"{p}.ln1")
            nodes.append(_n("Add", [h, ln(qk_attn(a, f"{p}.attn"), f"{p}.post1")], f"{p}/r1"))
            m = mlp(ln(f"{p}/r1", f"{p}.ln2"), f"{p}.mlp")
            nodes.append(_n("Add", [f"{p}/r1", ln(m, f"{p}.post2")], f"{p}/out"))
        else:
            nodes.append(_n("Add", [h, mlp(ln(h, f"{p}.ln"), f"{p}.mlp")], f"{p}/out"))
        h = f"{p}/out"
    if kind == "classifier":
        final = ln(h, "ln_f")
        nodes.extend(
            [
                _n("Gemm", [final, w("pooler.dense.weight", (d, d))], "pooled", transB=1),
                _n("Tanh", ["pooled"], "pt"),
                _n("Gemm", ["pt", w("classifier.weight", (2, d))], "logits", transB=1),
            ]
        )
        h = "logits"
    if kind == "front_end":
        h = ln(h, "ln_f")
        feats = M.value_info("feats", [1, 8, 8 * d])
        return M.model(nodes, inits, [feats], [M.value_info(h, None)])
    ids = M.value_info("ids", [1, 8], onnx.TensorProto.INT64)
    return M.model(nodes, inits, [ids], [M.value_info(h, None)])


@pytest.mark.parametrize(
    "kind", ["parallel", "post_branch_norm", "classifier", "qk_norm_rotary", "front_end"]
)
def test_real_block_layouts_are_not_vanishing_stacks(tmp_path: Path, kind: str) -> None:
    """Their branches are small by HF's design; the residual stream they write into is what
    runs through depth, and a classification head after the trunk's last norm is a scale,
    not depth. Each was an IA203 false alarm."""
    assert _ia203(_audit(tmp_path, _block_variant(kind))) == []


def test_a_signal_past_float_range_is_reported_without_numpy_warnings(tmp_path: Path) -> None:
    """N(0, 1) weights through 200 layers overflow float64; the mean a pooling takes of the
    infinite signal must not print numpy's RuntimeWarning on the user's terminal (it did, for
    the ReduceMean after timm's swiftformer and HF's yoso)."""
    import subprocess
    import sys

    flags = ("--select", "IA203", "--fail-on", "warning")
    m = _mlp(lambda n: 1.0, act="", depth=200)
    out = m.graph.output[0].name
    m.graph.node.append(helper.make_node("ReduceMean", [out], ["pooled"], axes=[1]))
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info("pooled", TensorProto.FLOAT, None))
    path = M.save(m, tmp_path / "m.onnx")
    run = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", "initaudit", str(path), *flags],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.stderr == ""
    assert run.returncode == 1
    assert "forward activations explode" in run.stdout


def _insert_after(m: onnx.ModelProto, value: str, op: str, *consts: np.ndarray) -> None:
    """Put ``op`` (with constant operands) on ``value``, rewiring its readers to the result."""
    out = f"{value}_{op.lower()}"
    names = []
    for k, c in enumerate(consts):
        names.append(f"{out}_c{k}")
        m.graph.initializer.append(M.tensor(names[-1], c))
    for node in m.graph.node:
        node.input[:] = [out if i == value else i for i in node.input]
    at = next(k for k, n in enumerate(m.graph.node) if value in n.output)
    m.graph.node.insert(at + 1, helper.make_node(op, [value, *names], [out]))


def test_relu6_is_modelled_so_a_vanishing_stack_through_it_is_reported(tmp_path: Path) -> None:
    """Clip with constant bounds (ReLU6, a decomposed HardSwish's clip) is evaluated exactly,
    not assumed: a 30-layer ReLU6 stack at N(0, 0.01) vanishes, and no entry rests on a guess."""
    m = _mlp(lambda n: 0.01)
    for node in m.graph.node:
        if node.op_type == "Relu":
            node.op_type = "Clip"
            lo, hi = f"{node.name}_lo", f"{node.name}_hi"
            m.graph.initializer.extend(
                [M.tensor(lo, np.array(0.0, np.float32)), M.tensor(hi, np.array(6.0, np.float32))]
            )
            node.input.extend([lo, hi])
    result = _audit(tmp_path, m)
    assert any("forward activations vanish" in msg for msg in _ia203(result))
    assert all(d.assumed == () for d in result.depth)
    assert result.depth_assumptions == ()


def test_a_level_resting_on_an_unmodelled_op_is_not_judged(tmp_path: Path) -> None:
    """A CumSum (not modelled: it sums along positions) between the layers makes the forward
    prediction a guess: IA203 says nothing of the forward signal, and each JSON depth entry
    past it names the op; a normalization after it starts a modelled level again. The
    gradient from the outputs back to the last layer's input does not pass it: that part of
    the backward prediction is confident, and this N(0, 0.01) stack's gradient vanishes."""
    m = _mlp(lambda n: 0.01)
    _insert_after(m, "/fc1/Gemm_output_0", "CumSum", np.array(0, np.int64))
    result = _audit(tmp_path, m)
    assert [msg for msg in _ia203(result) if msg.startswith("forward")] == []
    assert [msg[:25] for msg in _ia203(result)] == ["backward gradients vanish"]
    assert result.depth[0].assumed == ()
    assert all(d.assumed == ("CumSum",) for d in result.depth[1:])
    # A ReLU's derivative is read off the forward signal, so past the last layer's own
    # ReLU the gradient rests on the CumSum too.
    assert result.depth[-1].assumed_backward == result.depth[-2].assumed_backward == ()
    assert all(d.assumed_backward == ("CumSum",) for d in result.depth[:-2])
    assert result.depth_assumptions == ("CumSum",)

    m = _mlp(lambda n: 0.01)
    _insert_after(m, "/fc1/Gemm_output_0", "CumSum", np.array(0, np.int64))
    ones, zeros = np.ones(WIDTH, np.float32), np.zeros(WIDTH, np.float32)
    _insert_after(m, "/fc1/Gemm_output_0_cumsum", "LayerNormalization", ones, zeros)
    result = _audit(tmp_path, m)
    assert all(d.assumed == () for d in result.depth[1:])
    assert any("forward activations vanish" in msg for msg in _ia203(result))


def _unit_vector_attention(blocks: int = 4, d: int = 64) -> onnx.ModelProto:
    """SwiftFormer's additive attention (timm swiftformer.py:180-184): F.normalize(q), which
    the exporter writes as q / Expand(Clip(ReduceL2(q), eps)), then a learned N(0, 1) vector
    w_g (torch.randn): the right scale for a unit vector, whose entries are 1/√d."""
    r = M.rng(3)
    inits = [M.tensor("eps", np.array(1e-12, np.float32)), M.tensor("axes", np.array([-1]))]
    nodes = []
    h = "x"
    for i in range(blocks):
        p = f"b{i}"
        inits += [
            M.tensor(f"{p}.q", r.normal(0, d**-0.5, (d, d)).astype(np.float32)),
            M.tensor(f"{p}.w_g", r.normal(0, 1.0, (d, d)).astype(np.float32)),
        ]
        nodes += [
            _n("MatMul", [h, f"{p}.q"], f"{p}/q"),
            _n("ReduceL2", [f"{p}/q", "axes"], f"{p}/norm", keepdims=1),
            _n("Clip", [f"{p}/norm", "eps"], f"{p}/clip"),
            _n("Div", [f"{p}/q", f"{p}/clip"], f"{p}/unit"),
            _n("MatMul", [f"{p}/unit", f"{p}.w_g"], f"{p}/out"),
        ]
        h = f"{p}/out"
    return M.model(nodes, inits, [M.value_info("x", [8, d])], [M.value_info(h, None)])


def test_a_unit_vector_times_a_unit_normal_vector_is_not_an_explosion(tmp_path: Path) -> None:
    """The L2 norm grows with the number of values it sums, which the graph does not say: it
    was taken as the mean of a zero-mean signal, ≈0, and q / ‖q‖ predicted 1e+22 (timm's
    swiftformer: 'forward activations explode ... 3.4e+79×'). Now the norm is a root mean
    square, the level is marked as assumed, and IA203 stays quiet."""
    result = _audit(tmp_path, _unit_vector_attention())
    assert _ia203(result) == []
    assert all(abs(d.log10_output) < 3 for d in result.depth)
    assert "ReduceL2" in result.depth_assumptions


def _zero_branch_with_gate(d: int = 32) -> onnx.ModelProto:
    """A residual block whose last layer is zero-initialized (skipinit, timm NFNet's
    zero-init last conv) followed by a squeeze-excite gate computed from that zero output:
    h + z·sigmoid(fc2(relu(fc1(z)))), z = 0 at init."""
    r = M.rng(4)
    he = np.sqrt(2 / d)
    inits = [
        M.tensor("w0", r.normal(0, he, (d, d)).astype(np.float32)),
        M.tensor("w1", r.normal(0, he, (d, d)).astype(np.float32)),
        M.tensor("wz", np.zeros((d, d), np.float32)),
        M.tensor("fc1", r.normal(0, he, (d, d // 4)).astype(np.float32)),
        M.tensor("fc2", r.normal(0, he, (d // 4, d)).astype(np.float32)),
        M.tensor("head", r.normal(0, d**-0.5, (d, 10)).astype(np.float32)),
    ]
    nodes = [
        _n("MatMul", ["x", "w0"], "a0"),
        _n("Relu", ["a0"], "h0"),
        _n("MatMul", ["h0", "w1"], "a1"),
        _n("Relu", ["a1"], "h1"),
        _n("MatMul", ["h1", "wz"], "z"),
        _n("MatMul", ["z", "fc1"], "s1"),
        _n("Relu", ["s1"], "s2"),
        _n("MatMul", ["s2", "fc2"], "s3"),
        _n("Sigmoid", ["s3"], "gate"),
        _n("Mul", ["z", "gate"], "zg"),
        _n("Add", ["h1", "zg"], "out"),
        _n("MatMul", ["out", "head"], "logits"),
    ]
    return M.model(nodes, inits, [M.value_info("x", [8, d])], [M.value_info("logits", None)])


def test_a_gate_on_a_zero_initialized_branch_is_not_a_vanishing_gradient(tmp_path: Path) -> None:
    """The gradient to the gate is exactly zero at init because the value it gates is zero
    (timm test_nfnet: 'backward gradients vanish ... 0× (nothing left)'): a zero on the way,
    the zero-init's intent, not depth."""
    result = _audit(tmp_path, _zero_branch_with_gate())
    assert _ia203(result) == []


def _pool_then_decomposed_layernorm(c: int = 16) -> onnx.ModelProto:
    """timm's ConvNeXt head as the dynamo exporter writes it: x.mean((2, 3)) is a ReduceMean
    over the spatial axes, then the head's LayerNorm decomposed into ReduceMean, Sub, Mul,
    ReduceMean, Add, Sqrt, Div, then the classifier."""
    r = M.rng(6)
    he = np.sqrt(2 / (c * 9))
    inits = [
        M.tensor("c1", r.normal(0, he, (c, c, 3, 3)).astype(np.float32)),
        M.tensor("c2", r.normal(0, he, (c, c, 3, 3)).astype(np.float32)),
        M.tensor("fc", r.normal(0, c**-0.5, (10, c)).astype(np.float32)),
        M.tensor("hw", np.array([2, 3])),
        M.tensor("last", np.array([-1])),
        M.tensor("eps", np.array(1e-6, np.float32)),
    ]
    nodes = [
        _n("Conv", ["x", "c1"], "a1", pads=[1, 1, 1, 1]),
        _n("Relu", ["a1"], "h1"),
        _n("Conv", ["h1", "c2"], "a2", pads=[1, 1, 1, 1]),
        _n("Relu", ["a2"], "h2"),
        _n("ReduceMean", ["h2", "hw"], "pooled", keepdims=0),
        _n("ReduceMean", ["pooled", "last"], "mu"),
        _n("Sub", ["pooled", "mu"], "d"),
        _n("Mul", ["d", "d"], "d2"),
        _n("ReduceMean", ["d2", "last"], "var"),
        _n("Add", ["var", "eps"], "ve"),
        _n("Sqrt", ["ve"], "sd"),
        _n("Div", ["d", "sd"], "normed"),
        _n("Gemm", ["normed", "fc"], "logits", transB=1),
    ]
    x = M.value_info("x", [2, c, 8, 8])
    return M.model(nodes, inits, [x], [M.value_info("logits", None)])


def test_a_pooled_value_normalized_by_the_head_keeps_its_scale(tmp_path: Path) -> None:
    """The pool's mean was read as a statistic of its input, so the head's LayerNorm took
    mean(x) - mean(mean(x)) = 0 and the prediction collapsed to zero at the classifier
    (timm convnext_zepto_rms: predicted 0, measured 1e-0.97). A statistic used as a value is
    the pooled signal it stands for: the head sees a normalized input."""
    result = _audit(tmp_path, _pool_then_decomposed_layernorm())
    head = result.depth[-1]
    assert head.tensor == "fc"
    assert head.log10_output is not None and abs(head.log10_output) < 0.3
    assert _ia203(result) == []


def _class_attention_stream(blocks: int = 2, d: int = 64) -> onnx.ModelProto:
    """CaiT's class-attention stage (timm cait.py): the stream starts from the stored
    cls_token (trunc_normal std 0.02) expanded to the batch, each block adds a LayerScale
    (1e-5) branch read from LayerNorm(concat(cls, patches)), and the head reads a final
    LayerNorm."""
    net = _Net(9, d)
    nodes, w = net.nodes, net.w
    net.inits += [
        M.tensor("cls_token", net.r.normal(0, 0.02, (1, 1, d)).astype(np.float32)),
        M.tensor("shape", np.array([1, 1, d])),
    ]
    nodes.append(_n("Expand", ["cls_token", "shape"], "h0"))
    h = "h0"
    for i in range(blocks):
        p = f"b{i}"
        net.inits.append(M.tensor(f"{p}.gamma", np.full(d, 1e-5, np.float32)))
        nodes.append(_n("Concat", [h, "x"], f"{p}/cat", axis=1))
        n = net.ln(f"{p}/cat", f"{p}.ln")
        nodes += [
            _n("MatMul", [n, w(f"{p}.fc1", (d, 4 * d))], f"{p}/f"),
            _n("Gelu", [f"{p}/f"], f"{p}/g"),
            _n("MatMul", [f"{p}/g", w(f"{p}.fc2", (4 * d, d))], f"{p}/o"),
            _n("Mul", [f"{p}/o", f"{p}.gamma"], f"{p}/s"),
            _n("Add", [h, f"{p}/s"], f"{p}/h"),
        ]
        h = f"{p}/h"
    nodes.append(_n("MatMul", [net.ln(h, "ln_f"), w("head", (d, 10))], "logits"))
    x = M.value_info("x", [1, 8, d])
    return M.model(nodes, net.inits, [x], [M.value_info("logits", None)])


def test_a_stream_that_starts_from_a_stored_token_keeps_its_scale(tmp_path: Path) -> None:
    """The cls token added as a constant was counted as zero, so the class-attention stream
    held only its 1e-5 LayerScale branches: 'forward activations vanish ... 1.5e+12×' on
    every timm CaiT. A stored tensor added to the signal adds its second moment."""
    result = _audit(tmp_path, _class_attention_stream())
    assert _ia203(result) == []
    fc2 = [d for d in result.depth if d.tensor.endswith("fc2")]
    assert fc2 and all(d.log10_forward > -4 for d in fc2)


def _depthwise_separable(blocks: int = 6, c: int = 32) -> onnx.ModelProto:
    """MobileNet's depthwise-separable stack without BatchNorm, He-initialized as torch's
    kaiming_normal_(fan_in) gives each conv: depthwise [c, 1, 3, 3] (group=c, fan_in 9), then
    pointwise [c, c, 1, 1] (fan_in c), ReLU after each."""
    r = M.rng(12)
    inits, nodes, h = [], [], "x"
    for i in range(blocks):
        inits += [
            M.tensor(f"dw{i}", r.normal(0, math.sqrt(2 / 9), (c, 1, 3, 3)).astype(np.float32)),
            M.tensor(f"pw{i}", r.normal(0, math.sqrt(2 / c), (c, c, 1, 1)).astype(np.float32)),
        ]
        nodes += [
            _n("Conv", [h, f"dw{i}"], f"d{i}", group=c, pads=[1, 1, 1, 1]),
            _n("Relu", [f"d{i}"], f"dr{i}"),
            _n("Conv", [f"dr{i}", f"pw{i}"], f"p{i}"),
            _n("Relu", [f"p{i}"], f"pr{i}"),
        ]
        h = f"pr{i}"
    x = M.value_info("x", [1, c, 16, 16])
    return M.model(nodes, inits, [x], [M.value_info(h, None)])


def test_a_depthwise_conv_feeds_one_filter_per_input_channel_backward(tmp_path: Path) -> None:
    """Backward, an input value of a depthwise conv enters 9 products, not the 9·c of torch's
    fan_out convention: with it the He-initialized stack read as 'backward gradients explode'
    (timm PiT, DaViT, FastViT), while it keeps the gradient's scale."""
    result = _audit(tmp_path, _depthwise_separable())
    assert _ia203(result) == []
    assert all(abs(d.log10_backward) < 1 for d in result.depth)


@pytest.mark.parametrize(
    ("shape", "attrs", "fan"),
    [
        ((64, 32, 3, 3), {}, 64 * 9),  # a plain conv: torch's fan_out
        ((32, 1, 3, 3), {"group": 32}, 9),  # depthwise: one filter per input channel
        ((64, 1, 3, 3), {"group": 32}, 2 * 9),  # PiT's pooling conv: two filters per channel
    ],
)
def test_the_gradient_fan_of_a_convolution(shape, attrs, fan) -> None:
    from initaudit.graph.model import Node, NodeAttrs, Role, WeightSite
    from initaudit.signal.backward import backward_fan

    node = Node(
        id=0, name="c", op_type="Conv", domain="", inputs=(), outputs=(), attrs=NodeAttrs(**attrs)
    )
    site = WeightSite(
        name="w", node="c", op_type="Conv", role=Role.WEIGHT, shape=shape, dtype="float",
        fan_in=None, fan_out=shape[0] * 9, activation=None, units=None, quant=None, uses=(),
    )  # fmt: skip
    assert backward_fan(node, site) == pytest.approx(fan)


def test_a_layer_whose_weight_is_computed_in_the_graph_is_not_modelled(tmp_path: Path) -> None:
    """timm NFNet's ScaledStdConv2d standardizes its weight in the graph at every call: the
    conv reads a computed weight, not a stored one. Its one dynamic input was multiplied by
    itself (the prediction collapsed to 1e-243 on eca_nfnet_l0); now the op is assumed."""
    c, r = 16, M.rng(13)
    inits = [M.tensor("head", r.normal(0, c**-0.5, (10, c)).astype(np.float32))]
    nodes, h = [], "x"
    for i in range(6):
        w = r.normal(0, math.sqrt(2 / (9 * c)), (c, c, 3, 3)).astype(np.float32)
        inits += [M.tensor(f"w{i}", w), M.tensor(f"gain{i}", np.ones((c, 1, 1, 1), np.float32))]
        nodes += [
            _n("Mul", [f"w{i}", f"gain{i}"], f"wc{i}"),
            _n("Conv", [h, f"wc{i}"], f"c{i}", pads=[1, 1, 1, 1]),
            _n("Relu", [f"c{i}"], f"r{i}"),
        ]
        h = f"r{i}"
    nodes += [
        _n("GlobalAveragePool", [h], "pool"),
        _n("Flatten", ["pool"], "flat"),
        _n("Gemm", ["flat", "head"], "logits", transB=1),
    ]
    m = M.model(nodes, inits, [M.value_info("x", [1, c, 8, 8])], [M.value_info("logits", None)])
    result = _audit(tmp_path, m)
    assert _ia203(result) == []
    head = result.depth[-1]
    assert head.log10_output is not None and head.log10_output > -5


def _squeeze_excite_stack(blocks: int = 4, c: int = 32, broadcast: bool = False) -> onnx.ModelProto:
    """He-initialized convs, each followed by squeeze-excite (timm _efficientnet_blocks.py
    SqueezeExcite: global pool, conv_reduce, ReLU, conv_expand, sigmoid, x · gate); with
    ``broadcast`` the gate is reshaped and expanded to the signal's shape before the product,
    as timm's EcaModule does (``.view(B, -1, 1, 1)``, ``x * y.expand_as(x)``)."""
    r = M.rng(14)
    inits, nodes, h = [], [], "x"
    if broadcast:
        inits += [
            M.tensor("gate_shape", np.array([1, c, 1, 1], np.int64)),
            M.tensor("signal_shape", np.array([1, c, 8, 8], np.int64)),
        ]
    for i in range(blocks):
        for name, fan, shape in (
            (f"conv{i}", 9 * c, (c, c, 3, 3)),
            (f"se{i}.reduce", c, (c // 4, c, 1, 1)),
            (f"se{i}.expand", c // 4, (c, c // 4, 1, 1)),
        ):
            inits.append(M.tensor(name, r.normal(0, math.sqrt(2 / fan), shape).astype(np.float32)))
        nodes += [
            _n("Conv", [h, f"conv{i}"], f"c{i}", pads=[1, 1, 1, 1]),
            _n("Relu", [f"c{i}"], f"a{i}"),
            _n("GlobalAveragePool", [f"a{i}"], f"p{i}"),
            _n("Conv", [f"p{i}", f"se{i}.reduce"], f"sr{i}"),
            _n("Relu", [f"sr{i}"], f"sa{i}"),
            _n("Conv", [f"sa{i}", f"se{i}.expand"], f"se{i}"),
            _n("Sigmoid", [f"se{i}"], f"g{i}"),
        ]
        gate = f"g{i}"
        if broadcast:
            nodes += [
                _n("Reshape", [gate, "gate_shape"], f"gv{i}"),
                _n("Expand", [f"gv{i}", "signal_shape"], f"ge{i}"),
            ]
            gate = f"ge{i}"
        nodes.append(_n("Mul", [f"a{i}", gate], f"o{i}"))
        h = f"o{i}"
    return M.model(nodes, inits, [M.value_info("x", [1, c, 8, 8])], [M.value_info(h, None)])


@pytest.mark.parametrize("broadcast", [False, True], ids=["direct", "reshaped-and-expanded"])
def test_a_squeeze_excite_gate_is_a_side_branch(tmp_path: Path, broadcast: bool) -> None:
    """The gradient reaching an SE branch's convs is the gate's (small through the sigmoid),
    not the trunk's: 'backward gradients vanish ... at blocks.4.0.se.conv_reduce' on timm
    EfficientNets, LCNet, GhostNet. The trunk runs through the gated value. A gate reshaped
    and expanded before the product is still the gate ('... vanish ... at
    stages.2.blocks.1.attn.conv.weight' on timm eca_vovnet39b, whose ECA conv has one
    output channel)."""
    result = _audit(tmp_path, _squeeze_excite_stack(broadcast=broadcast))
    assert _ia203(result) == []
    se = [d for d in result.depth if d.tensor.startswith("se")]
    assert se and not any(d.judged for d in se)
    assert all(d.judged for d in result.depth if d.tensor.startswith("conv"))


def _convnext_stages(stages: int = 2, d: int = 64) -> onnx.ModelProto:
    """ConvNeXt-style stages at timm's trunc_normal(std=0.02) (convnext.py _init_weights):
    each block reads the stream through conv_dw then LayerNorm, then fc1, GELU, fc2 back into
    the stream; between stages a shortcut conv carries the stream itself (MaxxViT/CoAtNet
    MBConv shortcut.expand); a final LayerNorm before the head. 1x1 convs as MatMuls."""
    net = _Net(15, d)
    inits, nodes, h = net.inits, net.nodes, "x"
    w = net.w

    def ln(x: str, name: str) -> str:
        return net.ln(x, name, epsilon=1e-6)

    for s in range(stages):
        nodes.append(_n("MatMul", [h, w(f"s{s}.shortcut", (d, d))], f"s{s}/in"))
        h = f"s{s}/in"
        for b in range(2):
            p = f"s{s}.b{b}"
            nodes.append(_n("MatMul", [h, w(f"{p}.conv_dw", (d, d))], f"{p}/dw"))
            n = ln(f"{p}/dw", f"{p}.norm")
            nodes += [
                _n("MatMul", [n, w(f"{p}.fc1", (d, 4 * d))], f"{p}/f1"),
                _n("Gelu", [f"{p}/f1"], f"{p}/g"),
                _n("MatMul", [f"{p}/g", w(f"{p}.fc2", (4 * d, d))], f"{p}/f2"),
                _n("Add", [h, f"{p}/f2"], f"{p}/out"),
            ]
            h = f"{p}/out"
    nodes.append(_n("MatMul", [ln(h, "final"), w("head", (d, 10))], "logits"))
    return M.model(nodes, inits, [M.value_info("x", [4, d])], [M.value_info("logits", None)])


def test_a_stream_read_through_a_linear_layer_and_a_norm_is_not_vanishing(tmp_path: Path) -> None:
    """norm(conv_dw(a·x)) = norm(conv_dw(x)), and a shortcut conv carries the stream on to
    the next stage's blocks: the stream's small scale is read only through normalizations
    (timm CoaT, CoAtNeXt, PoolFormer, RDNet: false 'forward activations vanish'). The
    gradient, which does pass the shortcut convs, is judged as before."""
    messages = _ia203(_audit(tmp_path, _convnext_stages()))
    assert not any(m.startswith("forward") for m in messages), messages


def test_a_residual_network_without_normalizations_has_a_stream(tmp_path: Path) -> None:
    """x + f(x) with no normalization anywhere (HF MobileBERT's NoNorm is an elementwise
    affine): every value shares the input's reset, so the residual Add was read as two
    branches of one block, the network as a plain stack, and each N(0, 0.02) layer as
    compounding ('IA201 ... no normalization and no residual connection'). The input the
    branch was computed from is the stream."""
    net, d = _Net(16, 64), 64
    h = "x"
    for i in range(4):
        p = f"b{i}"
        net.nodes += [
            _n("MatMul", [h, net.w(f"{p}.fc1", (d, 4 * d))], f"{p}/f1"),
            _n("Gelu", [f"{p}/f1"], f"{p}/g"),
            _n("MatMul", [f"{p}/g", net.w(f"{p}.fc2", (4 * d, d))], f"{p}/f2"),
            _n("Add", [h, f"{p}/f2"], f"{p}/out"),
        ]
        h = f"{p}/out"
    net.nodes.append(_n("MatMul", [h, net.w("head", (d, 10))], "logits"))
    x = M.value_info("x", [4, d])
    m = M.model(net.nodes, net.inits, [x], [M.value_info("logits", None)])
    result = audit_file(M.save(m, tmp_path / "m.onnx"))
    assert [f.rule for f in result.findings if f.severity.label != "info"] == []
    assert [d.tensor for d in result.depth if d.judged] == [
        "b0.fc2",
        "b1.fc2",
        "b2.fc2",
        "b3.fc2",
        "head",
    ]


def _global_query_attention(blocks: int = 3, d: int = 32) -> onnx.ModelProto:
    """GCViT's shape (timm gcvit.py): a side stack with its own residuals (the global query
    generator's MBConvs) computes the query that every attention block of the main stream
    uses; keys and values come from the stream."""
    net = _Net(17, d)
    nodes, w, ln = net.nodes, net.w, net.ln
    g = "x"
    for i in range(3):  # the generator: x + fc2(gelu(fc1(x))), no norm, HF-small weights
        p = f"gen{i}"
        nodes += [
            _n("MatMul", [g, w(f"{p}.fc1", (d, d))], f"{p}/f1"),
            _n("Gelu", [f"{p}/f1"], f"{p}/a"),
            _n("MatMul", [f"{p}/a", w(f"{p}.fc2", (d, d))], f"{p}/f2"),
            _n("Add", [g, f"{p}/f2"], f"{p}/out"),
        ]
        g = f"{p}/out"
    h = "x"
    for i in range(blocks):
        p = f"blk{i}"
        n = ln(h, f"{p}.ln")
        nodes += [
            _n("MatMul", [g, w(f"{p}.q", (d, d))], f"{p}/q"),
            _n("MatMul", [n, w(f"{p}.k", (d, d))], f"{p}/k"),
            _n("MatMul", [n, w(f"{p}.v", (d, d))], f"{p}/v"),
            _n("Transpose", [f"{p}/k"], f"{p}/kt", perm=[1, 0]),
            _n("MatMul", [f"{p}/q", f"{p}/kt"], f"{p}/scores"),
            _n("Softmax", [f"{p}/scores"], f"{p}/probs", axis=-1),
            _n("MatMul", [f"{p}/probs", f"{p}/v"], f"{p}/ctx"),
            _n("MatMul", [f"{p}/ctx", w(f"{p}.proj", (d, d))], f"{p}/o"),
            _n("Add", [h, f"{p}/o"], f"{p}/out"),
        ]
        h = f"{p}/out"
    nodes.append(_n("MatMul", [ln(h, "final"), w("head", (d, 10))], "logits"))
    x = M.value_info("x", [8, d])
    return M.model(nodes, net.inits, [x], [M.value_info("logits", None)])


def test_a_residual_stack_that_only_makes_queries_is_not_the_trunk(tmp_path: Path) -> None:
    """The generator's residual stream reaches the output only as attention queries: its
    gradient is the query's, small by design, not the network's (timm GCViT: 'backward
    gradients vanish ... at stages.2.global_block.blocks.conv1', measured in torch: the
    gradient's total stays 6.9 to 8.9 from the last stage to the first)."""
    result = _audit(tmp_path, _global_query_attention())
    assert not any(d.judged for d in result.depth if d.tensor.startswith("gen"))
    assert all(d.judged for d in result.depth if d.tensor.endswith("proj"))
    assert _ia203(result) == []


def _bn(nodes: list, inits: list, x: str, name: str, c: int, gamma: float = 1.0) -> str:
    """A fresh inference BatchNorm (running mean 0, var 1), as an eval-mode export has it."""
    for suffix, v in (("weight", gamma), ("bias", 0.0), ("mean", 0.0), ("var", 1.0)):
        inits.append(M.tensor(f"{name}.{suffix}", np.full(c, v, np.float32)))
    ins = [x, *(f"{name}.{s}" for s in ("weight", "bias", "mean", "var"))]
    nodes.append(_n("BatchNormalization", ins, f"{name}/out"))
    return f"{name}/out"


def _xception(
    blocks: int = 3, c: int = 768, exit_norm: bool = True, folded: bool = False
) -> onnx.ModelProto:
    """timm legacy_xception's middle flow: x + [ReLU, SeparableConv2d, BN] x 2, where
    SeparableConv2d is a 3x3 depthwise conv then a 1x1 pointwise conv with no norm between,
    both kaiming_normal_(mode='fan_out') (xception.py); torch's fan_out of the depthwise
    weight (c, 1, 3, 3) is c·9, so that conv alone keeps 2/c of the second moment; then the
    exit flow, the pool and the fc. At xception's widths (728 to 2048) that is 1/400 and
    less, so the test is that wide. Without ``exit_norm`` the last separable conv has no
    BatchNorm of its own (timm xception41p's last block, a pre-activation XceptionP: the
    norm of each separable conv comes before it). With ``folded`` every BatchNorm is folded
    into its pointwise conv, as torch's legacy exporter does (the weight named
    onnx::Conv_N), so each layer's output is the normalized value."""
    r = M.rng(12)
    nodes: list = []
    inits: list = []

    def separable(x: str, p: str, norm: bool = True) -> str:
        dw = r.normal(0, math.sqrt(2 / (c * 9)), (c, 1, 3, 3)).astype(np.float32)
        pw = r.normal(0, math.sqrt(2 / c), (c, c, 1, 1)).astype(np.float32)
        pw_name = f"onnx::Conv_{len(inits)}" if folded and norm else f"{p}.pointwise.weight"
        inits.extend([M.tensor(f"{p}.conv1.weight", dw), M.tensor(pw_name, pw)])
        nodes.extend(
            [
                _n("Conv", [x, f"{p}.conv1.weight"], f"{p}/dw", group=c, pads=[1] * 4),
                _n("Conv", [f"{p}/dw", pw_name], f"{p}/pw"),
            ]
        )
        if not norm or folded:
            return f"{p}/pw"
        return _bn(nodes, inits, f"{p}/pw", f"{p}.bn", c)

    x = "x"
    for b in range(blocks):
        h = x
        for k in (1, 2):
            nodes.append(_n("Relu", [h], f"block{b}.rep{k}/r"))
            h = separable(f"block{b}.rep{k}/r", f"block{b}.rep{k}")
        nodes.append(_n("Add", [h, x], f"block{b}/out"))
        x = f"block{b}/out"
    # The exit flow: conv3 and conv4 (SeparableConv2d, BN, ReLU), a global pool, the fc.
    for p in ("conv3", "conv4"):
        nodes.append(_n("Relu", [separable(x, p, exit_norm or p == "conv3")], f"{p}/r"))
        x = f"{p}/r"
    inits.append(M.tensor("fc.weight", M.torch_default((10, c), c, 4)))
    nodes += [
        _n("GlobalAveragePool", [x], "pool"),
        _n("Flatten", ["pool"], "flat"),
        _n("Gemm", ["flat", "fc.weight"], "logits", transB=1),
    ]
    return M.model(nodes, inits, [M.value_info("x", [1, c, 4, 4])], [M.value_info("logits", None)])


def test_a_depthwise_conv_under_a_batchnorm_is_not_a_vanishing_gradient(tmp_path: Path) -> None:
    """The depthwise conv's x(2/c) is undone by the BatchNorm after the pointwise conv (the
    gradient at its input is divided by the variance it was given): 'backward gradients
    vanish ... largest contributions: conv4.pointwise.weight' on timm legacy_xception, where
    torch measures the total at the middle flow's blocks 0.27 to 42 from last to first."""
    result = _audit(tmp_path, _xception())
    assert _ia203(result) == []
    stream = [d for d in result.depth if d.judged]
    assert len(stream) >= 4
    assert all(abs(d.log10_backward) < 1 for d in stream), [d.log10_backward for d in stream]


def test_the_gradient_inside_the_last_segment_is_not_the_streams_reference(
    tmp_path: Path,
) -> None:
    """The trunk's last layer off the stream (conv3, its BatchNorm, then an unnormalized
    separable conv and the fc) reads the gradient inside a normalized segment, before the
    1/σ² its BatchNorm undoes; the stream reads it where segments begin and end whole.
    Taking the first as the reference for the second made one 100x-500x step at the
    trunk's end where torch measures none ('backward gradients explode' on timm
    xception41p, hgnet_tiny). The backward direction compares the stream
    with the stream."""
    result = _audit(tmp_path, _xception(exit_norm=False, folded=True))
    assert _ia203(result) == []
    stream = [d for d in result.depth if d.judged]
    assert len(stream) >= 4
    # conv3, the trunk's last layer: judged forward, not backward (JSON judged_backward).
    assert stream[-1].tensor.startswith("onnx::Conv_") and not stream[-1].judged_backward
    assert all(d.judged_backward for d in stream[:-1])
    assert all(abs(d.log10_backward) < 1 for d in stream[:-1]), [d.log10_backward for d in stream]


def _layer_scaled(blocks: int = 8, d: int = 32, dedup: bool = True) -> onnx.ModelProto:
    """Pre-LN MLP blocks h + gamma·fc2(relu(fc1(ln(h)))) with He fc1/fc2 and timm's layer
    scale gamma = 1e-6, then an unnormalized readout. As torch's legacy exporter writes it,
    equal initializers are deduplicated: every block's gamma is Identity(block 0's)."""
    r = M.rng(13)
    net = _Net(13, d)
    nodes, inits = net.nodes, net.inits
    inits.append(M.tensor("block0.gamma", np.full(d, 1e-6, np.float32)))
    h = "x"
    for b in range(blocks):
        g = "block0.gamma"
        if b and dedup:
            g = f"block{b}.gamma"
            nodes.append(_n("Identity", ["block0.gamma"], g))
        elif b:
            g = f"block{b}.gamma"
            inits.append(M.tensor(g, np.full(d, 1e-6, np.float32)))
        he = math.sqrt(2 / d)
        inits += [
            M.tensor(f"block{b}.fc1", r.normal(0, he, (d, d)).astype(np.float32)),
            M.tensor(f"block{b}.fc2", r.normal(0, he, (d, d)).astype(np.float32)),
        ]
        nodes += [
            _n("MatMul", [net.ln(h, f"block{b}.ln"), f"block{b}.fc1"], f"block{b}/f1"),
            _n("Relu", [f"block{b}/f1"], f"block{b}/a"),
            _n("MatMul", [f"block{b}/a", f"block{b}.fc2"], f"block{b}/f2"),
            _n("Mul", [f"block{b}/f2", g], f"block{b}/ls"),
            _n("Add", [h, f"block{b}/ls"], f"block{b}/out"),
        ]
        h = f"block{b}/out"
    inits.append(M.tensor("head", r.normal(0, math.sqrt(1 / d), (d, d)).astype(np.float32)))
    nodes.append(_n("MatMul", [h, "head"], "y"))
    return M.model(nodes, inits, [M.value_info("x", [4, d])], [M.value_info("y", None)])


def test_a_layer_scale_the_legacy_exporter_deduplicated_still_scales(tmp_path: Path) -> None:
    """torch.onnx's legacy exporter keeps one of several equal initializers and feeds the
    rest through Identity: timm MaxxViT's branches were read at gamma = 1 (1e12x their
    second moment), so its stream was predicted 1.5 to 4 decades above what onnxruntime
    computes. The readout reads the stream: predicted as measured, either way it is written."""
    for dedup in (False, True):
        path = M.save(_layer_scaled(dedup=dedup), tmp_path / f"m{dedup}.onnx")
        result = audit_file(path, AuditOptions(propagate={}))
        head = next(d for d in result.depth if d.tensor == "head")
        assert head.measured_log10_output is not None and head.log10_output is not None
        assert abs(head.measured_log10_output - head.log10_output) < AGREE, dedup


def _with_attention_at(m: onnx.ModelProto, value: str) -> None:
    """softmax(v·vᵀ)·v on ``value`` (a weightless self-attention over the batch rows)."""
    a = f"{value}_attn"
    for node in m.graph.node:
        node.input[:] = [a if i == value else i for i in node.input]
    at = next(k for k, n in enumerate(m.graph.node) if value in n.output) + 1
    for k, node in enumerate(
        [
            _n("Transpose", [value], f"{a}/t", perm=[1, 0]),
            _n("MatMul", [value, f"{a}/t"], f"{a}/s"),
            _n("Softmax", [f"{a}/s"], f"{a}/p", axis=-1),
            _n("MatMul", [f"{a}/p", value], a),
        ]
    ):
        m.graph.node.insert(at + k, node)


def test_a_gradient_through_attention_scores_is_not_judged(tmp_path: Path) -> None:
    """The gradient through a softmax (a small share reaches the logits at near-uniform
    attention) and through a product of two signals (q·kᵀ, probs·v: it scales with the other
    operand and the sequence) is not modelled: the levels before them name the ops in
    ``assumed_backward`` and IA203 judges only the gradient after them. timm's EfficientViT,
    MViTv2 and HF PVT drew 'backward gradients vanish' where torch measures them growing.
    Forward, attention is modelled (a convex mix of v), and the N(0, 0.01) stack vanishes."""
    r = M.rng(14)
    stds = [0.01] * 5 + [math.sqrt(2 / WIDTH)] * 3  # small before the attention, He after
    ws = [r.normal(0, s, (WIDTH, WIDTH)).astype(np.float32) for s in stds]
    m = M.mlp(ws, biases=[np.zeros(WIDTH, np.float32)] * len(ws))
    _with_attention_at(m, "/fc6/Gemm_output_0")
    result = _audit(tmp_path, m)
    assert [msg[:25] for msg in _ia203(result)] == ["forward activations vanis"]
    by_name = {d.tensor: d for d in result.depth}
    assert by_name["fc7.weight"].assumed_backward == ()
    assert by_name["fc8.weight"].assumed_backward == ()
    for k in range(1, 6):
        assert {"MatMul", "Softmax"} <= set(by_name[f"fc{k}.weight"].assumed_backward)


def _marian_encoder(layers: int = 3, d: int = 64) -> onnx.ModelProto:
    """HF Marian's encoder: the N(0, 0.02) word embedding times sqrt(d), plus its sinusoidal
    position table (stored, unit scale), then post-LN blocks h = ln(h + mlp(h))."""
    net = _Net(15, d)
    r, nodes, inits = net.r, net.nodes, net.inits
    pos = np.arange(8)[:, None] / 10000 ** (np.arange(d)[None, :] / d)
    table = np.concatenate([np.sin(pos[:, ::2]), np.cos(pos[:, 1::2])], axis=1)
    inits += [
        M.tensor("wte", r.normal(0, 0.02, (64, d)).astype(np.float32)),
        M.tensor("embed_scale", np.array(math.sqrt(d), np.float32)),
        M.tensor("positions", table.astype(np.float32)),
    ]
    nodes += [
        _n("Gather", ["wte", "ids"], "tok"),
        _n("Mul", ["tok", "embed_scale"], "scaled"),
        _n("Add", ["scaled", "positions"], "h0"),
    ]
    h = "h0"
    for i in range(layers):
        nodes += [
            _n("MatMul", [h, net.w(f"l{i}.fc1", (d, 4 * d))], f"l{i}/f"),
            _n("Gelu", [f"l{i}/f"], f"l{i}/g"),
            _n("MatMul", [f"l{i}/g", net.w(f"l{i}.fc2", (4 * d, d))], f"l{i}/o"),
            _n("Add", [h, f"l{i}/o"], f"l{i}/r"),
        ]
        h = net.ln(f"l{i}/r", f"l{i}.ln")
    inp = helper.make_tensor_value_info("ids", TensorProto.INT64, [8])
    out = helper.make_tensor_value_info(h, TensorProto.FLOAT, None)
    return helper.make_model(
        helper.make_graph(nodes, "marian", [inp], [out], inits),
        opset_imports=[helper.make_opsetid("", 20)],
    )


def test_a_stored_table_added_to_an_embedding_is_a_source_of_its_own(tmp_path: Path) -> None:
    """The sum of a small embedding and a unit-scale position table is not a signal grown
    1000x since its reset: read so, the first post-LN block's gradient started at 1/1000 of
    the others' ('backward gradients vanish ... 1300x' on HF Marian)."""
    result = _audit(tmp_path, _marian_encoder())
    assert _ia203(result) == []
    stream = [d for d in result.depth if d.judged]
    assert len(stream) >= 3
    assert all(abs(d.log10_forward) < 1 and abs(d.log10_backward) < 1 for d in stream)


def _pooled_head_metaformer(
    blocks: int = 4, d: int = 64, mlp_head: bool = False
) -> onnx.ModelProto:
    """timm's MetaFormer (PoolFormer) shape: a small stem (its convs and linears drawn
    trunc_normal_(std=.02), metaformer.py _init_weights), pre-norm blocks h + mlp(norm(h)),
    then the head's mean over positions, its LayerNorm and the classifier; with
    ``mlp_head`` a linear layer and a GELU between the mean and the LayerNorm (timm
    InceptionNeXt's MlpClassifierHead: fc1, act, norm, fc2)."""
    net = _Net(16, d)
    r, nodes, inits = net.r, net.nodes, net.inits
    inits += [
        M.tensor("stem.weight", r.normal(0, 0.1 if mlp_head else 0.01, (d, d)).astype(np.float32)),
        M.tensor("axes", np.array([1], np.int64)),
    ]
    nodes.append(_n("MatMul", ["x", "stem.weight"], "h0"))
    h = "h0"
    for i in range(blocks):
        n = net.ln(h, f"b{i}.norm")
        nodes += [
            _n("MatMul", [n, net.w(f"b{i}.fc1", (d, 4 * d))], f"b{i}/f"),
            _n("Gelu", [f"b{i}/f"], f"b{i}/g"),
            _n("MatMul", [f"b{i}/g", net.w(f"b{i}.fc2", (4 * d, d))], f"b{i}/o"),
            _n("Add", [h, f"b{i}/o"], f"b{i}/r"),
        ]
        h = f"b{i}/r"
        if i == blocks // 2 - 1:
            # A stage's downsampling: its norm and a layer start the next stage's stream.
            n = net.ln(h, "downsample.norm")
            nodes.append(_n("MatMul", [n, net.w("downsample.proj", (d, d))], "stage2"))
            h = "stage2"
    nodes.append(_n("ReduceMean", [h, "axes"], "pooled", keepdims=0))
    pooled = "pooled"
    if mlp_head:
        # PyTorch's default scale, so that the norm sees a variance above its eps.
        inits.append(M.tensor("head.fc1", r.normal(0, d**-0.5, (d, d)).astype(np.float32)))
        nodes += [
            _n("MatMul", [pooled, "head.fc1"], "head/f"),
            _n("Gelu", ["head/f"], "head/g"),
        ]
        pooled = "head/g"
    n = net.ln(pooled, "head.norm")
    nodes.append(_n("MatMul", [n, net.w("head.fc", (d, 10))], "logits"))
    return M.model(nodes, inits, [M.value_info("x", [1, 16, d])], [M.value_info("logits", None)])


@pytest.mark.parametrize("mlp_head", [False, True], ids=["norm-on-pool", "mlp-head"])
def test_a_norm_on_the_pooled_stream_undoes_the_streams_level(
    tmp_path: Path, mlp_head: bool
) -> None:
    """The head's LayerNorm on the mean over positions divides the gradient by the pooled
    signal's σ², which the mean spreads back over the positions: the stream's gradient
    starts at 1/level of the stream, as at every block's norm. Read as 1 there and 1/level
    at the blocks, the last block made a 140x step ('backward gradients explode' on timm
    poolformer_s12, where torch measures the stage's total 170x the head norm's). With a
    linear layer between the pool and the norm, the pool's shrinkage is still no level the
    norm undoes ('backward gradients vanish 1500x' on timm inception_next_atto, where the
    last stage's total is measured 5.1x the head norm's)."""
    result = _audit(tmp_path, _pooled_head_metaformer(mlp_head=mlp_head))
    assert _ia203(result) == []
    stream = [d for d in result.depth if d.judged_backward]
    assert len(stream) >= 4
    # Each stage's stream restarts at its downsampling norm: within 30x of the last stage.
    limit = 1.5 if mlp_head else 1.0
    assert all(abs(d.log10_backward) < limit for d in stream), [d.log10_backward for d in stream]


def _with_reparameterizable_head(c: int = 16, blocks: int = 4) -> onnx.ModelProto:
    """A ResNet stream, then a MobileOne-style block: a 3x3 conv with its BatchNorm plus a
    1x1 conv with its own, of the same input, summed (timm fastvit.py MobileOneBlock, the
    final_conv), a ReLU, the pool and the fc."""
    m = _resnet(blocks, c=c)
    r, g = M.rng(17), m.graph
    nodes: list = []
    inits: list = []
    x = g.output[0].name
    for name, k in (("final.conv_kxk", 3), ("final.conv_scale", 1)):
        std = math.sqrt(2 / (2 * c * k * k))
        inits.append(
            M.tensor(f"{name}.weight", r.normal(0, std, (2 * c, c, k, k)).astype(np.float32))
        )
        pads = [k // 2] * 4
        nodes.append(_n("Conv", [x, f"{name}.weight"], f"{name}/c", pads=pads))
        _bn(nodes, inits, f"{name}/c", f"{name}.bn", 2 * c)
    inits.append(M.tensor("fc.weight", M.torch_default((10, 2 * c), 2 * c, 5)))
    nodes += [
        _n("Add", ["final.conv_kxk.bn/out", "final.conv_scale.bn/out"], "final/sum"),
        _n("Relu", ["final/sum"], "final/out"),
        _n("GlobalAveragePool", ["final/out"], "pool"),
        _n("Flatten", ["pool"], "flat"),
        _n("Gemm", ["flat", "fc.weight"], "logits", transB=1),
    ]
    g.node.extend(nodes)
    g.initializer.extend(inits)
    del g.output[:]
    g.output.append(M.value_info("logits", None))
    return m


def test_branches_that_reparameterize_into_one_conv_are_one_layer(tmp_path: Path) -> None:
    """Two convs of one input, each with its own norm, summed, fuse into one conv at
    inference: one layer of depth, not a branch added to its stream. Read as a residual
    join, both were stream rows past the trunk's last normalization ('backward gradients
    explode ... final_conv.conv_scale.conv.weight (110x)' on timm fastvit_mci0)."""
    result = _audit(tmp_path, _with_reparameterizable_head())
    assert _ia203(result) == []
    final = {d.tensor: d for d in result.depth if d.tensor.startswith("final.")}
    assert set(final) == {"final.conv_kxk.weight", "final.conv_scale.weight"}
    # Neither is a stream row: the later one is judged forward as the trunk's last layer.
    assert sum(d.judged for d in final.values()) == 1
    stream = [d for d in result.depth if d.judged and d.tensor.startswith("layer")]
    assert len(stream) >= 4
