"""Stage 3b: predict how the signal's scale evolves through depth, forward and backward (IA203).

The forward pass (signal/forward.py) carries each value's second moment from the inputs
(N(0, 1) floats; token ids through their embedding table), the backward pass
(signal/backward.py) the gradient's from the outputs. Here both are read off at every
weighted layer: relative to the last reset on the path (what compounds through depth), on
the residual stream when the network has one (what IA203 judges), with the number of
weighted layers compounding since that reset.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from initaudit.graph.model import MATRIX_ROLES, ModelGraph, Node, Role, WeightSite
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
)
from initaudit.signal.backward import backward
from initaudit.signal.carried import Sig, State, divides_by_stat
from initaudit.signal.forward import forward
from initaudit.signal.model import DepthLayer, DepthProfile, Weights

_AFFINE_ROLES = (Role.BIAS, Role.NORM_SCALE, Role.NORM_SHIFT, Role.SCALE)
_STREAM_WALK = 64  # values followed from a layer's output to the residual Add it writes into


def propagate(graph: ModelGraph, second_moments: Mapping[str, float]) -> DepthProfile:
    """The predicted depth profile; ``second_moments`` is E[w²] per site (dequantized)."""
    w = _weights(graph, second_moments)
    order = _topological(graph)
    # A signal past float range is inf by design (carried.moment) and an inf times a zero
    # Gauss-Hermite weight is nan, which the sums skip: numpy's warnings would reach the
    # user's terminal as noise about an overflow the report already names.
    with np.errstate(all="ignore"):
        fwd = forward(w, order)
        bwd, bwd_hops = backward(w, order, fwd)
    rows = [r for node in order if (r := _row(w, node, fwd, bwd, bwd_hops)) is not None]
    position = {n.id: k for k, n in enumerate(order)}
    if not rows:
        return DepthProfile(layers=(), assumptions=tuple(sorted(fwd.assumed)))
    head = _head(rows, order, fwd)
    plain = (
        len(rows) >= 2
        and not any(r.on_stream for r in rows)
        and not any(
            n.op_type in NORM_OPS or n.folded_norm or divides_by_stat(n, fwd) for n in order
        )
    )
    trunk = [r for r in rows if r not in head]
    g_ref = trunk[-1].gradient or 1.0
    # With residual connections the signal that runs through depth is the residual stream:
    # layers inside a branch (q/k/v, an MLP's first layer) are reported but not judged.
    # Without any, every layer of the trunk is on the path.
    residual = any(r.on_stream for r in trunk)
    layers = []
    for k, r in enumerate(rows):
        q_next = rows[k + 1].q_in if k + 1 < len(rows) else r.q_out
        layers.append(
            DepthLayer(
                tensor=r.site.name,
                node=r.node.name,
                op_type=r.node.op_type,
                log10_forward=_log10(r.level),
                log10_backward=_log10(r.gradient / g_ref),
                step_forward=_log10(q_next) - _log10(r.q_in),
                log10_output=_log10(r.q_out),
                judged=r not in head
                and (not residual or r.on_stream or r is trunk[-1])
                and not _gates_older(w, r.node, position),
                zero=w.m2.get(r.site.name, 0.0) == 0.0,
                hops_forward=r.hops_forward,
                hops_backward=r.hops_backward,
                assumed=r.assumed,
                batch_norm=r.batch_norm,
                normalized_after=r.normalized_after,
            )
        )
    return DepthProfile(layers=tuple(layers), assumptions=tuple(sorted(fwd.assumed)), plain=plain)


# Weighted layers after the trunk's last normalization that are a head (a pooler and a
# classifier, VGG's three classifier layers), not depth.
MAX_HEAD = 3


def _head(rows: list[_Row], order: list[Node], fwd: State) -> list[_Row]:
    """The layers after the last normalization on the way to the outputs, when there are
    at most MAX_HEAD of them and a trunk before: transformers' sequence-classification heads
    draw their pooler and classifier N(0, 0.02) by design, which is a scale (IA201's to
    judge), not a signal vanishing through depth. Without any normalization every layer is
    the trunk."""
    position = {n.id: k for k, n in enumerate(order)}
    resets = [
        position[n.id]
        for n in order
        if n.op_type in NORM_OPS or n.folded_norm or divides_by_stat(n, fwd)
    ]
    if not resets:
        return []
    last = max(resets)
    head = [r for r in rows if position[r.node.id] > last]
    trunk = len(rows) - len(head)
    return head if 0 < len(head) <= MAX_HEAD and trunk > 0 else []


@dataclass(frozen=True, kw_only=True)
class _Row:
    """What the two passes say at one weighted layer, before it is put in log10."""

    site: WeightSite
    node: Node
    q_in: float  # second moment of the layer's input
    level: float  # forward: where its output propagates, relative to the last reset
    gradient: float  # backward: total squared gradient there (per position)
    q_out: float  # the layer's own output, absolute
    on_stream: bool  # its output joins a residual stream
    hops_forward: int
    hops_backward: int
    assumed: tuple[str, ...]
    batch_norm: bool
    normalized_after: bool


def _row(
    w: Weights, node: Node, fwd: State, bwd: Mapping[str, float], bwd_hops: Mapping[str, int]
) -> _Row | None:
    site = w.weight_of.get(node.id)
    out = node.outputs[0] if node.outputs else ""
    if site is None or node.op_type == "Gather" or out not in fwd.sig:
        return None
    q_in = next((fwd.sig[i].q for i in node.inputs if i in fwd.sig), None)
    if q_in is None:
        return None
    point, on_stream = _stream_point(w.graph, out, fwd)
    sig = fwd.sig.get(point, fwd.sig[out])
    return _Row(
        site=site,
        node=node,
        q_in=q_in,
        level=sig.q / sig.base if sig.base > 0 else math.inf,
        # Backward compares total squared gradient (per position): a classifier head's 10
        # outputs against 512 hidden units is a change of width, not of depth.
        gradient=bwd.get(point, bwd.get(out, 0.0)) * float(_units(site)),
        q_out=fwd.sig[out].q,
        on_stream=on_stream,
        hops_forward=sig.hops,
        # Backward, the layer's own weight acts on the gradient that reaches its input.
        hops_backward=bwd_hops.get(point, bwd_hops.get(out, 0)) + 1,
        batch_norm=node.folded_norm or any(i in fwd.batch_norm_on for i in node.inputs),
        normalized_after=_normalized_after(w, point, fwd),
        assumed=tuple(
            sorted(fwd.assumed_on.get(out, frozenset()) | fwd.assumed_on.get(point, frozenset()))
        ),
    )


def _weights(graph: ModelGraph, second_moments: Mapping[str, float]) -> Weights:
    weight_of: dict[int, WeightSite] = {}
    affine: dict[str, float] = {}
    names = {n.name: n for n in graph.nodes}
    for s in graph.sites:
        for u in s.uses:
            node = names.get(u.node)
            if (
                node is not None
                and s.role in MATRIX_ROLES
                and (node.op_type in LINEAR_OPS or node.op_type == "Gather")
            ):
                weight_of.setdefault(node.id, s)
        m2 = second_moments.get(s.name, 0.0)
        if s.role in _AFFINE_ROLES and math.isfinite(m2):
            affine[s.name] = m2
    return Weights(graph=graph, m2=second_moments, weight_of=weight_of, affine=affine)


def _topological(graph: ModelGraph) -> list[Node]:
    index = graph.index
    indeg: dict[int, int] = {}
    users: dict[int, list[Node]] = {}
    for n in index.nodes:
        preds = {m.id for i in n.inputs if (m := index.producer_of(i)) is not None}
        preds.discard(n.id)
        indeg[n.id] = len(preds)
        for pred in preds:
            users.setdefault(pred, []).append(n)
    ready = deque(n for n in index.nodes if indeg[n.id] == 0)
    order: list[Node] = []
    while ready:
        n = ready.popleft()
        order.append(n)
        for u in users.get(n.id, []):
            indeg[u.id] -= 1
            if indeg[u.id] == 0:
                ready.append(u)
    return order  # nodes on a cycle are left out


def _stream_point(graph: ModelGraph, value: str, fwd: State) -> tuple[str, bool]:
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


def _normalized_after(w: Weights, value: str, fwd: State) -> bool:
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


def _gates_older(w: Weights, node: Node, position: Mapping[int, int]) -> bool:
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
    """A value a sigmoid-like gate made (in (0, 1)): what a gating branch multiplies by."""
    made = w.graph.index.producer_of(value)
    return made is not None and made.op_type in ("Sigmoid", "HardSigmoid")


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
    if _skip(there, here):
        return True
    return there.hops < here.hops and _computed_from(graph, value, other)


def _computed_from(graph: ModelGraph, value: str, source: str) -> bool:
    seen: set[str] = set()
    frontier = deque([value])
    while frontier and len(seen) < _ANCESTOR_WALK:
        v = frontier.popleft()
        if v in seen:
            continue
        seen.add(v)
        node = graph.index.producer_of(v)
        if node is None:
            continue
        if source in node.inputs:
            return True
        frontier.extend(i for i in node.inputs if i)
    return False


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


def _units(site: WeightSite) -> int:
    """Output units of a layer: rows of a (out, in) Gemm weight, filters of a Conv..."""
    if (
        site.units is not None
        and site.shape
        and -len(site.shape) <= site.units.axis < len(site.shape)
    ):
        return max(site.shape[site.units.axis], 1)
    return max(site.fan_out or 1, 1)


def _log10(x: float) -> float:
    if x <= 0:
        return -math.inf
    if not math.isfinite(x):
        return math.inf
    return math.log10(x)
