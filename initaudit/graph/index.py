"""A flat, read-only view of every node the model executes, with producer/consumer lookups.

Subgraph bodies (If/Loop/Scan) are flattened into the same view, since ONNX lets them read outer
values by name; calls to model-local functions are expanded in place (formal parameters renamed
to the call's actual values), so a weight passed into a function is traced like any other.
Every walk over this view is bounded and keeps a visited set: a hostile file may contain cycles.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import onnx

from initaudit.load import MAX_FUNCTION_DEPTH


@dataclass(frozen=True, eq=False)
class Node:
    """One executed node: the few protobuf facts the analysis needs, as plain values.

    Compared and hashed by identity: two nodes of a graph may have equal fields, and a field
    comparison per ``in`` test makes walks over a wide graph needlessly slow.
    """

    id: int
    name: str  # the node's name, or "<op_type>_<id>" when the file leaves it empty
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, object] = field(repr=False)
    graph: str = ""  # "" for the main graph, else the subgraph or function it came from
    folded_norm: bool = False  # the exporter folded a normalization into it (see _folded)

    def attr(self, name: str, default: object = None) -> object:
        """The attribute's value, or ``default`` when it is absent or not of default's type
        (a hostile file may store ``group`` as a list)."""
        value = self.attrs.get(name, default)
        if default is not None and not isinstance(value, type(default)):
            return default
        return value

    def input(self, i: int) -> str:
        """The i-th input name, or "" where it is absent or omitted."""
        return self.inputs[i] if i < len(self.inputs) else ""


_A = onnx.AttributeProto
# The attributes the graph stage reads, with the one type ONNX gives each in every op that has
# it. An attribute stored with another type is left out, so readers see their default.
_ATTR_TYPES = {
    "activations": _A.STRINGS,
    "allowzero": _A.INT,
    "alpha": _A.FLOAT,
    "approximate": _A.STRING,
    "axes": _A.INTS,
    "axis": _A.INT,
    "block_size": _A.INT,
    "equation": _A.STRING,
    "group": _A.INT,
    "hidden_size": _A.INT,
    "max": _A.FLOAT,
    "min": _A.FLOAT,
    "perm": _A.INTS,
    "transA": _A.INT,
    "transB": _A.INT,
}


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    """Plain attribute values; subgraphs, tensors and mistyped attributes are left out."""
    out: dict[str, object] = {}
    for a in node.attribute:
        if _ATTR_TYPES.get(a.name, a.type) != a.type:
            continue
        value = _attr_value(a)
        if value is not None:
            out[a.name] = value
    return out


def _attr_value(a: onnx.AttributeProto) -> object:
    """Scalars, strings and lists; subgraph and tensor attributes are not needed here."""
    t = a.type
    if t == onnx.AttributeProto.FLOAT:
        return float(a.f)
    if t == onnx.AttributeProto.INT:
        return int(a.i)
    if t == onnx.AttributeProto.STRING:
        return a.s.decode("utf-8", "replace")
    if t == onnx.AttributeProto.FLOATS:
        return tuple(float(x) for x in a.floats)
    if t == onnx.AttributeProto.INTS:
        return tuple(int(x) for x in a.ints)
    if t == onnx.AttributeProto.STRINGS:
        return tuple(s.decode("utf-8", "replace") for s in a.strings)
    return None


@dataclass(frozen=True)
class _Stored:
    """A NodeProto's facts, read from protobuf once: a function body is expanded at every
    call, and reading protobuf fields costs more than building the Node."""

    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, object]
    folded_norm: bool = False

    @classmethod
    def of(cls, node: onnx.NodeProto) -> _Stored:
        return cls(
            node.name,
            node.op_type,
            node.domain,
            tuple(node.input),
            tuple(node.output),
            MappingProxyType(_attrs(node)),
            _folded(node),
        )


# What the legacy exporter names a Conv weight it computed by folding an eval BatchNorm in
# (eval_peephole fuseBNIntoConv); an unfolded Conv keeps its parameter's name.
_LEGACY_FOLDED = ("onnx::Conv_", "onnx::ConvTranspose_")


def _folded(node: onnx.NodeProto) -> bool:
    """Whether an eval BatchNorm was folded into this node at export.

    The dynamo exporter records the onnxscript rewrite (FuseBatchNormIntoConv/Gemm...) in
    the node's metadata; the legacy one renames the folded weight ``onnx::Conv_N``. A folded
    BatchNorm still normalizes in training, which is what an init is judged for.
    """
    if node.op_type not in ("Conv", "ConvTranspose", "Gemm"):
        return False
    for prop in node.metadata_props:
        if prop.key == "pkg.onnxscript.rewriter.rule_name" and "FuseBatchNorm" in prop.value:
            return True
    return len(node.input) > 1 and node.input[1].startswith(_LEGACY_FOLDED)


@dataclass(frozen=True)
class _Function:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    body: tuple[_Stored, ...]


class GraphIndex:
    """Producer and consumer maps over all executed nodes, in a deterministic order."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.nodes: list[Node] = []
        self.producer: dict[str, Node] = {}
        self.consumers: dict[str, list[tuple[Node, int]]] = {}
        self.graph_outputs: set[str] = {o.name for o in model.graph.output}
        self.graph_inputs: set[str] = {i.name for i in model.graph.input}
        self._function_protos = {(f.domain, f.name): f for f in model.functions}
        self._functions: dict[tuple[str, str], _Function] = {}
        self._add_graph(model.graph, "")
        for node in self.nodes:
            for out in node.outputs:
                if out:
                    self.producer.setdefault(out, node)
            for i, name in enumerate(node.inputs):
                if name:
                    self.consumers.setdefault(name, []).append((node, i))

    # -- construction -------------------------------------------------------------------
    def _add_graph(self, graph: onnx.GraphProto, graph_label: str) -> None:
        queue: deque[tuple[onnx.GraphProto, str]] = deque([(graph, graph_label)])
        while queue:
            g, label = queue.popleft()
            for node in g.node:
                for attr in node.attribute:
                    subs = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
                    queue.extend(
                        (sg, sg.name or f"{node.name or node.op_type}/{attr.name}") for sg in subs
                    )
                self._add_node(_Stored.of(node), label, prefix="", rename={}, depth=0)

    def _function(self, key: tuple[str, str]) -> _Function | None:
        if key not in self._functions:
            proto = self._function_protos.get(key)
            if proto is None:
                return None
            body = tuple(_Stored.of(n) for n in proto.node)
            self._functions[key] = _Function(
                proto.name, tuple(proto.input), tuple(proto.output), body
            )
        return self._functions[key]

    def _add_node(
        self, node: _Stored, label: str, prefix: str, rename: dict[str, str], depth: int
    ) -> None:
        def rn(n: str) -> str:
            if not n:
                return n
            return rename.get(n, prefix + n if prefix else n)

        fn = self._function((node.domain, node.op_type)) if depth < MAX_FUNCTION_DEPTH else None
        if fn is not None:
            inner_prefix = f"{prefix}{node.name or fn.name}/"
            inner: dict[str, str] = {}
            for formal, actual in zip(fn.inputs, node.inputs, strict=False):
                inner[formal] = rn(actual)
            for formal, actual in zip(fn.outputs, node.outputs, strict=False):
                inner[formal] = rn(actual)
            for body_node in fn.body:
                self._add_node(body_node, fn.name, inner_prefix, inner, depth + 1)
            return
        nid = len(self.nodes)
        is_constant = node.op_type == "Constant" and node.domain in ("", "ai.onnx")
        # Constant outputs keep their stored name: the loader registered the tensor under it,
        # and a constant is the same tensor in every call of a function.
        outputs = node.outputs if is_constant else tuple(rn(o) for o in node.outputs)
        self.nodes.append(
            Node(
                id=nid,
                name=(prefix + node.name) if node.name else f"{node.op_type}_{nid}",
                op_type=node.op_type,
                domain=node.domain or "",
                inputs=tuple(rn(i) for i in node.inputs),
                outputs=outputs,
                attrs=node.attrs,
                graph=label,
                folded_norm=node.folded_norm,
            )
        )

    # -- queries -------------------------------------------------------------------------
    def consumers_of(self, value: str) -> list[tuple[Node, int]]:
        return self.consumers.get(value, [])

    def producer_of(self, value: str) -> Node | None:
        return self.producer.get(value)

    def nodes_of(self, op_types: Iterable[str]) -> list[Node]:
        wanted = set(op_types)
        return [n for n in self.nodes if n.op_type in wanted]
