"""Fixed-std recipes frameworks ship are schemes inside the blocks they ship them in (issue 14).

Pre-norm residual blocks in the layouts timm and transformers build, with the inits their own
code draws: timm EdgeNeXt's ``trunc_normal_tf_(std=.02)`` at fan_in 24, an HF config's
``initializer_range = 0.018`` on every projection, timm's fix_init (residual projections
divided by sqrt(2·(layer+1))). Each was IA201 on most of its weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from scipy import stats

from initaudit.audit import audit_file
from initaudit.report.model import FileResult
from tests import _models as M

Draw = Callable[[str, tuple[int, int]], np.ndarray]


def _pre_norm_blocks(draw: Draw, d: int = 24, layers: int = 3) -> onnx.ModelProto:
    """tokens -> Gather -> [LN -> fc1 (d -> 4d) -> GELU -> fc2 -> + residual] x layers."""
    nodes = [helper.make_node("Gather", ["wte", "ids"], ["h0"])]
    inits = [M.tensor("wte", draw("wte", (64, d)))]
    h = "h0"
    for i in range(layers):
        p = f"blocks.{i}"
        inits += [
            M.tensor(f"{p}.norm.weight", np.ones(d, np.float32)),
            M.tensor(f"{p}.norm.bias", np.zeros(d, np.float32)),
            M.tensor(f"{p}.mlp.fc1.weight", draw(f"{p}.mlp.fc1.weight", (d, 4 * d))),
            M.tensor(f"{p}.mlp.fc2.weight", draw(f"{p}.mlp.fc2.weight", (4 * d, d))),
        ]
        nodes += [
            helper.make_node(
                "LayerNormalization", [h, f"{p}.norm.weight", f"{p}.norm.bias"], [f"{p}/n"]
            ),
            helper.make_node("MatMul", [f"{p}/n", f"{p}.mlp.fc1.weight"], [f"{p}/a"]),
            helper.make_node("Gelu", [f"{p}/a"], [f"{p}/g"]),
            helper.make_node("MatMul", [f"{p}/g", f"{p}.mlp.fc2.weight"], [f"{p}/b"]),
            helper.make_node("Add", [h, f"{p}/b"], [f"{p}/out"]),
        ]
        h = f"{p}/out"
    ids = M.value_info("ids", [1, 8], onnx.TensorProto.INT64)
    return M.model(nodes, inits, [ids], [M.value_info(h, None)])


def _audit(tmp_path: Path, m: onnx.ModelProto) -> FileResult:
    result = audit_file(M.save(m, tmp_path / "m.onnx"))
    assert result.error is None
    return result


def _ia201(result: FileResult) -> list[str]:
    return [f.tensor or "" for f in result.findings if f.rule == "IA201"]


def test_timm_trunc_normal_tf_in_pre_norm_blocks(tmp_path: Path) -> None:
    """EdgeNeXt: trunc_normal_tf_(std=.02), truncated at ±2 std, no variance correction."""
    r = M.rng(21)

    def draw(name: str, shape: tuple[int, int]) -> np.ndarray:
        z = stats.truncnorm.rvs(-2, 2, size=shape, random_state=r)
        return (0.02 * z).astype(np.float32)

    result = _audit(tmp_path, _pre_norm_blocks(draw))
    assert _ia201(result) == []
    assert "trunc_normal_tf_" in (result.tensor("blocks.0.mlp.fc1.weight").scheme or "")


def test_a_config_initializer_range_is_the_models_recipe(tmp_path: Path) -> None:
    """An HF config's initializer_range of 0.0134 (as some ship): every Linear and the
    embedding drawn N(0, 0.0134²) by the generic _init_weights."""
    r = M.rng(22)

    def draw(name: str, shape: tuple[int, int]) -> np.ndarray:
        return r.normal(0, 0.0134, shape).astype(np.float32)

    result = _audit(tmp_path, _pre_norm_blocks(draw))
    assert _ia201(result) == []
    assert "one fixed std across the model" in (
        result.tensor("blocks.1.mlp.fc1.weight").scheme or ""
    )


def test_timm_fix_init_residual_projections(tmp_path: Path) -> None:
    """ViT/EVA fix_init: each block's fc2 is trunc_normal_(.02) / sqrt(2·(layer+1))."""
    r = M.rng(23)

    def draw(name: str, shape: tuple[int, int]) -> np.ndarray:
        w = r.normal(0, 0.02, shape)
        if name.endswith("fc2.weight"):
            w /= math.sqrt(2 * (int(name.split(".")[1]) + 1))
        return w.astype(np.float32)

    result = _audit(tmp_path, _pre_norm_blocks(draw, d=48, layers=4))
    assert _ia201(result) == []
    assert "fix_init" in (result.tensor("blocks.2.mlp.fc2.weight").scheme or "")


