"""Stage 1: a model path becomes a :class:`LoadedModel`, or an :class:`InputError`.

Everything a hostile or broken file can do wrong is caught here, before any analysis: the
later stages may trust that every tensor's dims, data type and stored bytes agree, and that
external data resolves to a regular file inside the model's folder. Nothing is ever written,
and no allocation is sized from a claim the file does not back with bytes. The ``MAX_*``
limits below bound the work a hostile file can cause (rank, nesting, expanded node count),
and every string the later stages read is ``str``.

External data is memory-mapped, never read whole: a multi-GB model costs address space, not
RAM (see README "Performance").
"""

from __future__ import annotations

import math
import mmap
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from initaudit.errors import InputError

# Protobuf cannot hold more than 2 GiB; a bigger .onnx file is not a ModelProto.
MAX_MODEL_BYTES = 2**31
# Deeper nesting of If/Loop/Scan bodies than this is hostile, not a model. (upb, protobuf's
# default parser, already refuses messages nested deeper than 100, about 32 subgraph levels.)
MAX_SUBGRAPH_DEPTH = 64
# Calls of model-local functions are expanded this many levels deep (a function may call
# itself); the graph stage imports it so that the count below matches what it builds.
MAX_FUNCTION_DEPTH = 16
# Nodes after expanding every function call. Real exports have up to a few 1e4; a function
# that calls itself twice per body would expand to 2**16 times its size, 4 calls to 4**16.
# Later stages cost tens of microseconds per node, so this bounds a hostile file to ~30 s.
MAX_NODES = 500_000
# numpy arrays have at most 64 axes (32 before numpy 2); ONNX weights have at most 5.
MAX_RANK = 32
# A shape whose element count (ignoring zero axes) times item size exceeds this cannot be
# addressed even when it holds no elements: numpy refuses to create it.
_MAX_ADDRESSABLE = 2**62

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
_KNOWN_TYPES = frozenset(onnx.TensorProto.DataType.values())


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
        self._lock = threading.Lock()  # the stats stage reads tensors from several threads

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def get(self, name: str) -> StoredTensor | None:
        return self.tensors.get(name)

    def _mapped(self, path: Path) -> memoryview:
        with self._lock:
            if path not in self._maps:
                with _open_regular(path) as fh:
                    self._maps[path] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            return memoryview(self._maps[path])

    def raw_bytes(self, t: StoredTensor) -> bytes | memoryview:
        if t.external_path is not None:
            if t.nbytes == 0:
                return b""
            data = self._mapped(t.external_path)[t.external_offset : t.external_offset + t.nbytes]
            if len(data) != t.nbytes:  # the file shrank since it was validated
                raise InputError(
                    "external-data-invalid", f"tensor {_label(t.name)} data changed while read"
                )
            return data
        return t.proto.raw_data

    def read(self, name: str) -> np.ndarray:
        """The tensor's values with its dims, as float32/float64 for float types.

        fp16, bf16 and the float8 types are widened to float32 (exact for all of them), so
        statistics never run in reduced precision. Integer types keep their numpy dtype
        (quantized weights are dequantized by the stats stage, which knows scale and zero point).
        """
        return _widen(self.stored(name), self.tensors[name].data_type)

    def stored(self, name: str) -> np.ndarray:
        """The tensor's elements as stored (float16, bfloat16, int8...) with its dims.

        External data gives a view of the memory map: nothing is read until it is used.
        Inline ``raw_data`` is copied out of the protobuf (protobuf hands out copies), so read
        an inline tensor once per use and drop it.
        """
        t = self.tensors[name]
        if t.data_type in _PACKED_BITS or (
            t.external_path is None and not t.proto.HasField("raw_data")
        ):
            return self._read_via_onnx(t)
        return np.frombuffer(self.raw_bytes(t), dtype=_np_dtype(t.data_type)).reshape(t.dims)

    def releaser(self, name: str) -> Callable[[int, int], None]:
        """A hook that gives back the memory-mapped pages of flat elements [start, stop).

        Pages a scan has read stay resident (and count in the process's RSS) until the map
        is closed; a model bigger than RAM would otherwise end up all resident. The file's
        pages stay in the page cache, so reading them again costs a minor fault, not I/O.
        """
        t = self.tensors[name]
        if t.external_path is None or t.data_type in _PACKED_BITS or t.nbytes == 0:
            return _keep_pages
        item = _np_dtype(t.data_type).itemsize
        path = t.external_path

        def release(start: int, stop: int) -> None:
            lo = (t.external_offset + start * item) // mmap.PAGESIZE * mmap.PAGESIZE
            hi = t.external_offset + stop * item
            mapped = self._maps.get(path)
            if mapped is not None and hasattr(mmap, "MADV_DONTNEED") and hi > lo:
                mapped.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

        return release

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


