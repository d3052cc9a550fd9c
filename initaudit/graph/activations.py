"""Find the nonlinearity a weight's output reaches, the way an init scheme's gain depends on it.

From a linear op's output we walk forward through what does not change the choice of gain (bias
Add, Reshape/Transpose/Flatten/Squeeze, Identity, Dropout, Cast, pooling, constant scaling) and
through normalizations (recorded: a norm before the nonlinearity resets the scale), and stop at
the first nonlinearity, or at a linear end: another linear op, a residual Add, a graph output.
Activations exporters decompose are recognized in graph/patterns.py.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import replace

from initaudit.graph.consts import Constants
from initaudit.graph.model import Activation, End, GraphIndex, Kind, Node
from initaudit.graph.ops import (
    ACTIVATION_KINDS,
    ALPHA_ACTIVATIONS,
    LINEAR_OPS,
    NORM_OPS,
    PASS_OPS,
    RECURRENT_OPS,
)
from initaudit.graph.patterns import gated_activation, is_norm_factor

MAX_WALK = 64


def activation_after(index: GraphIndex, consts: Constants, value: str) -> Activation:
    """The activation reached from ``value`` (a linear op's output)."""
    normalized = False
    quantized = False
    walk = _Walk([value])
    first_end: End | None = None
    products: list[str] = []  # outputs of attention products met (probs·V)
    for v in walk:
        producer = index.producer_of(v)
        if producer is not None and producer.op_type == "QuantizeLinear":
            quantized = True
        gated = gated_activation(index, consts, v)
        if gated is not None:
            return replace(gated, normalized=normalized)
        consumers = index.consumers_of(v)
        if (not consumers or v in index.graph_outputs) and first_end is None:
            first_end = End.OUTPUT
        for node, _slot in consumers:
            act = _single(consts, node)
            if act is not None and act.kind == Kind.SOFTMAX:
                act = replace(act, end=_softmax_end(index, node))
            if act is not None:
                return replace(act, normalized=normalized)
        for node, slot in consumers:
            nxt, is_norm, end = _step(index, consts, node, slot)
            if end == End.ATTENTION and node.outputs:
                products.append(node.outputs[0])
            if end and first_end is None:
                first_end = end
            if is_norm:
                normalized = True
            if nxt:
                walk.push(nxt)
    # Quantizers fuse ReLU into the preceding op's output range (ORT QDQ drops the Relu
    # node), so a linear end seen through a QuantizeLinear proves nothing.
    if quantized or first_end is None:
        return Activation(kind=Kind.UNKNOWN, normalized=normalized)
    if first_end == End.ATTENTION and not normalized:
        normalized = any(_normalized_after_product(index, consts, p) for p in products)
    return Activation(kind=Kind.LINEAR, normalized=normalized, end=first_end)


def _normalized_after_product(index: GraphIndex, consts: Constants, value: str) -> bool:
    """Whether a normalization takes an attention product (probs·V, q·λ) before anything
    rescales it: the product is linear in the value side, so a norm after it resets that
    weight's scale too (timm's lambda layer: q·conv_lambda(v), added to the content lambdas,
    then the block's BatchNorm). A Softmax (Q·Kᵀ's) or a weighted layer comes first
    elsewhere."""
    walk = _Walk([value])
    for v in walk:
        for node, slot in index.consumers_of(v):
            op = node.op_type
            out = node.outputs[0] if node.outputs else None
            others = [i for j, i in enumerate(node.inputs) if j != slot and i]
            if op in NORM_OPS:
                return True
            if op in ("Mul", "Div") and is_norm_factor(index, consts, others):
                return True
            passes = (
                op in PASS_OPS
                or op == "Add"
                or (op in ("Mul", "Div") and all(consts.is_constant(i) for i in others))
            )
            if passes and out:
                walk.push(out)
    return False


def _single(consts: Constants, node: Node) -> Activation | None:
    """The activation ``node`` is, when it is one applied to our value."""
    op = node.op_type
    if op in ACTIVATION_KINDS:
        return Activation(kind=ACTIVATION_KINDS[op])
    if op in ALPHA_ACTIVATIONS:
        kind, default = ALPHA_ACTIVATIONS[op]
        alpha = node.attrs.alpha
        return Activation(kind=kind, alpha=alpha if alpha is not None else default)
    if op == "Gelu":
        tanh = node.attrs.approximate == "tanh"
        return Activation(kind=Kind.GELU, approximate="tanh" if tanh else None)
    if op == "Clip":
        lo = consts.scalar(node.input(1)) if node.input(1) else node.attrs.min
        hi = consts.scalar(node.input(2)) if node.input(2) else node.attrs.max
        if lo == 0.0 and hi == 6.0:
            return Activation(kind=Kind.RELU6)
        if lo == 0.0:
            return Activation(kind=Kind.RELU)
        return Activation(kind=Kind.CLIP)
    return None


def _step(
    index: GraphIndex, consts: Constants, node: Node, slot: int
) -> tuple[str | None, bool, End | None]:
    """(next value to follow, passed a normalization, kind of linear end reached)."""
    op = node.op_type
    out = node.outputs[0] if node.outputs else None
    if op in LINEAR_OPS or op in RECURRENT_OPS:
        others = [i for j, i in enumerate(node.inputs) if j != slot and i]
        weighted = any(consts.is_constant(i) for i in others)
        # A product of two activations (Q·Kᵀ, probs·V) is attention, not another layer.
        return None, False, End.LINEAR if weighted else End.ATTENTION
    if op in NORM_OPS:
        return out, True, None
    if op in PASS_OPS:
        return out, False, None
    if op in ("Add", "Sub", "Mul", "Div", "Where"):
        others = [i for j, i in enumerate(node.inputs) if j != slot and i]
        if all(consts.is_constant(i) for i in others):
            return out, False, None  # bias add or constant scaling
        if op in ("Mul", "Div") and is_norm_factor(index, consts, others):
            return out, True, None  # decomposed LayerNorm / RMSNorm
        if op == "Sub" and any(_producer_op(index, i) == "ReduceMean" for i in others):
            return out, True, None  # x - mean(x): decomposed LayerNorm
        return None, False, End.RESIDUAL if op in ("Add", "Sub") else End.GATE
    return None, False, None


def _softmax_end(index: GraphIndex, softmax: Node) -> End:
    """OUTPUT when the probabilities are what the graph returns (a classifier exported with
    its softmax), GATE when the network goes on with them: a mixture-of-experts router, whose
    logits' scale is a routing temperature (Switch Transformers draws it N(0, 1))."""
    walk = _Walk(o for o in softmax.outputs if o)
    for v in walk:
        if v in index.graph_outputs:
            return End.OUTPUT
        for node, _ in index.consumers_of(v):
            if node.op_type in PASS_OPS:
                walk.push(*node.outputs)
    return End.GATE


class _Walk:
    """Values visited breadth first, each once, at most MAX_WALK of them."""

    def __init__(self, start: Iterable[str]) -> None:
        self._queue: deque[str] = deque(start)
        self._seen: set[str] = set()

    def __iter__(self) -> Iterator[str]:
        while self._queue and len(self._seen) < MAX_WALK:
            v = self._queue.popleft()
            if v not in self._seen:
                self._seen.add(v)
                yield v

    def push(self, *values: str) -> None:
        self._queue.extend(values)


def _producer_op(index: GraphIndex, value: str) -> str | None:
    n = index.producer_of(value)
    return n.op_type if n else None
