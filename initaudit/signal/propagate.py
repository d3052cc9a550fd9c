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
    LINEAR_OPS,
    NORM_OPS,
)
from initaudit.signal.backward import Backward, backward
from initaudit.signal.carried import State, divides_by_stat
from initaudit.signal.forward import forward
from initaudit.signal.model import DepthLayer, DepthProfile, Weights
from initaudit.signal.trunk import gates_older, main_path, normalized_after, stream_point

_AFFINE_ROLES = (Role.BIAS, Role.NORM_SCALE, Role.NORM_SHIFT, Role.SCALE)


def propagate(graph: ModelGraph, second_moments: Mapping[str, float]) -> DepthProfile:
    """The predicted depth profile; ``second_moments`` is E[w²] per site (dequantized)."""
    w = _weights(graph, second_moments)
    order = _topological(graph)
    # A signal past float range is inf by design (carried.moment) and an inf times a zero
    # Gauss-Hermite weight is nan, which the sums skip: numpy's warnings would reach the
    # user's terminal as noise about an overflow the report already names.
    with np.errstate(all="ignore"):
        fwd = forward(w, order)
        bwd = backward(w, order, fwd)
    rows = [r for node in order if (r := _row(w, node, fwd, bwd)) is not None]
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
    # With residual connections the signal that runs through depth is the residual stream:
    # layers inside a branch (q/k/v, an MLP's first layer) are reported but not judged.
    # Without any, every layer of the trunk is on the path.
    residual = any(r.on_stream for r in trunk)
    main = main_path(w, fwd)
    gates = {r.node.id for r in rows if gates_older(w, r.node, position)}
    stream = [r for r in trunk if r.on_stream and r.point in main and r.node.id not in gates]
    # Backward, the gradient is compared like with like. On a stream it is read where the
    # normalized segments begin and end whole (each norm's 1/σ² carried, signal/backward.py);
    # a last layer off the stream (the conv of a final stage without a shortcut, a layer
    # with the trunk's last BatchNorm folded in) reads it inside a segment, before the
    # 1/σ² that the layers ahead of it undo. Taken as the reference, that made one step of
    # 100-500× at the trunk's end where torch measures none (timm xception41p, hgnet_tiny).
    ref = stream[-1] if residual and stream else trunk[-1]
    g_ref = ref.gradient or 1.0
    on_stream = {id(r) for r in stream}
    layers = []
    for k, r in enumerate(rows):
        q_next = rows[k + 1].q_in if k + 1 < len(rows) else r.q_out
        judged = (
            r not in head
            and r.node.id not in gates
            and (not residual or id(r) in on_stream or r is trunk[-1])
        )
        layers.append(
            DepthLayer(
                tensor=r.site.name,
                node=r.node.name,
                op_type=r.node.op_type,
                log10_forward=_log10(r.level),
                log10_backward=_log10(r.gradient / g_ref),
                step_forward=_log10(q_next) - _log10(r.q_in),
                log10_output=_log10(r.q_out),
                judged=judged,
                judged_backward=judged and (id(r) in on_stream or not (residual and stream)),
                zero=w.m2.get(r.site.name, 0.0) == 0.0,
                hops_forward=r.hops_forward,
                hops_backward=r.hops_backward,
                assumed=r.assumed,
                assumed_backward=r.assumed_backward,
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
    point: str  # the value its level is read at (signal/trunk.py stream_point)
    hops_forward: int
    hops_backward: int
    assumed: tuple[str, ...]
    assumed_backward: tuple[str, ...]
    batch_norm: bool
    normalized_after: bool


def _row(w: Weights, node: Node, fwd: State, bwd: Backward) -> _Row | None:
    site = w.weight_of.get(node.id)
    out = node.outputs[0] if node.outputs else ""
    if site is None or node.op_type == "Gather" or out not in fwd.sig:
        return None
    q_in = next((fwd.sig[i].q for i in node.inputs if i in fwd.sig), None)
    if q_in is None:
        return None
    point, on_stream = stream_point(w.graph, out, fwd)
    sig = fwd.sig.get(point, fwd.sig[out])
    # A residual stream is where normalized segments begin and end whole: its gradient
    # carries each norm's 1/σ². A layer's own output inside a segment reads the gradient
    # before the layers that 1/σ² undoes (signal/backward.py).
    levels, hops = (bwd.level, bwd.hops) if on_stream else (bwd.within, bwd.within_hops)
    return _Row(
        site=site,
        node=node,
        q_in=q_in,
        level=sig.q / sig.base if sig.base > 0 else math.inf,
        # Backward compares total squared gradient (per position): a classifier head's 10
        # outputs against 512 hidden units is a change of width, not of depth.
        gradient=levels.get(point, levels.get(out, 0.0)) * float(_units(site)),
        q_out=fwd.sig[out].q,
        on_stream=on_stream,
        point=point,
        hops_forward=sig.hops,
        # Backward, the layer's own weight acts on the gradient that reaches its input.
        hops_backward=hops.get(point, hops.get(out, 0)) + 1,
        batch_norm=node.folded_norm or any(i in fwd.batch_norm_on for i in node.inputs),
        normalized_after=normalized_after(w, point, fwd),
        assumed=tuple(
            sorted(fwd.assumed_on.get(out, frozenset()) | fwd.assumed_on.get(point, frozenset()))
        ),
        # The gradient at the layer's output: what its backward level rests on.
        assumed_backward=tuple(sorted(bwd.assumed.get(point, bwd.assumed.get(out, frozenset())))),
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
