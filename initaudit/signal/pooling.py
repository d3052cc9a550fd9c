"""Pooling and reductions in the forward pass (signal/forward.py's table): an average of n
values, the largest of a window, and reductions, which are either a statistic of a value's
own features (a decomposed norm's mean) or pooling across positions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from initaudit.graph.model import Node
from initaudit.graph.ops import SIZED_REDUCTIONS
from initaudit.signal.carried import Sig, State, as_value, moment
from initaudit.signal.gains import NODES, WEIGHTS
from initaudit.signal.model import Weights
from initaudit.stats import dists

# Positions a global pool or a pooling reduction averages when the graph does not say (no
# kernel_shape): the pooled second moment is mean² + variance / n, so the exact n matters only
# for a signal with little mean (an average of zero-mean embeddings).
POOLED_POSITIONS = 16


def _pooled_moment(x: Sig, n: int) -> tuple[float, float]:
    """(mean, second moment) of the average of ``n`` independent copies of ``x``."""
    if x.pts is None:
        return 0.0, x.q / n
    mean = float(np.sum(WEIGHTS * x.pts))
    return mean, mean * mean + max(x.q - mean * mean, 0.0) / n


def _shrunk(x: Sig, q: float) -> float:
    """``Sig.pooled`` after an average of ``x`` whose second moment is ``q``."""
    return x.pooled * (q / x.q) if x.q > 0 and math.isfinite(x.q) and math.isfinite(q) else x.pooled


def _window(node: Node) -> int:
    shape = node.attrs.kernel_shape
    if node.op_type.startswith("Global") or not shape:
        return POOLED_POSITIONS
    return max(math.prod(shape), 1)


def average_pool(w: Weights, node: Node, ins: Sequence[Sig | None], x: Sig, st: State) -> Sig:
    """An average of n values: by the central limit theorem about a normal with the input's
    mean and 1/n of its variance, which keeps a ReLU's mean through the pool."""
    mean, q = _pooled_moment(x, _window(node))
    spread = math.sqrt(max(q - mean * mean, 0.0))
    st.next_src += 1
    return Sig(
        q, x.base, mean + spread * NODES, st.next_src, hops=x.hops, reset=x.reset,
        pooled=_shrunk(x, q),
    )  # fmt: skip


def max_pool(w: Weights, node: Node, ins: Sequence[Sig | None], x: Sig, st: State) -> Sig:
    """The largest of K values of the window: its distribution is F^K, taken on the sampled
    function as a quantile map (independent values: neighbours correlate, so this bounds the
    rise from above). After a ReLU a 2x2 pool about doubles the second moment."""
    if x.pts is None:
        return x
    k = _window(node)
    order = np.argsort(x.pts, kind="stable")
    values = x.pts[order]
    cdf = np.cumsum(WEIGHTS[order])
    cdf = cdf / cdf[-1]
    levels = np.array([dists.phi(float(z)) for z in NODES]) ** (1.0 / k)
    pts = np.interp(levels, cdf - WEIGHTS[order] / 2, values)
    st.next_src += 1
    return Sig(moment(pts), x.base, pts, st.next_src, hops=x.hops, reset=x.reset, pooled=x.pooled)


def reduction(w: Weights, node: Node, ins: Sequence[Sig | None], x: Sig, st: State) -> Sig | None:
    """A reduction is one of two things the graph does not say: a statistic across a value's
    own features (a decomposed LayerNorm's mean(x), mean(x²)) or pooling across positions
    (GlobalAveragePooling1D as ReduceMean over the sequence). The statistic is exact on the
    sampled function (``pts``: the expectation), which is what normalizations combine with
    their own source; where the result goes on alone, it is pooling, which keeps about its
    input's scale (``q``): the mean of a zero-mean signal is not a zero signal."""
    if x.pts is None:
        return None
    x = as_value(st, x)  # a reduction of a statistic: the pooled value it stood for
    if x.pts is None:
        return None
    mean, pooled = _pooled_moment(x, POOLED_POSITIONS)
    stat = mean
    if node.op_type in SIZED_REDUCTIONS:
        # A sum scales with the number of values reduced, which the graph does not say: the
        # statistic is taken per value (an L2 norm as the root mean square, F.normalize's
        # x / ‖x‖ then a unit-scale reset) and the level is marked as assumed.
        st.assume(node.op_type)
        if node.op_type == "ReduceL2":
            stat = math.sqrt(moment(x.pts))
        elif node.op_type == "ReduceSumSquare":
            stat = moment(x.pts)
    return Sig(
        pooled, x.base, np.full_like(NODES, stat), x.src, stat=True, hops=x.hops, reset=x.reset,
        pooled=_shrunk(x, pooled),
    )  # fmt: skip
