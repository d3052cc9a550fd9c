"""A flat, read-only view of every node the model executes, with producer/consumer lookups.

Subgraph bodies (If/Loop/Scan) are flattened into the same view, since ONNX lets them read outer
values by name; calls to model-local functions are expanded in place (formal parameters renamed
to the call's actual values), so a weight passed into a function is traced like any other.
Every walk over this view is bounded and keeps a visited set: a hostile file may contain cycles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import onnx

MAX_FUNCTION_DEPTH = 16


@dataclass(frozen=True)
class Node:
    """One executed node: the few protobuf facts the analysis needs, as plain values."""

    id: int
    name: str  # the node's name, or "<op_type>_<id>" when the file leaves it empty
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, object] = field(repr=False)
    graph: str = ""  # "" for the main graph, else the subgraph or function it came from

    def attr(self, name: str, default: object = None) -> object:
        return self.attrs.get(name, default)

    def input(self, i: int) -> str:
        """The i-th input name, or "" where it is absent or omitted."""
        return self.inputs[i] if i < len(self.inputs) else ""


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


class GraphIndex:
    """Producer and consumer maps over all executed nodes, in a deterministic order."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.nodes: list[Node] = []
        self.producer: dict[str, Node] = {}
        self.consumers: dict[str, list[tuple[Node, int]]] = {}
        self.graph_outputs: set[str] = {o.name for o in model.graph.output}
        self.graph_inputs: set[str] = {i.name for i in model.graph.input}
        self._functions = {(f.domain, f.name): f for f in model.functions}
        self._add_graph(model.graph, "", prefix="", rename={}, depth=0)
        for node in self.nodes:
            for out in node.outputs:
                if out:
                    self.producer.setdefault(out, node)
            for i, name in enumerate(node.inputs):
                if name:
                    self.consumers.setdefault(name, []).append((node, i))

    # -- construction -------------------------------------------------------------------
    def _add_graph(
        self,
        graph: onnx.GraphProto,
        graph_label: str,
        prefix: str,
        rename: dict[str, str],
        depth: int,
    ) -> None:
        stack: list[tuple[onnx.GraphProto, str]] = [(graph, graph_label)]
        while stack:
            g, label = stack.pop(0)
            for node in g.node:
                for attr in node.attribute:
                    subs = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
                    stack.extend(
                        (sg, sg.name or f"{node.name or node.op_type}/{attr.name}") for sg in subs
                    )
                self._add_node(node, label, prefix, rename, depth)

    def _add_node(
        self, node: onnx.NodeProto, label: str, prefix: str, rename: dict[str, str], depth: int
    ) -> None:
        def rn(n: str) -> str:
            if not n:
                return n
            return rename.get(n, prefix + n if prefix else n)

        fn = self._functions.get((node.domain, node.op_type))
        if fn is not None and depth < MAX_FUNCTION_DEPTH:
            self._expand_call(
                node,
                fn,
                label,
                [rn(i) for i in node.input],
                [rn(o) for o in node.output],
                prefix,
                depth,
            )
            return
        nid = len(self.nodes)
        is_constant = node.op_type == "Constant" and node.domain in ("", "ai.onnx")
        # Constant outputs keep their stored name: the loader registered the tensor under it,
        # and a constant is the same tensor in every call of a function.
        outputs = tuple(o if is_constant else rn(o) for o in node.output)
        self.nodes.append(
            Node(
                id=nid,
                name=(prefix + node.name) if node.name else f"{node.op_type}_{nid}",
                op_type=node.op_type,
                domain=node.domain or "",
                inputs=tuple(rn(i) for i in node.input),
                outputs=outputs,
                attrs={a.name: _attr_value(a) for a in node.attribute},
                graph=label,
            )
        )

    def _expand_call(
        self,
        call: onnx.NodeProto,
        fn: onnx.FunctionProto,
        label: str,
        actual_in: Sequence[str],
        actual_out: Sequence[str],
        prefix: str,
        depth: int,
    ) -> None:
        inner_prefix = f"{prefix}{call.name or fn.name}/"
        rename: dict[str, str] = {}
        for formal, actual in zip(fn.input, actual_in, strict=False):
            rename[formal] = actual
        for formal, actual in zip(fn.output, actual_out, strict=False):
            rename[formal] = actual
        for node in fn.node:
            self._add_node(node, fn.name, inner_prefix, rename, depth + 1)

    # -- queries -------------------------------------------------------------------------
    def consumers_of(self, value: str) -> list[tuple[Node, int]]:
        return self.consumers.get(value, [])

    def producer_of(self, value: str) -> Node | None:
        return self.producer.get(value)

    def nodes_of(self, op_types: Iterable[str]) -> list[Node]:
        wanted = set(op_types)
        return [n for n in self.nodes if n.op_type in wanted]
