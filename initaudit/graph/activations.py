"""Find the nonlinearity a weight's output reaches, the way an init scheme's gain depends on it.

From a linear op's output we walk forward through what does not change the choice of gain (bias
Add, Reshape/Transpose/Flatten/Squeeze, Identity, Dropout, Cast, pooling, constant scaling) and
through normalizations (recorded: a norm before the nonlinearity resets the scale), and stop at
the first nonlinearity, or at a linear end: another linear op, a residual Add, a graph output.

Exporters decompose several activations; we recognize them by shape, not by node names:
``x * f(x)`` with ``f`` built from Erf (GELU), Tanh of a cubic (GELU-tanh), Sigmoid (SiLU/Swish,
or QuickGELU), Softplus+Tanh (Mish), HardSigmoid or Clip (HardSwish); and Clip(0, 6) (ReLU6).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from initaudit.graph.consts import Constants
from initaudit.graph.index import GraphIndex, Node
from initaudit.graph.layout import LINEAR_OPS

MAX_WALK = 64
MAX_PATTERN = 64  # elementwise ops a decomposed activation may span


@dataclass(frozen=True)
class Activation:
    """The nonlinearity after a weight. ``kind`` uses the contract's lowercase keywords."""

    kind: str  # relu, leaky_relu, prelu, elu, selu, celu, tanh, sigmoid, gelu, silu, ...
    alpha: float | None = None  # LeakyRelu/Elu/Celu slope parameter where it matters
    normalized: bool = False  # a normalization sits between the weight and this activation
    approximate: str | None = None  # "tanh" for GELU's tanh form
    # For "linear": what ended the walk: "residual" (Add with another activation), "output"
    # (graph output), "linear" (another weighted linear op), "attention" (a product of two
    # activations, e.g. Q·Kᵀ) or "gate" (Mul with another activation).
    end: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "gelu" and self.approximate:
            return f"gelu(approximate={self.approximate})"
        if self.alpha is not None:
            return f"{self.kind}(alpha={self.alpha:g})"
        return self.kind


LINEAR = Activation("linear")
UNKNOWN = Activation("unknown")

_SIMPLE = {
    "Relu": "relu",
    "PRelu": "prelu",
    "Selu": "selu",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "HardSigmoid": "hardsigmoid",
    "HardSwish": "hardswish",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Mish": "mish",
    "ThresholdedRelu": "thresholded_relu",
    "Sin": "sin",
    "Cos": "sin",
    "Softmax": "softmax",
    "LogSoftmax": "softmax",
    "Abs": "abs",
    "FastGelu": "gelu",
    "BiasGelu": "gelu",
    "QuickGelu": "gelu",
}
_ALPHA_DEFAULT = {"LeakyRelu": 0.01, "Elu": 1.0, "Celu": 1.0}

# Ops that carry the signal through unchanged in the sense that matters for gain.
PASS_OPS = frozenset(
    {
        "Reshape",
        "Transpose",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Identity",
        "Dropout",
        "Cast",
        "CastLike",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "Pad",
        "Slice",
        "Split",
        "Concat",
        "Resize",
        "Upsample",
        "DepthToSpace",
        "SpaceToDepth",
        "Expand",
        "Tile",
        "Gather",
        "QuantizeLinear",
        "DequantizeLinear",
    }
)
NORM_OPS = frozenset(
    {
        "BatchNormalization",
        "LayerNormalization",
        "InstanceNormalization",
        "GroupNormalization",
        "RMSNormalization",
        "SimplifiedLayerNormalization",
        "SkipLayerNormalization",
        "SkipSimplifiedLayerNormalization",
        "LpNormalization",
        "MeanVarianceNormalization",
    }
)
# Elementwise ops a decomposed activation is built from.
_ELEMENTWISE = frozenset(
    {
        "Mul",
        "Div",
        "Add",
        "Sub",
        "Pow",
        "Erf",
        "Tanh",
        "Sigmoid",
        "Softplus",
        "HardSigmoid",
        "Clip",
        "Relu",
        "Neg",
        "Exp",
        "Log",
    }
)
_REDUCTIONS = frozenset({"ReduceMean", "ReduceL2", "ReduceSumSquare", "ReduceSum"})
_GATE_OPS = frozenset({"Erf", "Tanh", "Sigmoid", "Softplus", "HardSigmoid", "Clip", "Relu"})
_GATE_KINDS = (
    ("Erf", "gelu"),
    ("Softplus", "mish"),
    ("Tanh", "gelu_tanh"),
    ("HardSigmoid", "hardswish"),
    ("Clip", "hardswish"),
    ("Relu", "hardswish"),
    ("Sigmoid", "silu"),
)


