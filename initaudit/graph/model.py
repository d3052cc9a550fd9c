"""The graph stage's product: frozen records the later stages read, and nothing else.

:class:`ModelGraph` is what ``graph.build.build_graph`` returns: the executed nodes with their
producer/consumer lookups, which values are constants, one :class:`WeightSite` per audited
tensor (its role, fans, unit layout, the activation after it) and the whole-model facts some
schemes need. The statistics, the signal propagation and the rules take it as it is; none of
them sees protobuf.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from initaudit._compat import StrEnum

if TYPE_CHECKING:  # built by the graph stage; typed here for readers
    from initaudit.graph.consts import Constants


class Role(StrEnum):
    """What a tensor is to the network, as reports spell it (the JSON contract's words)."""

    WEIGHT = "weight"
    BIAS = "bias"
    NORM_SCALE = "norm_scale"
    NORM_SHIFT = "norm_shift"
    EMBEDDING = "embedding"
    RECURRENT = "recurrent_weight"
    SCALE = "scale"  # a per-channel vector multiplying an activation (layer scale, PReLU)
    OTHER = "other"  # buffers: masks, rotary tables, anything no rule of a parameter fits


# Roles whose values come from an init scheme (what IA101/IA102/IA104 apply to).
MATRIX_ROLES = frozenset({Role.WEIGHT, Role.EMBEDDING, Role.RECURRENT})


class Kind(StrEnum):
    """The nonlinearity after a weight, in the contract's lowercase keywords."""

    RELU = "relu"
    RELU6 = "relu6"
    LEAKY_RELU = "leaky_relu"
    PRELU = "prelu"
    ELU = "elu"
    SELU = "selu"
    CELU = "celu"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    HARDSIGMOID = "hardsigmoid"
    HARDSWISH = "hardswish"
    GELU = "gelu"
    SILU = "silu"
    SOFTPLUS = "softplus"
    SOFTSIGN = "softsign"
    MISH = "mish"
    THRESHOLDED_RELU = "thresholded_relu"
    SIN = "sin"
    SOFTMAX = "softmax"
    ABS = "abs"
    CLIP = "clip"
    LINEAR = "linear"  # no nonlinearity before a linear end (see End)
    UNKNOWN = "unknown"  # the walk could not tell (a QuantizeLinear hides a fused ReLU)


class End(StrEnum):
    """What ended the activation walk of a linear layer."""

    RESIDUAL = "residual"  # an Add with another activation
    OUTPUT = "output"  # a graph output
    LINEAR = "linear"  # another weighted linear op
    ATTENTION = "attention"  # a product of two activations (Q·Kᵀ, probs·V)
    GATE = "gate"  # a Mul with another activation


@dataclass(frozen=True, kw_only=True)
class Activation:
    """The nonlinearity a weight's output reaches, the way an init scheme's gain depends on it."""

    kind: Kind
    alpha: float | None = None  # LeakyRelu/Elu/Celu slope parameter where it matters
    normalized: bool = False  # a normalization sits between the weight and this activation
    approximate: str | None = None  # "tanh" for GELU's tanh form
    end: End | None = None  # for Kind.LINEAR: what ended the walk

    @property
    def label(self) -> str:
        if self.kind == Kind.GELU and self.approximate:
            return f"gelu(approximate={self.approximate})"
        if self.alpha is not None:
            return f"{self.kind}(alpha={self.alpha:g})"
        return str(self.kind)


LINEAR = Activation(kind=Kind.LINEAR)
UNKNOWN = Activation(kind=Kind.UNKNOWN)


@dataclass(frozen=True, kw_only=True)
class UnitLayout:
    """Where the output units of a weight lie, for the duplicate-units check (IA104).

    ``axis`` indexes output units in the stored tensor. ``groups`` > 1 splits ``group_axis``
    into independent groups (grouped convolution): units in different groups read different
    inputs, so identical filters there are not symmetric. ``gates`` > 1 marks recurrent weights
    [D, gates*H, X]: a hidden unit is the stack of its rows in every gate. ``batch_dims``
    leading axes index independent matrices (experts, heads) compared separately.
    """

    axis: int
    groups: int = 1
    group_axis: int = 0
    gates: int = 1
    batch_dims: int = 0


@dataclass(frozen=True, kw_only=True)
class Quantization:
    """How to turn a stored integer tensor into the real weight: (q - zero_point) * scale."""

    scale: str
    zero_point: str
    axis: int
    block_size: int = 0


@dataclass(frozen=True, kw_only=True)
class Use:
    node: str
    op_type: str
    slot: int


@dataclass(frozen=True, kw_only=True)
class WeightSite:
    """One audited tensor and everything the graph says about it."""

    name: str
    node: str  # the node that gives it its role ("" if unused)
    op_type: str
    role: Role
    shape: tuple[int, ...]
    dtype: str
    fan_in: int | None
    fan_out: int | None
    activation: Activation | None
    units: UnitLayout | None
    quant: Quantization | None
    uses: tuple[Use, ...]
    hidden_size: int | None = None  # of the recurrent op (LSTM/GRU/RNN) reading it
    scope: str = ""  # the framework module of the node that gives it its role (graph/index.py)
    folded_norm: bool = False  # that node is a layer an exporter folded a BatchNorm into
    bias: str | None = None  # of a weight: the stored tensor added to its layer's output
    # Of an embedding: the value its rows are summed into with other tables' (graph/streams.py)
    # and whether a normalization takes their sum (or its rows alone) next.
    stream: str | None = None
    into_norm: bool = False

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True, kw_only=True)
class NodeAttrs:
    """The attributes the analysis reads, each with the one type ONNX gives it in every op that
    has it; None where the node does not set it (or sets it with another type). Readers apply
    the op's default, as onnx's reference ops do."""

    activations: tuple[str, ...] | None = None
    allowzero: int | None = None
    alpha: float | None = None
    approximate: str | None = None
    axes: tuple[int, ...] | None = None
    axis: int | None = None
    block_size: int | None = None
    epsilon: float | None = None
    equation: str | None = None
    group: int | None = None
    hidden_size: int | None = None
    kernel_shape: tuple[int, ...] | None = None
    max: float | None = None
    min: float | None = None
    perm: tuple[int, ...] | None = None
    training_mode: int | None = None
    transA: int | None = None
    transB: int | None = None


