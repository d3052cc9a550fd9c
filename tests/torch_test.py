"""initaudit.torch against real torch.onnx exports (both exporters): names, inputs, no side
effects. Skipped, saying why, where torch is not installed (the default test command)."""

from __future__ import annotations

import json
import random
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed: pip install torch==2.13.0 onnxscript"
)
from torch import nn  # noqa: E402

from initaudit import Config, Override, Severity  # noqa: E402
from initaudit import torch as it  # noqa: E402
from initaudit.origins import Transform  # noqa: E402
from initaudit.report import json_report  # noqa: E402
from tests._click import runner  # noqa: E402

pytestmark = pytest.mark.torch
EXPORTERS = ("legacy", "dynamo")


def _seeded(build: Callable[[], nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    return build().eval()


class Recurrent(nn.Module):
    def __init__(self, rnn: nn.RNNBase, width: int) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(width, 4)

    def forward(self, x: Any) -> Any:
        out, _ = self.rnn(x)
        return self.head(out[-1])


class TiedLM(nn.Module):
    def __init__(self, vocab: int = 50, dim: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.proj = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, ids: Any) -> Any:
        return self.head(torch.relu(self.proj(self.emb(ids))))


def _cnn_bn() -> nn.Module:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, bias=False),
        nn.BatchNorm2d(8),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 4),
    )
    with torch.no_grad():  # trained-looking statistics, so the fold is not a no-op
        for bn in (model[1], model[4]):
            bn.running_var.uniform_(0.5, 2.0)
            bn.running_mean.uniform_(-1.0, 1.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-1.0, 1.0)
    return model


def _labels(model: nn.Module, inputs: Any, exporter: str) -> dict[str, str]:
    exported = it.export(model, inputs, exporter=exporter)  # type: ignore[arg-type]
    assert exported.exporter == exporter
    return {o.tensor: o.label for o in it.origins(model, exported.model).origins}


def test_legacy_export_names_a_transposed_matmul_weight_by_its_parameter() -> None:
    model = _seeded(lambda: nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8)))
    exported = it.export(model, (torch.randn(2, 5, 16),), exporter="legacy")
    found = it.origins(model, exported.model)
    renamed = [o for o in found.origins if o.tensor.startswith("onnx::MatMul_")]
    assert sorted(o.label for o in renamed) == [
        "0.weight (nn.Linear)",
        "2.weight (nn.Linear)",
    ]
    assert all(o.transform is Transform.TRANSPOSED for o in renamed)
    assert found.unmatched == ()


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_a_batchnorm_folded_conv_is_named_after_the_conv_and_the_norm(exporter: str) -> None:
    model = _seeded(_cnn_bn)
    exported = it.export(model, (torch.randn(1, 3, 8, 8),), exporter=exporter)  # type: ignore[arg-type]
    found = it.origins(model, exported.model)
    by_label = {o.label: o for o in found.origins}
    weight = by_label["0.weight (nn.Conv2d), folded from 0.weight and 1.*"]
    assert set(weight.sources) == {
        "0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var",
    }  # fmt: skip
    assert "0.bias (nn.Conv2d), folded from 0.bias and 1.*" in by_label
    assert "3.weight (nn.Conv2d), folded from 3.weight and 4.*" in by_label
    assert "4.bias (nn.BatchNorm2d), folded from 4.* into 3 (which has no bias)" in by_label
    assert found.unmatched == ()


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_lstm_gates_are_reordered_back_to_their_parameters(exporter: str) -> None:
    model = _seeded(lambda: Recurrent(nn.LSTM(8, 16, num_layers=2), 16))
    labels = set(_labels(model, (torch.randn(5, 2, 8),), exporter).values())
    gates = "gates i,f,g,o → i,o,f,c"
    assert {
        f"rnn.weight_ih_l0 (nn.LSTM), {gates}",
        f"rnn.weight_hh_l0 (nn.LSTM), {gates}",
        f"rnn.bias_ih_l0 (nn.LSTM), with rnn.bias_hh_l0, {gates}",
        f"rnn.weight_ih_l1 (nn.LSTM), {gates}",
    } <= labels