class ActivationFinder:
    def __init__(self, index: GraphIndex, consts: Constants) -> None:
        self.index = index
        self.consts = consts

    def after(self, value: str) -> Activation:
        """The activation reached from ``value`` (a linear op's output)."""
        normalized = False
        quantized = False
        queue: deque[str] = deque([value])
        seen: set[str] = set()
        first_end: str | None = None
        while queue and len(seen) < MAX_WALK:
            v = queue.popleft()
            if v in seen:
                continue
            seen.add(v)
            producer = self.index.producer_of(v)
            if producer is not None and producer.op_type == "QuantizeLinear":
                quantized = True
            gated = self._gated(v)
            if gated is not None:
                return Activation(gated.kind, gated.alpha, normalized, gated.approximate)
            consumers = self.index.consumers_of(v)
            if (not consumers or v in self.index.graph_outputs) and first_end is None:
                first_end = "output"
            for node, _slot in consumers:
                act = self._single(node)
                if act is not None:
                    return Activation(act.kind, act.alpha, normalized, act.approximate)
            for node, slot in consumers:
                nxt, is_norm, end = self._step(node, slot)
                if end and first_end is None:
                    first_end = end
                if is_norm:
                    normalized = True
                if nxt:
                    queue.append(nxt)
        # Quantizers fuse ReLU into the preceding op's output range (ORT QDQ drops the Relu
        # node), so a linear end seen through a QuantizeLinear proves nothing.
        if quantized or first_end is None:
            return Activation("unknown", None, normalized)
        return Activation("linear", None, normalized, end=first_end)

    # A node that is itself a nonlinearity applied to our value.
    def _single(self, node: Node) -> Activation | None:
        op = node.op_type
        if op in _SIMPLE:
            return Activation(_SIMPLE[op])
        if op in _ALPHA_DEFAULT:
            alpha = node.attr("alpha", _ALPHA_DEFAULT[op])
            kind = {"LeakyRelu": "leaky_relu", "Elu": "elu", "Celu": "celu"}[op]
            return Activation(kind, float(alpha) if isinstance(alpha, float) else None)
        if op == "Gelu":
            approx = node.attr("approximate", "none")
            return Activation("gelu", approximate="tanh" if approx == "tanh" else None)
        if op == "Clip":
            lo = self.consts.scalar(node.input(1)) if node.input(1) else node.attr("min")
            hi = self.consts.scalar(node.input(2)) if node.input(2) else node.attr("max")
            if lo == 0.0 and hi == 6.0:
                return Activation("relu6")
            if lo == 0.0:
                return Activation("relu")
            return Activation("clip")
        return None

    def _step(self, node: Node, slot: int) -> tuple[str | None, bool, str | None]:
        """(next value to follow, passed a normalization, kind of linear end reached)."""
        op = node.op_type
        out = node.outputs[0] if node.outputs else None
        if op in LINEAR_OPS or op in ("LSTM", "GRU", "RNN"):
            others = [i for j, i in enumerate(node.inputs) if j != slot and i]
            weighted = any(self.consts.is_constant(i) for i in others)
            # A product of two activations (Q·Kᵀ, probs·V) is attention, not another layer.
            return None, False, "linear" if weighted else "attention"
        if op in NORM_OPS:
            return out, True, None
        if op in PASS_OPS:
            return out, False, None
        if op in ("Add", "Sub", "Mul", "Div", "Where"):
            others = [i for j, i in enumerate(node.inputs) if j != slot and i]
            if all(self.consts.is_constant(i) for i in others):
                return out, False, None  # bias add or constant scaling
            if op in ("Mul", "Div") and self._is_norm_factor(others):
                return out, True, None  # decomposed LayerNorm / RMSNorm
            if op == "Sub" and any(self._producer_op(i) == "ReduceMean" for i in others):
                return out, True, None  # x - mean(x): decomposed LayerNorm
            return None, False, "residual" if op in ("Add", "Sub") else "gate"
        return None, False, None

    def _producer_op(self, value: str) -> str | None:
        n = self.index.producer_of(value)
        return n.op_type if n else None

    def _is_norm_factor(self, values: list[str]) -> bool:
        """A 1/sqrt(mean(x^2)+eps)-like operand: a reduction of the activation upstream.

        A Sqrt alone is not enough: attention divides by sqrt(head_dim) computed from Shape.
        """
        for v in values:
            frontier, hops = [v], 0
            while frontier and hops < 6:
                nxt = []
                for w in frontier:
                    n = self.index.producer_of(w)
                    if n is None:
                        continue
                    if n.op_type in _REDUCTIONS:
                        return True
                    if n.op_type in (
                        "Add",
                        "Cast",
                        "Div",
                        "Pow",
                        "Mul",
                        "Identity",
                        "Sqrt",
                        "Reciprocal",
                        "Rsqrt",
                    ):
                        nxt.extend(i for i in n.inputs if i and not self.consts.is_constant(i))
                frontier, hops = nxt, hops + 1
        return False

    def _gated(self, y: str) -> Activation | None:
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
                for node, _slot in self.index.consumers_of(v):
                    if node.op_type in _ELEMENTWISE and node.outputs and node.id not in ids:
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
                ops = set().union(*ins)
                if node.op_type in _GATE_OPS:
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
                    and all(self.consts.is_constant(i) for i in others)
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
                    kind = self._gate_kind(set(derived[f]))
                    if kind is not None:
                        return kind
        return None

    @staticmethod
    def _gate_kind(ops: set[str]) -> Activation | None:
        for op, kind in _GATE_KINDS:
            if op in ops:
                if kind == "gelu_tanh":
                    if "cubic" not in ops:
                        return None
                    return Activation("gelu", approximate="tanh")
                return Activation(kind)
        return None