NO_ATTRS = NodeAttrs()


@dataclass(frozen=True, kw_only=True, eq=False)
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
    attrs: NodeAttrs = field(default=NO_ATTRS, repr=False)
    graph: str = ""  # "" for the main graph, else the subgraph or function it came from
    folded_norm: bool = False  # the exporter folded a normalization into it (graph/index.py)
    scope: str = ""  # the framework module it was exported from, where the exporter says

    def input(self, i: int) -> str:
        """The i-th input name, or "" where it is absent or omitted."""
        return self.inputs[i] if i < len(self.inputs) else ""


@dataclass(frozen=True, kw_only=True)
class GraphIndex:
    """Every executed node (subgraph bodies and expanded function calls included), in a
    deterministic order, with producer and consumer lookups."""

    nodes: tuple[Node, ...]
    producers: Mapping[str, Node]
    consumers: Mapping[str, tuple[tuple[Node, int], ...]]
    graph_inputs: frozenset[str]
    graph_outputs: frozenset[str]
    # Graph inputs that hold numbers a signal is made of: float inputs (and untyped ones);
    # token ids, positions and masks are integers or booleans and carry no signal.
    signal_inputs: frozenset[str] = frozenset()

    def consumers_of(self, value: str) -> tuple[tuple[Node, int], ...]:
        return self.consumers.get(value, ())

    def producer_of(self, value: str) -> Node | None:
        return self.producers.get(value)


@dataclass(frozen=True, kw_only=True)
class ModelFacts:
    """Whole-model facts some schemes need: depth for depth-scaled inits, vocab sizes, and
    the width for tables drawn at the model's scale (T5's relative attention bias)."""

    depths: tuple[int, ...] = ()  # candidate numbers of residual blocks L
    vocab_sizes: tuple[int, ...] = ()
    widths: tuple[int, ...] = ()  # the model's width d_model: its most common fan_in


@dataclass(frozen=True, kw_only=True)
class ModelGraph:
    """The graph stage's one output (see the module docstring)."""

    index: GraphIndex
    consts: Constants
    sites: tuple[WeightSite, ...]
    facts: ModelFacts

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.index.nodes
