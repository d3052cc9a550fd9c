"""The signal stage's product: the predicted depth profile IA203 judges."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from initaudit.graph.model import ModelGraph, WeightSite

# Weighted layers compounding since the last reset before a level counts as depth: one layer
# alone is a scale (IA201's). IA203 judges levels from it, and the backward pass carries a
# normalization's 1/σ² only past as many (signal/backward.py).
MIN_COMPOUNDING = 2


@dataclass(frozen=True, kw_only=True)
class DepthLayer:
    """One weighted layer of the path, in topological order."""

    tensor: str
    node: str
    op_type: str
    log10_forward: float  # signal second moment where this layer's output propagates
    log10_backward: float  # total squared gradient there, relative to the last layer's
    step_forward: float  # log10 gain of this layer (weight and what precedes the next one)
    log10_output: float  # the layer's own output (inside a residual branch, say)
    judged: bool = True  # on the path IA203 judges (the residual stream, or every layer)
    # Judged backward too: on a residual stream only the stream's own rows, whose gradients
    # are read alike (signal/propagate.py); the trunk's last layer off it is judged forward.
    judged_backward: bool = True
    zero: bool = False  # an all-zero weight: IA101 reports it, IA203 does not judge past it
    # Weighted layers compounding since the last reset, up to here (forward) and from the
    # outputs back to here (backward): one layer alone scales, it does not compound.
    hops_forward: int = 0
    hops_backward: int = 0
    # Ops assumed scale-neutral (not modelled) on the way to this layer's output since the
    # last reset: IA203 does not judge a level that rests on them.
    assumed: tuple[str, ...] = ()
    # The same for the gradient at this layer's output, from the outputs back to here since
    # the last reset: ops whose gradient was not modelled (signal/backward.py).
    assumed_backward: tuple[str, ...] = ()
    # A BatchNorm acts between the previous weighted layer and this one's output (folded into
    # it, or on its input): --propagate's measurement (running statistics) and the prediction
    # (batch statistics, as training) see different scales there.
    batch_norm: bool = False
    # Every path from this layer's level meets a normalization before any weighted layer or
    # output (a pre-norm residual stream): its forward scale is read only through norms.
    normalized_after: bool = False


@dataclass(frozen=True, kw_only=True)
class DepthProfile:
    layers: tuple[DepthLayer, ...]
    assumptions: tuple[str, ...] = ()  # op types whose effect was assumed, not modelled
    # Two or more weighted layers and no normalization or residual stream anywhere: every
    # layer's scale compounds into the next (a fixed-std recipe is judged so, rules/ia201).
    plain: bool = False


@dataclass(frozen=True, kw_only=True)
class Weights:
    """What the propagation knows of the model's parameters: the graph, E[w²] of every
    weight (dequantized), which node each weight drives, and E[v²] of the vectors (biases,
    norm affines, scales) the signal meets."""

    graph: ModelGraph
    m2: Mapping[str, float]
    weight_of: Mapping[int, WeightSite]
    affine: Mapping[str, float]
