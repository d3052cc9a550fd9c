"""Stage 1: a model path becomes a :class:`LoadedModel`, or an :class:`InputError`.

Everything a hostile or broken file can do wrong is caught here, before any analysis: the
later stages may trust that every tensor's dims, data type and stored bytes agree, and that
external data resolves to a regular file inside the model's folder. Nothing is ever written,
and no allocation is sized from a claim the file does not back with bytes.

External data is memory-mapped, never read whole: a multi-GB model costs address space, not
RAM (see README "Performance").
"""

from __future__ import annotations

import math
import mmap
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from initaudit.errors import InputError

# Protobuf cannot hold more than 2 GiB; a bigger .onnx file is not a ModelProto.
MAX_MODEL_BYTES = 2**31
# Deeper nesting of If/Loop/Scan bodies than this is hostile, not a model.
MAX_SUBGRAPH_DEPTH = 64

_FLOAT_TYPES = {
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.BFLOAT16,
    onnx.TensorProto.DOUBLE,
    onnx.TensorProto.FLOAT8E4M3FN,
    onnx.TensorProto.FLOAT8E4M3FNUZ,
    onnx.TensorProto.FLOAT8E5M2,
    onnx.TensorProto.FLOAT8E5M2FNUZ,
    *(
        getattr(onnx.TensorProto, n)
        for n in ("FLOAT4E2M1", "FLOAT8E8M0", "FLOAT6E2M3", "FLOAT6E3M2")
        if hasattr(onnx.TensorProto, n)
    ),
}
# Sub-byte types are packed: bits per element.
_PACKED_BITS = {
    getattr(onnx.TensorProto, n): bits
    for n, bits in (
        ("INT4", 4),
        ("UINT4", 4),
        ("FLOAT4E2M1", 4),
        ("INT2", 2),
        ("UINT2", 2),
        ("FLOAT6E2M3", 6),
        ("FLOAT6E3M2", 6),
    )
    if hasattr(onnx.TensorProto, n)
}
# Numeric types that are neither string nor complex: the ones initaudit can reason about.
_UNSUPPORTED = {
    onnx.TensorProto.UNDEFINED,
    onnx.TensorProto.STRING,
    onnx.TensorProto.COMPLEX64,
    onnx.TensorProto.COMPLEX128,
}


def is_float_type(data_type: int) -> bool:
    """True for the floating types initaudit audits directly."""
    return data_type in _FLOAT_TYPES


def dtype_name(data_type: int) -> str:
    """The ONNX spelling, lowercased (``float16``, ``bfloat16``, ``int8``...)."""
    try:
        return str(onnx.TensorProto.DataType.Name(data_type)).lower()
    except ValueError:
        return f"type{data_type}"


def _np_dtype(data_type: int) -> np.dtype:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type)).newbyteorder("<")


@dataclass(frozen=True)
class StoredTensor:
    """A tensor as stored in the file, validated but not yet read."""

    name: str
    data_type: int
    dims: tuple[int, ...]
    origin: str  # "initializer", "constant" (Constant node), or "subgraph initializer"
    graph: str  # name of the graph that holds it ("" for the main graph)
    proto: onnx.TensorProto = field(repr=False, compare=False)
    external_path: Path | None = None
    external_offset: int = 0
    nbytes: int = 0

    @property
    def size(self) -> int:
        return math.prod(self.dims)

    @property
    def dtype(self) -> str:
        return dtype_name(self.data_type)


class TensorStore:
    """Reads validated tensors on demand; external files are memory-mapped once each."""

    def __init__(self, tensors: dict[str, StoredTensor]) -> None:
        self.tensors = tensors
        self._maps: dict[Path, mmap.mmap] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def get(self, name: str) -> StoredTensor | None:
        return self.tensors.get(name)

    def _mapped(self, path: Path) -> memoryview:
        if path not in self._maps:
            with open(path, "rb") as fh:
                self._maps[path] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        return memoryview(self._maps[path])

    def raw_bytes(self, t: StoredTensor) -> bytes | memoryview:
        if t.external_path is not None:
            if t.nbytes == 0:
                return b""
            return self._mapped(t.external_path)[t.external_offset : t.external_offset + t.nbytes]
        return t.proto.raw_data

    def read(self, name: str) -> np.ndarray:
        """The tensor's values with its dims, as float32/float64 for float types.

        fp16, bf16 and the float8 types are widened to float32 (exact for all of them), so
        statistics never run in reduced precision. Integer types keep their numpy dtype
        (quantized weights are dequantized by the stats stage, which knows scale and zero point).
        """
        t = self.tensors[name]
        if t.data_type in _PACKED_BITS or (
            t.external_path is None and not t.proto.HasField("raw_data")
        ):
            arr = self._read_via_onnx(t)
        else:
            arr = np.frombuffer(self.raw_bytes(t), dtype=_np_dtype(t.data_type)).reshape(t.dims)
        return _widen(arr, t.data_type)

    def _read_via_onnx(self, t: StoredTensor) -> np.ndarray:
        # Typed fields (float_data, int32_data...) and packed sub-byte types: onnx's own
        # decoder knows every storage rule; these tensors are small in practice.
        if t.external_path is None:
            return onnx.numpy_helper.to_array(t.proto)
        proxy = onnx.TensorProto()
        proxy.data_type = t.data_type
        proxy.dims.extend(t.dims)
        proxy.raw_data = bytes(self.raw_bytes(t))
        return onnx.numpy_helper.to_array(proxy)

    def close(self) -> None:
        for m in self._maps.values():
            m.close()
        self._maps.clear()


