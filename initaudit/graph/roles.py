"""What each stored tensor is to the network: its role, fans, units and following activation.

A tensor's role is the most specific one among its uses (an embedding tied to an lm_head is an
embedding: that is what chose its init). Ops with weight layouts decide it (graph/layout.py);
for elementwise ops the context does: a vector added to a linear layer's output is its bias,
one added after a normalization is its shift, one multiplying an activation is a scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from initaudit.graph.activations import activation_after
from initaudit.graph.consts import Constants
from initaudit.graph.layout import Layout, layout_for
from initaudit.graph.model import (
    UNKNOWN,
    Activation,
    GraphIndex,
    Kind,
    Node,
    Role,
    UnitLayout,
    Use,
    WeightSite,
)
from initaudit.graph.ops import (
    ADDITIVE,
    LAYOUT_OPS,
    LINEAR_OPS,
    NORM_OPS,
    RECURRENT_OPS,
    RNN_ACTIVATIONS,
    SCALING,
    SOFTMAX_OPS,
)
from initaudit.graph.patterns import is_norm_factor
from initaudit.graph.shapes import Shape
from initaudit.graph.streams import stored_name, table_stream
from initaudit.graph.trace import Reach

# Among a tensor's uses, the most specific role wins (lowest rank).
_ROLE_RANK = {
    Role.EMBEDDING: 0,
    Role.RECURRENT: 1,
    Role.WEIGHT: 2,
    Role.NORM_SCALE: 3,
    Role.NORM_SHIFT: 4,
    Role.BIAS: 5,
    Role.SCALE: 6,
    Role.OTHER: 7,
}
_LOOK_BACK = 8  # layout ops looked back through to find what computed a value
_LOGIT_WALK = 32  # values followed from a table lookup towards a Softmax


class Roles:
    """Decides the site of each traced tensor of one graph."""

    def __init__(self, index: GraphIndex, consts: Constants) -> None:
        self.index = index
        self.consts = consts
        self._folded_summands: dict[str, tuple[str, ...]] = {}

    def site(
        self, name: str, dims: Shape, dtype: str, reaches: Sequence[Reach]
    ) -> tuple[WeightSite, Reach | None]:
        """The site of stored tensor ``name`` and the use that gave it its role (None if unused)."""
        best: tuple[int, int, Layout, Reach] | None = None
        for order, r in enumerate(reaches):
            lay = layout_for(r.node, r.slot, r.shape) or self._context_role(r, dims)
            if lay.role == Role.WEIGHT and self._folded_input(r):
                lay = Layout(role=Role.OTHER)
            if lay.role == Role.EMBEDDING and self._gathered_bias(r.node):
                lay = Layout(role=Role.BIAS)
            key = (_ROLE_RANK[lay.role], order)
            if best is None or key < best[:2]:
                best = (key[0], key[1], lay, r)
        uses = tuple(Use(node=r.node.name, op_type=r.node.op_type, slot=r.slot) for r in reaches)
        quant = next((r.quant for r in reaches if r.quant), None)
        if best is None:
            site = WeightSite(
                name=name,
                node="",
                op_type="",
                role=Role.OTHER,
                shape=dims,
                dtype=dtype,
                fan_in=None,
                fan_out=None,
                activation=None,
                units=None,
                quant=quant,
                uses=uses,
            )
            return site, None
        _, _, lay, r = best
        units = lay.units if r.shape == dims else _units_if_untransposed(lay.units, r, dims)
        stream = (
            table_stream(self.index, self.consts, r.node) if lay.role == Role.EMBEDDING else None
        )
        if stream is not None and stream.constants:
            self._folded_summands[name] = stream.constants
        site = WeightSite(
            name=name,
            node=r.node.name,
            op_type=r.node.op_type,
            role=lay.role,
            shape=dims,
            dtype=dtype,
            fan_in=lay.fan_in,
            fan_out=lay.fan_out,
            activation=self._activation(r.node, lay.role),
            units=units,
            quant=quant,
            uses=uses,
            hidden_size=lay.hidden_size,
            scope=r.node.scope,
            folded_norm=r.node.folded_norm,
            bias=self._bias_of(r.node) if lay.role == Role.WEIGHT else None,
            stream=stream.value if stream else None,
            into_norm=bool(stream and stream.normalized),
        )
        return site, r

    def with_streams(self, sites: Sequence[WeightSite]) -> list[WeightSite]:
        """Folded position tables join the stream of the lookups they are summed with."""
        joined: dict[str, str] = {}
        for s in sites:
            if s.role == Role.EMBEDDING and s.stream is not None:
                for name in self._folded_summands.get(s.name, ()):
                    joined.setdefault(name, s.stream)
        return [
            replace(s, stream=joined[s.name]) if s.name in joined and s.stream is None else s
            for s in sites
        ]

    def with_bias_fans(self, found: Sequence[tuple[WeightSite, Reach | None]]) -> list[WeightSite]:
        """Biases take the fan_in of the layer they are added to (PyTorch draws them
        U(±1/sqrt(fan_in)) of that layer); the rest are returned as they are."""
        fan_by_node = {
            p.node.id: s.fan_in for s, p in found if p is not None and s.role == Role.WEIGHT
        }
        return [self._with_bias_fan(s, p, fan_by_node) for s, p in found]

    def _with_bias_fan(
        self, site: WeightSite, reach: Reach | None, fan_by_node: dict[int, int | None]
    ) -> WeightSite:
        if site.role != Role.BIAS or reach is None:
            return site
        node = reach.node
        if node.op_type in ADDITIVE:
            others = [i for j, i in enumerate(node.inputs) if j != reach.slot and i]
            src = self._linear_source(others[0]) if others else None
            node = src if src is not None else node
        fan_in = fan_by_node.get(node.id)
        if fan_in is None:
            return site
        return replace(site, fan_in=fan_in, fan_out=site.size)

    def _folded_input(self, r: Reach) -> bool:
        """The left operand of a MatMul whose right one is a weight too: an input the exporter
        folded into a constant (HF SigLIP's attention-pooling ``probe`` expanded to the batch
        and transposed: its rows are one query token per batch item, not output units). A
        Linear's weight is the right operand, x @ Wᵀ."""
        node = r.node
        return (
            node.op_type in ("MatMul", "FusedMatMul")
            and r.slot == 0
            and self._is_weight(node.input(1))
        )

    def _bias_of(self, layer: Node) -> str | None:
        """The stored tensor added to a layer's output: Gemm/Conv's third input, or the
        constant operand of the Add right after it (through layout ops). A rule tells a layer
        whose constant bias is its whole output at init (IA201's near-identity gates)."""
        if layer.op_type in ("Gemm", "Conv", "ConvTranspose") and layer.input(2):
            return stored_name(self.index, self.consts, layer.input(2))
        value = layer.outputs[0] if layer.outputs else ""
        for _ in range(_LOOK_BACK):
            consumers = self.index.consumers_of(value)
            if len(consumers) != 1:
                return None
            node, slot = consumers[0]
            if node.op_type == "Add":
                other = node.input(1 - slot)
                return stored_name(self.index, self.consts, other)
            if node.op_type not in LAYOUT_OPS or not node.outputs:
                return None
            value = node.outputs[0]
        return None

    def _context_role(self, r: Reach, dims: Shape) -> Layout:
        """Role of a tensor feeding an elementwise op: a bias, a norm affine, or a scale."""
        node = r.node
        others = [i for j, i in enumerate(node.inputs) if j != r.slot and i]
        if node.op_type in ADDITIVE and others:
            if self._linear_source(others[0]) is not None:
                return Layout(role=Role.BIAS)
            src = self._source_op(others[0])
            if src is not None and self._is_normalized(src):
                return Layout(role=Role.NORM_SHIFT)
        # A per-channel vector (at most one axis longer than 1) multiplying an activation is a
        # learned scale; a broadcast table (rotary cos/sin, masks) is a buffer, not a parameter.
        if node.op_type in SCALING and others and sum(d > 1 for d in dims) == 1:
            src = self._source_op(others[0])
            if src is not None and self._is_normalized(src):
                return Layout(role=Role.NORM_SCALE)
            return Layout(role=Role.SCALE)
        return Layout(role=Role.OTHER)

    def _gathered_bias(self, lookup: Node) -> bool:
        """A table whose gathered rows are added to attention logits, or to a layer's output,
        is a bias, not an embedding: its rows are no features flowing into matmuls (timm
        LeViT's and EfficientViT's zero ``attention_biases``, Swin's relative position
        tables, T5's relative attention bias, all gathered by relative position and added to
        Q·Kᵀ before the Softmax; a mixture-of-experts' per-expert biases, gathered by expert
        and added to the expert's output).

        From the lookup's output, layout ops, constant rescales and Adds are followed; a
        Softmax reached that way means logits, an Add with a weighted layer's output means a
        bias, anything else (a normalization, a linear op, another table) means features.
        """
        # (value, whether an Add was passed on the way): only the first Add's other operand
        # tells a bias from features; past it the walk would reach the residual stream. Before
        # that Add, any other use of the rows (a normalization, a matmul: the word embedding
        # of a pre-norm network is also the residual stream's start) makes them features.
        frontier = [(o, False) for o in lookup.outputs if o]
        seen: set[str] = set()
        bias = False
        while frontier and len(seen) < _LOGIT_WALK:
            value, added = frontier.pop()
            if value in seen:
                continue
            seen.add(value)
            for node, slot in self.index.consumers_of(value):
                op = node.op_type
                if op in SOFTMAX_OPS:
                    return True
                if op in ADDITIVE and not added:
                    others = [i for j, i in enumerate(node.inputs) if j != slot and i]
                    bias = bias or any(self._linear_source(i) is not None for i in others)
                constant_rescale = op in SCALING and all(
                    self.consts.is_constant(i) for i in node.inputs if i and i != value
                )
                passes = (
                    op in LAYOUT_OPS
                    or op in ADDITIVE
                    or op in ("Expand", "Tile")
                    or constant_rescale
                )
                if passes:
                    frontier.extend((o, added or op in ADDITIVE) for o in node.outputs[:1] if o)
                elif not added:
                    return False  # used as features before any Add
        return bias

    def _linear_source(self, value: str) -> Node | None:
        """The weight-bearing linear op whose output ``value`` is, looking back through
        layout ops and the rescaling Mul that integer ops (MatMulInteger) are followed by."""
        for _ in range(_LOOK_BACK):
            node = self.index.producer_of(value)
            if node is None:
                return None
            if node.op_type in LINEAR_OPS:
                has_weight = any(self._is_weight(i) for i in node.inputs if i)
                return node if has_weight else None
            if node.op_type in SCALING:
                dynamic = [i for i in node.inputs if i and not self._is_scale_like(i)]
                if len(dynamic) != 1:
                    return None
                value = dynamic[0]
                continue
            if node.op_type not in LAYOUT_OPS:
                return None
            value = node.input(0)
        return None

    def _is_weight(self, value: str) -> bool:
        """A constant operand, or a slice selected from a stored bank (a mixture-of-experts
        ``gate_up_proj[e]``: a Gather of a constant by a routed index, trace.py)."""
        for _ in range(_LOOK_BACK):
            if self.consts.is_constant(value):
                return True
            node = self.index.producer_of(value)
            if node is None:
                return False
            if node.op_type == "Gather":
                return self.consts.is_constant(node.input(0))
            if node.op_type not in LAYOUT_OPS:
                return False
            value = node.input(0)
        return False

    def _is_scale_like(self, value: str) -> bool:
        """A constant, or the input_scale*weight_scale product of dynamic quantization."""
        if self.consts.is_constant(value):
            return True
        node = self.index.producer_of(value)
        if node is None or node.op_type != "Mul":
            return False
        producers = [self.index.producer_of(i) for i in node.inputs]
        return any(self.consts.is_constant(i) for i in node.inputs) and any(
            p is not None and p.op_type == "DynamicQuantizeLinear" for p in producers
        )

    def _source_op(self, value: str) -> Node | None:
        """The op producing ``value``, looking back through layout-only ops."""
        for _ in range(_LOOK_BACK):
            node = self.index.producer_of(value)
            if node is None or node.op_type not in LAYOUT_OPS:
                return node
            value = node.input(0)
        return None

    def _is_normalized(self, node: Node) -> bool:
        if node.op_type in NORM_OPS:
            return True
        if node.op_type in SCALING:
            others = [i for i in node.inputs if i and not self.consts.is_constant(i)]
            return is_norm_factor(self.index, self.consts, others)
        return False

    def _activation(self, node: Node, role: Role) -> Activation | None:
        # An embedding's scale is set by convention (N(0,1), 0.02...), not by what follows it.
        if role not in (Role.WEIGHT, Role.RECURRENT):
            return None
        if node.op_type in RECURRENT_OPS:
            # LSTM/GRU outputs pass through tanh (their hidden state); an RNN's through its
            # last listed activation (tanh by default).
            names = node.attrs.activations or ()
            if names and node.op_type == "RNN":
                return Activation(kind=RNN_ACTIVATIONS.get(names[-1], Kind.UNKNOWN))
            return Activation(kind=Kind.TANH)
        if not node.outputs or not node.outputs[0]:
            return UNKNOWN
        act = activation_after(self.index, self.consts, node.outputs[0])
        # A BatchNorm the exporter folded into this layer still normalizes its output.
        return replace(act, normalized=True) if node.folded_norm else act


def _units_if_untransposed(units: UnitLayout | None, r: Reach, dims: Shape) -> UnitLayout | None:
    """Map the unit axis back to the stored tensor when the path was a plain 2-D transpose,
    or a selection of one slice of a stacked parameter (trace.py ``_selected``)."""
    if units is None or r.shape is None:
        return None
    if len(dims) == len(r.shape) + 1 and r.shape == dims[1:]:
        shifted = replace(units, axis=units.axis + 1, group_axis=units.group_axis + 1)
        return replace(shifted, batch_dims=units.batch_dims + 1)
    if len(dims) != 2 or len(r.shape) != 2:
        return None
    if r.shape == (dims[1], dims[0]) and units.groups == 1 and units.gates == 1:
        return UnitLayout(axis=1 - units.axis)
    return None
