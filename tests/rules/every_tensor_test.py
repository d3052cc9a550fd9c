"""Integrity rules read every float tensor, and roles come from what a tensor does in the graph.

Reproductions of bug reports (issue 14): a NaN in a scalar parameter, uninitialized memory in a
tensor used through an ellipsis Einsum (no weight layout: role "other"), a LayerNorm gamma drawn
like a weight, a zero relative-position table added to attention logits, and a Linear head
given the body's kaiming fan_out ReLU init by ``model.apply``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from initaudit.audit import audit_file
from initaudit.report.model import FileResult
from tests import _models as M


def _audit(tmp_path: Path, m: onnx.ModelProto) -> FileResult:
    result = audit_file(M.save(m, tmp_path / "m.onnx"))
    assert result.error is None, result.error
    return result


def _findings(result: FileResult, tensor: str) -> dict[str, str]:
    return {f.rule: f.severity.label for f in result.findings if f.tensor == tensor}


def _gated_mlp(alpha: float) -> onnx.ModelProto:
    """x -> Gemm -> Mul(alpha: a learned scalar mixing coefficient) -> Gemm."""
    w1, w2 = M.torch_default((32, 16), 16, 1), M.torch_default((8, 32), 32, 2)
    nodes = [
        helper.make_node("Gemm", ["x", "w1"], ["h"], transB=1),
        helper.make_node("Mul", ["h", "alpha"], ["g"]),
        helper.make_node("Gemm", ["g", "w2"], ["y"], transB=1),
    ]
    inits = [M.tensor("w1", w1), M.tensor("w2", w2), M.tensor("alpha", np.float32(alpha))]
    return M.model(nodes, inits, [M.value_info("x", [2, 16])], [M.value_info("y", [2, 8])])


def test_a_nan_scalar_parameter_is_reported(tmp_path: Path) -> None:
    """A mixing coefficient created with torch.empty on the meta device and never reset."""
    result = _audit(tmp_path, _gated_mlp(math.nan))
    assert "alpha" in {t.name for t in result.tensors}
    assert _findings(result, "alpha") == {"IA103": "error"}
    assert _findings(_audit(tmp_path, _gated_mlp(0.5)), "alpha") == {}


def _ellipsis_einsum(w: np.ndarray) -> onnx.ModelProto:
    node = helper.make_node("Einsum", ["x", "w"], ["y"], equation="...i,ijk->...jk")
    return M.model(
        [node], [M.tensor("w", w)], [M.value_info("x", [2, 8])], [M.value_info("y", None)]
    )


def test_uninitialized_memory_in_a_tensor_without_a_weight_role(tmp_path: Path) -> None:
    """nn.Parameter(torch.Tensor(n, m, k)) used through an ellipsis Einsum: role "other"."""
    w = M.rng(3).normal(0, 0.1, size=(8, 4, 4)).astype(np.float32)
    w.flat[::5] = 1e37
    w.flat[1::7] = -3e33
    result = _audit(tmp_path, _ellipsis_einsum(w))
    assert result.tensor("w").role == "other"
    assert _findings(result, "w") == {"IA105": "error"}


def test_a_mask_constant_in_a_buffer_is_not_garbage(tmp_path: Path) -> None:
    """Causal masks hold one huge fill constant (float32's lowest value, -1e9): a buffer."""
    mask = np.triu(np.full((4, 4), np.finfo(np.float32).min, np.float32), k=1)
    nodes = [
        helper.make_node("MatMul", ["q", "k"], ["s"]),
        helper.make_node("Add", ["s", "mask"], ["m"]),
        helper.make_node("Softmax", ["m"], ["p"], axis=-1),
    ]
    m = M.model(
        nodes,
        [M.tensor("mask", mask)],
        [M.value_info("q", [4, 8]), M.value_info("k", [8, 4])],
        [M.value_info("p", [4, 4])],
    )
    result = _audit(tmp_path, m)
    assert result.tensor("mask").role == "other"
    assert _findings(result, "mask") == {}


def _layernorm_block(gamma: np.ndarray) -> onnx.ModelProto:
    w = M.torch_default((16, 16), 16, 1)
    nodes = [
        helper.make_node("LayerNormalization", ["x", "ln.weight", "ln.bias"], ["n"], axis=-1),
        helper.make_node("Gemm", ["n", "fc.weight"], ["y"], transB=1),
    ]
    inits = [
        M.tensor("ln.weight", gamma),
        M.tensor("ln.bias", np.zeros(16, np.float32)),
        M.tensor("fc.weight", w),
    ]
    return M.model(nodes, inits, [M.value_info("x", [2, 16])], [M.value_info("y", [2, 16])])


def test_a_norm_scale_drawn_like_a_weight_is_a_warning(tmp_path: Path) -> None:
    """An _init_weights that drew every `weight` N(0, 0.02), LayerNorm's included."""
    drawn = M.rng(5).normal(0, 0.02, 16).astype(np.float32)
    assert _findings(_audit(tmp_path, _layernorm_block(drawn)), "ln.weight") == {"IA401": "warning"}
    ones = np.ones(16, np.float32)
    assert _findings(_audit(tmp_path, _layernorm_block(ones)), "ln.weight") == {}


def _attention_with_bias_table(table: np.ndarray) -> onnx.ModelProto:
    """timm LeViT/TinyViT: attention_biases[:, idx] gathered and added to Q·Kᵀ."""
    idx = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]], np.int64)
    nodes = [
        helper.make_node("MatMul", ["q", "k"], ["s"]),
        helper.make_node("Gather", ["attention_biases", "idx"], ["b"], axis=1),
        helper.make_node("Add", ["s", "b"], ["a"]),
        helper.make_node("Softmax", ["a"], ["p"], axis=-1),
    ]
    m = M.model(
        nodes,
        [M.tensor("attention_biases", table), M.tensor("idx", idx)],
        [M.value_info("q", [4, 3, 8]), M.value_info("k", [4, 8, 3])],
        [M.value_info("p", [4, 3, 3])],
    )
    return m


