"""From a stored tensor to the ops that use it, through what exporters put in between.

A stored tensor rarely feeds its op directly in real exports: exporters put Identity (dedup),
Transpose (tied lm_head), Cast (fp16 islands), Reshape and DequantizeLinear (QDQ) in between,
and the dynamo exporter reassembles LSTM/GRU gates from Slices with a Concat. We follow those
to each op that gives the tensor a meaning, carrying the shape change (so fans are computed on
the layout the op really sees) and the quantization parameters met on the way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from initaudit.graph.consts import Constants
from initaudit.graph.model import GraphIndex, Node, Quantization
from initaudit.graph.ops import (
    INTEGER_OPS,
    QDQ_OPS,
    QLINEAR_OPS,
    QLINEAR_PARAM_SLOTS,
    QLINEAR_WEIGHTS,
    SLICE_OPS,
    TRACE_THROUGH,
)
from initaudit.graph.shapes import Shape, flattened, reshaped, squeezed, transposed
from initaudit.store import TensorStore

MAX_TRACED = 256  # values visited from one tensor: exporters put a handful in between


@dataclass(frozen=True, kw_only=True)
class Reach:
    """One use of a stored tensor: the op, its input slot, the shape it sees there (None when
    a layout op on the way made it unknowable) and the quantization met on the way."""

    node: Node
    slot: int
    shape: Shape | None
    quant: Quantization | None


class Tracer:
    """Traces the stored tensors of one graph; remembers which Concats reassemble a tensor."""

    def __init__(self, index: GraphIndex, consts: Constants, store: TensorStore) -> None:
        self.index = index
        self.consts = consts
        self.store = store
        self._reassembles: dict[tuple[int, str], bool] = {}

    def quant_params(self) -> set[str]:
        """Scales and zero points: part of a quantized weight, not parameters of their own."""
        names: set[str] = set()
        for node in self.index.nodes:
            if node.op_type in QDQ_OPS:
                names.update(i for i in node.inputs[1:3] if i)
            elif node.op_type in QLINEAR_OPS:
                names.update(i for j, i in enumerate(node.inputs) if i and j in QLINEAR_PARAM_SLOTS)
        return names

    def trace(self, name: str, dims: Shape) -> Iterator[Reach]:
        """Every use of stored tensor ``name`` (breadth first, in a deterministic order)."""
        queue: deque[tuple[str, Shape | None, Quantization | None]] = deque([(name, dims, None)])
        seen: set[str] = set()
        while queue and len(seen) < MAX_TRACED:
            value, shape, quant = queue.popleft()
            if value in seen:
                continue
            seen.add(value)
            for node, slot in self.index.consumers_of(value):
                op = node.op_type
                if op in SLICE_OPS and slot == 0:
                    joined = self._reordered(value, node)
                    if joined is not None:
                        queue.append((joined, shape, quant))
                        continue
                if self._is_selection(node, slot, shape):
                    queue.append((node.outputs[0], self._selected(node, shape), quant))
                    continue
                if op in TRACE_THROUGH and slot == 0 and node.outputs and node.outputs[0]:
                    if op == "DequantizeLinear" and node.input(1):
                        quant = Quantization(
                            scale=node.input(1),
                            zero_point=node.input(2),
                            axis=1 if node.attrs.axis is None else node.attrs.axis,
                            block_size=node.attrs.block_size or 0,
                        )
                    queue.append((node.outputs[0], self._through(node, shape), quant))
                    continue
                qspec = QLINEAR_WEIGHTS.get((op, slot))
                if qspec is not None and node.input(qspec[0]):
                    quant = Quantization(
                        scale=node.input(qspec[0]), zero_point=node.input(qspec[1]), axis=qspec[2]
                    )
                elif op in INTEGER_OPS and slot == 1:
                    scale = self._integer_op_scale(node)
                    if scale is not None:
                        axis = -1 if op == "MatMulInteger" else 0
                        quant = Quantization(scale=scale, zero_point=node.input(3), axis=axis)
                yield Reach(node=node, slot=slot, shape=shape, quant=quant)

    @staticmethod
    def _is_selection(node: Node, slot: int, shape: Shape | None) -> bool:
        """Whether a Gather picks slices out of a stacked parameter rather than looking up rows.

        A table of rank 3 or more is a stack of parameters, not rows of features: a
        mixture-of-experts bank (HF's batched experts, ``gate_up_proj [E, hidden, 2·inter]``
        used as ``x @ gate_up_proj[e]``; JetMoE's ``input_linear.weight[e]`` into a Gemm) or
        a ``[1, N, D]`` position table sliced with ``[:, 0]`` (YOLOS, a Gather along axis 1).
        The slice is traced on to the op that uses it, whose layout gives the fans.
        """
        return (
            node.op_type == "Gather"
            and slot == 0
            and shape is not None
            and len(shape) >= 3
            and bool(node.outputs and node.outputs[0])
        )

    def _selected(self, node: Node, shape: Shape | None) -> Shape | None:
        """The selected slice's shape; an expert index that is not a known constant is taken
        as one scalar (one expert), along another axis the shape is then unknown."""
        if shape is None:
            return None
        axis = node.attrs.axis or 0
        axis = axis + len(shape) if axis < 0 else axis
        index = self.consts.small_value(node.input(1))
        if not 0 <= axis < len(shape) or (index is None and axis != 0):
            return None
        picked = () if index is None else tuple(int(d) for d in index.shape)
        return shape[:axis] + picked + shape[axis + 1 :]

    def _reordered(self, value: str, piece: Node) -> str | None:
        """The output of a Concat that reassembles ``value`` from its own slices.

        The dynamo exporter reorders LSTM/GRU gates this way (Slice per gate, Concat in ONNX
        gate order): the result has the stored shape, so the weight is traced on through it.
        """
        for out in piece.outputs:
            for user, _slot in self.index.consumers_of(out):
                if user.op_type != "Concat" or not user.outputs:
                    continue
                key = (user.id, value)
                if key not in self._reassembles:  # each Concat is checked once, not per Slice
                    sources = [self.index.producer_of(i) for i in user.inputs if i]
                    self._reassembles[key] = all(
                        p is not None and p.op_type in SLICE_OPS and p.input(0) == value
                        for p in sources
                    )
                if self._reassembles[key]:
                    return user.outputs[0]
        return None

    def _integer_op_scale(self, node: Node) -> str | None:
        """The weight scale of MatMulInteger/ConvInteger: ORT applies it after the op, as
        Mul(Cast(y), Mul(input_scale, weight_scale)); the weight scale is the stored operand."""
        value = node.outputs[0] if node.outputs else ""
        for _ in range(3):
            for user, slot in self.index.consumers_of(value):
                if user.op_type == "Cast":
                    value = user.outputs[0]
                    break
                if user.op_type == "Mul":
                    other = user.input(1 - slot)
                    if other in self.store:
                        return other
                    prod = self.index.producer_of(other)
                    if prod is not None and prod.op_type == "Mul":
                        stored = [i for i in prod.inputs if i in self.store]
                        return stored[0] if len(stored) == 1 else None
                    return None
            else:
                return None
        return None

    def _through(self, node: Node, shape: Shape | None) -> Shape | None:
        """The shape after a layout op, from its attributes or its small constant operand."""
        if shape is None:
            return None
        op = node.op_type
        if op == "Transpose":
            return transposed(shape, node.attrs.perm)
        if op == "Reshape":
            target = self.consts.small_value(node.input(1))
            want = None if target is None else [int(x) for x in target.reshape(-1)]
            return reshaped(shape, want, bool(node.attrs.allowzero))
        if op == "Flatten":
            return flattened(shape, 1 if node.attrs.axis is None else node.attrs.axis)
        if op in ("Squeeze", "Unsqueeze"):
            axes = node.attrs.axes
            if axes is None and node.input(1):
                arr = self.consts.small_value(node.input(1))
                axes = tuple(int(a) for a in arr.reshape(-1)) if arr is not None else None
            return squeezed(shape, axes, op == "Unsqueeze")
        return shape