def _widen(arr: np.ndarray, data_type: int) -> np.ndarray:
    if data_type == onnx.TensorProto.DOUBLE:
        return arr.astype(np.float64, copy=False)
    if data_type in _FLOAT_TYPES:
        return arr.astype(np.float32, copy=False)
    return arr


@dataclass
class LoadedModel:
    """The parsed model (external data not loaded) and a store to read any tensor by name."""

    path: Path
    model: onnx.ModelProto
    store: TensorStore

    def close(self) -> None:
        self.store.close()


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Parse and validate ``path``; raise :class:`InputError` with a stable code on any problem."""
    p = Path(path)
    data = _read_model_bytes(p)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError):
        raise InputError(
            "not-onnx", "not an ONNX model (the protobuf does not parse: corrupt or truncated)"
        ) from None
    _check_model_header(model)
    base = p.resolve().parent
    tensors: dict[str, StoredTensor] = {}
    for graph_name, t, origin in _iter_tensors(model):
        stored = _validate_tensor(t, origin, graph_name, base)
        tensors.setdefault(stored.name, stored)
    return LoadedModel(path=p, model=model, store=TensorStore(tensors))


def _read_model_bytes(p: Path) -> bytes:
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InputError("not-found", "no such file") from None
    except OSError as exc:
        raise InputError("unreadable", f"cannot stat: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError("not-a-file", "is a directory, not an ONNX file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError("not-a-file", "is not a regular file (device, FIFO or socket)")
    if st.st_size == 0:
        raise InputError("empty", "file is empty")
    if st.st_size > MAX_MODEL_BYTES:
        raise InputError(
            "too-large", f"file is {st.st_size} bytes; an ONNX protobuf cannot exceed 2 GiB"
        )
    try:
        with open(p, "rb") as fh:
            # Re-check on the open descriptor: the path may have been swapped meanwhile.
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise InputError("not-a-file", "is not a regular file")
            return fh.read(MAX_MODEL_BYTES + 1)
    except OSError as exc:
        raise InputError("unreadable", f"cannot read: {exc.strerror or exc}") from None


def _check_model_header(model: onnx.ModelProto) -> None:
    # Protobuf parsing is lenient: random bytes, a truncated file cut at a field boundary, or
    # another message type can all "parse". A real ModelProto has an IR version and a graph.
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise InputError("not-onnx", "not an ONNX model (no IR version or no graph)")
    if model.ir_version >= 3 and not model.opset_import:
        raise InputError(
            "invalid-model", "model declares no opset_import (truncated or hand-edited file?)"
        )


def _iter_tensors(model: onnx.ModelProto) -> Iterator[tuple[str, onnx.TensorProto, str]]:
    """Every stored tensor: initializers and Constant values of all graphs and functions."""
    stack: list[tuple[onnx.GraphProto, int, bool]] = [(model.graph, 0, False)]
    node_lists: list[tuple[str, list[onnx.NodeProto], int]] = []
    while stack:
        g, depth, is_sub = stack.pop()
        if depth > MAX_SUBGRAPH_DEPTH:
            raise InputError(
                "invalid-model", f"subgraphs nested deeper than {MAX_SUBGRAPH_DEPTH} levels"
            )
        origin = "subgraph initializer" if is_sub else "initializer"
        for t in g.initializer:
            yield g.name if is_sub else "", t, origin
        for sp in g.sparse_initializer:
            # Sparse initializers are validated as their parts; they are not audited.
            yield g.name, sp.values, "sparse values"
            yield g.name, sp.indices, "sparse indices"
        node_lists.append((g.name if is_sub else "", list(g.node), depth))
        for node in g.node:
            for attr in node.attribute:
                subs = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
                stack.extend((sg, depth + 1, True) for sg in reversed(subs))
    for fn in model.functions:
        node_lists.append((fn.name, list(fn.node), 0))
    for graph_name, nodes, _depth in node_lists:
        for node in nodes:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                for attr in node.attribute:
                    if attr.name == "value" and attr.HasField("t"):
                        t = onnx.TensorProto()
                        t.CopyFrom(attr.t)
                        t.name = node.output[0]
                        yield graph_name, t, "constant"


def _validate_tensor(t: onnx.TensorProto, origin: str, graph: str, base: Path) -> StoredTensor:
    name = t.name
    label = repr(name) if name else "(unnamed tensor)"
    dt = t.data_type
    if dt in _UNSUPPORTED or dt not in onnx.TensorProto.DataType.values():
        raise InputError("bad-tensor", f"tensor {label} has unsupported data type {dt}")
    if any(d < 0 for d in t.dims):
        raise InputError("bad-tensor", f"tensor {label} has a negative dimension {list(t.dims)}")
    dims = tuple(int(d) for d in t.dims)
    numel = math.prod(dims)
    nbytes = _storage_bytes(dt, numel)
    if t.data_location == onnx.TensorProto.EXTERNAL:
        path, offset, length = _resolve_external(t, label, base, nbytes)
        return StoredTensor(name, dt, dims, origin, graph, t, path, offset, length)
    if t.external_data:
        raise InputError(
            "external-data-invalid",
            f"tensor {label} has external_data entries but data_location is not EXTERNAL",
        )
    if t.HasField("raw_data"):
        have = len(t.raw_data)
        if have != nbytes:
            raise InputError(
                "bad-tensor",
                f"tensor {label} dims {list(dims)} need {nbytes} bytes of {dtype_name(dt)} "
                f"but raw_data holds {have}",
            )
    else:
        fld = onnx.helper.tensor_dtype_to_field(dt)
        have = len(getattr(t, fld))
        want = _typed_field_count(dt, numel)
        if have != want:
            raise InputError(
                "bad-tensor",
                f"tensor {label} dims {list(dims)} need {want} values in {fld} but it holds {have}",
            )
    return StoredTensor(name, dt, dims, origin, graph, t, None, 0, nbytes)


def _storage_bytes(dt: int, numel: int) -> int:
    if dt in _PACKED_BITS:
        return (numel * _PACKED_BITS[dt] + 7) // 8
    return numel * _np_dtype(dt).itemsize


def _typed_field_count(dt: int, numel: int) -> int:
    if dt in _PACKED_BITS:
        per_int = {4: 2, 2: 4}.get(_PACKED_BITS[dt], 1)
        return (numel + per_int - 1) // per_int
    return numel


def _resolve_external(
    t: onnx.TensorProto, label: str, base: Path, nbytes: int
) -> tuple[Path, int, int]:
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    if not location:
        raise InputError(
            "external-data-invalid", f"tensor {label} is marked external but has no location"
        )
    try:
        offset = int(info.get("offset", "0") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        raise InputError(
            "external-data-invalid", f"tensor {label} has a non-numeric external offset/length"
        ) from None
    if offset < 0 or (length is not None and length < 0):
        raise InputError("external-data-invalid", f"tensor {label} has a negative offset/length")
    if "\x00" in location or os.path.isabs(location) or location.startswith(("/", "\\")):
        raise InputError(
            "external-data-escapes",
            f"tensor {label} external data location {location!r} is absolute; "
            "it must be relative to the model's folder",
        )
    candidate = base / location
    real_base = os.path.realpath(base)
    real = os.path.realpath(candidate)
    if os.path.commonpath([real_base, real]) != real_base:
        raise InputError(
            "external-data-escapes",
            f"tensor {label} external data {location!r} resolves outside the model's folder",
        )
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise InputError(
            "external-data-missing", f"tensor {label} external data file {location!r} is missing"
        ) from None
    except OSError as exc:
        raise InputError(
            "external-data-missing",
            f"tensor {label} external data file {location!r} cannot be read: {exc.strerror}",
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            "external-data-invalid",
            f"tensor {label} external data {location!r} is not a regular file",
        )
    if length is None:
        length = nbytes
    if length != nbytes:
        raise InputError(
            "bad-tensor",
            f"tensor {label} needs {nbytes} bytes but its external length is {length}",
        )
    if offset + length > st.st_size:
        raise InputError(
            "external-data-invalid",
            f"tensor {label} external data {location!r} [{offset}, {offset + length}) runs past "
            f"the end of the file ({st.st_size} bytes)",
        )
    return Path(real), offset, length
