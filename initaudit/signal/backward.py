"""The backward pass: gradient second moments from the outputs (g = 1) back to every layer.

A linear op multiplies by alpha² · fan_out · E[w²] (a convolution's fan: ``backward_fan``), an
elementwise op by E[f'(x)²] on its sampled input (at training's scale, ``State.train_pts``),
a norm by E[γ²] / q_in, and a residual split sums its branches.

Some ops' gradients are not modelled: a softmax's Jacobian (which passes a small share of
the gradient to the logits at near-uniform attention), a product of two signals (attention's
q·kᵀ and probs·v, whose gradient scales with the other operand and the sequence), a division
by a computed value, and every op the forward pass assumed. Their factor is taken as 1 and
the op is named in ``Backward.assumed`` for every value whose level rests on it, up to the
next reset: IA203 does not judge those levels (timm MViTv2, EfficientViT and PVT were
reported as 'backward gradients vanish' where torch measures them growing from the last stage
to the first).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from initaudit.graph.model import Node, WeightSite
from initaudit.graph.ops import (
    LINEAR_OPS,
    NORM_OPS,
    PROPAGATED_ACTIVATIONS,
    RECURRENT_OPS,
    SOFTMAX_OPS,
)
from initaudit.signal.carried import State, divides_by_stat, moment
from initaudit.signal.forward import affine_moment
from initaudit.signal.gains import activation_fn
from initaudit.signal.model import MIN_COMPOUNDING, Weights


@dataclass(frozen=True, kw_only=True)
class Backward:
    """Per value: the gradient's second moment relative to the last reset going backward (an
    output, a normalization's input), the weighted layers since it, and the ops whose
    gradient was assumed on the way."""

    level: dict[str, float]
    hops: dict[str, int]
    assumed: dict[str, frozenset[str]]
    # The same with every normalization a plain reset to 1 (no 1/σ² carried): the level a
    # value inside a normalized segment sees, before the layers that the norm's 1/σ² undoes
    # (a plain stack's layer right before its BatchNorm, DCGAN's first conv). A level read
    # where segments begin and end whole (a residual stream) is ``level``.
    within: dict[str, float]
    within_hops: dict[str, int]


def backward(w: Weights, order: Sequence[Node], fwd: State) -> Backward:
    """Where branches meet, the relative level is the larger one's, as in the forward pass;
    the assumptions of every branch are kept."""
    outputs = w.graph.index.graph_outputs
    rel: dict[str, float] = dict.fromkeys(outputs, 1.0)
    hops: dict[str, int] = dict.fromkeys(outputs, 0)
    assumed: dict[str, frozenset[str]] = dict.fromkeys(outputs, frozenset())
    within: dict[str, float] = dict.fromkeys(outputs, 1.0)
    within_hops: dict[str, int] = dict.fromkeys(outputs, 0)
    for node in reversed(order):
        out = node.outputs[0] if node.outputs else ""
        if out not in rel:
            continue
        reset = node.op_type in NORM_OPS or node.folded_norm or divides_by_stat(node, fwd)
        weighted = node.id in w.weight_of and node.op_type != "Gather"
        carried = frozenset() if reset else assumed[out] | _unmodelled(w, node, fwd)
        for i, factor in _local_backward(w, node, fwd):
            if reset:
                level, n, why = _undone(w, node, i, fwd)
            else:
                level, n, why = rel[out] * factor, hops[out] + weighted, carried
            rel[i] = max(rel.get(i, 0.0), level)
            hops[i] = max(hops.get(i, 0), n)
            assumed[i] = assumed.get(i, frozenset()) | why
            within[i] = max(within.get(i, 0.0), 1.0 if reset else within[out] * factor)
            within_hops[i] = max(within_hops.get(i, 0), 0 if reset else within_hops[out] + weighted)
    return Backward(level=rel, hops=hops, assumed=assumed, within=within, within_hops=within_hops)


def _undone(w: Weights, node: Node, value: str, fwd: State) -> tuple[float, int, frozenset[str]]:
    """The gradient level just before a normalization, relative to the reset it is.

    The norm divides its input by σ, so the gradient reaching the input is multiplied by
    1/σ² = 1/q_in: that undoes the forward compounding since the previous reset (level L =
    q_in/base over ``hops`` layers), which the gradient then retraces backward. Starting the
    level at 1/L keeps the two in balance: a depthwise conv's ×1/500 under a BatchNorm (timm
    legacy_xception's SeparableConv2d, depthwise then pointwise then BN) is not a vanishing
    gradient, which torch's measurement confirms (the total at the block's input is the
    BN's output's). A single layer before the norm is a scale, not depth (IA201's to judge):
    there the level starts at 1, as the forward one does after it.

    After a pool (a head's norm on the mean over positions, timm MetaFormer's ``head.norm``,
    or after the pool and a linear layer, InceptionNeXt's MlpClassifierHead) the norm's
    1/σ² includes the pool's shrinkage, and the mean spreads the gradient back over the
    positions in that same ratio: what the norm undoes is the level without it
    (``Sig.pooled``). Torch, poolformer_s12: the last stage's total is 170× the head
    norm's, this gives 141×; inception_next_atto: 5.1×, this gives 4×. A statistic that a
    decomposed norm divides by is not a value: the division's own input carries the 1/σ²."""
    x = fwd.sig.get(value)
    if x is None or (x.stat and not (x.pooled < 1.0 and node.op_type in NORM_OPS)):
        return 1.0, 0, frozenset()
    site = w.weight_of.get(node.id)
    level = x.q / x.base / x.pooled if x.base > 0 and x.pooled > 0 else 0.0
    n = x.hops
    if site is not None and node.folded_norm:
        # The layer and the BatchNorm folded into it: its output before the norm is one
        # more layer of compounding, and the gradient passes the layer back to ``value``.
        m2 = w.m2.get(site.name, 0.0)
        fan_in = float(site.fan_in or 1)
        level, n = level * fan_in * m2, n + 1
        if n < MIN_COMPOUNDING or not level > 0 or not math.isfinite(level):
            return 1.0, 0, frozenset()
        return backward_fan(node, site) * m2 / level, n, fwd.assumed_on.get(value, frozenset())
    if n < MIN_COMPOUNDING or not level > 0 or not math.isfinite(level):
        return 1.0, 0, frozenset()
    return 1.0 / level, n, fwd.assumed_on.get(value, frozenset())


def _unmodelled(w: Weights, node: Node, fwd: State) -> frozenset[str]:
    """The node's op type when its gradient factor is a guess (module docstring)."""
    op = node.op_type
    dyn = [i for i in node.inputs if i in fwd.sig]
    out = node.outputs[0] if node.outputs else ""
    guessed = (
        op in SOFTMAX_OPS
        or op in RECURRENT_OPS
        or (op in LINEAR_OPS and node.id not in w.weight_of and len(dyn) >= 2)
        or (op == "Div" and len(dyn) >= 2 and not divides_by_stat(node, fwd))
        or op in fwd.assumed_on.get(out, frozenset())
    )
    if guessed:
        return frozenset({op})
    if op in PROPAGATED_ACTIVATIONS or (op == "Mul" and len(dyn) == 2):
        # Its factor is read off the forward signal (f' at the sampled input, the other
        # operand's moment), so it rests on whatever the forward level there rests on.
        return frozenset().union(*(fwd.assumed_on.get(i, frozenset()) for i in dyn))
    return frozenset()


def backward_fan(node: Node, site: WeightSite) -> float:
    """The gradient's fan: the output channels one input channel feeds, times the kernel. For a
    grouped convolution that is (out_channels / groups) · kernel, not the schemes' fan_out
    (out_channels · kernel, torch's convention for init): a depthwise conv's input channel
    feeds one filter. Strides are left out on purpose: the gradient is compared per
    position, and a stride-2 conv's input has four positions for each output one, so what
    reaches the layers before it, summed over their positions, keeps the unstrided fan."""
    shape = site.shape
    if node.op_type != "Conv" or len(shape) < 3:
        return float(site.fan_out or 1)
    g = node.attrs.group or 1
    per_group = shape[0] // g if g > 1 and shape[0] % g == 0 else shape[0]
    return float(per_group * math.prod(shape[2:]))


def _local_backward(w: Weights, node: Node, fwd: State) -> list[tuple[str, float]]:
    """(input, factor) pairs: what the gradient's second moment is multiplied by from the
    node's output back to each of its signal inputs."""
    dyn = [i for i in node.inputs if i in fwd.sig]
    if not dyn:
        return []
    op = node.op_type
    site = w.weight_of.get(node.id)
    if site is not None:
        if op == "Gather":
            return []
        return [(dyn[0], backward_fan(node, site) * w.m2.get(site.name, 0.0))]
    x = fwd.sig[dyn[0]]
    if op in NORM_OPS:
        return [(dyn[0], affine_moment(w, node) / x.q if x.q > 0 else 1.0)]
    pts = fwd.train_pts(x)
    if op in PROPAGATED_ACTIVATIONS and pts is not None:
        f = activation_fn(PROPAGATED_ACTIVATIONS[op], node.attrs.alpha)
        if f is not None:
            h = 1e-4 * np.maximum(1.0, np.abs(pts))
            with np.errstate(all="ignore"):
                d = (f(pts + h) - f(pts - h)) / (2 * h)
            return [(dyn[0], moment(d))]
    if op == "Mul" and len(dyn) == 2:
        a, b = fwd.sig[dyn[0]], fwd.sig[dyn[1]]
        return [(dyn[0], fwd.train_q(b)), (dyn[1], fwd.train_q(a))]
    if op in ("Mul", "Div"):
        other = [i for i in node.inputs if i and i not in fwd.sig]
        c = w.graph.consts.scalar(other[0]) if other else None
        if c is not None and c != 0:
            return [(dyn[0], c * c if op == "Mul" else 1.0 / (c * c))]
    return [(i, 1.0) for i in dyn]
