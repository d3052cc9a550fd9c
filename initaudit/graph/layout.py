"""How each ONNX op lays out its weight operands, and so where fan_in and fan_out come from.

One entry per (op type, input slot). Fans follow the convention the frameworks' init functions
use (``torch.nn.init._calculate_fan_in_and_fan_out``, Keras ``compute_fans``), applied to the
ONNX layout of the consuming op, because that is what an init scheme's std was computed from.
See ../shared/init-reference.md §1.3, §2.2 and §5.1 for the layouts and their sources.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from initaudit.graph.model import Node, Role, UnitLayout


@dataclass(frozen=True, kw_only=True)
class Layout:
    """What one op/slot says about a constant operand: its role, fans and unit layout."""

    role: Role
    fan_in: int | None = None
    fan_out: int | None = None
    units: UnitLayout | None = None
    hidden_size: int | None = None  # of a recurrent op: PyTorch's RNN inits scale by it


def _receptive(shape: tuple[int, ...]) -> int:
    return math.prod(shape[2:]) if len(shape) > 2 else 1


def _gemm(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    if slot == 2:
        return Layout(role=Role.BIAS)
    if len(shape) != 2:
        return None
    if slot == 1:
        trans = bool(node.attrs.transB)
        k, n = (shape[1], shape[0]) if trans else (shape[0], shape[1])
        return Layout(
            role=Role.WEIGHT, fan_in=k, fan_out=n, units=UnitLayout(axis=0 if trans else 1)
        )
    trans = bool(node.attrs.transA)
    m, k = (shape[1], shape[0]) if trans else (shape[0], shape[1])
    return Layout(role=Role.WEIGHT, fan_in=k, fan_out=m, units=UnitLayout(axis=1 if trans else 0))


def _matmul(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    if slot > 1 or not shape:
        return None
    if len(shape) == 1:  # a vector on either side: a dot product
        return Layout(role=Role.WEIGHT, fan_in=shape[0], fan_out=1)
    batch = len(shape) - 2
    if slot == 1:  # (..., K, N): y = x @ W
        units = UnitLayout(axis=len(shape) - 1, batch_dims=batch)
        return Layout(role=Role.WEIGHT, fan_in=shape[-2], fan_out=shape[-1], units=units)
    # (..., M, K): y = W @ x
    units = UnitLayout(axis=len(shape) - 2, batch_dims=batch)
    return Layout(role=Role.WEIGHT, fan_in=shape[-1], fan_out=shape[-2], units=units)


def _conv(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    if slot == 2:
        return Layout(role=Role.BIAS)
    if slot != 1 or len(shape) < 3:
        return None
    g = node.attrs.group or 1
    rf = _receptive(shape)
    groups = g if g > 1 and shape[0] % g == 0 else 1
    # Stored (M, C/g, k...); a ConvTranspose stores (C, M/g, k...), and frameworks' default
    # inits use shape[1]*k as its "fan_in" too (the ConvTranspose quirk, init-reference §1.3):
    # its units are output channels on axis 1, grouped by the input-channel axis 0.
    axis = 1 if node.op_type == "ConvTranspose" else 0
    units = UnitLayout(axis=axis, groups=groups, group_axis=0)
    return Layout(role=Role.WEIGHT, fan_in=shape[1] * rf, fan_out=shape[0] * rf, units=units)


_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _recurrent(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    gates = _GATES[node.op_type]
    hidden = node.attrs.hidden_size
    given = hidden if hidden is not None and hidden > 0 else None
    if slot in (1, 2) and len(shape) == 3:
        h = given if given is not None else shape[1] // gates
        units = UnitLayout(axis=1, gates=gates, batch_dims=1) if shape[1] == gates * h else None
        role = Role.WEIGHT if slot == 1 else Role.RECURRENT
        return Layout(role=role, fan_in=shape[2], fan_out=shape[1], units=units, hidden_size=h)
    if slot == 3:
        return Layout(role=Role.BIAS, hidden_size=given)
    if slot == 7 and node.op_type == "LSTM":
        return Layout(role=Role.SCALE)  # peephole weights
    return None


def _gather(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    if slot != 0 or len(shape) < 2:
        return None
    # (V, D) table: frameworks compute fans as torch does on a 2-D tensor (fan_in = D).
    return Layout(role=Role.EMBEDDING, fan_in=shape[-1], fan_out=shape[0])


def _einsum(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    eq = node.attrs.equation
    if eq is None or "->" not in eq or slot > 1:
        return None
    lhs, out = eq.replace(" ", "").split("->")
    operands = lhs.split(",")
    if len(operands) != 2 or "." in eq:
        return None
    mine, other = operands[slot], operands[1 - slot]
    if len(mine) != len(shape):
        return None
    size = dict(zip(mine, shape, strict=True))
    fan_in = math.prod(size[c] for c in mine if c not in out)
    fan_out = math.prod(size[c] for c in mine if c in out and c not in other)
    return Layout(role=Role.WEIGHT, fan_in=fan_in, fan_out=fan_out)


def _norm(
    scale_slot: int, shift_slot: int
) -> Callable[[Node, int, tuple[int, ...]], Layout | None]:
    def rule(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
        if slot == scale_slot:
            return Layout(role=Role.NORM_SCALE)
        if slot == shift_slot:
            return Layout(role=Role.NORM_SHIFT)
        return Layout(role=Role.OTHER) if slot > 0 else None

    return rule


def _ms_attention(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    if slot == 1 and len(shape) == 2:  # (in_hidden, q+k+v hidden)
        return Layout(role=Role.WEIGHT, fan_in=shape[0], fan_out=shape[1], units=UnitLayout(axis=1))
    if slot == 2:
        return Layout(role=Role.BIAS)
    return None


def _prelu(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    return Layout(role=Role.SCALE) if slot == 1 else None


_RULES: Mapping[str, Callable[[Node, int, tuple[int, ...]], Layout | None]] = {
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Conv": _conv,
    "ConvTranspose": _conv,
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "RNN": _recurrent,
    "Gather": _gather,
    "Einsum": _einsum,
    "BatchNormalization": _norm(1, 2),
    "LayerNormalization": _norm(1, 2),
    "InstanceNormalization": _norm(1, 2),
    "GroupNormalization": _norm(1, 2),
    "RMSNormalization": _norm(1, -1),
    "SimplifiedLayerNormalization": _norm(1, -1),
    "SkipLayerNormalization": _norm(2, 3),
    "SkipSimplifiedLayerNormalization": _norm(2, -1),
    "Attention": _ms_attention,
    "PRelu": _prelu,
}

# Quantized and fused ops lay their weight out like the float op they stand for.
_ALIASES: Mapping[tuple[str, int], tuple[str, int]] = {
    ("QLinearConv", 3): ("Conv", 1),
    ("QLinearConv", 8): ("Conv", 2),
    ("ConvInteger", 1): ("Conv", 1),
    ("QLinearMatMul", 0): ("MatMul", 0),
    ("QLinearMatMul", 3): ("MatMul", 1),
    ("MatMulInteger", 0): ("MatMul", 0),
    ("MatMulInteger", 1): ("MatMul", 1),
    ("FusedConv", 1): ("Conv", 1),
    ("FusedConv", 2): ("Conv", 2),
    ("FusedMatMul", 0): ("MatMul", 0),
    ("FusedMatMul", 1): ("MatMul", 1),
    ("FusedGemm", 1): ("Gemm", 1),
    ("FusedGemm", 2): ("Gemm", 2),
}


def layout_for(node: Node, slot: int, shape: tuple[int, ...] | None) -> Layout | None:
    """The role and fans of a constant tensor of ``shape`` feeding input ``slot`` of ``node``.

    ``None`` means this op/slot gives no fan information (the caller decides the role from
    context, e.g. a bias Add).
    """
    alias = _ALIASES.get((node.op_type, slot))
    if alias is not None:
        return _RULES[alias[0]](node, alias[1], shape or ())
    rule = _RULES.get(node.op_type)
    if rule is None:
        return None
    if node.op_type == "Attention" and node.domain != "com.microsoft":
        return None
    return rule(node, slot, shape or ())