def test_a_table_added_to_attention_logits_is_a_bias(tmp_path: Path) -> None:
    result = _audit(tmp_path, _attention_with_bias_table(np.zeros((4, 3), np.float32)))
    assert result.tensor("attention_biases").role == "bias"
    assert _findings(result, "attention_biases") == {}
    drawn = M.rng(2).normal(0, 0.02, (4, 3)).astype(np.float32)  # timm Swin's trunc_normal .02
    result = _audit(tmp_path, _attention_with_bias_table(drawn))
    assert _findings(result, "attention_biases") == {}


def test_a_head_with_the_bodys_fan_out_relu_init_is_not_mis_scaled(tmp_path: Path) -> None:
    """model.apply(init_fn): kaiming_uniform_(mode="fan_out", nonlinearity="relu") on the
    256->32 head too is std 0.25: a scheme for another activation (IA301), not IA201."""
    r = M.rng(7)

    def he_fan_out(o: int, i: int) -> np.ndarray:
        b = math.sqrt(3) * math.sqrt(2 / o)
        return r.uniform(-b, b, (o, i)).astype(np.float32)

    m = M.mlp([he_fan_out(256, 64), he_fan_out(256, 256), he_fan_out(32, 256)], bias=False)
    result = _audit(tmp_path, m)
    assert _findings(result, "fc3.weight") == {"IA301": "info"}
    assert result.tensor("fc3.weight").scheme == "kaiming_uniform(fan_out, relu)"


