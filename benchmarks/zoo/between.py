"""The ops between a weighted layer and the weighted layers that feed it, in the ONNX graph.

When a prediction is far from the measurement, the op types on the data path from the
previous weighted layer(s) to this one say what the depth model had to get right (a pooling,
a mask, a normalization the exporter kept or folded).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import onnx

MAX_VISITED = 4000


def ops_between(model: onnx.ModelProto, layer_nodes: Sequence[str]) -> dict[str, list[str]]:
    """node name -> sorted op types reached walking back from that node's inputs, stopping
    at any other weighted layer's node and at graph inputs."""
    nodes = list(model.graph.node)
    producer = {out: n for n in nodes for out in n.output if out}
    weighted = set(layer_nodes)
    inits = {t.name for t in model.graph.initializer}
    by_name = {n.name: n for n in nodes}
    result: dict[str, list[str]] = {}
    for name in layer_nodes:
        start = by_name.get(name)
        if start is None:
            continue
        ops: set[str] = set()
        queue = deque(i for i in start.input if i and i not in inits)
        seen: set[str] = set()
        while queue and len(seen) < MAX_VISITED:
            value = queue.popleft()
            node = producer.get(value)
            if node is None or node.name in seen:
                continue
            seen.add(node.name)
            if node.name in weighted:
                continue
            ops.add(node.op_type)
            queue.extend(i for i in node.input if i and i not in inits)
        result[name] = sorted(ops)
    return result


def ops_between_file(path: str, layer_nodes: Sequence[str]) -> dict[str, list[str]]:
    return ops_between(onnx.load(path, load_external_data=False), layer_nodes)