def test_a_model_wide_std_outside_any_config_is_still_judged(tmp_path: Path) -> None:
    """SAM's vision config ships initializer_range = 1e-10: no recipe, IA201 everywhere."""
    r = M.rng(24)

    def draw(name: str, shape: tuple[int, int]) -> np.ndarray:
        return r.normal(0, 1e-10, shape).astype(np.float32)

    result = _audit(tmp_path, _pre_norm_blocks(draw))
    assert "blocks.0.mlp.fc1.weight" in _ia201(result)


def _router(std: float, softmax_is_output: bool) -> onnx.ModelProto:
    """A Switch Transformers sparse MLP: router logits -> Softmax -> top-1 probability that
    weights the expert's output (the probabilities go on into the network); or, with
    ``softmax_is_output``, a classifier of 100 classes exported with its Softmax."""
    r = M.rng(31)
    d, experts = 64, 100 if softmax_is_output else 4
    nodes = [
        helper.make_node("LayerNormalization", ["x", "ln.w", "ln.b"], ["n"], axis=-1),
        helper.make_node("MatMul", ["n", "router.classifier.weight"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    inits = [
        M.tensor("ln.w", np.ones(d, np.float32)),
        M.tensor("ln.b", np.zeros(d, np.float32)),
        M.tensor("router.classifier.weight", r.normal(0, std, (d, experts)).astype(np.float32)),
    ]
    if softmax_is_output:
        return M.model(nodes, inits, [M.value_info("x", [1, 8, d])], [M.value_info("probs", None)])
    nodes += [
        helper.make_node("ReduceMax", ["probs", "last"], ["top"], keepdims=1),
        helper.make_node("MatMul", ["n", "expert.wi.weight"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("MatMul", ["hr", "expert.wo.weight"], ["e"]),
        helper.make_node("Mul", ["e", "top"], ["gated"]),
        helper.make_node("Add", ["x", "gated"], ["y"]),
    ]
    inits += [
        M.tensor("last", np.array([-1], np.int64)),
        M.tensor("expert.wi.weight", r.normal(0, d**-0.5, (d, 4 * d)).astype(np.float32)),
        M.tensor("expert.wo.weight", r.normal(0, (4 * d) ** -0.5, (4 * d, d)).astype(np.float32)),
    ]
    return M.model(nodes, inits, [M.value_info("x", [1, 8, d])], [M.value_info("y", None)])


def test_a_router_drawn_n01_is_switch_transformers_init(tmp_path: Path) -> None:
    """HF Switch Transformers: ``init.normal_(router.classifier.weight, std=factor * 1)``
    (modeling_switch_transformers.py:645); a router's scale is a routing temperature."""
    result = _audit(tmp_path, _router(1.0, softmax_is_output=False))
    assert _ia201(result) == []
    assert "router" in (result.tensor("router.classifier.weight").scheme or "")


def test_a_classifier_drawn_n01_before_its_output_softmax_is_still_mis_scaled(
    tmp_path: Path,
) -> None:
    result = _audit(tmp_path, _router(1.0, softmax_is_output=True))
    assert _ia201(result) == ["router.classifier.weight"]


def _l2_normalized_query(std: float) -> onnx.ModelProto:
    """timm SwiftFormer's additive attention: ``query @ w_g`` then F.normalize over tokens
    (swiftformer.py:171,183), which the dynamo exporter writes as ReduceL2, Clip (the eps
    clamp), Expand, Div."""
    r = M.rng(32)
    d = 384
    nodes = [
        helper.make_node("MatMul", ["x", "attn.w_g"], ["q"]),
        helper.make_node("ReduceL2", ["q", "tokens"], ["norm"], keepdims=1),
        helper.make_node("Clip", ["norm", "eps"], ["clamped"]),
        helper.make_node("Expand", ["clamped", "shape"], ["expanded"]),
        helper.make_node("Div", ["q", "expanded"], ["a"]),
        helper.make_node("Mul", ["a", "x"], ["y"]),
    ]
    inits = [
        M.tensor("attn.w_g", r.normal(0, std, (d, 1)).astype(np.float32)),
        M.tensor("tokens", np.array([1], np.int64)),
        M.tensor("eps", np.array(1e-12, np.float32)),
        M.tensor("shape", np.array([1, 16, 1], np.int64)),
    ]
    return M.model(nodes, inits, [M.value_info("x", [1, 16, d])], [M.value_info("y", None)])


def test_a_weight_whose_output_f_normalize_resets_is_judged_as_normalized(
    tmp_path: Path,
) -> None:
    """``nn.Parameter(torch.randn(d, 1))`` before F.normalize: 8x the fan-based std at d=384,
    inside the slack a normalization gives; 100x is still mis-scaled."""
    result = _audit(tmp_path, _l2_normalized_query(1.0))
    assert result.tensor("attn.w_g").normalized
    assert _ia201(result) == []
    assert _ia201(_audit(tmp_path, _l2_normalized_query(12.0))) == ["attn.w_g"]


def _spatial_gate(bias: float) -> onnx.ModelProto:
    """timm gMLP's SpatialGatingUnit: v = proj(norm(v)) over tokens; out = u * v, with
    ``normal_(proj.weight, std=1e-6); ones_(proj.bias)`` (mlp_mixer.py:211-213)."""
    r = M.rng(33)
    tokens, d = 196, 32
    nodes = [
        helper.make_node("LayerNormalization", ["v", "ln.w", "ln.b"], ["n"], axis=-1),
        helper.make_node("Transpose", ["n"], ["nt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["nt", "gate.proj.weight"], ["p"]),
        helper.make_node("Add", ["p", "gate.proj.bias"], ["pb"]),
        helper.make_node("Transpose", ["pb"], ["g"], perm=[0, 2, 1]),
        helper.make_node("Mul", ["u", "g"], ["y"]),
    ]
    inits = [
        M.tensor("ln.w", np.ones(d, np.float32)),
        M.tensor("ln.b", np.zeros(d, np.float32)),
        M.tensor("gate.proj.weight", r.normal(0, 1e-6, (tokens, tokens)).astype(np.float32)),
        M.tensor("gate.proj.bias", np.full(tokens, bias, np.float32)),
    ]
    ins = [M.value_info("u", [1, tokens, d]), M.value_info("v", [1, tokens, d])]
    return M.model(nodes, inits, ins, [M.value_info("y", None)])


def test_a_near_identity_gate_starts_at_its_constant_bias(tmp_path: Path) -> None:
    result = _audit(tmp_path, _spatial_gate(1.0))
    assert _ia201(result) == []
    bias = [f for f in result.findings if f.tensor == "gate.proj.bias"]
    assert [f.severity.label for f in bias] == ["info"] and "near-identity gate" in bias[0].message
    # Without the constant it starts at, the same tiny weight is a gate that never opens.
    assert _ia201(_audit(tmp_path, _spatial_gate(0.0))) == ["gate.proj.weight"]


def test_a_folded_gather_of_a_drawn_table_is_judged_by_its_draw(tmp_path: Path) -> None:
    """timm MViTv2: ``rel_pos_h = trunc_normal_tf_(std=.02)`` of [2·14-1, head_dim], gathered
    per (query, key) distance, which the exporter folds into one [14, 14, head_dim] constant
    (each drawn row repeated up to 14 times) that an Einsum with q adds to the logits.
    Counted with its copies, the test rejected one draw in ten (seed 40 here)."""
    size, dim = 14, 96
    dist = np.arange(size)[:, None] - np.arange(size)[None, :] + size - 1
    nodes = [
        helper.make_node("Einsum", ["q", "rel_h"], ["rel"], equation="bhc,hkc->bhk"),
        helper.make_node("Add", ["logits", "rel"], ["a"]),
        helper.make_node("Softmax", ["a"], ["y"], axis=-1),
    ]
    ins = [M.value_info("q", [2, size, dim]), M.value_info("logits", [2, size, size])]
    for seed in range(37, 43):
        z = stats.truncnorm.rvs(-2, 2, size=(2 * size - 1, dim), random_state=M.rng(seed))
        folded = (0.02 * z).astype(np.float32)[dist]  # [14, 14, 96]
        m = M.model(nodes, [M.tensor("rel_h", folded)], ins, [M.value_info("y", None)])
        result = _audit(tmp_path, m)
        assert _ia201(result) == [], seed
        assert "trunc_normal_tf_" in (result.tensor("rel_h").scheme or ""), seed


def _lambda_layer(norm_after: bool) -> onnx.ModelProto:
    """timm's LambdaLayer: position lambdas conv_lambda(v) (trunc_normal_(std=dim_qk**-0.5),
    lambda_layer.py:135) applied to the queries, added to the content output, then the
    block's BatchNorm (byobnet SelfAttnBlock.post_attn); without ``norm_after`` the sum goes
    to a projection instead."""
    r = M.rng(35)
    n, d = 16, 169
    nodes = [
        helper.make_node("MatMul", ["v", "conv_lambda.weight"], ["lam"]),
        helper.make_node("MatMul", ["q", "lam"], ["pos"]),
        helper.make_node("Add", ["content", "pos"], ["s"]),
    ]
    inits = [M.tensor("conv_lambda.weight", r.normal(0, 0.25, (d, d)).astype(np.float32))]
    if norm_after:
        nodes += [
            helper.make_node("Transpose", ["s"], ["st"], perm=[0, 2, 1]),
            helper.make_node("BatchNormalization", ["st", "bn.w", "bn.b", "bn.m", "bn.v"], ["y"]),
        ]
        inits += [
            M.tensor(f"bn.{k}", np.full(n, 1.0 if k in "wv" else 0.0, np.float32)) for k in "wbmv"
        ]
    else:
        nodes.append(helper.make_node("MatMul", ["s", "proj.weight"], ["y"]))
        inits.append(M.tensor("proj.weight", M.torch_default((d, d), d)))
    ins = [
        M.value_info("v", [1, n, d]),
        M.value_info("q", [1, n, n]),
        M.value_info("content", [1, n, d]),
    ]
    return M.model(nodes, inits, ins, [M.value_info("y", None)])


def test_a_normalization_after_an_attention_product_resets_the_value_side(
    tmp_path: Path,
) -> None:
    result = _audit(tmp_path, _lambda_layer(norm_after=True))
    assert result.tensor("conv_lambda.weight").normalized
    assert _ia201(result) == []
    result = _audit(tmp_path, _lambda_layer(norm_after=False))
    assert not result.tensor("conv_lambda.weight").normalized
    assert _ia201(result) == ["conv_lambda.weight"]
