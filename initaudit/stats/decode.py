"""Stored elements to float values, a bounded chunk at a time.

fp16, bf16 and the float8/float4 types are widened to float32, which is exact for all of them,
so statistics never run in reduced precision; double stays float64; integer types (a weight
that is not dequantized) become float32 as numpy's ``astype`` makes them.

numpy's own half-to-float conversion runs at ~0.6 GB/s on this project's reference machine;
a lookup in a 65536-entry table (256 KB, cache-resident) into a reused buffer is ~1.5-3x
faster and bit-identical, because the table is built by that same conversion (``mode="clip"``
skips a bounds check that cannot fail, and is what makes ``take`` fast). bfloat16 is the
upper half of a float32, so a 16-bit shift is exact (ml_dtypes' conversion measured slower).
One-byte floats use a 256-entry table. ``tests/stats/decode_test.py`` checks every conversion
against ``onnx.numpy_helper.to_array``.

The store hands out the types numpy lacks (bfloat16, float8, the packed types) as bit patterns
and codes, not as ml_dtypes types, so :func:`widener_for` picks the conversion by ONNX data
type; :func:`widener` takes a numpy dtype (ml_dtypes' included, as onnx's decoder gives them).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

from initaudit import dtypes

# widen(stored, out=None): ``out`` (float32, the stored selection's size) may receive the
# values of 1-D selections; the result is ``out``, a view of ``stored`` or a new array.
Widen = Callable[..., np.ndarray]


@cache
def _table(dtype: np.dtype) -> np.ndarray:
    """float32 value of every bit pattern of a 1- or 2-byte float type."""
    bits = np.arange(1 << (8 * dtype.itemsize), dtype=np.uint8 if dtype.itemsize == 1 else "<u2")
    return bits.view(dtype).astype(np.float32)


def _by_table(dtype: np.dtype) -> Widen:
    return _lookup(_table(dtype), np.dtype(np.uint8) if dtype.itemsize == 1 else np.dtype("<u2"))


def _lookup(table: np.ndarray, view: np.dtype) -> Widen:
    def widen(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(table.take(a.view(view), out=out, mode="clip"))

    return widen


def _bfloat16(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    bits = None if out is None else out.view(np.uint32)
    return np.asarray(np.left_shift(a.view("<u2"), 16, out=bits, dtype=np.uint32).view(np.float32))


# raw_data read in place from a model file's map (wire.py) lies at any byte offset. numpy
# reduces an unaligned array through buffers, in another order: on the 0.5 GB inline benchmark
# model a mean came out 1.94085e-07 instead of 1.94086e-07. So unaligned elements are copied
# to aligned memory (``out`` when given) before anything is computed from them; aligned ones
# stay a view.


def _to_float32(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if a.flags.aligned or a.dtype != np.float32:
        return a.astype(np.float32, copy=False)
    if out is None:
        return a.copy()
    np.copyto(out, a)
    return out


def _to_float64(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return a.astype(np.float64, copy=not a.flags.aligned)


def widener(dtype: np.dtype) -> Widen:
    """The exact elementwise conversion of stored ``dtype`` elements to float32/float64.

    Works on any view or selection of the stored array (a chunk, rows, gathered elements), so
    a tensor is never converted whole.
    """
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        return _to_float64
    if dtype.name == "bfloat16":
        return _bfloat16
    if dtype == np.float16 or (dtype.itemsize == 1 and _is_float(dtype)):
        return _by_table(dtype)
    return _to_float32


def widener_for(data_type: int) -> Widen:
    """:func:`widener` for a tensor of ONNX ``data_type`` as ``TensorStore.stored`` gives
    it: bfloat16 as uint16 bit patterns, float8/float6/float4 and 4-/2-bit integers as one
    code a byte, widened through the code's table (dtypes.py)."""
    if data_type == dtypes.BFLOAT16:
        return _bfloat16
    storage = dtypes.STORAGE[data_type]
    if storage.dtype.itemsize == 1 and (storage.is_float or storage.bits < 8):
        return _lookup(dtypes.code_table(data_type), np.dtype(np.uint8))
    return widener(storage.dtype)


def _is_float(dtype: np.dtype) -> bool:
    # ml_dtypes' float8/float4 types have numpy kind "V" or "f"; integers are "i"/"u".
    return dtype.kind not in "iub"
