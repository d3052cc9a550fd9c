"""Stored elements read without ml_dtypes are exactly what onnx's own decoder gives."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from initaudit import dtypes, proto

SUPPORTED = sorted(dtypes.STORAGE)
# The types the installed onnx knows too (an older onnx lacks the newest): compared with it.
KNOWN = [t for t in SUPPORTED if t in TensorProto.DataType.values()]
# ml_dtypes' name of each one-byte float type, to compare the code tables with.
ML_DTYPES = {
    TensorProto.FLOAT8E4M3FN: "float8_e4m3fn",
    TensorProto.FLOAT8E4M3FNUZ: "float8_e4m3fnuz",
    TensorProto.FLOAT8E5M2: "float8_e5m2",
    TensorProto.FLOAT8E5M2FNUZ: "float8_e5m2fnuz",
    dtypes.FLOAT4E2M1: "float4_e2m1fn",
    dtypes.FLOAT8E8M0: "float8_e8m0fnu",
    dtypes.FLOAT6E2M3: "float6_e2m3fn",
    dtypes.FLOAT6E3M2: "float6_e3m2fn",
}
_BITS = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def _same(got: np.ndarray, want: np.ndarray) -> None:
    """Equal bit for bit: signed zeros, infinities and NaN payloads included."""
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.dtype in _BITS:
        got, want = got.view(_BITS[want.dtype]), want.view(_BITS[want.dtype])
    np.testing.assert_array_equal(got, want)


def _values(data_type: int, arr: np.ndarray) -> np.ndarray:
    """onnx's array as initaudit reports its values: floats widened, ints as integers."""
    if data_type == TensorProto.DOUBLE:
        return arr.astype(np.float64)
    if dtypes.STORAGE[data_type].is_float:
        return arr.astype(np.float32)
    if data_type in (dtypes.INT4, dtypes.INT2):  # onnx < 1.20 has no INT2
        return arr.astype(np.int8)
    if data_type in (dtypes.UINT4, dtypes.UINT2):
        return arr.astype(np.uint8)
    return arr


def test_every_numeric_onnx_type_is_known() -> None:
    skip = {"UNDEFINED", "STRING", "COMPLEX64", "COMPLEX128"}
    names = proto.TensorProto.DataType.keys()
    assert {proto.TensorProto.DataType.Value(n) for n in names if n not in skip} == set(SUPPORTED)
    theirs = dict(TensorProto.DataType.items())
    assert {v for n, v in theirs.items() if n not in skip} <= set(SUPPORTED)
    assert all(proto.TensorProto.DataType.Value(n) == v for n, v in theirs.items())


@pytest.mark.parametrize("data_type", KNOWN, ids=helper.tensor_dtype_to_string)
@pytest.mark.parametrize("count", [1, 7, 37])
def test_raw_data_reads_as_onnx_reads_it(data_type: int, count: int) -> None:
    """Random bytes, so every code appears (NaN, subnormal, negative zero); odd counts leave
    packed types a partly used last byte."""
    s = dtypes.STORAGE[data_type]
    raw = np.random.default_rng(data_type).bytes((count * s.bits + 7) // 8)
    t = TensorProto(name="w", data_type=data_type, dims=[count], raw_data=raw)
    want = numpy_helper.to_array(t)
    got = dtypes.from_raw(data_type, raw, (count,))
    assert got.tobytes() == np.ascontiguousarray(want).tobytes()  # the same stored codes
    _same(dtypes.to_values(data_type, got), _values(data_type, want))


def _typed(data_type: int, count: int, rng: np.random.Generator) -> TensorProto:
    t = TensorProto(name="w", data_type=data_type, dims=[count])
    field = helper.tensor_dtype_to_field(data_type)
    assert field == dtypes.STORAGE[data_type].field
    per = {4: 2, 2: 4}.get(dtypes.STORAGE[data_type].bits, 1)
    n = -(-count // per)
    if field == "int32_data":  # out-of-range entries too: onnx keeps their low bits
        getattr(t, field).extend(int(v) for v in rng.integers(-(2**31), 2**31, n))
    elif field == "int64_data":
        t.int64_data.extend(int(v) for v in rng.integers(-(2**62), 2**62, n))
    elif field == "uint64_data":
        t.uint64_data.extend(int(v) for v in rng.integers(0, 2**63, n))
    else:
        getattr(t, field).extend(float(v) for v in rng.standard_normal(n))
    return t


@pytest.mark.parametrize("data_type", KNOWN, ids=helper.tensor_dtype_to_string)
def test_typed_fields_read_as_onnx_reads_them(data_type: int) -> None:
    t = _typed(data_type, 37, np.random.default_rng(data_type))
    want = numpy_helper.to_array(t)
    got = dtypes.from_typed(data_type, t, (37,))
    assert got.tobytes() == np.ascontiguousarray(want).tobytes()
    _same(dtypes.to_values(data_type, got), _values(data_type, want))


@pytest.mark.parametrize("data_type", sorted(ML_DTYPES), ids=ML_DTYPES.get)
def test_code_tables_are_ml_dtypes_conversions(data_type: int) -> None:
    """Every code, NaNs' signs and payloads included (an older ml_dtypes lacks some types)."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    if not hasattr(ml_dtypes, ML_DTYPES[data_type]):
        pytest.skip(f"ml_dtypes {ml_dtypes.__version__} has no {ML_DTYPES[data_type]}")
    width = dtypes.STORAGE[data_type].bits
    codes = np.arange(1 << width, dtype=np.uint8)
    want = codes.view(getattr(ml_dtypes, ML_DTYPES[data_type])).astype(np.float32)
    _same(dtypes.code_table(data_type)[: 1 << width], want)


def test_every_one_byte_float_has_a_table_test() -> None:
    one_byte = {t for t in dtypes.FLOAT_TYPES if dtypes.STORAGE[t].dtype.itemsize == 1}
    assert one_byte == set(ML_DTYPES)


def test_widening_keeps_dims() -> None:
    raw = np.arange(12, dtype=np.uint8).tobytes()
    got = dtypes.to_values(TensorProto.FLOAT8E4M3FN, dtypes.from_raw(17, raw, (3, 4)))
    assert got.shape == (3, 4) and got.dtype == np.float32
