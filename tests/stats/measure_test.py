"""measure_all: the same statistics whatever the number of threads, progress, tied copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from initaudit.graph.build import build_graph
from initaudit.load import load_model
from initaudit.stats import measure as measure_module
from initaudit.stats.measure import Progress, _transposed_equal, measure_all
from initaudit.stats.values import as_values

TORCH = Path(__file__).resolve().parent.parent.parent / "fixtures" / "torch"
FIXTURES = [
    "hf_gpt2_tiny__dynamo.onnx",
    "embedding_tied_lm__legacy.onnx",
    "lstm_bidirectional__dynamo.onnx",
    "conv_grouped_depthwise__legacy.onnx",
    "mlp_bf16__dynamo.onnx",
    "mlp_duplicate_units__legacy.onnx",
    "cnn_qdq_int8__legacy.onnx",
    "mlp_external_data/mlp_external_data__dynamo.onnx",
]


@pytest.mark.parametrize("name", FIXTURES)
def test_threads_give_the_serial_statistics(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(measure_module, "SERIAL_BYTES", 0)  # these models are all small
    loaded = load_model(TORCH / name)
    try:
        graph = build_graph(loaded)
        serial = measure_all(graph.sites, graph.facts, loaded.store, jobs=1)
        threaded = measure_all(graph.sites, graph.facts, loaded.store, jobs=2)
    finally:
        loaded.close()
    assert list(threaded) == list(serial)
    assert repr(threaded) == repr(serial)


def test_progress_counts_every_tensor_and_byte_once() -> None:
    loaded = load_model(TORCH / "hf_gpt2_tiny__dynamo.onnx")
    seen: list[Progress] = []
    try:
        graph = build_graph(loaded)
        measure_all(graph.sites, graph.facts, loaded.store, jobs=2, progress=seen.append)
    finally:
        loaded.close()
    assert (seen[0].tensors_done, seen[0].bytes_done) == (0, 0)
    assert [p.tensors_done for p in seen] == list(range(len(graph.sites) + 1))
    assert seen[-1].bytes_done == seen[-1].bytes_total > 0


def test_tied_copy_is_compared_in_full_after_the_sample() -> None:
    table = np.random.default_rng(0).standard_normal((300, 40)).astype(np.float32)
    copy = np.ascontiguousarray(table.T)
    assert _transposed_equal(as_values(copy), as_values(table))
    copy[17, 211] += 1e-3  # one element: almost surely outside the sample
    assert not _transposed_equal(as_values(copy), as_values(table))


def test_a_small_model_is_measured_without_threads() -> None:
    import threading

    loaded = load_model(TORCH / "hf_gpt2_tiny__dynamo.onnx")
    names: set[str] = set()
    try:
        graph = build_graph(loaded)
        measure_all(
            graph.sites,
            graph.facts,
            loaded.store,
            jobs=4,
            progress=lambda p: names.add(threading.current_thread().name),
        )
    finally:
        loaded.close()
    assert names == {threading.current_thread().name}
