"""Decomposed activations and normalizations, recognized by their shape in the graph.

Exporters emit GELU as ``x * 0.5 * (1 + Erf(x / sqrt 2))``, SiLU as ``x * Sigmoid(x)``, Mish as
``x * Tanh(Softplus(x))``, HardSwish from HardSigmoid or Clip, and LayerNorm/RMSNorm as a
division by a reduction of the input. We recognize them by structure, not by node names, so
any exporter's spelling works.
"""

from __future__ import annotations

from initaudit.graph.consts import Constants
from initaudit.graph.model import Activation, GraphIndex, Kind, Node
from initaudit.graph.ops import (
    GATE_OPS,
    NORM_FACTOR_OPS,
    NORM_STATISTICS,
    PATTERN_OPS,
)

MAX_PATTERN = 64  # elementwise ops a decomposed activation may span

# The first gate op on the paths to f decides which activation x * f(x) is.
_GATE_KINDS = (
    ("Erf", "gelu"),
    ("Softplus", "mish"),
    ("Tanh", "gelu_tanh"),
    ("HardSigmoid", "hardswish"),
    ("Clip", "hardswish"),
    ("Relu", "hardswish"),
    ("Sigmoid", "silu"),
)


def is_norm_factor(index: GraphIndex, consts: Constants, values: list[str]) -> bool:
    """A 1/sqrt(mean(x^2)+eps)-like operand: a reduction of the activation upstream.

    A Sqrt alone is not enough: attention divides by sqrt(head_dim) computed from Shape.
    """
    for v in values:
        frontier, hops = [v], 0
        while frontier and hops < 6:
            nxt: list[str] = []
            for w in frontier:
                n = index.producer_of(w)
                if n is None:
                    continue
                if n.op_type in NORM_STATISTICS:
                    return True
                if n.op_type in NORM_FACTOR_OPS:
                    nxt.extend(i for i in n.inputs if i and not consts.is_constant(i))
            frontier, hops = nxt, hops + 1
    return False


def gated_activation(index: GraphIndex, consts: Constants, y: str) -> Activation | None:
    """Recognize ``x * f(x)`` activations built from elementwise ops, with x = y·const.

    ``derived`` maps each value computed from ``y`` to the nonlinear ops on its paths from
    ``y``; it is propagated to a fixpoint because the branches of a decomposed GELU join
    (x + 0.044715·x³) after different numbers of steps.
    """
    nodes: list[Node] = []
    ids: set[int] = set()
    frontier, seen = [y], {y}
    for _depth in range(10):
        nxt = []
        for v in frontier:
            for node, _slot in index.consumers_of(v):
                if node.op_type in PATTERN_OPS and node.outputs and node.id not in ids:
                    ids.add(node.id)
                    nodes.append(node)
                    if node.outputs[0] not in seen:
                        seen.add(node.outputs[0])
                        nxt.append(node.outputs[0])
        frontier = nxt
        if len(nodes) > MAX_PATTERN:
            return None  # an activation is a handful of ops, not a fan-out of thousands
    if not any(n.op_type == "Mul" for n in nodes):
        return None
    derived: dict[str, frozenset[str]] = {y: frozenset()}
    xs = {y}
    for _pass in range(len(nodes) + 1):
        changed = False
        for node in nodes:
            ins = [derived[i] for i in node.inputs if i in derived]
            if not ins:
                continue
            ops: set[str] = set().union(*ins)
            if node.op_type in GATE_OPS:
                ops.add(node.op_type)
            if node.op_type == "Pow" or (node.op_type == "Mul" and len(ins) == 2):
                ops.add("cubic")
            out = node.outputs[0]
            merged = derived.get(out, frozenset()) | ops
            if merged != derived.get(out):
                derived[out] = frozenset(merged)
                changed = True
            others = [i for i in node.inputs if i not in xs and i]
            if (
                node.op_type in ("Mul", "Div")
                and len(others) < len(node.inputs)
                and all(consts.is_constant(i) for i in others)
                and out not in xs
            ):
                xs.add(out)
                changed = True
        if not changed:
            break
    for mul in (n for n in nodes if n.op_type == "Mul"):
        a, b = (mul.input(0), mul.input(1))
        for x, f in ((a, b), (b, a)):
            if x in xs and derived.get(f):
                kind = _gate_kind(set(derived[f]))
                if kind is not None:
                    return kind
    return None


def _gate_kind(ops: set[str]) -> Activation | None:
    for op, kind in _GATE_KINDS:
        if op in ops:
            if kind == "gelu_tanh":
                if "cubic" not in ops:
                    return None
                return Activation(kind=Kind.GELU, approximate="tanh")
            return Activation(kind=Kind(kind))
    return None