def test_bidirectional_gru_directions_and_gates() -> None:
    model = _seeded(lambda: Recurrent(nn.GRU(8, 12, bidirectional=True), 24))
    labels = set(_labels(model, (torch.randn(5, 2, 8),), "legacy").values())
    assert "rnn.weight_ih_l0 (nn.GRU), with rnn.weight_ih_l0_reverse, gates r,z,n → z,r,h" in labels


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_a_tied_embedding_is_named_by_the_layer_reading_each_copy(exporter: str) -> None:
    model = _seeded(TiedLM)
    labels = _labels(model, it.build_example_inputs(model), exporter)
    assert "head.weight (nn.Linear); same values as emb.weight" in labels.values()
    assert "emb.weight (nn.Embedding); same values as head.weight" in labels.values()


def test_mha_out_proj_is_named_as_the_linear_users_know() -> None:
    model = _seeded(lambda: nn.TransformerEncoderLayer(32, 4, 64, batch_first=True))
    labels = set(_labels(model, (torch.randn(2, 6, 32),), "dynamo").values())
    assert "self_attn.out_proj.weight (nn.Linear)" in labels
    assert "self_attn.in_proj_weight (nn.MultiheadAttention)" in labels


# --------------------------------------------------------------------------- audit, assert


class Encoder(nn.Module):
    """Token ids -> embedding -> two residual MLP blocks -> head, as a user would write it."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(64, 32)
        self.layers = nn.ModuleList(
            nn.Sequential(
                OrderedDict(linear1=nn.Linear(32, 64), act=nn.ReLU(), linear2=nn.Linear(64, 32))
            )
            for _ in range(2)
        )
        self.head = nn.Linear(32, 8)

    def forward(self, ids: Any) -> Any:
        x = self.emb(ids)
        for layer in self.layers:
            x = x + layer(x)
        return self.head(x)


def _zeroed_encoder() -> nn.Module:
    model = _seeded(Encoder)
    with torch.no_grad():
        model.layers[0].linear1.weight.zero_()
    return model


def test_assert_initialized_passes_on_a_default_model_and_says_which_exporter() -> None:
    report = it.assert_initialized(_seeded(Encoder))
    [result] = report.files
    assert not [f for f in report.findings if f.severity is Severity.ERROR]
    assert result.path == "<torch Encoder>"
    assert result.exporter is not None and result.exporter.startswith("torch.onnx.export dynamo")
    assert result.tensor("emb.weight").source == "emb.weight (nn.Embedding)"


def test_assert_initialized_names_a_zeroed_layer_by_its_parameter() -> None:
    with pytest.raises(AssertionError) as raised:
        it.assert_initialized(_zeroed_encoder())
    message = str(raised.value)
    assert "<torch Encoder>: layers.0.linear1.weight (nn.Linear) [MatMul " in message
    assert "IA101 error: all 2048 values of this weight are 0" in message
    assert "exported in memory with torch.onnx.export dynamo" in message
    assert "val_" not in message and "onnx::" not in message


def test_json_keeps_the_onnx_name_beside_the_parameter_name() -> None:
    report = it.audit(_zeroed_encoder(), exporter="legacy")
    doc = json.loads(json_report.render(report))
    [finding] = [f for f in doc["files"][0]["findings"] if f["rule"] == "IA101"]
    assert finding["source"] == "layers.0.linear1.weight (nn.Linear)"
    assert finding["tensor"].startswith("onnx::MatMul_")
    assert doc["files"][0]["exporter"].startswith("torch.onnx.export legacy")


def test_overrides_match_parameter_names_too() -> None:
    quiet = Config(overrides=(Override(tensors=("layers.0.linear1.*",), ignore=("IA101",)),))
    report = it.audit(_zeroed_encoder(), config=quiet)
    assert [f for f in report.findings if f.rule == "IA101"] == []


# --------------------------------------------------------------------------- the model untouched


def _snapshot(model: nn.Module) -> tuple[Any, ...]:
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        {k: v.clone() for k, v in model.state_dict().items()},
        torch.random.get_rng_state(),
        np.random.get_state()[1].copy(),
        random.getstate(),
        torch.is_grad_enabled(),
    )


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    modes, grads, state, rng, np_rng, py_rng, grad_mode = a
    return (
        modes == b[0]
        and grads == b[1]
        and state.keys() == b[2].keys()
        and all(torch.equal(v, b[2][k]) for k, v in state.items())
        and torch.equal(rng, b[3])
        and bool((np_rng == b[4]).all())
        and py_rng == b[5]
        and grad_mode == b[6]
    )


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_audit_leaves_modes_grads_values_and_rng_as_they_were(exporter: str) -> None:
    model = _seeded(_cnn_bn)
    model.train()  # training, with one BatchNorm frozen in eval and one weight frozen
    model[4].eval()
    model[6].weight.requires_grad_(False)
    inputs = (torch.randn(1, 3, 8, 8),)
    torch.manual_seed(123)
    np.random.seed(5)
    random.seed(7)
    before = _snapshot(model)
    it.audit(model, inputs, exporter=exporter)  # type: ignore[arg-type]
    assert _same(before, _snapshot(model))
    assert model.training and not model[4].training and model[1].training


# --------------------------------------------------------------------------- example inputs


@pytest.mark.parametrize(
    ("build", "shape", "dtype"),
    [
        (lambda: nn.Sequential(nn.Embedding(30, 8), nn.Linear(8, 2)), (1, 8), "int64"),
        (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), (1, 3, 64, 64), "float32"),
        (lambda: nn.Sequential(nn.Linear(12, 4)), (1, 12), "float32"),
    ],
)
def test_example_inputs_follow_the_first_layer(
    build: Callable[[], nn.Module], shape: tuple[int, ...], dtype: str
) -> None:
    model = build()
    state = torch.random.get_rng_state()
    [x] = it.build_example_inputs(model)
    assert (tuple(x.shape), str(x.dtype)) == (shape, f"torch.{dtype}")
    assert torch.equal(torch.random.get_rng_state(), state)


def test_an_ambiguous_first_layer_says_what_to_pass() -> None:
    with pytest.raises(ValueError, match=r"first layer rnn is nn\.LSTM.*pass example_inputs="):
        it.build_example_inputs(Recurrent(nn.LSTM(8, 16), 16))


def test_a_model_neither_exporter_takes_raises_with_both_reasons() -> None:
    """Inputs of the wrong width fail in both exporters; the error keeps each one's reason."""
    with pytest.raises(it.ExportError, match=r"dynamo export failed: .*legacy export failed: "):
        it.export(nn.Linear(4, 4), (torch.randn(1, 5),))


