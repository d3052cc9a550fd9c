"""Parsing: big files parsed from a memory map in pieces give the same model, or the same error."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest

import initaudit
from initaudit import wire
from initaudit.cli import cli
from initaudit.errors import INPUT_ERROR_CODES, InputError
from initaudit.load import load_model
from initaudit.report import json_report
from initaudit.stats.decode import widener_for
from initaudit.stats.moments import compute_stats
from initaudit.stats.values import Values
from tests import _models as M
from tests._click import runner


def _code(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_model(path)
    assert info.value.code in INPUT_ERROR_CODES
    return info.value.code


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize(
    "name",
    [
        "torch/hf_gpt2_tiny__dynamo.onnx",
        "torch/lstm_bidirectional__legacy.onnx",
        "built/if_subgraph_zero_weight.onnx",
        "torch/mlp_external_data/mlp_external_data__dynamo.onnx",
    ],
)
def test_big_files_parsed_in_pieces_give_the_same_model(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = onnx.ModelProto()
    whole.ParseFromString((FIXTURES / name).read_bytes())
    monkeypatch.setattr(wire, "PIECE_BYTES", 64)  # every fixture counts as big
    pieces = wire.parse_in_pieces(FIXTURES / name)
    assert pieces is not None
    assert _with_raw_data(pieces).SerializeToString() == whole.SerializeToString()
    loaded = load_model(FIXTURES / name)
    loaded.close()
    assert loaded.model.graph.initializer == pieces.model.graph.initializer
    assert not any(t.HasField("raw_data") for t in pieces.model.graph.initializer)


def _with_raw_data(parsed: wire.Parsed) -> onnx.ModelProto:
    """The parsed model as onnx's classes, with the raw_data left in the file put back."""
    model = onnx.ModelProto.FromString(parsed.model.SerializeToString())
    if parsed.mapped is not None:
        for i, span in parsed.spans.items():
            model.graph.initializer[i].raw_data = parsed.mapped[
                span.offset : span.offset + span.length
            ]
        parsed.mapped.close()
    return model


@pytest.mark.parametrize("name", sorted(p.name for p in (FIXTURES / "broken").glob("*.onnx")))
def test_broken_files_parsed_in_pieces_fail_as_before(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _code(FIXTURES / "broken" / name)
    monkeypatch.setattr(wire, "PIECE_BYTES", 64)
    assert _code(FIXTURES / "broken" / name) == before


def test_inline_model_loads_without_a_second_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = [M.torch_default((512, 512), 512, seed=i) for i in range(4)]
    path = M.save(M.mlp(ws), tmp_path / "m.onnx")
    monkeypatch.setattr(wire, "PIECE_BYTES", 1 << 20)
    tracemalloc.start()
    try:
        load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Parsed from a memory map, not from bytes of the whole file (one tensor is read at a time).
    assert peak < 0.5 * path.stat().st_size


def test_inline_raw_data_is_read_in_place_from_the_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = [M.torch_default((256, 128), 128, seed=1), M.torch_default((10, 256), 256, seed=2)]
    path = M.save(M.mlp(ws), tmp_path / "m.onnx")
    whole = load_model(path)
    monkeypatch.setattr(wire, "PIECE_BYTES", 64)
    mapped = load_model(path)
    try:
        assert not any(t.HasField("raw_data") for t in mapped.model.graph.initializer)
        for name in ("fc1.weight", "fc2.weight", "fc1.bias"):
            assert mapped.store.tensors[name].mapped_path == path
            assert mapped.store.tensors[name].external_path is None
            assert np.array_equal(mapped.store.read(name), whole.store.read(name))
    finally:
        mapped.close()
        whole.close()


def test_inline_tensor_shorter_than_its_dims_fails_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = M.mlp([M.torch_default((64, 32), 32)])
    t = model.graph.initializer[0]
    t.raw_data = t.raw_data[:-4]  # one element short
    path = M.save(model, tmp_path / "short.onnx")
    with pytest.raises(InputError) as before:
        load_model(path)
    monkeypatch.setattr(wire, "PIECE_BYTES", 64)
    with pytest.raises(InputError) as after:
        load_model(path)
    assert (after.value.code, after.value.message) == (before.value.code, before.value.message)
    assert after.value.code == "bad-tensor"


ALL_FIXTURES = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.onnx"))
SOME_FIXTURES = [
    "torch/hf_gpt2_tiny__dynamo.onnx",
    "torch/mlp_bf16__dynamo.onnx",
    "torch/mlp_fp16__legacy.onnx",
    "built/int4_blocked_qdq.onnx",
    "torch/cnn_qdq_int8__legacy.onnx",
    "built/if_subgraph_zero_weight.onnx",
    "torch/mlp_external_data/mlp_external_data__dynamo.onnx",
    "broken/shape_mismatch.onnx",
]


def _json_report(path: Path) -> str:
    return json_report.render(initaudit.audit(path))


@pytest.mark.parametrize("name", SOME_FIXTURES)
def test_report_read_in_place_is_the_report_parsed_whole(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _json_report(FIXTURES / name)
    monkeypatch.setattr(wire, "PIECE_BYTES", 64)  # raw_data read in place from the map
    assert _json_report(FIXTURES / name) == before


@pytest.mark.slow
def test_every_fixture_report_read_in_place_is_the_report_parsed_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = [_json_report(FIXTURES / name) for name in ALL_FIXTURES]
    monkeypatch.setattr(wire, "PIECE_BYTES", 64)
    assert [_json_report(FIXTURES / name) for name in ALL_FIXTURES] == before


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_inline_file_cut_in_its_raw_data_is_one_error_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: float
) -> None:
    path = M.save(M.mlp([M.torch_default((256, 256), 256)]), tmp_path / "cut.onnx")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    monkeypatch.setattr(wire, "PIECE_BYTES", 64)
    r = runner().invoke(cli, ["--isolated", str(path)])
    assert r.exit_code == 2
    assert len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith(f"initaudit: {path}: not-onnx: ")


def test_unaligned_raw_data_read_in_place_gives_the_same_statistics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # numpy sums an unaligned float32 array in another order: the last bits of a mean differ.
    w = (M.rng(3).standard_normal((256, 256)) * 0.02 + 1e-4).astype(np.float32)
    monkeypatch.setattr(wire, "PIECE_BYTES", 64)
    for name in ("w", "w1", "w12", "w123"):
        path = M.save(M.mlp([w], names=[name]), tmp_path / f"{name}.onnx")
        parsed = wire.parse_in_pieces(path)
        assert parsed is not None and parsed.mapped is not None
        offset = parsed.spans[0].offset
        parsed.mapped.close()
        if offset % 4:
            break
    else:
        pytest.fail("no name put raw_data at an unaligned offset")
    mapped = load_model(path)
    try:
        values = Values(mapped.store.stored(name), widener_for(1), mapped.store.releaser(name))
        assert not values.stored.flags.aligned
        assert compute_stats(values) == compute_stats(w)
        assert float(values.array().sum()) == float(w.sum())
        assert float(mapped.store.read(name).sum()) == float(w.sum())
    finally:
        mapped.close()