def _keep_pages(start: int, stop: int) -> None:
    """Release hook of tensors that are not memory-mapped."""


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
    model = _parse_in_pieces(p)
    if model is None:
        model = _parse(_read_model_bytes(p))
    _check_model_header(model)
    _check_node_count(model)
    _check_text(model)
    files = _DataFiles(p.resolve().parent)
    tensors: dict[str, StoredTensor] = {}
    for graph_name, t, origin in _iter_tensors(model):
        stored = _validate_tensor(t, origin, graph_name, files)
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
        with _open_regular(p) as fh:
            # Sized by stat, not by the limit: read(n) allocates n bytes up front.
            return fh.read(st.st_size + 1)
    except OSError as exc:
        raise InputError("unreadable", f"cannot read: {exc.strerror or exc}") from None


def _open_regular(path: Path) -> BinaryIO:
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


def _parse(data: bytes) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except RecursionError:
        raise InputError("invalid-model", "messages nested too deeply to parse") from None
    except (DecodeError, ValueError) as exc:
        # upb stops at 100 nested messages (~32 levels of If/Loop bodies) on purpose.
        if "MaxDepth" in str(exc) or "recursion" in str(exc).lower():
            raise InputError(
                "invalid-model", "messages (subgraphs) nested deeper than protobuf's limit"
            ) from None
        raise InputError(
            "not-onnx", "not an ONNX model (the protobuf does not parse: corrupt or truncated)"
        ) from None
    return model


def _check_model_header(model: onnx.ModelProto) -> None:
    # Protobuf parsing is lenient: random bytes, a truncated file cut at a field boundary, or
    # another message type can all "parse". A real ModelProto has an IR version and a graph.
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise InputError("not-onnx", "not an ONNX model (no IR version or no graph)")
    if model.ir_version >= 3 and not model.opset_import:
        raise InputError(
            "invalid-model", "model declares no opset_import (truncated or hand-edited file?)"
        )


def _parse_in_pieces(p: Path) -> onnx.ModelProto | None:
    """Parse a big model file from a memory map, a slice of the graph at a time.

    Parsing whole bytes holds the file twice (the bytes, and the parsed tensors' copies).
    Protobuf parses concatenated messages as one merged message, so feeding the top-level
    fields, and the graph's fields in slices of about :data:`_PIECE_BYTES`, builds the same
    ModelProto; each slice's pages are given back once parsed. Small files, and anything the
    wire-format walk does not understand, return None: the plain path then parses (and
    reports errors) exactly as before.
    """
    try:
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode) or not _PIECE_BYTES < st.st_size <= MAX_MODEL_BYTES:
            return None
        with _open_regular(p) as fh:
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, InputError, ValueError):
        return None
    model = onnx.ModelProto()
    try:
        with memoryview(mapped) as view:
            for number, wire, start, value, end in _wire_fields(mapped, 0, len(mapped)):
                if number != 7 or wire != 2:  # not ModelProto.graph
                    model.MergeFromString(view[start:end])
                    continue
                model.graph.MergeFromString(b"")  # present even if empty, as a parse makes it
                piece = value
                for _, _, _, _, sub_end in _wire_fields(mapped, value, end):
                    if sub_end - piece >= _PIECE_BYTES or sub_end == end:
                        model.graph.MergeFromString(view[piece:sub_end])
                        _give_back(mapped, piece, sub_end)
                        piece = sub_end
    except (DecodeError, ValueError, RecursionError):  # malformed: the plain path decides
        return None
    finally:
        mapped.close()
    return model


