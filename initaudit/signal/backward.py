"""The backward pass: gradient second moments from the outputs (g = 1) back to every layer.

A linear op multiplies by alpha² · fan_out · E[w²] (a convolution's fan: ``backward_fan``), an
elementwise op by E[f'(x)²] on its sampled input, a norm by E[γ²] / q_in, and a residual
split sums its branches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from initaudit.graph.model import Node, WeightSite
from initaudit.graph.ops import NORM_OPS, PROPAGATED_ACTIVATIONS
from initaudit.signal.carried import State, divides_by_stat, moment
from initaudit.signal.forward import affine_moment
from initaudit.signal.gains import activation_fn
from initaudit.signal.model import Weights


def backward(
    w: Weights, order: Sequence[Node], fwd: State
) -> tuple[dict[str, float], dict[str, int]]:
    """Gradient second moment relative to the last reset going backward (an output, a
    normalization's input): where branches meet, gradients add and the relative level is
    the larger one's, as in the forward pass. Also the weighted layers since that reset."""
    g: dict[str, float] = {o: 1.0 for o in w.graph.index.graph_outputs}
    rel: dict[str, float] = dict.fromkeys(g, 1.0)
    hops: dict[str, int] = dict.fromkeys(g, 0)
    for node in reversed(order):
        out = node.outputs[0] if node.outputs else ""
        if out not in g:
            continue
        reset = node.op_type in NORM_OPS or node.folded_norm or divides_by_stat(node, fwd)
        weighted = node.id in w.weight_of and node.op_type != "Gather"
        for i, factor in _local_backward(w, node, fwd):
            g[i] = g.get(i, 0.0) + g[out] * factor
            rel[i] = max(rel.get(i, 0.0), 1.0 if reset else rel[out] * factor)
            hops[i] = max(hops.get(i, 0), 0 if reset else hops[out] + weighted)
    return rel, hops


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
    if op in PROPAGATED_ACTIVATIONS and x.pts is not None:
        f = activation_fn(PROPAGATED_ACTIVATIONS[op], node.attrs.alpha)
        if f is not None:
            h = 1e-4 * np.maximum(1.0, np.abs(x.pts))
            with np.errstate(all="ignore"):
                d = (f(x.pts + h) - f(x.pts - h)) / (2 * h)
            return [(dyn[0], moment(d))]
    if op == "Mul" and len(dyn) == 2:
        a, b = fwd.sig[dyn[0]], fwd.sig[dyn[1]]
        return [(dyn[0], b.q), (dyn[1], a.q)]
    if op in ("Mul", "Div"):
        other = [i for i in node.inputs if i and i not in fwd.sig]
        c = w.graph.consts.scalar(other[0]) if other else None
        if c is not None and c != 0:
            return [(dyn[0], c * c if op == "Mul" else 1.0 / (c * c))]
    return [(i, 1.0) for i in dyn]
