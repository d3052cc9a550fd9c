"""Which values are compile-time constants, and the small ones' values (shapes, Clip bounds).

A bias Add and a residual Add look the same; what tells them apart is whether the other operand
is a stored tensor (possibly behind Identity/Cast/DequantizeLinear) or an activation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from initaudit.graph.model import GraphIndex, Node
from initaudit.graph.ops import CONST_FOLDABLE
from initaudit.store import TensorStore

# Small constants are read to resolve shapes and bounds; anything bigger is never read here.
_MAX_SMALL = 4096


@dataclass(frozen=True, kw_only=True)
class Constants:
    """The constant values of a graph, and a reader for the small stored ones."""

    values: frozenset[str]
    index: GraphIndex
    store: TensorStore

    def is_constant(self, value: str) -> bool:
        return bool(value) and value in self.values

    def small_value(self, value: str) -> np.ndarray | None:
        """The values of a small stored constant (directly, or behind Identity/Cast)."""
        seen = 0
        while value and seen < 8:
            t = self.store.get(value)
            if t is not None:
                if t.size > _MAX_SMALL:
                    return None
                return np.asarray(self.store.read(value))
            node = self.index.producer_of(value)
            if node is None or node.op_type not in ("Identity", "Cast") or not node.inputs:
                return None
            value = node.inputs[0]
            seen += 1
        return None

    def scalar(self, value: str) -> float | None:
        arr = self.small_value(value)
        if arr is None or arr.size != 1:
            return None
        x = float(np.asarray(arr, dtype=np.float64).reshape(-1)[0])
        return x if np.isfinite(x) else None


def find_constants(index: GraphIndex, store: TensorStore) -> Constants:
    """Constness of every value, by a worklist (linear time, cycle-safe)."""
    const: set[str] = {n for n in store.tensors if n not in index.graph_inputs}
    for node in index.nodes:
        if node.op_type == "Constant":
            const.update(o for o in node.outputs if o)
    # Each foldable node waits for its non-constant inputs; a value that becomes constant is
    # popped once and struck from its consumers' sets, so the walk is linear in the edges
    # (a Concat of 1e5 inputs costs 1e5 steps, not 1e10) and terminates on cycles.
    waiting: dict[int, set[str]] = {
        node.id: {i for i in node.inputs if i and i not in const}
        for node in index.nodes
        if node.op_type in CONST_FOLDABLE
    }
    work: list[str] = []

    def settle(node: Node) -> None:
        for o in node.outputs:
            if o and o not in const:
                const.add(o)
                work.append(o)

    for node in index.nodes:
        if node.id in waiting and not waiting[node.id]:
            settle(node)
    while work:
        v = work.pop()
        for node, _slot in index.consumers_of(v):
            need = waiting.get(node.id)
            if need and v in need:
                need.discard(v)
                if not need:
                    settle(node)
    return Constants(values=frozenset(const), index=index, store=store)