# --------------------------------------------------------------------------- --factory

TORCH_FACTORIES = """
    import torch
    from torch import nn

    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(8, 16)
            self.head = nn.Linear(16, 4)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[-1])

    def build_mlp():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                              nn.Linear(32, 4))
        with torch.no_grad():
            model[2].weight.zero_()
        return model

    def build_rnn():
        torch.manual_seed(0)
        return Recurrent()
"""


@pytest.fixture
def factories(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    import sys
    import textwrap

    (tmp_path / "torchfactories.py").write_text(textwrap.dedent(TORCH_FACTORIES))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "torchfactories", raising=False)
    return tmp_path


def test_a_torch_factory_is_exported_and_named_by_its_parameters(factories: Any) -> None:

    from initaudit.cli import cli

    result = runner().invoke(cli, ["--isolated", "--factory", "torchfactories:build_mlp"])
    assert result.exit_code == 1, result.output
    assert "torchfactories:build_mlp: 2.weight (nn.Linear) [Gemm " in result.stdout
    assert "IA101 error: all 1024 values of this weight are 0" in result.stdout


def test_a_torch_factory_without_guessable_inputs_needs_factory_input(factories: Any) -> None:

    from initaudit.cli import cli

    bare = runner().invoke(cli, ["--isolated", "--factory", "torchfactories:build_rnn"])
    assert bare.exit_code == 2, bare.output
    [line] = bare.stderr.splitlines()
    assert line.startswith("initaudit: torchfactories:build_rnn: factory-failed: ")
    assert "first layer rnn is nn.LSTM" in line and "--factory-input NAME=1x3x224x224" in line
    given = runner().invoke(
        cli,
        ["--isolated", "--factory", "torchfactories:build_rnn", "--factory-input", "x=5x2x8"],
    )
    assert given.exit_code == 0, given.output
