"""Where an embedding table's rows go: the input stream they are summed into.

BERT sums word, position and token-type lookups before its LayerNorm; GPT-2 sums word and
position lookups into the residual stream. The tables summed into one stream are siblings
whatever their names (IA204: a position table left at ``nn.Embedding``'s N(0, 1) beside a word
table drawn N(0, 0.02) drowns the words), and a stream that goes straight into a normalization
resets their common scale (IA201 judges them as normalized).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from initaudit.graph.consts import Constants
from initaudit.graph.model import GraphIndex, Node
from initaudit.graph.ops import NORM_OPS, PASS_OPS, SCALING
from initaudit.graph.patterns import is_norm_factor

MAX_STEPS = 16  # ops between a lookup and the end of its sum: a few Adds, casts and a scale


@dataclass(frozen=True, kw_only=True)
class Stream:
    """The value a table's rows end up in, after being summed with other tables' rows (None
    when they are used alone), and whether a normalization takes that value next."""

    value: str | None
    normalized: bool
    # Stored constants summed in on the way: a position table the exporter folded to the rows
    # a fixed-length input uses (dynamo writes BERT's position lookup as one constant).
    constants: tuple[str, ...] = ()


def table_stream(index: GraphIndex, consts: Constants, lookup: Node) -> Stream:
    """Follow a lookup's rows through layout ops, constant scales (Gemma's ·√d) and Adds of
    other lookups or constants, to the first op that does anything else."""
    value = lookup.outputs[0] if lookup.outputs else ""
    summed = False
    folded: list[str] = []
    for _ in range(MAX_STEPS):
        consumers = index.consumers_of(value)
        if _normalizes(index, consts, value, consumers):
            return _stream(value, summed, True, folded)
        if len(consumers) != 1 or not consumers[0][0].outputs:
            break  # used twice: a pre-norm residual stream starts here
        node, slot = consumers[0]
        others = [i for j, i in enumerate(node.inputs) if j != slot and i]
        if node.op_type == "Add" and others and all(_table_rows(index, consts, o) for o in others):
            summed = True
            folded += (n for n in (stored_name(index, consts, o) for o in others) if n is not None)
        elif not (
            node.op_type in PASS_OPS
            or (node.op_type in SCALING and all(consts.is_constant(o) for o in others))
        ):
            break
        value = node.outputs[0]
    return _stream(value, summed, False, folded)


def _stream(value: str, summed: bool, normalized: bool, folded: list[str]) -> Stream:
    return Stream(value=value if summed else None, normalized=normalized, constants=tuple(folded))


def stored_name(index: GraphIndex, consts: Constants, value: str) -> str | None:
    """The stored tensor a constant operand is (through layout ops), None for a value
    computed from the input."""
    for _ in range(MAX_STEPS):
        if not consts.is_constant(value):
            return None
        node = index.producer_of(value)
        if node is None or node.op_type == "Constant":
            return value
        if node.op_type not in PASS_OPS:
            return None
        value = node.input(0)
    return None


def _normalizes(
    index: GraphIndex, consts: Constants, value: str, consumers: Sequence[tuple[Node, int]]
) -> bool:
    """A normalization op, or every consumer part of a decomposed one (the legacy exporter's
    LayerNorm below opset 17: ReduceMean and Sub of the same input)."""
    if len(consumers) == 1 and consumers[0][0].op_type in NORM_OPS:
        return True
    ops = {n.op_type for n, _ in consumers}
    if "ReduceMean" in ops and ops <= {"ReduceMean", "Sub"}:
        return True
    if len(consumers) == 2 and ops <= {"Mul", "Div", "ReduceMean", "Pow"}:  # RMSNorm
        return any(
            n.op_type in ("Mul", "Div")
            and is_norm_factor(index, consts, [i for i in n.inputs if i and i != value])
            for n, _ in consumers
        )
    return False


def _table_rows(index: GraphIndex, consts: Constants, value: str) -> bool:
    """Rows of another stored table (a lookup, through layout ops and constant scales) or a
    constant (a position table an exporter folded)."""
    for _ in range(MAX_STEPS):
        if consts.is_constant(value):
            return True
        node = index.producer_of(value)
        if node is None:
            return False
        if node.op_type == "Gather":
            return consts.is_constant(node.input(0))
        dynamic = [i for i in node.inputs if i and not consts.is_constant(i)]
        if not (node.op_type in PASS_OPS or node.op_type in SCALING) or len(dynamic) != 1:
            return False
        value = dynamic[0]
    return False
