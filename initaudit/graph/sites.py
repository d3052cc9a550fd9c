"""Stage 2: every audited tensor becomes a :class:`WeightSite` (role, fans, activation, uses).

A stored tensor rarely feeds its op directly in real exports: exporters put Identity (dedup),
Transpose (tied lm_head), Cast (fp16 islands), Reshape and DequantizeLinear (QDQ) in between.
We trace through those to the op that gives the tensor its meaning, carrying the shape change so
fans are computed on the layout the op really sees. One tensor used by several ops is audited
once; its role is the most specific one among its uses (an embedding tied to an lm_head is an
embedding: that is what chose its init).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from initaudit.graph.activations import UNKNOWN, Activation, ActivationFinder
from initaudit.graph.consts import Constants
from initaudit.graph.index import GraphIndex, Node
from initaudit.graph.layout import (
    BIAS,
    EMBEDDING,
    LINEAR_OPS,
    NORM_SCALE,
    NORM_SHIFT,
    OTHER,
    RECURRENT,
    SCALE,
    WEIGHT,
    Layout,
    UnitLayout,
    layout_for,
)
from initaudit.load import LoadedModel
from initaudit.store import is_float_type

_ROLE_RANK = {
    EMBEDDING: 0,
    RECURRENT: 1,
    WEIGHT: 2,
    NORM_SCALE: 3,
    NORM_SHIFT: 4,
    BIAS: 5,
    SCALE: 6,
    OTHER: 7,
}
_TRANSPARENT = frozenset(
    {
        "Identity",
        "Cast",
        "CastLike",
        "Dropout",
        "Transpose",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "DequantizeLinear",
        "QuantizeLinear",
    }
)
_LAYOUT_OPS = frozenset(
    {"Reshape", "Transpose", "Identity", "Cast", "Squeeze", "Unsqueeze", "Flatten"}
)
# (op, weight slot) -> (scale slot, zero-point slot, per-channel axis) for ops that take
# integer weights with their own quantization parameters.
_QLINEAR = {("QLinearConv", 3): (4, 5, 0), ("QLinearMatMul", 3): (4, 5, -1)}


@dataclass(frozen=True)
class Quantization:
    """How to turn a stored integer tensor into the real weight: (q - zero_point) * scale."""

    scale: str
    zero_point: str
    axis: int
    block_size: int = 0


@dataclass(frozen=True)
class Use:
    node: str
    op_type: str
    slot: int


@dataclass(frozen=True)
class WeightSite:
    """One audited tensor and everything the graph says about it."""

    name: str
    node: str  # the node that gives it its role ("" if unused)
    op_type: str
    role: str
    shape: tuple[int, ...]
    dtype: str
    fan_in: int | None
    fan_out: int | None
    activation: Activation | None
    units: UnitLayout | None
    quant: Quantization | None
    uses: tuple[Use, ...]
    facts: tuple[tuple[str, object], ...] = ()

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def fact(self, key: str) -> object:
        return dict(self.facts).get(key)


@dataclass(frozen=True)
class _Reach:
    node: Node
    slot: int
    shape: tuple[int, ...] | None
    quant: Quantization | None


class SiteFinder:
    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.index = GraphIndex(loaded.model)
        self.consts = Constants(self.index, loaded.store)
        self.acts = ActivationFinder(self.index, self.consts)
        self._reassembles: dict[tuple[int, str], bool] = {}

    def sites(self) -> list[WeightSite]:
        quant_params = self._quant_params()
        found: list[tuple[WeightSite, _Reach | None]] = []
        for name, t in self.loaded.store.tensors.items():
            if t.origin.startswith("sparse") or name in quant_params or not name:
                continue
            reaches = list(self._trace(name, t.dims))
            quantized = any(r.quant for r in reaches)
            if not is_float_type(t.data_type) and not quantized:
                continue
            site, primary = self._site(name, t.dims, t.dtype, reaches)
            if site.role == OTHER and t.size <= 1:
                continue  # scalar op constants (0.5, sqrt(2), eps) are not parameters
            found.append((site, primary))
        fan_by_node = {
            p.node.id: s.fan_in for s, p in found if p is not None and s.role in (WEIGHT,)
        }
        return [self._with_bias_fan(s, p, fan_by_node) for s, p in found]

    # -- tracing ---------------------------------------------------------------------------
    def _quant_params(self) -> set[str]:
        """Scales and zero points: part of a quantized weight, not parameters of their own."""
        names: set[str] = set()
        for node in self.index.nodes:
            if node.op_type in ("DequantizeLinear", "QuantizeLinear"):
                names.update(i for i in node.inputs[1:3] if i)
            elif node.op_type in ("QLinearConv", "QLinearMatMul"):
                names.update(i for j, i in enumerate(node.inputs) if i and j in (1, 2, 4, 5, 6, 7))
        return names

    def _trace(self, name: str, dims: tuple[int, ...]) -> Iterator[_Reach]:
        queue: deque[tuple[str, tuple[int, ...] | None, Quantization | None]] = deque(
            [(name, dims, None)]
        )
        seen: set[str] = set()
        while queue and len(seen) < 256:
            value, shape, quant = queue.popleft()
            if value in seen:
                continue
            seen.add(value)
            for node, slot in self.index.consumers_of(value):
                op = node.op_type
                if op in ("Slice", "Split") and slot == 0:
                    joined = self._reordered(value, node)
                    if joined is not None:
                        queue.append((joined, shape, quant))
                        continue
                if op in _TRANSPARENT and slot == 0 and node.outputs and node.outputs[0]:
                    if op == "DequantizeLinear" and node.input(1):
                        quant = Quantization(
                            node.input(1),
                            node.input(2),
                            _int_attr(node, "axis", 1),
                            _int_attr(node, "block_size", 0),
                        )
                    queue.append((node.outputs[0], self._reshape(node, shape), quant))
                    continue
                qspec = _QLINEAR.get((op, slot))
                if qspec is not None and node.input(qspec[0]):
                    quant = Quantization(node.input(qspec[0]), node.input(qspec[1]), qspec[2])
                elif op in ("MatMulInteger", "ConvInteger") and slot == 1:
                    scale = self._integer_op_scale(node)
                    if scale is not None:
                        axis = -1 if op == "MatMulInteger" else 0
                        quant = Quantization(scale, node.input(3), axis)
                yield _Reach(node, slot, shape, quant)

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
                        p is not None and p.op_type in ("Slice", "Split") and p.input(0) == value
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
                    if other in self.loaded.store:
                        return other
                    prod = self.index.producer_of(other)
                    if prod is not None and prod.op_type == "Mul":
                        stored = [i for i in prod.inputs if i in self.loaded.store]
                        return stored[0] if len(stored) == 1 else None
                    return None
            else:
                return None
        return None

    def _reshape(self, node: Node, shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if shape is None:
            return None
        op = node.op_type
        if op == "Transpose":
            perm = node.attr("perm") or tuple(reversed(range(len(shape))))
            if sorted(perm) != list(range(len(shape))):  # type: ignore[arg-type]
                return None
            return tuple(shape[p] for p in perm)  # type: ignore[union-attr]
        if op == "Reshape":
            target = self.consts.small_value(node.input(1))
            return _reshaped(shape, target, bool(node.attr("allowzero", 0)))
        if op == "Flatten":
            axis = _int_attr(node, "axis", 1)
            axis = axis + len(shape) if axis < 0 else axis
            return (math.prod(shape[:axis]), math.prod(shape[axis:]))
        if op in ("Squeeze", "Unsqueeze"):
            axes = node.attr("axes")
            if axes is None and node.input(1):
                arr = self.consts.small_value(node.input(1))
                axes = tuple(int(a) for a in arr.reshape(-1)) if arr is not None else None
            return _squeezed(shape, axes, op == "Unsqueeze")  # type: ignore[arg-type]
        return shape

    # -- roles -----------------------------------------------------------------------------
    def _site(
        self, name: str, dims: tuple[int, ...], dtype: str, reaches: list[_Reach]
    ) -> tuple[WeightSite, _Reach | None]:
        best: tuple[int, int, Layout, _Reach] | None = None
        for order, r in enumerate(reaches):
            lay = layout_for(r.node, r.slot, r.shape) or self._context_role(r, dims)
            key = (_ROLE_RANK[lay.role], order)
            if best is None or key < best[:2]:
                best = (key[0], key[1], lay, r)
        uses = tuple(Use(r.node.name, r.node.op_type, r.slot) for r in reaches)
        quant = next((r.quant for r in reaches if r.quant), None)
        if best is None:
            return WeightSite(
                name, "", "", OTHER, dims, dtype, None, None, None, None, quant, uses
            ), None
        _, _, lay, r = best
        activation = self._activation(r.node, lay.role)
        units = lay.units if r.shape == dims else _units_if_untransposed(lay.units, r, dims)
        site = WeightSite(
            name,
            r.node.name,
            r.node.op_type,
            lay.role,
            dims,
            dtype,
            lay.fan_in,
            lay.fan_out,
            activation,
            units,
            quant,
            uses,
            lay.facts,
        )
        return site, r

    def _context_role(self, r: _Reach, dims: tuple[int, ...]) -> Layout:
        """Role of a tensor feeding an elementwise op: a bias, a norm affine, or a scale."""
        node = r.node
        others = [i for j, i in enumerate(node.inputs) if j != r.slot and i]
        if node.op_type in ("Add", "Sub") and others:
            if self._linear_source(others[0]) is not None:
                return Layout(BIAS)
            src = self._source_op(others[0])
            if src is not None and self._is_normalized(src):
                return Layout(NORM_SHIFT)
        # A per-channel vector (at most one axis longer than 1) multiplying an activation is a
        # learned scale; a broadcast table (rotary cos/sin, masks) is a buffer, not a parameter.
        if node.op_type in ("Mul", "Div") and others and sum(d > 1 for d in dims) == 1:
            src = self._source_op(others[0])
            if src is not None and self._is_normalized(src):
                return Layout(NORM_SCALE)
            return Layout(SCALE)
        return Layout(OTHER)

    def _linear_source(self, value: str) -> Node | None:
        """The weight-bearing linear op whose output ``value`` is, looking back through
        layout ops and the rescaling Mul that integer ops (MatMulInteger) are followed by."""
        for _ in range(8):
            node = self.index.producer_of(value)
            if node is None:
                return None
            if node.op_type in LINEAR_OPS:
                has_weight = any(self.consts.is_constant(i) for i in node.inputs if i)
                return node if has_weight else None
            if node.op_type in ("Mul", "Div"):
                dynamic = [i for i in node.inputs if i and not self._is_scale_like(i)]
                if len(dynamic) != 1:
                    return None
                value = dynamic[0]
                continue
            if node.op_type not in _LAYOUT_OPS:
                return None
            value = node.input(0)
        return None

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
        for _ in range(8):
            node = self.index.producer_of(value)
            if node is None or node.op_type not in _LAYOUT_OPS:
                return node
            value = node.input(0)
        return None

    def _is_normalized(self, node: Node) -> bool:
        if node.op_type in (
            "InstanceNormalization",
            "LayerNormalization",
            "GroupNormalization",
            "BatchNormalization",
            "MeanVarianceNormalization",
        ):
            return True
        if node.op_type in ("Mul", "Div"):
            others = [i for i in node.inputs if i and not self.consts.is_constant(i)]
            return self.acts._is_norm_factor(others)
        return False

    def _activation(self, node: Node, role: str) -> Activation | None:
        # An embedding's scale is set by convention (N(0,1), 0.02...), not by what follows it.
        if role not in (WEIGHT, RECURRENT):
            return None
        if node.op_type in ("LSTM", "GRU", "RNN"):
            acts = node.attr("activations")
            names = [a.lower() for a in acts] if isinstance(acts, tuple) else []
            return Activation(names[-1] if names and node.op_type == "RNN" else "tanh")
        if not node.outputs or not node.outputs[0]:
            return UNKNOWN
        return self.acts.after(node.outputs[0])

    def _with_bias_fan(
        self, site: WeightSite, reach: _Reach | None, fan_by_node: dict[int, int | None]
    ) -> WeightSite:
        if site.role != BIAS or reach is None:
            return site
        node = reach.node
        if node.op_type in ("Add", "Sub"):
            others = [i for j, i in enumerate(node.inputs) if j != reach.slot and i]
            src = self._linear_source(others[0]) if others else None
            node = src if src is not None else node
        fan_in = fan_by_node.get(node.id)
        if fan_in is None:
            return site
        return WeightSite(
            site.name,
            site.node,
            site.op_type,
            site.role,
            site.shape,
            site.dtype,
            fan_in,
            site.size,
            site.activation,
            site.units,
            site.quant,
            site.uses,
            site.facts,
        )


def _units_if_untransposed(
    units: UnitLayout | None, r: _Reach, dims: tuple[int, ...]
) -> UnitLayout | None:
    """Map the unit axis back to the stored tensor when the path was a plain 2-D transpose."""
    if units is None or r.shape is None or len(dims) != 2 or len(r.shape) != 2:
        return None
    if r.shape == (dims[1], dims[0]) and units.groups == 1 and units.gates == 1:
        return UnitLayout(axis=1 - units.axis)
    return None


def _int_attr(node: Node, name: str, default: int) -> int:
    v = node.attr(name, default)
    return v if isinstance(v, int) else default


def _reshaped(
    shape: tuple[int, ...], target: np.ndarray | None, allowzero: bool
) -> tuple[int, ...] | None:
    if target is None:
        return None
    want = [int(x) for x in np.asarray(target).reshape(-1)]
    total = math.prod(shape)
    out: list[int] = []
    infer = -1
    for i, d in enumerate(want):
        if d == 0 and not allowzero:
            if i >= len(shape):
                return None
            out.append(shape[i])
        elif d == -1:
            if infer >= 0:
                return None
            infer = i
            out.append(1)
        elif d < 0:
            return None
        else:
            out.append(d)
    known = math.prod(out)
    if infer >= 0:
        if known == 0 or total % known:
            return None
        out[infer] = total // known
    return tuple(out) if math.prod(out) == total else None


def _squeezed(
    shape: tuple[int, ...], axes: tuple[int, ...] | None, unsqueeze: bool
) -> tuple[int, ...] | None:
    if unsqueeze:
        if axes is None:
            return None
        rank = len(shape) + len(axes)
        norm = sorted(a + rank if a < 0 else a for a in axes)
        out = list(shape)
        for a in norm:
            if not 0 <= a <= len(out):
                return None
            out.insert(a, 1)
        return tuple(out)
    if axes is None:
        return tuple(d for d in shape if d != 1)
    norm = {a + len(shape) if a < 0 else a for a in axes}
    return tuple(d for i, d in enumerate(shape) if i not in norm)


def find_sites(loaded: LoadedModel) -> list[WeightSite]:
    """All audited tensors of ``loaded``, in file order."""
    return SiteFinder(loaded).sites()
