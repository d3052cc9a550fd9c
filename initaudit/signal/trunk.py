"""What IA203 judges (signal/propagate.py): where each weighted layer's output joins the signal
that runs through depth, and which layers are not on it.

A layer's level is read at its stream point, the residual Add it writes into (a branch is
judged by the stream it joins, not on its own), or after what follows it alone in a plain
stack. Squeeze-excite branches gate the trunk from the side, a residual stream that only
makes attention queries is off the main path, and a level that every path carries only into
normalizations is read through them: none of these is where a signal vanishes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping

from initaudit.graph.model import ModelGraph, Node
from initaudit.graph.ops import (
    ADDITIVE,
    AVERAGE_POOLS,
    BINARY_ARITHMETIC,
    ELEMENTWISE_MATH,
    LINEAR_OPS,
    MAX_POOLS,
    NORM_OPS,
    PROPAGATED_ACTIVATIONS,
    REDUCE_OPS,
    SIGNAL_PASS,
    SQUASHING_GATES,
)
from initaudit.signal.carried import Sig, State, divides_by_stat
from initaudit.signal.model import Weights

_STREAM_WALK = 64  # values followed from a layer's output to the residual Add it writes into


def stream_point(graph: ModelGraph, value: str, fwd: State) -> tuple[str, bool]:
    """Where a layer's output joins the signal that runs through depth, and whether that is
    a residual stream: the first Add (or Sub) it reaches that sums it with a value of another
    reset's lineage (signal/carried.py ``Sig.reset``), following bias, layout ops,
    activations, constant scaling and normalizations on the way.

    Judging a residual branch on its own would call HF's fixed-std attention branches
    "vanishing" in narrow models; what propagates is the residual stream they add to. A
    normalization of the branch's own output before the Add (Swin-v2, OLMo-2, Gemma-2's
    post-branch norms, decomposed or not) is followed through, and the Add of two branches
    that share their block's normalization (GPT-J and CodeGen run attention and the MLP in
    parallel from one norm) is a sum inside the block, not yet the stream.
    """
    seen: set[str] = set()
    frontier = deque([value])
    while frontier and len(seen) < _STREAM_WALK:
        v = frontier.popleft()
        if v in seen or v not in fwd.sig:
            continue
        seen.add(v)
        for node, slot in graph.index.consumers_of(v):
            out = node.outputs[0] if node.outputs else ""
            if not out:
                continue
            others = [i for j, i in enumerate(node.inputs) if j != slot and i in fwd.sig]
            if node.op_type in ADDITIVE and any(_joins(graph, o, v, fwd) for o in others):
                return out, True
            if _carries(graph, node, others, v, fwd):
                frontier.append(out)
    return _chain_end(graph, value, fwd), False


# Values followed from a layer's output when asking whether a normalization stands between it
# and every later layer; past this the answer is no (the layer is judged).
_NORMALIZED_WALK = 512
_DEFAULT_EPS = 1e-5  # torch's LayerNorm/BatchNorm default, where a decomposed norm hides its own


def normalized_after(w: Weights, value: str, fwd: State) -> bool:
    """Whether every path from ``value`` meets a normalization before an output: a pre-norm
    residual stream (every block reads LayerNorm(h), the head reads the final norm), a
    front-end whose output joins one (HF Whisper's N(0, 0.02) convs, modeling_whisper.py),
    a stream read through a linear layer and a norm (ConvNeXt's conv_dw then LayerNorm, timm
    convnext.py) or carried by a shortcut conv to the next stage. Its scale is then read only
    through normalizations, so a small level there is no vanishing signal, as long as the
    variance reaching each norm stays above its epsilon: below, x / sqrt(var + eps) keeps
    shrinking with x (at eps it still gives 1/√2 of the unit scale; timm EdgeNeXt's stream
    reaches 1.3e-6 before LayerNorms of eps 1e-6, and trains). An attention product (two
    signals multiplied) reads the scale itself."""
    graph = w.graph
    seen: set[str] = set()
    frontier = deque([value])
    while frontier:
        v = frontier.popleft()
        if v in seen:
            continue
        seen.add(v)
        if v in graph.index.graph_outputs or len(seen) > _NORMALIZED_WALK:
            return False
        for node, _ in graph.index.consumers_of(v):
            if node.op_type in NORM_OPS or node.folded_norm or divides_by_stat(node, fwd):
                if fwd.sig[v].q < (node.attrs.epsilon or _DEFAULT_EPS):
                    return False
                continue
            if node.op_type in LINEAR_OPS and node.id not in w.weight_of:
                return False
            frontier.extend(o for o in node.outputs if o in fwd.sig)
    return True


def gates_older(w: Weights, node: Node, position: Mapping[int, int]) -> bool:
    """Whether the layer computes a multiplicative gate on a value made before it: a
    squeeze-excite branch (pool, conv_reduce, act, conv_expand, sigmoid, then x · gate, timm
    _efficientnet_blocks.py SqueezeExcite). Its level and the gradient reaching it are the
    gate's, a side branch of the trunk, which runs through the gated value."""
    graph, here = w.graph, position.get(node.id, -1)
    seen: set[str] = set()
    frontier = deque(node.outputs[:1])
    while frontier and len(seen) < _STREAM_WALK:
        v = frontier.popleft()
        if v in seen:
            continue
        seen.add(v)
        for user, slot in graph.index.consumers_of(v):
            if user.op_type in ADDITIVE or user.op_type in NORM_OPS:
                continue  # a join or a reset: past it the value is no longer the gate alone
            if (
                user.op_type == "Mul"
                and _squashed(w, v)
                and any(
                    _older_signal(w, other, position, here)
                    for j, other in enumerate(user.inputs)
                    if j != slot and other not in seen
                )
            ):
                return True
            if user.outputs and user.outputs[0]:
                frontier.append(user.outputs[0])
    return False


def _squashed(w: Weights, value: str) -> bool:
    """A value a sigmoid-like gate made (in (0, 1)): what a gating branch multiplies by,
    through the reshapes that broadcast it (timm layers/eca.py EcaModule.forward:
    ``self.gate(y).view(x.shape[0], -1, 1, 1)``, then ``x * y.expand_as(x)``)."""
    made = w.graph.index.producer_of(value)
    for _ in range(_STREAM_WALK):
        if made is None or made.op_type not in SIGNAL_PASS or not made.inputs:
            break
        made = w.graph.index.producer_of(made.inputs[0])
    return made is not None and made.op_type in SQUASHING_GATES


def _older_signal(w: Weights, value: str, position: Mapping[int, int], here: int) -> bool:
    """A value computed from the input before the node at ``here`` (not a stored tensor)."""
    made = w.graph.index.producer_of(value)
    return (
        made is not None
        and position.get(made.id, here) < here
        and not w.graph.consts.is_constant(value)
        and value not in w.m2
    )


# Values walked back from a branch to find the stream it was computed from.
_ANCESTOR_WALK = 256


def _joins(graph: ModelGraph, other: str, value: str, fwd: State) -> bool:
    """Whether adding ``other`` to the branch ``value`` is a residual join: ``other`` is the
    stream (``_skip``), or, in a network without normalizations, where every value shares
    one reset, a value the branch was computed from with fewer layers behind it: x + f(x)
    (HF MobileBERT's bottlenecks add their input back through NoNorm, an elementwise
    affine, modeling_mobilebert.py)."""
    there, here = fwd.sig[other], fwd.sig[value]
    if _reparameterizable(graph, other, value, fwd):
        return False
    if _skip(there, here):
        return True
    return there.hops < here.hops and _computed_from(graph, value, other)


def _reparameterizable(graph: ModelGraph, a: str, b: str, fwd: State) -> bool:
    """Whether ``a`` and ``b`` are two layers (each with its own norm, folded or not) applied
    to the same value: branches that fuse into one conv at inference, a single layer of
    depth, not a branch and its stream (timm fastvit.py MobileOneBlock ``conv_kxk`` plus
    ``conv_scale``, ReparamLargeKernelConv ``large_conv`` plus ``small_conv``, byobnet.py
    RepVggBlock; each has ``reparameterize()``). Their norms give them separate lineages,
    which read as a residual join."""
    x, y = _first_layer(graph, a, fwd), _first_layer(graph, b, fwd)
    return x is not None and y is not None and x[0] != y[0] and x[1] == y[1]


def _first_layer(graph: ModelGraph, value: str, fwd: State) -> tuple[int, str] | None:
    """The linear layer ``value`` is the output of, through its bias, its norm and layout
    ops: (its node id, its signal input)."""
    v = value
    for _ in range(_STREAM_WALK):
        node = graph.index.producer_of(v)
        if node is None:
            return None
        dyn = [i for i in node.inputs if i in fwd.sig]
        if node.op_type in LINEAR_OPS:
            return (node.id, dyn[0]) if len(dyn) == 1 else None
        passes = (
            node.op_type in SIGNAL_PASS
            or node.op_type in NORM_OPS
            or (node.op_type in BINARY_ARITHMETIC and len(dyn) == 1)
        )
        if not passes or len(dyn) != 1:
            return None
        v = dyn[0]
    return None


def _computed_from(graph: ModelGraph, value: str, source: str) -> bool:
    return source in _walk_back(graph, [value], lambda node: node.inputs, _ANCESTOR_WALK)


def _walk_back(
    graph: ModelGraph,
    starts: Iterable[str],
    inputs: Callable[[Node], Iterable[str]],
    limit: int | None = None,
) -> set[str]:
    """The values reached walking back from ``starts`` through their producers, following
    the inputs ``inputs`` picks at each node (at most ``limit`` values)."""
    seen: set[str] = set()
    frontier = deque(starts)
    while frontier and (limit is None or len(seen) < limit):
        v = frontier.popleft()
        if not v or v in seen:
            continue
        seen.add(v)
        node = graph.index.producer_of(v)
        if node is not None:
            frontier.extend(inputs(node))
    return seen


def _skip(other: Sig, here: Sig) -> bool:
    """``other`` is the stream a branch is added back to: a value of another reset (pre-norm
    blocks: the stream predates the block's norm), or the reset itself (post-norm blocks:
    BERT adds the branch to the very norm output it started from). A value of the same reset
    with weighted layers of its own is a parallel branch of the same block (GPT-J). Two
    functions of one normalized value with no layer since are one value rotated, not a
    branch and its stream: rotary's q·cos + rotate_half(q)·sin after Gemma-3's q-norm
    (transformers 5.23, models/gemma3/modeling_gemma3.py:245)."""
    return other.reset != here.reset or (other.hops == 0 and here.hops > 0)


def _chain_end(graph: ModelGraph, value: str, fwd: State) -> str:
    """Without a residual stream, the level is read where the layer's output has passed what
    follows it alone (bias, layout ops, activations): after its activation."""
    v = value
    for _ in range(_STREAM_WALK):
        users = graph.index.consumers_of(v)
        if len(users) != 1:
            return v
        node, slot = users[0]
        others = [i for j, i in enumerate(node.inputs) if j != slot and i]
        dynamic = [i for i in others if i in fwd.sig]
        passable = (
            node.op_type in SIGNAL_PASS
            or node.op_type in PROPAGATED_ACTIVATIONS
            or (node.op_type in BINARY_ARITHMETIC and not dynamic)
        )
        if not passable or not node.outputs or not node.outputs[0]:
            return v
        v = node.outputs[0]
    return v


def _carries(graph: ModelGraph, node: Node, others: list[str], value: str, fwd: State) -> bool:
    """Whether ``node`` passes the branch on towards its residual Add: a layout op, an
    activation, a normalization, elementwise math, a reduction, or arithmetic with
    constants or with values of the same lineage (a decomposed norm's statistics, the other
    branch of a parallel block)."""
    here = fwd.sig[value]
    op = node.op_type
    if op in SIGNAL_PASS or op in PROPAGATED_ACTIVATIONS or op in NORM_OPS:
        return True
    if op in ELEMENTWISE_MATH or op in REDUCE_OPS or op in AVERAGE_POOLS or op in MAX_POOLS:
        return True
    if op in BINARY_ARITHMETIC:
        if op in ADDITIVE:
            return not any(_joins(graph, o, value, fwd) for o in others)
        return all(fwd.sig[o].reset == here.reset for o in others)
    return False


def main_path(w: Weights, fwd: State) -> frozenset[str]:
    """The values the outputs are computed from through the signal itself, not through
    attention weights: walking back from the outputs, an attention product's probabilities
    and the query and key that made them are left out (probs·V continues through V), so is a
    residual stream that only feeds them. GCViT's global query generator (timm gcvit.py
    GlobalContextVit: an MBConv stack with its own residuals whose output is the query of
    every block's attention) is such a stream: its small gradient is the query's, not the
    network's."""

    def signal_inputs(node: Node) -> list[str]:
        dyn = [i for i in node.inputs if i in fwd.sig]
        if node.op_type in LINEAR_OPS and node.id not in w.weight_of and len(dyn) >= 2:
            # an attention product: probs·V goes on through V; Q·Kᵀ makes weights only
            probs = [i for i in dyn if fwd.sig[i].probs]
            return [i for i in dyn if i not in probs] if probs else []
        return dyn

    outputs = (o for o in w.graph.index.graph_outputs if o in fwd.sig)
    return frozenset(_walk_back(w.graph, outputs, signal_inputs))
