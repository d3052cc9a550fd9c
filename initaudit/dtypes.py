"""ONNX tensor data types in numpy's terms, without onnx or ml_dtypes.

onnx maps bfloat16, the float8/float6/float4 types and the sub-byte integers to ml_dtypes'
numpy types, and importing ml_dtypes costs more than importing numpy. initaudit does not need
them as types: it reads each element as it is stored (a bit pattern: ``uint16`` for bfloat16,
one ``uint8`` code per element for the others, packed types unpacked) and widens the codes to
float32 through a lookup table computed here from the format's definition (the OCP 8-bit
floating point and MX specifications, as ONNX's ``docs/Float8.md`` and ``docs/Float4.md``
cite them). ``tests/dtypes_test.py`` checks every code of every type against onnx's own decoder.

The element codes are the bytes onnx's decoder leaves in its ml_dtypes arrays, so whatever
hashes or compares stored elements sees exactly what it saw before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from initaudit.proto import TensorProto

# ONNX TensorProto.DataType codes (onnx.proto), spelled as there.
FLOAT, UINT8, INT8, UINT16, INT16, INT32, INT64, BOOL = 1, 2, 3, 4, 5, 6, 7, 9
FLOAT16, DOUBLE, UINT32, UINT64, BFLOAT16 = 10, 11, 12, 13, 16
FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ = 17, 18, 19, 20
UINT4, INT4, FLOAT4E2M1, FLOAT8E8M0, UINT2, INT2, FLOAT6E2M3, FLOAT6E3M2 = range(21, 29)


@dataclass(frozen=True, kw_only=True)
class Storage:
    """How one data type's elements are stored.

    ``dtype`` is one element as initaudit reads it: the numpy type itself where numpy has one,
    else an unsigned bit pattern of the element's width, or one code a byte for the packed
    types, whose ``bits`` say how many bits an element takes in ``raw_data``.
    ``field`` is the typed field that holds the values when ``raw_data`` is absent.
    """

    dtype: np.dtype
    field: str
    bits: int
    is_float: bool


def _s(dtype: str, field: str, is_float: bool = False, bits: int = 0) -> Storage:
    dt = np.dtype(dtype)
    return Storage(dtype=dt, field=field, bits=bits or 8 * dt.itemsize, is_float=is_float)


# Every numeric type initaudit reads: neither string nor complex (onnx-ml.proto, onnx 1.23).
STORAGE: dict[int, Storage] = {
    FLOAT: _s("<f4", "float_data", True),
    UINT8: _s("u1", "int32_data"),
    INT8: _s("i1", "int32_data"),
    UINT16: _s("<u2", "int32_data"),
    INT16: _s("<i2", "int32_data"),
    INT32: _s("<i4", "int32_data"),
    INT64: _s("<i8", "int64_data"),
    BOOL: _s("?", "int32_data"),
    FLOAT16: _s("<f2", "int32_data", True),
    DOUBLE: _s("<f8", "double_data", True),
    UINT32: _s("<u4", "uint64_data"),
    UINT64: _s("<u8", "uint64_data"),
    BFLOAT16: _s("<u2", "int32_data", True),
    FLOAT8E4M3FN: _s("u1", "int32_data", True),
    FLOAT8E4M3FNUZ: _s("u1", "int32_data", True),
    FLOAT8E5M2: _s("u1", "int32_data", True),
    FLOAT8E5M2FNUZ: _s("u1", "int32_data", True),
    UINT4: _s("u1", "int32_data", bits=4),
    INT4: _s("u1", "int32_data", bits=4),
    FLOAT4E2M1: _s("u1", "int32_data", True, bits=4),
    FLOAT8E8M0: _s("u1", "int32_data", True),
    UINT2: _s("u1", "int32_data", bits=2),
    INT2: _s("u1", "int32_data", bits=2),
    FLOAT6E2M3: _s("u1", "int32_data", True, bits=6),
    FLOAT6E3M2: _s("u1", "int32_data", True, bits=6),
}
FLOAT_TYPES = frozenset(code for code, s in STORAGE.items() if s.is_float)
# Sub-byte types are packed in raw_data: bits per element.
PACKED_BITS = {code: s.bits for code, s in STORAGE.items() if s.bits < 8}
# Signed sub-byte integers: their codes are two's complement of this many bits.
_SIGNED_BITS = {INT4: 4, INT2: 2}


def from_raw(data_type: int, raw: bytes | memoryview, dims: tuple[int, ...]) -> np.ndarray:
    """The stored elements of ``raw_data`` (or external data) with the tensor's dims.

    Unpacked types give a read-only view of ``raw``; packed ones a new array of codes.
    The caller has checked that ``raw`` holds exactly the bytes the dims need.
    """
    s = STORAGE[data_type]
    if s.bits >= 8:
        return np.frombuffer(raw, dtype=s.dtype).reshape(dims)
    return _unpack(np.frombuffer(raw, dtype=np.uint8), s.bits, math.prod(dims)).reshape(dims)


def from_typed(data_type: int, t: TensorProto, dims: tuple[int, ...]) -> np.ndarray:
    """The stored elements of a tensor without ``raw_data``, as onnx's ``to_array`` reads
    them: 8- and 16-bit types keep one element (a bit pattern) in the low bits of an
    int32_data entry, packed types a byte of codes, 6-bit floats a code in the low 6 bits."""
    s = STORAGE[data_type]
    values = getattr(t, s.field)
    if s.field != "int32_data" or data_type == INT32:
        return np.asarray(values, dtype=_FIELD_DTYPE[s.field]).astype(s.dtype).reshape(dims)
    low = np.asarray(values, dtype=np.int32).view(np.uint32)
    if s.bits in (4, 2):
        return _unpack(low.astype(np.uint8), s.bits, math.prod(dims)).reshape(dims)
    if s.bits == 6:
        return (low.astype(np.uint8) & 0x3F).reshape(dims)
    if s.dtype.itemsize == 2:
        return low.astype(np.uint16).view(s.dtype).reshape(dims)
    if data_type in (INT8, UINT8):  # the plain conversion, wrapping as numpy's astype does
        return np.asarray(values, dtype=np.int32).astype(s.dtype).reshape(dims)
    return low.astype(np.uint8).view(s.dtype).reshape(dims)  # float8 codes, bool


_FIELD_DTYPE = {
    "float_data": np.float32,
    "int32_data": np.int32,
    "int64_data": np.int64,
    "double_data": np.float64,
    "uint64_data": np.uint64,
}


def _unpack(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """``count`` codes of ``bits`` bits from a little-endian bit stream (ONNX's packing:
    the first element in the lowest bits; 6-bit codes span byte boundaries)."""
    if bits == 6:
        groups = -(-count // 4)
        data = np.zeros(groups * 3, np.uint8)
        data[: min(packed.size, data.size)] = packed[: data.size]
        b0, b1, b2 = (data[i::3] for i in range(3))
        out = np.empty((groups, 4), np.uint8)
        out[:, 0] = b0 & 0x3F
        out[:, 1] = (b0 >> 6) | ((b1 & 0x0F) << 2)
        out[:, 2] = (b1 >> 4) | ((b2 & 0x03) << 4)
        out[:, 3] = b2 >> 2
        return out.reshape(-1)[:count]
    shifts = np.arange(0, 8, bits, dtype=np.uint8)
    codes = (packed[:, None] >> shifts) & np.uint8((1 << bits) - 1)
    return codes.reshape(-1)[:count]


def to_values(data_type: int, stored: np.ndarray) -> np.ndarray:
    """The elements' values: float types as float32 (float64 for double), exactly; signed
    sub-byte integers sign-extended to int8; every other integer type as stored."""
    if data_type == DOUBLE:
        return stored.astype(np.float64, copy=False)
    if data_type in (FLOAT, FLOAT16):
        return stored.astype(np.float32, copy=False)
    if data_type == BFLOAT16:
        bits: np.ndarray = np.left_shift(stored.view("<u2"), 16, dtype=np.uint32)
        return bits.view(np.float32)
    if data_type in FLOAT_TYPES:
        return code_table(data_type).take(stored.view(np.uint8), mode="clip")
    if data_type in _SIGNED_BITS:
        half = 1 << (_SIGNED_BITS[data_type] - 1)
        return ((stored.view(np.uint8).astype(np.int8) ^ half) - half).astype(np.int8)
    return stored


@dataclass(frozen=True, kw_only=True)
class _Format:
    """A small float format: sign bit (or none), exponent and mantissa bits, exponent bias,
    and which codes are NaN or infinite."""

    exponent: int
    mantissa: int
    bias: int
    signed: bool = True
    nan: str = "none"  # "ieee": all-ones exponent; "all-ones": S.111..1; "neg-zero": 0x80
    inf: bool = False


_FORMATS = {
    FLOAT8E4M3FN: _Format(exponent=4, mantissa=3, bias=7, nan="all-ones"),
    FLOAT8E4M3FNUZ: _Format(exponent=4, mantissa=3, bias=8, nan="neg-zero"),
    FLOAT8E5M2: _Format(exponent=5, mantissa=2, bias=15, nan="ieee", inf=True),
    FLOAT8E5M2FNUZ: _Format(exponent=5, mantissa=2, bias=16, nan="neg-zero"),
    FLOAT8E8M0: _Format(exponent=8, mantissa=0, bias=127, signed=False, nan="all-ones"),
    FLOAT4E2M1: _Format(exponent=2, mantissa=1, bias=1),
    FLOAT6E2M3: _Format(exponent=2, mantissa=3, bias=1),
    FLOAT6E3M2: _Format(exponent=3, mantissa=2, bias=3),
}


@cache
def code_table(data_type: int) -> np.ndarray:
    """float32 value of each of the 256 byte codes of a one-byte (or packed) type.

    Codes past the type's width (none occur: unpacking masks them) read the low bits. NaN is
    the quiet NaN with the code's sign, as ml_dtypes widens it; subnormals are exact.
    """
    codes = np.arange(256, dtype=np.int64)
    if data_type in _SIGNED_BITS or data_type in (UINT4, UINT2):
        width = PACKED_BITS[data_type]
        low = codes & ((1 << width) - 1)
        half = 1 << (width - 1)
        vals = ((low ^ half) - half) if data_type in _SIGNED_BITS else low
        table = vals.astype(np.float32)
    else:
        table = _float_table(_FORMATS[data_type], codes)
    table.flags.writeable = False
    return table


def _float_table(f: _Format, codes: np.ndarray) -> np.ndarray:
    width = f.exponent + f.mantissa + int(f.signed)
    low = codes & ((1 << width) - 1)
    sign = (low >> (width - 1)) & 1 if f.signed else np.zeros_like(low)
    e = (low >> f.mantissa) & ((1 << f.exponent) - 1)
    m = low & ((1 << f.mantissa) - 1)
    frac = m / float(1 << f.mantissa)
    if f.mantissa == 0:  # E8M0 is a bare power of two: no zero, no subnormals
        mag = np.ldexp(1.0, e - f.bias)
    else:
        mag = np.where(e == 0, np.ldexp(frac, 1 - f.bias), np.ldexp(1.0 + frac, e - f.bias))
    with np.errstate(over="ignore"):  # E8M0's all-ones code overflows; it is NaN below
        table: np.ndarray = np.where(sign == 1, -mag, mag).astype(np.float32)
    bits = table.view(np.uint32)
    e_max, m_max = (1 << f.exponent) - 1, (1 << f.mantissa) - 1
    if f.nan == "ieee":
        nan = (e == e_max) & (m != 0)
        inf = (e == e_max) & (m == 0)
        bits[inf] = np.where(sign[inf] == 1, 0xFF80_0000, 0x7F80_0000)
    elif f.nan == "all-ones":
        nan = (e == e_max) & (m == m_max)
    elif f.nan == "neg-zero":
        nan = low == 1 << (width - 1)
    else:
        nan = np.zeros(low.shape, bool)
    bits[nan] = np.where(sign[nan] == 1, 0xFFC0_0000, 0x7FC0_0000)
    return table
