"""The signal a depth prediction carries (signal/propagate.py).

A :class:`Sig` is one value's second moment, the level at its last reset (input, embedding,
normalization), the weighted layers since that reset, and, while it is an elementwise
function of one Gaussian source, that function sampled on the Gauss–Hermite grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from initaudit.graph.model import Node
from initaudit.signal.gains import NODES, WEIGHTS


@dataclass
class Sig:
    q: float
    base: float  # q right after the last reset (input, embedding, normalization) on its path
    pts: np.ndarray | None = None  # the value as a function of its Gaussian source, sampled
    src: int = -1
    probs: bool = False  # softmax output: rows of weights summing to one
    stat: bool = False  # a statistic of the signal (ReduceMean...), as normalizations divide by
    hops: int = 0  # weighted layers on the longest path since the last reset: what compounds
    # Which reset (its source id) the value descends from: the branches of one block share
    # their block's normalization, the residual stream an older one (signal/propagate.py
    # tells a block's own sums from the residual Add by it).
    reset: int = -1
    # What averages across positions (pools, pooling reductions) since the last reset did
    # to q: the product of their q_out/q_in. Averaging shrinks q without compounding, and
    # the gradient spreads back over the positions in the same ratio, so the norm after it
    # (a head's LayerNorm after the pool, or after the pool and a linear layer) undoes the
    # level without it (signal/backward.py ``_undone``). 1: nothing pooled.
    pooled: float = 1.0


@dataclass
class State:
    sig: dict[str, Sig] = field(default_factory=dict)
    assumed: set[str] = field(default_factory=set)
    # Per value, the op types assumed scale-neutral since its last reset (signal/forward.py):
    # IA203 judges only levels no assumption stands behind.
    assumed_on: dict[str, frozenset[str]] = field(default_factory=dict)
    assuming: bool = False  # the node being evaluated was not modelled
    # Values an inference-mode BatchNorm acted on since the last weighted layer (or a layer
    # with one folded in): there the exported graph applies running statistics, the identity
    # at init, while training (and the prediction) normalizes by batch statistics.
    batch_norm_on: set[str] = field(default_factory=set)
    # A statistic later used as a value (a global average pool written as ReduceMean, then
    # normalized by the head's own LayerNorm): the pooled signal it stands for, one per
    # statistic, so every use of it is the same source (``as_value``).
    # (keyed by the statistic's id, which stays unique while ``sig`` holds it; the statistic
    # is kept beside its value so a reused id can never match)
    pooled: dict[int, tuple[Sig, Sig]] = field(default_factory=dict)
    # Per reset (its source id), what training's second moment is over the exported
    # graph's there: an inference BatchNorm passes its input's scale on (running statistics,
    # the identity at init) where training normalizes it to E[γ²] + E[β²]. Absent: 1.
    train_ratio: dict[int, float] = field(default_factory=dict)
    next_src: int = 0

    def assume(self, op: str) -> None:
        """The current node's effect is assumed, not modelled."""
        self.assumed.add(op)
        self.assuming = True

    def train_q(self, s: Sig) -> float:
        """The second moment training sees where the exported graph carries ``s``: what the
        gradient through a normalization is divided by (signal/backward.py)."""
        return s.q * self.train_ratio.get(s.reset, 1.0)

    def train_pts(self, s: Sig) -> np.ndarray | None:
        """``s``'s sampled function at training's scale (exact for a Gaussian source, the
        output of a linear layer or a normalization, which is what activations follow)."""
        r = self.train_ratio.get(s.reset, 1.0)
        return s.pts if s.pts is None or r == 1.0 else s.pts * math.sqrt(r)

    def pooled_value(self, s: Sig) -> Sig | None:
        """The pooled value made for the statistic ``s``, if one was."""
        entry = self.pooled.get(id(s))
        return entry[1] if entry is not None and entry[0] is s else None


