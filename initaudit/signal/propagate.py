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

from initaudit.graph.model import MATRIX_ROLES, ModelGraph, Node, Role, WeightSite
from initaudit.graph.ops import LINEAR_OPS, PROPAGATED_ACTIVATIONS, SIGNAL_PASS
from initaudit.signal.backward import backward
from initaudit.signal.carried import State
from initaudit.signal.forward import forward
from initaudit.signal.model import DepthLayer, DepthProfile, Weights

_AFFINE_ROLES = (Role.BIAS, Role.NORM_SCALE, Role.NORM_SHIFT, Role.SCALE)
_STREAM_HOPS = 16  # ops followed from a layer's output to the residual Add it writes into


def propagate(graph: ModelGraph, second_moments: Mapping[str, float]) -> DepthProfile:
    """The predicted depth profile; ``second_moments`` is E[w²] per site (dequantized)."""
    w = _weights(graph, second_moments)
    order = _topological(graph)
    fwd = forward(w, order)
    bwd, bwd_hops = backward(w, order, fwd)
    rows = [r for node in order if (r := _row(w, node, fwd, bwd, bwd_hops)) is not None]
    if not rows:
        return DepthProfile(layers=(), assumptions=tuple(sorted(fwd.assumed)))
    g_ref = rows[-1].gradient or 1.0
    # With residual connections the signal that runs through depth is the residual stream:
    # layers inside a branch (q/k/v, an MLP's first layer) are reported but not judged.
    # Without any, every layer is on the path.
    residual = any(r.on_stream for r in rows)
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
                judged=not residual or r.on_stream or k == len(rows) - 1,
                zero=w.m2.get(r.site.name, 0.0) == 0.0,
                hops_forward=r.hops_forward,
                hops_backward=r.hops_backward,
            )
        )
    return DepthProfile(layers=tuple(layers), assumptions=tuple(sorted(fwd.assumed)))


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
    """Where a layer's output joins the signal that runs through depth: the residual Add
    it flows into (through bias, layout ops and activations), else the output itself;
    and whether it reached one.

    Judging a residual branch on its own would call HF's fixed-std attention branches
    "vanishing" in narrow models; what propagates is the residual stream they add to.
    """
    v = value
    for _ in range(_STREAM_HOPS):
        users = graph.index.consumers_of(v)
        if len(users) != 1:
            return v, False
        node, slot = users[0]
        others = [i for j, i in enumerate(node.inputs) if j != slot and i]
        dynamic = [i for i in others if i in fwd.sig]
        if node.op_type in ("Add", "Sub") and dynamic:
            return node.outputs[0], True
        passable = (
            node.op_type in SIGNAL_PASS
            or node.op_type in PROPAGATED_ACTIVATIONS
            or (node.op_type in ("Add", "Sub", "Mul", "Div") and not dynamic)
        )
        if not passable or not node.outputs or not node.outputs[0]:
            return v, False
        v = node.outputs[0]
    return v, False


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
