"""Stage 1: a model path becomes a :class:`LoadedModel`, or an :class:`InputError`.

Everything a hostile or broken file can do wrong is caught here, before any analysis: the
later stages may trust that every tensor's dims, data type and stored bytes agree, and that
external data resolves to a regular file inside the model's folder. Nothing is ever written,
and no allocation is sized from a claim the file does not back with bytes. The ``MAX_*``
limits below bound the work a hostile file can cause (nesting, expanded node count), and
every string the later stages read is ``str``.

Parsing is wire.py's; checking each tensor against its bytes (and resolving external data)
is tensors.py's; reading the validated tensors (memory-mapped external data, and the inline
data that a big file's parse left in place, never read whole: a multi-GB model costs address
space, not RAM) is store.py's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from initaudit import proto
from initaudit.errors import InputError
from initaudit.sniff import describe_non_model
from initaudit.store import StoredTensor, TensorStore
from initaudit.tensors import DataFiles, validate_tensor
from initaudit.wire import Parsed, RawSpan, parse_model_file

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


@dataclass
class LoadedModel:
    """The parsed model (external data not loaded) and a store to read any tensor by name."""

    path: Path
    model: proto.ModelProto
    store: TensorStore

    def close(self) -> None:
        self.store.close()


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Parse and validate ``path``; raise :class:`InputError` with a stable code on any problem."""
    p = Path(path)
    try:
        parsed = parse_model_file(p)
    except InputError as exc:
        raise _named_non_model(exc, p) from None
    try:
        return _validated(p, parsed)
    except BaseException:
        if parsed.mapped is not None:
            parsed.mapped.close()
        raise


def _named_non_model(exc: InputError, p: Path) -> InputError:
    """Say what the file is instead, when it is something people commit by mistake."""
    if exc.code == "not-onnx":
        what = describe_non_model(p)
        if what is not None:
            return InputError("not-onnx", what)
    return exc


def _validated(p: Path, parsed: Parsed) -> LoadedModel:
    model = parsed.model
    try:
        _check_model_header(model)
    except InputError as exc:
        raise _named_non_model(exc, p) from None
    _check_node_count(model)
    _check_text(model)
    files = DataFiles(p.resolve().parent)
    tensors: dict[str, StoredTensor] = {}
    for graph_name, t, origin, raw in _iter_tensors(model, parsed.spans):
        stored = validate_tensor(t, origin, graph_name, files, raw)
        tensors.setdefault(stored.name, stored)
    maps = {p: parsed.mapped} if parsed.mapped is not None else {}
    return LoadedModel(path=p, model=model, store=TensorStore(tensors, maps))


def _check_model_header(model: proto.ModelProto) -> None:
    # Protobuf parsing is lenient: random bytes, a truncated file cut at a field boundary, or
    # another message type can all "parse". A real ModelProto has an IR version and a graph.
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise InputError("not-onnx", "not an ONNX model (no IR version or no graph)")
    if model.ir_version >= 3 and not model.opset_import:
        raise InputError(
            "invalid-model", "model declares no opset_import (truncated or hand-edited file?)"
        )


def _repeated(fd: Any) -> bool:
    """protobuf >= 5 has ``is_repeated``; older releases only the label."""
    if hasattr(fd, "is_repeated"):
        return bool(fd.is_repeated)
    return bool(fd.label == fd.LABEL_REPEATED)


# TensorProto fields but raw_data: reading raw_data, as ListFields does, copies the tensor's
# bytes, and a bytes field holds no text.
_TENSOR_FIELDS: tuple[tuple[Any, bool], ...] = tuple(
    (fd, _repeated(fd)) for fd in proto.TensorProto.DESCRIPTOR.fields if fd.type != fd.TYPE_BYTES
)


def _set_fields(msg: Message) -> list[tuple[Any, Any]]:
    if not isinstance(msg, proto.TensorProto):
        return list(msg.ListFields())
    out: list[tuple[Any, Any]] = []
    for fd, repeated in _TENSOR_FIELDS:
        value = getattr(msg, fd.name)
        if (len(value) > 0) if repeated else msg.HasField(fd.name):
            out.append((fd, value))
    return out


def _check_text(model: proto.ModelProto) -> None:
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


def _check_node_count(model: proto.ModelProto) -> None:
    """Refuse graphs that would expand past :data:`MAX_NODES`, before anything builds them.

    Counts what the graph stage builds: every node of every (sub)graph, each function call
    replaced by its body up to :data:`MAX_FUNCTION_DEPTH` levels. Memoized per (function,
    depth), so a call bomb is counted in linear time without being expanded.
    """
    functions = {(f.domain, f.name): f for f in model.functions}
    memo: dict[tuple[tuple[str, str], int], int] = {}

    def cost(nodes: Iterable[proto.NodeProto], depth: int) -> int:
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


def _iter_tensors(
    model: proto.ModelProto, spans: Mapping[int, RawSpan]
) -> Iterator[tuple[str, proto.TensorProto, str, RawSpan | None]]:
    """Every stored tensor: initializers and Constant values of all graphs and functions,
    each with where its raw_data was left in the file (``spans``, by index among the main
    graph's initializers), if it was."""
    stack: list[tuple[proto.GraphProto, int, bool]] = [(model.graph, 0, False)]
    node_lists: list[tuple[str, list[proto.NodeProto], int]] = []
    while stack:
        g, depth, is_sub = stack.pop()
        if depth > MAX_SUBGRAPH_DEPTH:
            raise InputError(
                "invalid-model", f"subgraphs nested deeper than {MAX_SUBGRAPH_DEPTH} levels"
            )
        origin = "subgraph initializer" if is_sub else "initializer"
        for i, t in enumerate(g.initializer):
            yield g.name if is_sub else "", t, origin, None if is_sub else spans.get(i)
        for sp in g.sparse_initializer:
            # Sparse initializers are validated as their parts; they are not audited.
            yield g.name, sp.values, "sparse values", None
            yield g.name, sp.indices, "sparse indices", None
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
                        t = proto.TensorProto()
                        t.CopyFrom(attr.t)
                        t.name = node.output[0]
                        yield graph_name, t, "constant", None
