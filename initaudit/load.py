"""Stage 1: a model path becomes a :class:`LoadedModel`, or an :class:`InputError`.

Everything a hostile or broken file can do wrong is caught here, before any analysis: the
later stages may trust that every tensor's dims, data type and stored bytes agree, and that
external data resolves to a regular file inside the model's folder. Nothing is ever written,
and no allocation is sized from a claim the file does not back with bytes. The ``MAX_*``
limits below bound the work a hostile file can cause (rank, nesting, expanded node count),
and every string the later stages read is ``str``.

Parsing is wire.py's; reading the validated tensors (memory-mapped external data, never
read whole: a multi-GB model costs address space, not RAM) is store.py's.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from initaudit.errors import InputError
from initaudit.store import (
    PACKED_BITS,
    StoredTensor,
    TensorStore,
    dtype_name,
    np_dtype,
    short,
    tensor_label,
)
from initaudit.wire import parse_model_file

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

# Numeric types that are neither string nor complex: the ones initaudit can reason about.
_UNSUPPORTED = {
    onnx.TensorProto.UNDEFINED,
    onnx.TensorProto.STRING,
    onnx.TensorProto.COMPLEX64,
    onnx.TensorProto.COMPLEX128,
}
_KNOWN_TYPES = frozenset(onnx.TensorProto.DataType.values())


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
    model = parse_model_file(p)
    _check_model_header(model)
    _check_node_count(model)
    _check_text(model)
    files = _DataFiles(p.resolve().parent)
    tensors: dict[str, StoredTensor] = {}
    for graph_name, t, origin in _iter_tensors(model):
        stored = _validate_tensor(t, origin, graph_name, files)
        tensors.setdefault(stored.name, stored)
    return LoadedModel(path=p, model=model, store=TensorStore(tensors))


def _check_model_header(model: onnx.ModelProto) -> None:
    # Protobuf parsing is lenient: random bytes, a truncated file cut at a field boundary, or
    # another message type can all "parse". A real ModelProto has an IR version and a graph.
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise InputError("not-onnx", "not an ONNX model (no IR version or no graph)")
    if model.ir_version >= 3 and not model.opset_import:
        raise InputError(
            "invalid-model", "model declares no opset_import (truncated or hand-edited file?)"
        )


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


def _validate_tensor(
    t: onnx.TensorProto, origin: str, graph: str, files: _DataFiles
) -> StoredTensor:
    name = t.name
    label = tensor_label(name)
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
    if numel == 0 and math.prod(d for d in dims if d) * np_dtype(dt).itemsize > _MAX_ADDRESSABLE:
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
    if dt in PACKED_BITS:
        return (numel * PACKED_BITS[dt] + 7) // 8
    return numel * np_dtype(dt).itemsize


def _typed_field_count(dt: int, numel: int) -> int:
    if dt in PACKED_BITS:
        per_int = {4: 2, 2: 4}.get(PACKED_BITS[dt], 1)
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
            f"tensor {label} external data {short(location)} [{offset}, {offset + length}) "
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
                f"tensor {label} external data location {short(location)} is absolute; "
                "it must be relative to the model's folder",
            )
        real = os.path.realpath(self.base / location)
        if os.path.commonpath([self.real_base, real]) != self.real_base:
            raise InputError(
                "external-data-escapes",
                f"tensor {label} external data {short(location)} resolves outside the "
                "model's folder",
            )
        try:
            st = os.stat(real)
        except FileNotFoundError:
            raise InputError(
                "external-data-missing",
                f"tensor {label} external data file {short(location)} is missing",
            ) from None
        except OSError as exc:
            raise InputError(
                "external-data-missing",
                f"tensor {label} external data file {short(location)} cannot be read: "
                f"{exc.strerror}",
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise InputError(
                "external-data-invalid",
                f"tensor {label} external data {short(location)} is not a regular file",
            )
        return Path(real), st.st_size
