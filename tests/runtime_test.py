"""--propagate's runtimes: onnxruntime and onnx's reference evaluator run the real exported
model on the same seeded inputs and measure the same layer scales."""

from __future__ import annotations

from pathlib import Path

import pytest

from initaudit import runtime, wire
from initaudit.audit import _vocab_of_inputs
from initaudit.graph.build import build_graph
from initaudit.load import load_model

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "torch"
MODELS = [
    "mlp_relu__dynamo.onnx",
    "mlp_fp16__legacy.onnx",
    "cnn_bn_relu__legacy.onnx",
    "embedding_tied_lm__dynamo.onnx",  # integer token ids drawn within the vocabulary
    "mlp_external_data/mlp_external_data__dynamo.onnx",
]


def _measure(name: str, backend: str | None) -> dict[str, float]:
    loaded = load_model(FIXTURES / name)
    try:
        graph = build_graph(loaded)
        values = sorted({n.outputs[0] for n in graph.nodes if n.outputs and n.outputs[0]})
        vocab = _vocab_of_inputs(graph)
        return runtime.measure_outputs(loaded, values, vocab, {}, backend)
    finally:
        loaded.close()


@pytest.mark.parametrize("name", MODELS)
def test_onnxruntime_and_reference_evaluator_measure_the_same_scales(name: str) -> None:
    pytest.importorskip("onnxruntime", reason="initaudit[runtime] is in the test extra")
    ort = _measure(name, "onnxruntime")
    ref = _measure(name, "reference")
    assert ort.keys() == ref.keys() and len(ort) >= 3
    for value, q in ort.items():
        assert q == pytest.approx(ref[value], rel=2e-3, abs=1e-12), value


@pytest.mark.parametrize("name", ["mlp_relu__dynamo.onnx", "embedding_tied_lm__dynamo.onnx"])
def test_a_big_inline_model_runs_with_the_raw_data_read_in_place(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _measure(name, "reference")
    monkeypatch.setattr(wire, "PIECE_BYTES", 64)  # raw_data left in the file (wire.py)
    assert _measure(name, "reference") == before


def test_the_default_backend_is_onnxruntime_when_installed() -> None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        assert runtime.default_backend() == "reference"
    else:
        assert runtime.default_backend() == "onnxruntime"


def test_a_model_the_runtime_rejects_is_a_propagation_error(tmp_path: Path) -> None:
    """A custom-domain op neither runtime knows: the audit keeps its prediction (a note)."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Mystery", ["x"], ["y"], domain="example.custom")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("example.custom", 1)]
    )
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    loaded = load_model(path)
    try:
        for backend in runtime.BACKENDS:
            if backend == "onnxruntime":
                pytest.importorskip("onnxruntime")
            with pytest.raises(runtime.PropagationError):
                runtime.measure_outputs(loaded, ["y"], {}, {}, backend)
    finally:
        loaded.close()


def test_input_shapes_parse_or_fail_with_the_option_named() -> None:
    assert runtime.parse_shapes(["x=1x3x224x224", "ids=2x16"]) == {
        "x": (1, 3, 224, 224),
        "ids": (2, 16),
    }
    for bad in ("x", "=2x3", "x=2xq", "x=0x3", "x=-1"):
        with pytest.raises(ValueError, match="--input-shape"):
            runtime.parse_shapes([bad])


def _cli(*args: str) -> tuple[int, str, str]:
    from initaudit.cli import cli
    from tests._click import runner

    r = runner().invoke(cli, ["--isolated", *args])
    return r.exit_code, r.stdout, r.stderr


def test_an_input_shape_for_no_input_of_the_model_is_said(tmp_path: Path) -> None:
    """It used to be ignored: the model then ran with the default shapes, silently."""
    from tests import _models as M

    model = M.save(M.clean_mlp(), tmp_path / "m.onnx")
    code, out, err = _cli(str(model), "--propagate", "--input-shape", "input_ids=1x64")
    assert code == 0 and "depth profile" not in out
    assert err == (
        f"initaudit: warning: {model}: --propagate could not run the model: --input-shape "
        "names 'input_ids', which is not an input of this model (its inputs: x (Nx64))\n"
    )


def test_a_fixed_input_given_another_shape_says_which(tmp_path: Path) -> None:
    """Not onnxruntime's message cut mid-line: the input, its fixed shape, what was given."""
    from tests import _models as M

    m = M.clean_mlp()
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2  # x: 2x64, no dynamic dim
    model = M.save(m, tmp_path / "m.onnx")
    code, _, err = _cli(str(model), "--propagate", "--input-shape", "x=4x64")
    assert code == 0
    assert err == (
        f"initaudit: warning: {model}: --propagate could not run the model: --input-shape "
        "x=4x64: input 'x' has the fixed shape 2x64 (only the named dimensions can be chosen)\n"
    )
    code, out, err = _cli(str(model), "--propagate", "--input-shape", "x=2x64")
    assert (code, err) == (0, "") and "depth profile" in out


def test_rows_a_batchnorm_acts_on_are_marked_with_what_the_graph_runs() -> None:
    """The exported graph applies BatchNorm's running statistics (the identity at init), so
    --propagate measures 0.0085 where training normalizes to 1: the table says so beside those
    layers, folded (legacy and dynamo exporters) or not; a network without BatchNorm has no
    such mark."""
    for name in (
        "cnn_bn_deep_normal002__legacy.onnx",
        "cnn_bn_deep_normal002__dynamo.onnx",
        "cnn_bn_relu__legacy.onnx",
    ):
        code, out, err = _cli(str(FIXTURES / name), "--propagate")
        assert (code, err) == (0, "")
        rows = [r for r in out.splitlines() if r.startswith("  ") and "Conv" in r]
        assert rows and all(r.endswith("†") for r in rows), out
        assert "† a BatchNorm acts here" in out and "running statistics" in out
    code, out, err = _cli(str(FIXTURES / "mlp_relu__dynamo.onnx"), "--propagate")
    assert "depth profile" in out and "†" not in out
