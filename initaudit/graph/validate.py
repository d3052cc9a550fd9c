"""A graph that is not a graph is an input error, not a clean audit.

``onnx.checker`` rejects these, and no runtime loads them; an audit of one would be an audit of
something that does not exist, so each is ``invalid-model`` with one line naming the node or
tensor: a cycle, a node reading a name nothing defines, two nodes writing one name, a graph
output nothing produces. (Attributes of the wrong type are refused where they are read, in
graph/index.py; tensors whose bytes disagree with their dims, in tensors.py.)

Names are checked the way the index sees them, flattened: a subgraph may read any name of
any enclosing graph, so a name defined anywhere counts as defined. That is lenient on scoping
(a read of a sibling branch's value passes) and never refuses a valid model. Every check is
linear in nodes and edges.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass

from initaudit.errors import InputError
from initaudit.graph.model import GraphIndex
from initaudit.store import short


@dataclass(frozen=True, kw_only=True)
class Scopes:
    """What the index builder saw of each graph's names (graph/index.py collects it)."""

    defined: frozenset[str]  # graph inputs and initializers of every graph
    # (name, op type, inputs, outputs) of every stored node, function calls unexpanded
    reads: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...]
    outputs: tuple[tuple[str, str], ...]  # (graph label, output name) of every graph
    expanded: bool  # some node is a call of a model-local function, expanded in the index


def node_label(name: str, op_type: str) -> str:
    return f"node {short(name)} ({op_type})" if name else f"a {op_type} node"


def check_structure(index: GraphIndex, scopes: Scopes) -> None:
    """Raise ``invalid-model`` for the first structural defect found."""
    known = scopes.defined | index.producers.keys()
    for node, op_type, inputs, _ in scopes.reads:
        for name in inputs:
            if name and name not in known:
                raise InputError(
                    "invalid-model",
                    f"{node_label(node, op_type)} reads {short(name)}, which no node, graph "
                    "input or initializer defines",
                )
    for graph, name in scopes.outputs:
        if name and name not in known:
            where = "graph output" if not graph else f"output of subgraph {short(graph)}"
            raise InputError(
                "invalid-model",
                f"{where} {short(name)} is produced by no node, graph input or initializer",
            )
    # As stored (a function call reading its own output is a cycle even where its body does
    # not read that input) and, when calls were expanded, as executed (a function body may
    # hold the cycle): each pass costs ~15 ms per 10,000 nodes.
    label = None
    stored = _on_cycle([(inputs, outputs) for _, _, inputs, outputs in scopes.reads])
    if stored is not None:
        label = node_label(*scopes.reads[stored][:2])
    elif scopes.expanded:
        executed = _on_cycle([(n.inputs, n.outputs) for n in index.nodes])
        if executed is not None:
            label = node_label(index.nodes[executed].name, index.nodes[executed].op_type)
    if label is not None:
        raise InputError(
            "invalid-model",
            f"the nodes form a cycle through {label}; an ONNX graph must be acyclic",
        )


def check_single_assignment(
    graph: str, nodes: Iterable[tuple[str, str, Sequence[str]]], taken: Set[str]
) -> set[str]:
    """No two nodes of one graph write the same name, nor one a graph input or initializer
    (``taken``): ONNX graphs are in single static assignment form. Returns the names written."""
    writer: dict[str, tuple[str, str]] = {}
    for name, op_type, outputs in nodes:
        for out in outputs:
            if not out:
                continue
            if out in writer:
                first = node_label(*writer[out])
                raise InputError(
                    "invalid-model",
                    f"{first} and {node_label(name, op_type)} both write {short(out)}"
                    + (f" in subgraph {short(graph)}" if graph else ""),
                )
            if out in taken:
                raise InputError(
                    "invalid-model",
                    f"{node_label(name, op_type)} writes {short(out)}, which is already a graph "
                    "input or initializer",
                )
            writer[out] = (name, op_type)
    return set(writer)


def check_unique(graph: str, what: str, names: Sequence[str]) -> None:
    """A graph's inputs, and its initializers, each name a value once."""
    seen: set[str] = set()
    for name in names:
        if name in seen and name:
            where = f" of subgraph {short(graph)}" if graph else ""
            raise InputError("invalid-model", f"{what} {short(name)}{where} is declared twice")
        seen.add(name)


def check_body_outputs(
    graph: str, outputs: Sequence[str], inside: Set[str], owner_outputs: Set[str]
) -> None:
    """A subgraph's output is made inside it or comes from an enclosing scope, never from the
    outputs of the node that runs it (an If's outputs exist only after its branch ran)."""
    for name in outputs:
        if name and name not in inside and name in owner_outputs:
            raise InputError(
                "invalid-model",
                f"output of subgraph {short(graph)} {short(name)} is produced by no node of it",
            )


def _on_cycle(nodes: Sequence[tuple[Sequence[str], Sequence[str]]]) -> int | None:
    """The position of a node on a cycle (Kahn's algorithm leaves exactly those unordered and
    what they feed), or None. A name's producer is the first node writing it."""
    producer: dict[str, int] = {}
    for k, (_, outputs) in enumerate(nodes):
        for out in outputs:
            if out:
                producer.setdefault(out, k)
    indeg = [0] * len(nodes)
    users: dict[int, list[int]] = {}
    for k, (inputs, _) in enumerate(nodes):
        preds = {producer[i] for i in inputs if i in producer}
        indeg[k] = len(preds)
        for pred in preds:
            users.setdefault(pred, []).append(k)
    ready = deque(k for k in range(len(nodes)) if indeg[k] == 0)
    done = 0
    while ready:
        k = ready.popleft()
        done += 1
        for u in users.get(k, ()):
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
    if done == len(nodes):
        return None
    return next(k for k in range(len(nodes)) if indeg[k] > 0)
