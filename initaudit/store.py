"""Validated tensors of a loaded model, read on demand: in place from a memory map for external
data and for the inline data of big files (whose ``raw_data`` wire.py leaves in the file), out
of the protobuf for the rest. Nothing is read until a stage asks for it.

Also the data-type facts every stage shares (which types are floats, packed sub-byte types,
numpy dtypes) and :func:`open_regular`, the one way initaudit opens a file it reads.
"""

from __future__ import annotations

import contextlib
import gc
import math
import mmap
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from initaudit import dtypes
from initaudit.errors import InputError
from initaudit.proto import TensorProto

# Re-exported: the data-type facts are dtypes.py's (onnx's types, without onnx or ml_dtypes).
FLOAT_TYPES = dtypes.FLOAT_TYPES
# Sub-byte types are packed: bits per element.
PACKED_BITS = dtypes.PACKED_BITS


def is_float_type(data_type: int) -> bool:
    """True for the floating types initaudit audits directly."""
    return data_type in FLOAT_TYPES


def dtype_name(data_type: int) -> str:
    """The ONNX spelling, lowercased (``float16``, ``bfloat16``, ``int8``...)."""
    try:
        return str(TensorProto.DataType.Name(data_type)).lower()
    except ValueError:
        return f"type{data_type}"


def np_dtype(data_type: int) -> np.dtype:
    """One stored element: numpy's own type, or a bit pattern of its width (bfloat16,
    float8), or one code a byte for packed types (see dtypes.py)."""
    return dtypes.STORAGE[data_type].dtype


@dataclass(frozen=True, kw_only=True)
class StoredTensor:
    """A tensor as stored in the file, validated but not yet read."""

    name: str
    data_type: int
    dims: tuple[int, ...]
    origin: str  # "initializer", "constant" (Constant node), or "subgraph initializer"
    graph: str  # name of the graph that holds it ("" for the main graph)
    proto: TensorProto = field(repr=False, compare=False)
    # The file whose bytes [mapped_offset, mapped_offset + nbytes) are the tensor's, read
    # through a memory map: an external data file, or (not ``external``) the model file itself,
    # for raw_data left unparsed. None: the values are in ``proto``.
    mapped_path: Path | None = None
    mapped_offset: int = 0
    nbytes: int = 0
    external: bool = False

    @property
    def external_path(self) -> Path | None:
        return self.mapped_path if self.external else None

    @property
    def size(self) -> int:
        return math.prod(self.dims)

    @property
    def dtype(self) -> str:
        return dtype_name(self.data_type)


class TensorStore:
    """Reads validated tensors on demand; external files are memory-mapped once each.

    ``maps`` are maps already open (the model file's own, which parsing made): the store
    reads from them and closes them.
    """

    def __init__(
        self, tensors: dict[str, StoredTensor], maps: dict[Path, mmap.mmap] | None = None
    ) -> None:
        self.tensors = tensors
        self._maps: dict[Path, mmap.mmap] = dict(maps or {})
        self._lock = threading.Lock()  # the stats stage reads tensors from several threads

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def get(self, name: str) -> StoredTensor | None:
        return self.tensors.get(name)

    def _mapped(self, path: Path) -> memoryview:
        with self._lock:
            if path not in self._maps:
                with open_regular(path) as fh:
                    self._maps[path] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            return memoryview(self._maps[path])

    def raw_bytes(self, t: StoredTensor) -> bytes | memoryview:
        if t.mapped_path is not None:
            if t.nbytes == 0:
                return b""
            data = self._mapped(t.mapped_path)[t.mapped_offset : t.mapped_offset + t.nbytes]
            if len(data) != t.nbytes:  # the file shrank since it was validated
                raise InputError(
                    "external-data-invalid" if t.external else "truncated",
                    f"tensor {tensor_label(t.name)} data changed while read",
                )
            return data
        return t.proto.raw_data

    def read(self, name: str) -> np.ndarray:
        """The tensor's values with its dims, as float32/float64 for float types.

        fp16, bf16 and the float8 types are widened to float32 (exact for all of them), so
        statistics never run in reduced precision. Integer types keep their numpy dtype, and
        4- and 2-bit integers become int8/uint8 (quantized weights are dequantized by the
        stats stage, which knows scale and zero point).
        """
        values = dtypes.to_values(self.tensors[name].data_type, self.stored(name))
        # raw_data read in place lies at any byte offset; numpy reduces unaligned arrays in
        # another order (stats/decode.py), so what is read whole is copied to aligned memory.
        return values if values.flags.aligned else values.copy()

    def stored(self, name: str) -> np.ndarray:
        """The tensor's elements as stored (float16, int8...) with its dims: types numpy
        lacks as bit patterns (bfloat16 as uint16, float8 as uint8), packed types one code
        a byte; ``stats.decode.widener_for`` widens them.

        Memory-mapped data gives a view of the map: nothing is read until it is used. Inline
        ``raw_data`` parsed into the protobuf is copied out of it (protobuf hands out copies),
        so read such a tensor once per use and drop it.
        """
        t = self.tensors[name]
        if t.mapped_path is None and not t.proto.HasField("raw_data"):
            return dtypes.from_typed(t.data_type, t.proto, t.dims)
        return dtypes.from_raw(t.data_type, self.raw_bytes(t), t.dims)

    def releaser(self, name: str) -> Callable[[int, int], None]:
        """A hook that gives back the memory-mapped pages of flat elements [start, stop).

        Pages a scan has read stay resident (and count in the process's RSS) until the map
        is closed; a model bigger than RAM would otherwise end up all resident. The file's
        pages stay in the page cache, so reading them again costs a minor fault, not I/O.
        """
        t = self.tensors[name]
        if t.mapped_path is None or t.data_type in PACKED_BITS or t.nbytes == 0:
            return _keep_pages
        item = np_dtype(t.data_type).itemsize
        path = t.mapped_path

        def release(start: int, stop: int) -> None:
            lo = (t.mapped_offset + start * item) // mmap.PAGESIZE * mmap.PAGESIZE
            hi = t.mapped_offset + stop * item
            mapped = self._maps.get(path)
            if mapped is not None and hasattr(mmap, "MADV_DONTNEED") and hi > lo:
                mapped.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

        return release

    def close(self) -> None:
        """Unmap every file.

        After an interrupted scan, views of a map may survive in reference cycles (a worker's
        exception, its frames and its future): collect those and close again. A map that is
        still viewed after that is dropped here and unmapped when its last view goes.
        """
        busy = []
        for m in self._maps.values():
            try:
                m.close()
            except BufferError:
                busy.append(m)
        if busy:
            gc.collect()
            for m in busy:
                with contextlib.suppress(BufferError):
                    m.close()
        self._maps.clear()


def _keep_pages(start: int, stop: int) -> None:
    """Release hook of tensors that are not memory-mapped."""


def open_regular(path: Path) -> BinaryIO:
    """Open for reading without blocking, then check the descriptor is a regular file.

    The path may have been swapped for a FIFO since it was stat'ed: O_NONBLOCK keeps open()
    from waiting for a writer, and fstat on the descriptor sees what was really opened.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError("not-a-file", "is not a regular file (it changed while being read)")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def short(text: str) -> str:
    """``repr`` of a name taken from the file, cut so an error stays one readable line."""
    return repr(text) if len(text) <= 80 else repr(text[:77] + "...")


def tensor_label(name: str) -> str:
    return short(name) if name else "(unnamed tensor)"