def gaussian(
    st: State,
    q: float,
    base: float,
    hops: int = 0,
    reset: int | None = None,
    mean: float = 0.0,
    pooled: float = 1.0,
) -> Sig:
    """A new Gaussian source (second moment ``q``, of which ``mean``² is its mean's); without
    ``reset`` it is a reset point itself."""
    st.next_src += 1
    q = max(q, 0.0)
    spread = math.sqrt(max(q - mean * mean, 0.0)) if math.isfinite(q) else math.inf
    return Sig(
        q, base, mean + spread * NODES, st.next_src, hops=hops,
        reset=st.next_src if reset is None else reset, pooled=pooled,
    )  # fmt: skip


def mean_of(s: Sig) -> float:
    """E[x] of a sampled value (0 without samples: a linear layer's output is centred)."""
    if s.pts is None:
        return 0.0
    with np.errstate(all="ignore"):
        m = float(np.sum(WEIGHTS * s.pts))
    return m if math.isfinite(m) else 0.0


def as_value(st: State, s: Sig) -> Sig:
    """The pooled signal a statistic stands for where it is used as a value: about normal,
    with the statistic's mean and the pooled second moment (as an average pool)."""
    if not s.stat or s.pts is None:
        return s
    got = st.pooled_value(s)
    if got is None:
        mean = float(s.pts[0])
        spread = math.sqrt(max(s.q - mean * mean, 0.0))
        st.next_src += 1
        got = Sig(
            s.q, s.base, mean + spread * NODES, st.next_src, hops=s.hops, reset=s.reset,
            pooled=s.pooled,
        )  # fmt: skip
        st.pooled[id(s)] = (s, got)
    return got


def operands(
    st: State, a: Sig | None, b: Sig | None, create: bool = True
) -> tuple[Sig | None, Sig | None]:
    """The two signals a binary op combines, with a statistic read as the pooled value it
    stands for unless it meets its own source (x - mean(x), x · rsqrt(mean(x²)): a
    normalization). ``create=False`` only looks up values made before (the backward pass)."""
    if a is None or b is None or not (a.stat or b.stat) or a.src == b.src:
        return a, b

    def value(s: Sig) -> Sig:
        return as_value(st, s) if create else (st.pooled_value(s) or s)

    if a.stat and b.stat:
        pa, pb = st.pooled_value(a), st.pooled_value(b)
        if pa is not None and pa.src == b.src:
            return pa, b
        if pb is not None and pb.src == a.src:
            return a, pb
        return value(a), value(b)
    return (value(a), b) if a.stat else (a, value(b))


def new_reset(st: State) -> int:
    st.next_src += 1
    return st.next_src


def sum_base(a: Sig, b: Sig) -> float:
    """Base of a residual sum: it is as far from its reset as the further of its inputs (a
    residual Add does not compound; what each branch did since its own reset does)."""
    ra = a.q / a.base if a.base > 0 else 1.0
    rb = b.q / b.base if b.base > 0 else 1.0
    r = max(ra, rb)
    return (a.q + b.q) / r if r > 0 else 1.0


def divides_by_stat(node: Node, fwd: State) -> bool:
    """x · rsqrt(mean(x²)) and the like: a decomposed normalization, which the forward pass
    resets at (signal/forward.py, ``_binary``); the backward pass resets there too."""
    if node.op_type not in ("Mul", "Div"):
        return False
    a, b = (fwd.sig.get(i) for i in node.inputs[:2]) if len(node.inputs) >= 2 else (None, None)
    a, b = operands(fwd, a, b, create=False)
    return (
        a is not None
        and b is not None
        and a.src == b.src
        and a.pts is not None
        and b.pts is not None
        and a.stat != b.stat
    )


def moment(pts: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        v = float(np.sum(WEIGHTS * np.square(pts)))
    return v if math.isfinite(v) else math.inf


def apply_op(op: str, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    with np.errstate(all="ignore"):
        if op == "Add":
            return np.add(a, b)
        if op == "Sub":
            return np.subtract(a, b)
        if op == "Mul":
            return np.multiply(a, b)
        if op == "Div":
            return np.divide(a, b)
        return np.power(a, b)
