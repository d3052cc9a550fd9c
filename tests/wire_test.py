"""Parsing: big files parsed from a memory map in pieces give the same model, or the same error."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import onnx
import pytest

from initaudit import wire
from initaudit.errors import INPUT_ERROR_CODES, InputError
from initaudit.load import load_model
from tests import _models as M


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
    assert pieces.SerializeToString() == whole.SerializeToString()
    assert load_model(FIXTURES / name).model.SerializeToString() == whole.SerializeToString()


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
