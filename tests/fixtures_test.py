"""Real PyTorch exports (fixtures/torch, both exporters): what initaudit finds on each.

MANIFEST.json maps every ONNX initializer to the PyTorch parameter it came from (matched by
value by make_torch_fixtures.py), so these expectations hold whatever the exporter renamed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from initaudit.audit import audit_file
from initaudit.report.model import FileResult
from tests.conftest import FIXTURES

MANIFEST = json.loads((FIXTURES / "torch" / "MANIFEST.json").read_text())
ENTRIES = MANIFEST["files"]
ROOT = FIXTURES.parent

# (role, fan_in, fan_out, activation) per (scenario, torch parameter).
_MLP = {
    "fc1.weight": ("weight", 64, 128, "relu"),
    "fc2.weight": ("weight", 128, 128, "relu"),
    "fc3.weight": ("weight", 128, 10, "linear"),
}
_MLP_SCENARIOS = (
    "mlp_relu",
    "mlp_he_relu",
    "mlp_fp16",
    "mlp_bf16",
    "mlp_zero_weight",
    "mlp_constant_weight",
    "mlp_nan_weight",
    "mlp_duplicate_units",
    "mlp_uninitialized",
    "mlp_naive_normal",
    "mlp_zero_init_head",
)
EXPECTED: dict[tuple[str, str], tuple[str, int, int, str | None]] = {
    **{(s, p): v for s in _MLP_SCENARIOS for p, v in _MLP.items()},
    ("mlp_tanh", "fc1.weight"): ("weight", 64, 128, "tanh"),
    ("mlp_tanh", "fc3.weight"): ("weight", 128, 10, "linear"),
    ("mlp_leakyrelu", "fc1.weight"): ("weight", 64, 128, "leaky_relu(alpha=0.2)"),
    ("mlp_sigmoid", "fc1.weight"): ("weight", 64, 128, "sigmoid"),
    ("mlp_silu", "fc1.weight"): ("weight", 64, 128, "silu"),
    ("mlp_silu", "fc2.weight"): ("weight", 128, 64, "linear"),
    ("linear3d_gelu", "fc1.weight"): ("weight", 64, 256, "gelu"),
    ("linear3d_gelu", "fc2.weight"): ("weight", 256, 64, "linear"),
    ("cnn_bn_relu", "conv1.weight"): ("weight", 27, 144, "relu"),
    ("cnn_bn_relu", "conv2.weight"): ("weight", 144, 288, "relu"),
    ("cnn_bn_relu", "fc.weight"): ("weight", 32, 10, "linear"),
    ("cnn_qdq_int8", "conv1.weight"): ("weight", 27, 144, "unknown"),
    ("conv_grouped_depthwise", "grouped.weight"): ("weight", 36, 288, "relu"),
    ("conv_grouped_depthwise", "depthwise.weight"): ("weight", 9, 288, "relu"),
    ("conv_grouped_depthwise", "pointwise.weight"): ("weight", 32, 64, "linear"),
    ("conv_transpose", "up1.weight"): ("weight", 256, 512, "relu"),
    ("conv_transpose", "up2.weight"): ("weight", 36, 144, "linear"),
    ("conv1d", "conv1.weight"): ("weight", 40, 80, "relu"),
    ("conv3d", "conv2.weight"): ("weight", 144, 144, "linear"),
    ("lstm", "rnn.weight_ih_l0"): ("weight", 32, 256, "tanh"),
    ("lstm", "rnn.weight_hh_l0"): ("recurrent_weight", 64, 256, "tanh"),
    ("lstm", "rnn.weight_ih_l1"): ("weight", 64, 256, "tanh"),
    ("gru", "rnn.weight_ih_l0"): ("weight", 32, 144, "tanh"),
    ("gru", "rnn.weight_hh_l0"): ("recurrent_weight", 48, 144, "tanh"),
    ("multihead_attention", "attn.in_proj_weight"): ("weight", 64, 192, "linear"),
    ("multihead_attention", "attn.out_proj.weight"): ("weight", 64, 64, "linear"),
    ("transformer_encoder_layer", "self_attn.in_proj_weight"): ("weight", 64, 192, "linear"),
    ("transformer_encoder_layer", "linear1.weight"): ("weight", 64, 128, "relu"),
    ("transformer_encoder_layer", "linear2.weight"): ("weight", 128, 64, "linear"),
    ("embedding_tied_lm", "emb.weight"): ("embedding", 32, 100, None),
    ("embedding_tied_lm", "head.weight"): ("embedding", 32, 100, None),
    ("embedding_padding", "emb.weight"): ("embedding", 16, 50, None),
    ("hf_bert_tiny", "model.encoder.layer.0.intermediate.dense.weight"): (
        "weight",
        64,
        128,
        "gelu",
    ),
    ("hf_bert_tiny", "model.encoder.layer.0.attention.self.query.weight"): (
        "weight",
        64,
        64,
        "linear",
    ),
    ("hf_bert_tiny", "model.pooler.dense.weight"): ("weight", 64, 64, "tanh"),
    ("hf_gpt2_tiny", "model.transformer.h.0.mlp.c_fc.weight"): (
        "weight",
        64,
        128,
        "gelu(approximate=tanh)",
    ),
    ("hf_gpt2_tiny", "model.transformer.h.0.attn.c_attn.weight"): ("weight", 64, 192, "linear"),
    ("hf_llama_tiny", "model.model.layers.0.mlp.gate_proj.weight"): ("weight", 64, 128, "silu"),
    ("hf_llama_tiny", "model.model.layers.0.mlp.down_proj.weight"): ("weight", 128, 64, "linear"),
    ("hf_llama_tiny", "model.model.embed_tokens.weight"): ("embedding", 64, 128, None),
    ("hf_t5_encoder_tiny", "model.encoder.block.0.layer.0.SelfAttention.q.weight"): (
        "weight",
        128,
        128,
        "linear",
    ),
    ("hf_gemma_tiny", "model.model.layers.0.mlp.down_proj.weight"): ("weight", 256, 192, "linear"),
}
# Defective twins: the finding each must produce on the named parameter.
DEFECTS = {
    "mlp_zero_weight": ("fc2.weight", "IA101"),
    "mlp_constant_weight": ("fc2.weight", "IA102"),
    "mlp_nan_weight": ("fc2.weight", "IA103"),
    "mlp_duplicate_units": ("fc2.weight", "IA104"),
    "mlp_uninitialized": ("fc2.weight", "IA105"),
}


@cache
def _audit(rel: str) -> FileResult:
    return audit_file(ROOT / rel)


def _param_names(entry: dict) -> dict[str, str]:
    """torch parameter -> ONNX initializer name; an untransformed copy wins over a tied
    transposed duplicate."""
    out: dict[str, str] = {}
    for init in sorted(entry["initializers"], key=lambda i: i.get("transform") != "identity"):
        tp = init.get("torch_param")
        want = EXPECTED.get((entry["scenario"], tp or ""))
        if want and want[0] == "embedding" and init.get("transform") != "identity":
            continue  # the tied lm_head's transposed copy of the table
        if tp:
            out.setdefault(tp, init["name"])
    return out


IDS = [Path(e["file"]).name for e in ENTRIES]


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_fixture_facts(entry: dict) -> None:
    result = _audit(entry["file"])
    assert result.error is None, result.error
    tensors = {t.name: t for t in result.tensors}
    checked = 0
    for param, name in _param_names(entry).items():
        want = EXPECTED.get((entry["scenario"], param))
        if want is None:
            continue
        t = tensors[name]
        assert (t.role, t.fan_in, t.fan_out, t.activation) == want, (param, name)
        checked += 1
    if entry["scenario"] in {s for s, _ in EXPECTED}:
        assert checked, "no expected parameter found in this export"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_fixture_verdict(entry: dict) -> None:
    result = _audit(entry["file"])
    errors = {(f.tensor, f.rule) for f in result.findings if f.severity.label == "error"}
    if entry["scenario"] in DEFECTS:
        param, rule = DEFECTS[entry["scenario"]]
        assert (_param_names(entry)[param], rule) in errors
        assert len(errors) == 1, errors
    elif entry["expect"].startswith("clean") or "intentional" in entry["expect"]:
        # A framework's own default drawing a warning is a false alarm, as bad as a miss.
        alarms = {(f.tensor, f.rule) for f in result.findings if f.severity.label != "info"}
        assert alarms == set(), alarms


def test_every_clean_fixture_was_checked() -> None:
    scenarios = {e["scenario"] for e in ENTRIES}
    assert {s for s, _ in EXPECTED} <= scenarios
    assert set(DEFECTS) <= scenarios


BROKEN = {
    "broken/truncated.onnx": "not-onnx",
    "broken/not_onnx.onnx": "not-onnx",
    "broken/shape_mismatch.onnx": "bad-tensor",
    "broken/external_missing/model.onnx": "external-data-missing",
    "broken/external_escapes/model.onnx": "external-data-escapes",
}


@pytest.mark.parametrize(("rel", "code"), BROKEN.items())
def test_broken_fixtures_fail_closed(rel: str, code: str) -> None:
    result = audit_file(FIXTURES / rel)
    assert result.error is not None and result.error.code == code
    assert result.findings == () and result.tensors == ()


def test_built_fixtures() -> None:
    f8 = audit_file(FIXTURES / "built" / "float8_e4m3_weights.onnx")
    assert {t.dtype for t in f8.tensors} == {"float8e4m3fn"} and not f8.findings
    q4 = audit_file(FIXTURES / "built" / "int4_blocked_qdq.onnx")
    (w,) = q4.tensors
    assert (w.dtype, w.quantized, w.fan_in, w.activation) == ("int4", True, 128, "relu")
    sub = audit_file(FIXTURES / "built" / "if_subgraph_zero_weight.onnx")
    assert [(f.tensor, f.rule) for f in sub.findings] == [("then.weight", "IA101")]


def test_make_fixtures_is_deterministic(tmp_path: Path) -> None:
    """The committed built/broken fixtures are exactly what the script writes."""
    subprocess.run([sys.executable, str(FIXTURES / "make_fixtures.py"), str(tmp_path)], check=True)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.onnx"))
    assert written
    for rel in written:
        assert (tmp_path / rel).read_bytes() == (FIXTURES / rel).read_bytes(), rel


@pytest.mark.parametrize(
    ("rel", "schemes"),
    [
        (
            "built/keras_style_lstm_dense.onnx",
            {
                "W": "glorot_uniform",
                "R": "orthogonal",
                "B": "unit_forget_bias",
                "dense/kernel:0": "glorot_uniform",
                "dense/bias:0": "zeros",
            },
        ),
        (
            "built/flax_style_embed_mlp.onnx",
            {
                "embed/embedding": "flax Embed",
                "dense_0/kernel": "lecun_normal",
                "dense_1/kernel": "lecun_normal",
            },
        ),
    ],
)
def test_keras_and_flax_defaults_are_identified_and_clean(rel: str, schemes: dict) -> None:
    result = audit_file(FIXTURES / rel)
    got = {t.name: t.scheme or "" for t in result.tensors}
    for name, keyword in schemes.items():
        assert keyword in got[name], (name, got[name])
    assert result.findings == ()


def test_real_exports_identify_their_init_scheme() -> None:
    """What each real export's weights were drawn from, named as the frameworks name it."""
    expected = {
        "mlp_relu__dynamo.onnx": {"fc1.weight": "pytorch_default", "fc1.bias": "pytorch_default"},
        "mlp_he_relu__legacy.onnx": {"fc2.weight": "kaiming_normal(fan_in, relu)"},
        "mlp_tanh__legacy.onnx": {"fc1.weight": "xavier_uniform(gain=tanh)"},
        "hf_gpt2_tiny__dynamo.onnx": {
            "model.transformer.h.0.attn.c_attn.weight": "normal(std=0.02)",
            "model.transformer.h.0.mlp.c_proj.weight": "0.02/sqrt(2*2)",
        },
        "multihead_attention__dynamo.onnx": {"val_0": "xavier_uniform"},
        "hf_t5_encoder_tiny__legacy.onnx": {
            "onnx::MatMul_262": "t5 query",
            # Gathered by relative position and added to the attention logits: a bias table.
            "model.encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": (
                "normal-like table"
            ),
        },
        "lstm__legacy.onnx": {"onnx::LSTM_222": "rnn"},
        "embedding_tied_lm__legacy.onnx": {
            "emb.weight": "Embedding default",
            "onnx::MatMul_12": "tied(emb.weight)",
        },
    }
    for name, schemes in expected.items():
        got = {t.name: t.scheme or "" for t in _audit(f"fixtures/torch/{name}").tensors}
        for tensor, keyword in schemes.items():
            assert keyword in got[tensor], (name, tensor, got[tensor])


def test_a_keras_batchnorm_network_converted_by_tf2onnx_is_clean() -> None:
    """tf2onnx fuses each Keras BatchNormalization into its Conv (fixtures/keras): the folded
    convs keep their fixed-std kernels (N(0, 0.01)), which before a BatchNorm is a scale
    training does not see. Read as unnormalized they were 5 x IA201 and IA203 both ways."""
    result = audit_file(FIXTURES / "keras" / "keras_cnn_bn_fixed_std__tf2onnx.onnx")
    assert result.error is None
    assert result.findings == ()
    convs = [t for t in result.tensors if t.op_type == "Conv"]
    assert len(convs) == 6 and all(t.normalized for t in convs)