def _experts_with_bias() -> onnx.ModelProto:
    """HF's batched experts, as the legacy exporter writes them: one expert's matrix selected
    from a stacked bank ``gate_up_proj [E, hidden, out]`` by the routed index, its per-expert
    bias gathered from ``gate_up_proj_bias [E, out]`` and added to its output (zero by design:
    ``nn.Parameter(torch.zeros(...))``); beside them a word embedding whose rows start a
    pre-norm residual stream (added to a layer's output too, but also fed to the norm and the
    matmuls: features)."""
    r = M.rng(8)
    e = M.value_info("e_idx", [], onnx.TensorProto.INT64)
    nodes = [
        helper.make_node("Gather", ["wte", "ids"], ["h"]),
        helper.make_node("LayerNormalization", ["h", "ln.w", "ln.b"], ["n"], axis=-1),
        helper.make_node("Gather", ["experts.gate_up_proj", "e_idx"], ["w_e"]),
        helper.make_node("Cast", ["w_e"], ["w_ec"], to=onnx.TensorProto.FLOAT),
        helper.make_node("MatMul", ["n", "w_ec"], ["up"]),
        helper.make_node("Gather", ["experts.gate_up_proj_bias", "e_idx"], ["b_e"]),
        helper.make_node("Cast", ["b_e"], ["b_ec"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Add", ["up", "b_ec"], ["eo"]),
        helper.make_node("Relu", ["eo"], ["y"]),
        helper.make_node("Add", ["h", "n"], ["z"]),
    ]
    inits = [
        M.tensor("wte", r.normal(0, 0.02, (50, 16)).astype(np.float32)),
        M.tensor("ln.w", np.ones(16, np.float32)),
        M.tensor("ln.b", np.zeros(16, np.float32)),
        M.tensor(
            "experts.gate_up_proj", r.normal(0, math.sqrt(2 / 16), (4, 16, 64)).astype(np.float32)
        ),
        M.tensor("experts.gate_up_proj_bias", np.zeros((4, 64), np.float32)),
    ]
    ids = M.value_info("ids", [1, 2], onnx.TensorProto.INT64)
    outs = [M.value_info("y", None), M.value_info("z", None)]
    return M.model(nodes, inits, [ids, e], outs)


def test_an_expert_bank_is_a_weight_and_its_gathered_biases_are_biases(tmp_path: Path) -> None:
    """The bank's fans are those of one expert's matrix (it used to be taken for an embedding
    table of 4 rows, fan_out 4), so its He init before the ReLU is recognized; the zero
    per-expert biases are no 'all-zero embedding' error."""
    result = _audit(tmp_path, _experts_with_bias())
    bank = result.tensor("experts.gate_up_proj")
    assert (bank.role, bank.fan_in, bank.fan_out) == ("weight", 16, 64)
    assert bank.scheme is not None and bank.scheme.startswith("kaiming_normal(fan_in, relu)")
    assert _findings(result, "experts.gate_up_proj") == {}
    assert result.tensor("experts.gate_up_proj_bias").role == "bias"
    assert _findings(result, "experts.gate_up_proj_bias") == {}
    assert result.tensor("wte").role == "embedding"


def test_a_zero_position_table_sliced_and_added_to_the_patches_is_no_zero_weight(
    tmp_path: Path,
) -> None:
    """HF YOLOS keeps ``position_embeddings = nn.Parameter(torch.zeros(1, N, D))``
    (modeling_yolos.py:89) and adds its slices to the patch embeddings: an additive table,
    learned from zero, whose ``[:, 0]`` is a Gather along axis 1, not a row lookup."""
    r = M.rng(9)
    nodes = [
        helper.make_node("Conv", ["x", "patch.weight"], ["p"], strides=[4, 4]),
        helper.make_node("Reshape", ["p", "flat"], ["pf"]),
        helper.make_node("Transpose", ["pf"], ["pt"], perm=[0, 2, 1]),
        helper.make_node("Gather", ["pos", "zero"], ["cls_pos"], axis=1),
        helper.make_node("Unsqueeze", ["cls_pos", "one"], ["cls_pos1"]),
        helper.make_node("Slice", ["pos", "one", "end", "one"], ["patch_pos"]),
        helper.make_node("Concat", ["cls_pos1", "patch_pos"], ["all_pos"], axis=1),
        helper.make_node("Concat", ["cls", "pt"], ["tokens"], axis=1),
        helper.make_node("Add", ["tokens", "all_pos"], ["y"]),
    ]
    inits = [
        M.tensor("patch.weight", M.torch_default((8, 3, 4, 4), 48, 1)),
        M.tensor("pos", np.zeros((1, 5, 8), np.float32)),
        M.tensor("cls", r.normal(0, 0.02, (1, 1, 8)).astype(np.float32)),
        M.tensor("flat", np.array([1, 8, 4], np.int64)),
        M.tensor("zero", np.array(0, np.int64)),
        M.tensor("one", np.array([1], np.int64)),
        M.tensor("end", np.array([5], np.int64)),
    ]
    m = M.model(nodes, inits, [M.value_info("x", [1, 3, 8, 8])], [M.value_info("y", None)])
    result = _audit(tmp_path, m)
    assert result.tensor("pos").role != "embedding"
    assert _findings(result, "pos") == {}


def test_a_zero_gamma_batchnorm_folded_into_a_conv_is_intentional(tmp_path: Path) -> None:
    """timm CSPDarkNet's zero_init_last zeroes a block's last BatchNorm; the legacy exporter
    folds it into the conv (weight renamed onnx::Conv_N), whose weight is then all zeros
    though its output goes through an activation (timm cspnet.py:237-238)."""
    nodes = [
        helper.make_node("Conv", ["x", "conv1.weight"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["ra"]),
        helper.make_node(
            "Conv", ["ra", "onnx::Conv_17", "onnx::Conv_18"], ["b"], pads=[1, 1, 1, 1]
        ),
        helper.make_node("LeakyRelu", ["b"], ["rb"], alpha=0.1),
        helper.make_node("Add", ["rb", "x"], ["y"]),
    ]
    inits = [
        M.tensor("conv1.weight", M.torch_default((8, 8, 3, 3), 72, 1)),
        M.tensor("onnx::Conv_17", np.zeros((8, 8, 3, 3), np.float32)),
        M.tensor("onnx::Conv_18", np.zeros(8, np.float32)),
    ]
    m = M.model(nodes, inits, [M.value_info("x", [1, 8, 8, 8])], [M.value_info("y", None)])
    result = _audit(tmp_path, m)
    assert _findings(result, "onnx::Conv_17") == {"IA101": "info"}


def _blur(filt: np.ndarray) -> onnx.ModelProto:
    """timm resnetblur's anti-aliasing: a depthwise conv with a fixed binomial kernel."""
    c = filt.shape[0]
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Conv", ["r", "aa.filt"], ["y"], pads=[1, 1, 1, 1], group=c),
    ]
    inits = [
        M.tensor("conv.weight", M.torch_default((c, c, 3, 3), 9 * c, 1)),
        M.tensor("aa.filt", filt),
    ]
    return M.model(nodes, inits, [M.value_info("x", [1, c, 8, 8])], [M.value_info("y", None)])


def test_a_fixed_blur_filter_is_no_one_sided_draw(tmp_path: Path) -> None:
    """timm's BlurPool2d filt = [1, 2, 1]⊗[1, 2, 1] / 16 per channel: mean 0.11, no offset."""
    k = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16
    filt = np.broadcast_to(k, (16, 1, 3, 3)).astype(np.float32).copy()
    result = _audit(tmp_path, _blur(filt))
    assert _findings(result, "aa.filt") == {}
    assert (result.tensor("aa.filt").scheme or "").startswith("fixed filter")
    # Random {0, 1} draws per channel (a torch.randint bug) have few values but differ.
    coin = M.rng(3).integers(0, 2, (16, 1, 3, 3)).astype(np.float32)
    assert "IA202" in _findings(_audit(tmp_path, _blur(coin)), "aa.filt")


def _bert_embeddings(pos_std: float, folded: bool, word_std: float = 0.02) -> onnx.ModelProto:
    """BERT's input: word + token type + position lookups summed, then LayerNorm. The dynamo
    exporter folds the position lookup of a fixed-length input into one constant of the rows
    it uses (``embedding_2 [1, 8, d]``); the legacy one keeps the Gather."""
    r = M.rng(12)
    d, n = 64, 8
    pos = r.normal(0, pos_std, (32, d)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["word.weight", "ids"], ["w"]),
        helper.make_node("Gather", ["type.weight", "types"], ["t"]),
        helper.make_node("Add", ["w", "t"], ["wt"]),
        helper.make_node("Add", ["wt", "pos_rows" if folded else "p"], ["e"]),
        helper.make_node("LayerNormalization", ["e", "ln.w", "ln.b"], ["h"], axis=-1),
        helper.make_node("MatMul", ["h", "q.weight"], ["y"]),
    ]
    inits = [
        M.tensor("word.weight", r.normal(0, word_std, (500, d)).astype(np.float32)),
        M.tensor("type.weight", r.normal(0, 0.02, (2, d)).astype(np.float32)),
        M.tensor("types", np.zeros((1, n), np.int64)),
        M.tensor("ln.w", np.ones(d, np.float32)),
        M.tensor("ln.b", np.zeros(d, np.float32)),
        M.tensor("q.weight", r.normal(0, 0.02, (d, d)).astype(np.float32)),
    ]
    if folded:
        inits.append(M.tensor("pos_rows", pos[None, :n]))
    else:
        nodes.insert(0, helper.make_node("Gather", ["pos.weight", "positions"], ["p"]))
        inits += [
            M.tensor("pos.weight", pos),
            M.tensor("positions", np.arange(n, dtype=np.int64)[None]),
        ]
    ids = M.value_info("ids", [1, n], onnx.TensorProto.INT64)
    return M.model(nodes, inits, [ids], [M.value_info("y", None)])


def test_a_position_table_left_at_n01_beside_0_02_words_is_a_stream_outlier(
    tmp_path: Path,
) -> None:
    """The position embedding's init skipped (nn.Embedding's N(0, 1)) while the word and type
    tables are N(0, 0.02): summed into one stream, the positions drown the words. Each table
    alone is a plausible embedding init, and the tables have no common name template."""
    for folded, pos in ((True, "pos_rows"), (False, "pos.weight")):
        result = _audit(tmp_path, _bert_embeddings(1.0, folded))
        assert _findings(result, pos) == {"IA204": "warning"}, folded
        assert "word.weight" in next(f.message for f in result.findings if f.tensor == pos)
        assert _findings(result, "word.weight") == {}


def test_tables_of_one_stream_drawn_alike_or_at_half_the_std_are_siblings_in_agreement(
    tmp_path: Path,
) -> None:
    """CLIP and GPT-2 draw positions N(0, 0.01) beside N(0, 0.02) words."""
    for pos_std in (0.02, 0.01):
        result = _audit(tmp_path, _bert_embeddings(pos_std, folded=True))
        assert [f for f in result.findings if f.rule == "IA204"] == []


def test_an_embedding_that_goes_straight_into_a_normalization_is_judged_as_normalized(
    tmp_path: Path,
) -> None:
    """The LayerNorm resets the summed rows' scale: words at 5x the recipe are not mis-scaled
    (HF ModernBERT's truncated 0.02 read 2.5x off at d=64); 500x still is."""
    result = _audit(tmp_path, _bert_embeddings(0.1, folded=True, word_std=0.1))
    assert result.tensor("word.weight").normalized
    assert _findings(result, "word.weight") == {}
    result = _audit(tmp_path, _bert_embeddings(10.0, folded=True, word_std=10.0))
    assert "IA201" in _findings(result, "word.weight")


def test_a_folded_query_token_is_no_weight_and_a_folded_position_table_no_bias(
    tmp_path: Path,
) -> None:
    """HF SigLIP as the dynamo exporter writes it: the attention-pooling ``probe``
    (``nn.Parameter(torch.randn(1, 1, d))``) expanded to the batch and folded into a [1, B, d]
    constant, the left operand of the query projection (its B rows are equal: the same token
    per batch item, not duplicate output units); and the position lookup of a fixed number of
    patches folded into a [1, N, d] constant added to the patch embeddings (lecun_normal)."""
    r = M.rng(13)
    d, n = 64, 16
    probe = np.repeat(r.normal(0, 1.0, (1, 1, d)), 2, axis=1).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "patch.weight"], ["p"], strides=[4, 4]),
        helper.make_node("Reshape", ["p", "flat"], ["pf"]),
        helper.make_node("Transpose", ["pf"], ["pt"], perm=[0, 2, 1]),
        helper.make_node("Add", ["pt", "pos_rows"], ["tokens"]),
        helper.make_node("MatMul", ["probe_folded", "q.weight"], ["q"]),
        helper.make_node("MatMul", ["tokens", "k.weight"], ["k"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["y"]),
    ]
    inits = [
        M.tensor("patch.weight", M.torch_default((d, 3, 4, 4), 48, 1)),
        M.tensor("flat", np.array([1, d, n], np.int64)),
        M.tensor("pos_rows", r.normal(0, d**-0.5, (1, n, d)).astype(np.float32)),
        M.tensor("probe_folded", probe),
        M.tensor("q.weight", M.torch_default((d, d), d, 2)),
        M.tensor("k.weight", M.torch_default((d, d), d, 3)),
    ]
    m = M.model(nodes, inits, [M.value_info("x", [1, 3, 16, 16])], [M.value_info("y", None)])
    result = _audit(tmp_path, m)
    assert result.tensor("probe_folded").role == "other"
    assert _findings(result, "probe_folded") == {}
    assert _findings(result, "pos_rows") == {}
    assert result.tensor("q.weight").role == "weight"