# Graph slices parsed at a time from a memory map (files bigger than this are parsed so).
_PIECE_BYTES = 64 << 20


def _wire_fields(buf: mmap.mmap, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, field start, value start, field end) of buf[start:end]."""
    pos = start
    while pos < end:
        first = pos
        tag, pos = _varint(buf, pos, end)
        wire, value = tag & 7, pos
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            length, value = _varint(buf, pos, end)
            pos = value + length
        else:  # groups (3, 4) are not used by onnx.proto
            raise ValueError(f"wire type {wire}")
        if pos > end:
            raise ValueError("field runs past its message")
        yield tag >> 3, wire, first, value, pos


def _varint(buf: mmap.mmap, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while pos < end and shift < 64:
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise ValueError("bad varint")


def _give_back(mapped: mmap.mmap, start: int, end: int) -> None:
    lo = start // mmap.PAGESIZE * mmap.PAGESIZE
    if hasattr(mmap, "MADV_DONTNEED") and end > lo:
        mapped.madvise(mmap.MADV_DONTNEED, lo, end - lo)


# TensorProto fields but raw_data: reading raw_data, as ListFields does, copies the tensor's
# bytes, and a bytes field holds no text.
_TENSOR_FIELDS = tuple(
    (fd, fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED)
    for fd in onnx.TensorProto.DESCRIPTOR.fields
    if fd.type != fd.TYPE_BYTES
)


def _set_fields(msg: Message) -> list[tuple[FieldDescriptor, object]]:
    if not isinstance(msg, onnx.TensorProto):
        return msg.ListFields()
    out: list[tuple[FieldDescriptor, object]] = []
    for fd, repeated in _TENSOR_FIELDS:
        value = getattr(msg, fd.name)
        if (len(value) > 0) if repeated else msg.HasField(fd.name):
            out.append((fd, value))
    return out


def _check_text(model: onnx.ModelProto) -> None:
    """Every string field must be UTF-8, as ONNX requires.

    onnx.proto is proto2, so protobuf does not check this on parse and hands back ``bytes``
    for a string field it cannot decode: every later stage would then mix bytes and str.
    """
    stack: list[Message] = [model]
    while stack:
        msg = stack.pop()
        for fd, value in _set_fields(msg):
            if fd.type == fd.TYPE_STRING:
                items = (value,) if isinstance(value, (str, bytes)) else value
                if not all(isinstance(v, str) for v in items):
                    raise InputError("not-onnx", f"a {fd.full_name} string is not UTF-8 text")
            elif fd.type == fd.TYPE_MESSAGE:
                stack.extend((value,) if isinstance(value, Message) else value)


def _check_node_count(model: onnx.ModelProto) -> None:
    """Refuse graphs that would expand past :data:`MAX_NODES`, before anything builds them.

    Counts what the graph stage builds: every node of every (sub)graph, each function call
    replaced by its body up to :data:`MAX_FUNCTION_DEPTH` levels. Memoized per (function,
    depth), so a call bomb is counted in linear time without being expanded.
    """
    functions = {(f.domain, f.name): f for f in model.functions}
    memo: dict[tuple[tuple[str, str], int], int] = {}

    def cost(nodes: Iterable[onnx.NodeProto], depth: int) -> int:
        total = 0
        for node in nodes:
            key = (node.domain, node.op_type)
            if key not in functions or depth >= MAX_FUNCTION_DEPTH:
                total += 1
            else:
                if (key, depth) not in memo:  # recursion is bounded by MAX_FUNCTION_DEPTH
                    memo[(key, depth)] = cost(functions[key].node, depth + 1)
                total += memo[(key, depth)]
            if total > MAX_NODES:
                return total
        return total

    total = 0
    stack = [model.graph]
    while stack and total <= MAX_NODES:
        g = stack.pop()
        total += cost(g.node, 0)
        for node in g.node:
            for attr in node.attribute:
                stack.extend(attr.graphs)
                if attr.HasField("g"):
                    stack.append(attr.g)
    if total > MAX_NODES:
        raise InputError(
            "too-large",
            f"the graph has more than {MAX_NODES} nodes once function calls are expanded",
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


def _short(text: str) -> str:
    """``repr`` of a name taken from the file, cut so an error stays one readable line."""
    return repr(text) if len(text) <= 80 else repr(text[:77] + "...")


def _label(name: str) -> str:
    return _short(name) if name else "(unnamed tensor)"


def _validate_tensor(
    t: onnx.TensorProto, origin: str, graph: str, files: _DataFiles
) -> StoredTensor:
    name = t.name
    label = _label(name)
    dt = t.data_type
    if dt in _UNSUPPORTED or dt not in _KNOWN_TYPES:
        raise InputError("bad-tensor", f"tensor {label} has unsupported data type {dt}")
    if len(t.dims) > MAX_RANK:
        raise InputError(
            "too-large", f"tensor {label} has {len(t.dims)} dimensions; at most {MAX_RANK} are read"
        )
    if any(d < 0 for d in t.dims):
        raise InputError("bad-tensor", f"tensor {label} has a negative dimension {list(t.dims)}")
    dims = tuple(int(d) for d in t.dims)
    numel = math.prod(dims)
    if numel == 0 and math.prod(d for d in dims if d) * _np_dtype(dt).itemsize > _MAX_ADDRESSABLE:
        # A non-empty claim must be backed by bytes (checked below); an empty one costs no
        # bytes, but numpy cannot represent even an empty array of such a shape.
        raise InputError(
            "too-large", f"tensor {label} dims {list(dims)} exceed any addressable size"
        )
    nbytes = _storage_bytes(dt, numel)
    if t.data_location == onnx.TensorProto.EXTERNAL:
        path, offset, length = _resolve_external(t, label, files, nbytes)
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
    t: onnx.TensorProto, label: str, files: _DataFiles, nbytes: int
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
    real, size = files.resolve(location, label)
    if length is None:
        length = nbytes
    if length != nbytes:
        raise InputError(
            "bad-tensor",
            f"tensor {label} needs {nbytes} bytes but its external length is {length}",
        )
    if offset + length > size:
        raise InputError(
            "external-data-invalid",
            f"tensor {label} external data {_short(location)} [{offset}, {offset + length}) "
            f"runs past the end of the file ({size} bytes)",
        )
    return real, offset, length


class _DataFiles:
    """External data files of one model, each resolved and checked once: exporters point
    hundreds of tensors at one file, and realpath + stat per tensor cost more than parsing."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.real_base = os.path.realpath(base)
        self.resolved: dict[str, tuple[Path, int]] = {}

    def resolve(self, location: str, label: str) -> tuple[Path, int]:
        """The file's real path and size; InputError names ``label``, the first tensor whose
        location fails (escaping the model's folder, missing, not a regular file)."""
        if location not in self.resolved:
            self.resolved[location] = self._check(location, label)
        return self.resolved[location]

    def _check(self, location: str, label: str) -> tuple[Path, int]:
        if "\x00" in location or os.path.isabs(location) or location.startswith(("/", "\\")):
            raise InputError(
                "external-data-escapes",
                f"tensor {label} external data location {_short(location)} is absolute; "
                "it must be relative to the model's folder",
            )
        real = os.path.realpath(self.base / location)
        if os.path.commonpath([self.real_base, real]) != self.real_base:
            raise InputError(
                "external-data-escapes",
                f"tensor {label} external data {_short(location)} resolves outside the "
                "model's folder",
            )
        try:
            st = os.stat(real)
        except FileNotFoundError:
            raise InputError(
                "external-data-missing",
                f"tensor {label} external data file {_short(location)} is missing",
            ) from None
        except OSError as exc:
            raise InputError(
                "external-data-missing",
                f"tensor {label} external data file {_short(location)} cannot be read: "
                f"{exc.strerror}",
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise InputError(
                "external-data-invalid",
                f"tensor {label} external data {_short(location)} is not a regular file",
            )
        return Path(real), st.st_size
