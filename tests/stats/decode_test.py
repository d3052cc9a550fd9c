"""Chunked widening of fp16/bf16/float8 storage is exactly what onnx's own decoder gives."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from initaudit.stats.decode import widener
from initaudit.stats.values import CHUNK, Values

LOW_PRECISION = [
    TensorProto.FLOAT16,
    TensorProto.BFLOAT16,
    TensorProto.FLOAT8E4M3FN,
    TensorProto.FLOAT8E4M3FNUZ,
    TensorProto.FLOAT8E5M2,
    TensorProto.FLOAT8E5M2FNUZ,
]


def _every_pattern(data_type: int) -> TensorProto:
    """A raw_data tensor holding every bit pattern of the type once."""
    itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type)).itemsize
    bits = np.arange(1 << (8 * itemsize), dtype=np.uint8 if itemsize == 1 else "<u2")
    t = TensorProto(name="w", data_type=data_type, dims=[bits.size])
    t.raw_data = bits.tobytes()
    return t


def _same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float32
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    # Bit for bit, signed zeros and infinities included; NaN payloads need not match.
    np.testing.assert_array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32))


@pytest.mark.parametrize("data_type", LOW_PRECISION, ids=onnx.helper.tensor_dtype_to_string)
def test_every_bit_pattern_widens_as_onnx_decodes_it(data_type: int) -> None:
    t = _every_pattern(data_type)
    want = numpy_helper.to_array(t).astype(np.float32)
    stored = np.frombuffer(t.raw_data, dtype=numpy_helper.to_array(t).dtype)
    _same(widener(stored.dtype)(stored), want)


@pytest.mark.parametrize("data_type", [TensorProto.FLOAT16, TensorProto.BFLOAT16])
def test_chunks_of_a_large_tensor_match_the_whole(data_type: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2 * CHUNK + 123).astype(np.float32)
    x[::1001] = np.nan
    x[5::997] = -0.0
    t = numpy_helper.from_array(x.astype(onnx.helper.tensor_dtype_to_np_dtype(data_type)), "w")
    stored = numpy_helper.to_array(t)
    values = Values(
        stored.reshape(2, -1) if stored.size % 2 == 0 else stored, widener(stored.dtype)
    )
    got = np.concatenate([chunk.copy() for _, chunk in values.chunks()])
    _same(got, stored.astype(np.float32).reshape(-1))
    idx = np.sort(rng.integers(0, stored.size, size=1000))
    _same(values.take(idx), stored.astype(np.float32).reshape(-1)[idx])


def test_double_stays_double_and_integers_become_float32() -> None:
    assert widener(np.dtype(np.float64))(np.ones(3)).dtype == np.float64
    ints = np.array([-128, 0, 127], np.int8)
    np.testing.assert_array_equal(widener(ints.dtype)(ints), ints.astype(np.float32))
