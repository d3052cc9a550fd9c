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

from initaudit.graph.index import Node

# Roles, as written in reports (the JSON contract's vocabulary).
WEIGHT = "weight"
BIAS = "bias"
NORM_SCALE = "norm_scale"
NORM_SHIFT = "norm_shift"
EMBEDDING = "embedding"
RECURRENT = "recurrent_weight"
SCALE = "scale"
OTHER = "other"

# Roles whose values come from an init scheme (what IA101/IA102/IA104 apply to).
MATRIX_ROLES = frozenset({WEIGHT, EMBEDDING, RECURRENT})


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Layout:
    role: str
    fan_in: int | None = None
    fan_out: int | None = None
    units: UnitLayout | None = None
    facts: tuple[tuple[str, object], ...] = ()  # op facts schemes need (hidden_size, gates...)


def _receptive(shape: tuple[int, ...]) -> int:
    return math.prod(shape[2:]) if len(shape) > 2 else 1


def _gemm(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    if slot == 2:
        return Layout(BIAS)
    if len(shape) != 2:
        return None
    if slot == 1:
        trans = bool(node.attr("transB", 0))
        k, n = (shape[1], shape[0]) if trans else (shape[0], shape[1])
        return Layout(WEIGHT, k, n, UnitLayout(axis=0 if trans else 1))
    trans = bool(node.attr("transA", 0))
    m, k = (shape[1], shape[0]) if trans else (shape[0], shape[1])
    return Layout(WEIGHT, k, m, UnitLayout(axis=1 if trans else 0))


def _matmul(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    if slot > 1 or not shape:
        return None
    if len(shape) == 1:
        return Layout(WEIGHT, shape[0], 1)  # a vector on either side: a dot product
    batch = len(shape) - 2
    if slot == 1:  # (..., K, N): y = x @ W
        return Layout(
            WEIGHT, shape[-2], shape[-1], UnitLayout(axis=len(shape) - 1, batch_dims=batch)
        )
    # (..., M, K): y = W @ x
    return Layout(WEIGHT, shape[-1], shape[-2], UnitLayout(axis=len(shape) - 2, batch_dims=batch))


def _conv(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    if slot == 2:
        return Layout(BIAS)
    if slot != 1 or len(shape) < 3:
        return None
    g = int(node.attr("group", 1) or 1)
    rf = _receptive(shape)
    groups = g if g > 1 and shape[0] % g == 0 else 1
    facts = (("group", g),)
    if node.op_type == "ConvTranspose":
        # Stored (C, M/g, k...). Frameworks' default inits use shape[1]*k as "fan_in" (the
        # ConvTranspose quirk, init-reference §1.3); units are output channels on axis 1,
        # grouped by the input-channel axis 0.
        return Layout(
            WEIGHT,
            shape[1] * rf,
            shape[0] * rf,
            UnitLayout(axis=1, groups=groups, group_axis=0),
            facts,
        )
    return Layout(
        WEIGHT, shape[1] * rf, shape[0] * rf, UnitLayout(axis=0, groups=groups, group_axis=0), facts
    )


_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _recurrent(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    gates = _GATES[node.op_type]
    hidden = node.attr("hidden_size")
    if slot in (1, 2) and len(shape) == 3:
        h = int(hidden) if isinstance(hidden, int) and hidden > 0 else shape[1] // gates
        facts = (("hidden_size", h), ("gates", gates))
        units = UnitLayout(axis=1, gates=gates, batch_dims=1) if shape[1] == gates * h else None
        role = WEIGHT if slot == 1 else RECURRENT
        return Layout(role, shape[2], shape[1], units, facts)
    if slot == 3:
        h = hidden if isinstance(hidden, int) and hidden > 0 else None
        return Layout(BIAS, facts=(("hidden_size", h),) if h else ())
    if slot == 7 and node.op_type == "LSTM":
        return Layout(SCALE)  # peephole weights
    return None


def _gather(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    if slot != 0 or len(shape) < 2:
        return None
    # (V, D) table: frameworks compute fans as torch does on a 2-D tensor (fan_in = D).
    return Layout(EMBEDDING, shape[-1], shape[0])


def _einsum(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    eq = node.attr("equation")
    if not isinstance(eq, str) or "->" not in eq or slot > 1:
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
    return Layout(WEIGHT, fan_in, fan_out)


def _norm(
    scale_slot: int, shift_slot: int
) -> Callable[[Node, int, tuple[int, ...]], Layout | None]:
    def rule(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
        if slot == scale_slot:
            return Layout(NORM_SCALE)
        if slot == shift_slot:
            return Layout(NORM_SHIFT)
        return Layout(OTHER) if slot > 0 else None

    return rule


def _ms_attention(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    if slot == 1 and len(shape) == 2:  # (in_hidden, q+k+v hidden)
        return Layout(WEIGHT, shape[0], shape[1], UnitLayout(axis=1))
    if slot == 2:
        return Layout(BIAS)
    return None


def _prelu(node: Node, slot: int, shape: tuple[int, ...]) -> Layout | None:
    return Layout(SCALE) if slot == 1 else None


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

# Ops that compute a linear map of their activation input with a weight operand.
LINEAR_OPS = frozenset(
    {
        "Gemm",
        "MatMul",
        "Conv",
        "ConvTranspose",
        "Einsum",
        "Attention",
        "MatMulInteger",
        "ConvInteger",
        "QLinearConv",
        "QLinearMatMul",
        "MatMulNBits",
        "QGemm",
        "DynamicQuantizeMatMul",
    }
)


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
