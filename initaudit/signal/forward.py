"""The forward pass: each value's second moment, one handler per op family (as onnx's
reference ops have one place per op).

Every value carries its second moment q = E[x²] and, while it is an elementwise function of
one Gaussian source, that function sampled on the Gauss–Hermite grid (signal/carried.py). So
a decomposed GELU, SiLU or LayerNorm is evaluated as the exact composition, not
pattern-matched. The rules (README "Signal propagation"):

* a linear op with a weight: q_out = alpha² · fan_in · E[w²] · q_in (+ E[b²]); a new Gaussian;
* activations and other elementwise ops: applied to the sampled function, exactly;
* normalizations reset to E[γ²] + E[β²]; pooling and reductions: signal/pooling.py;
* a residual Add sums second moments (independent branches); a Mul of two independent
  signals multiplies them; Concat averages; layout ops and Dropout pass through;
* attention: Softmax outputs weights that sum to one, so probs·V keeps V's second moment;
* embeddings: E[w²] of the table; integer inputs carry no signal; unknown ops pass the signal
  through and are listed as assumptions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from initaudit.graph.model import Node, WeightSite
from initaudit.graph.ops import (
    AVERAGE_POOLS,
    BINARY_ARITHMETIC,
    ELEMENTWISE_MATH,
    LINEAR_OPS,
    MAX_POOLS,
    NO_SIGNAL,
    NORM_OPS,
    PROPAGATED_ACTIVATIONS,
    RECURRENT_OPS,
    REDUCE_OPS,
    SIGNAL_PASS,
    SOFTMAX_OPS,
)
from initaudit.graph.streams import stored_name
from initaudit.signal.carried import (
    Sig,
    State,
    apply_op,
    gaussian,
    mean_of,
    moment,
    new_reset,
    operands,
    sum_base,
)
from initaudit.signal.gains import activation_fn, erf
from initaudit.signal.model import Weights
from initaudit.signal.pooling import average_pool, max_pool, reduction

# A handler gets the node, its inputs' signals (None for constants) and the first signal
# among them; it returns the output's signal, or None when the op is not modelled (the
# signal then passes through and the op is listed as an assumption).
Handler = Callable[[Weights, Node, Sequence[Sig | None], Sig, State], Sig | None]

_MATH: Mapping[str, Callable[[np.ndarray], np.ndarray]] = {
    "Erf": erf,
    "Sqrt": np.sqrt,
    "Reciprocal": np.reciprocal,
    "Neg": np.negative,
    "Exp": np.exp,
    "Log": np.log,
    "Cos": np.cos,
}


def forward(w: Weights, order: Sequence[Node]) -> State:
    st = State()
    graph = w.graph
    for name in graph.index.signal_inputs:
        if not graph.consts.is_constant(name):
            st.sig[name] = gaussian(st, 1.0, 1.0)
    for node in order:
        st.assuming, first_src = False, st.next_src + 1
        out = _node_forward(w, node, st)
        if out is not None:
            assumed = _assumed_after(node, out, st, out.reset == out.src >= first_src)
            batch_norm = _after_batch_norm(w, node, st)
            # Multi-output ops (Split, LSTM's Y and Y_h) give each output the same scale;
            # a dynamic quantizer's scale and zero point are not the signal.
            dq = node.op_type == "DynamicQuantizeLinear"
            for o in node.outputs[:1] if dq else node.outputs:
                if o:
                    st.sig[o] = out
                    if assumed:
                        st.assumed_on[o] = assumed
                    if batch_norm:
                        st.batch_norm_on.add(o)
    return st


def _after_batch_norm(w: Weights, node: Node, st: State) -> bool:
    if node.op_type == "BatchNormalization":
        return not node.attrs.training_mode
    if node.id in w.weight_of:
        return node.folded_norm
    return any(i in st.batch_norm_on for i in node.inputs)


def _assumed_after(node: Node, out: Sig, st: State, reset: bool) -> frozenset[str]:
    """The ops assumed scale-neutral on the paths to this value since its last reset: what a
    prediction read here takes on trust. A reset (a normalization, an embedding lookup, an
    input) starts a new, fully modelled level."""
    if reset and not st.assuming:
        return frozenset()
    seen = frozenset().union(*(st.assumed_on.get(i, frozenset()) for i in node.inputs))
    return seen | {node.op_type} if st.assuming else seen


def _node_forward(w: Weights, node: Node, st: State) -> Sig | None:
    op = node.op_type
    ins = [st.sig.get(i) for i in node.inputs]
    dyn = [s for s in ins if s is not None]
    site = w.weight_of.get(node.id)
    if site is not None and op == "Gather":
        m2 = w.m2.get(site.name, 0.0)
        return gaussian(st, m2, m2)  # an embedding lookup: the table's own scale
    if not dyn or op in NO_SIGNAL:
        return None
    x = dyn[0]
    if site is not None:
        return _linear(w, node, site, x, st)
    handler = FORWARD.get(op)
    out = handler(w, node, ins, x, st) if handler is not None else None
    if out is None:
        st.assume(op)
        return x
    return out


def _linear(w: Weights, node: Node, site: WeightSite, x: Sig, st: State) -> Sig:
    if node.folded_norm:
        # A BatchNorm the exporter folded in normalizes again in training: a reset to a
        # fresh BN's unit scale (zero when the folded weight is, as zero_init_residual).
        q = 1.0 if w.m2.get(site.name, 0.0) > 0 else 0.0
        return gaussian(st, q, q)
    alpha = node.attrs.alpha if node.op_type == "Gemm" and node.attrs.alpha is not None else 1.0
    fan = site.fan_in or 1
    q = alpha * alpha * fan * w.m2.get(site.name, 0.0) * x.q
    for i in node.inputs:
        if i in w.affine and i != site.name:
            q += w.affine[i]
    return gaussian(st, q, x.base, x.hops + 1, x.reset, pooled=x.pooled)


def _weightless(w: Weights, node: Node, ins: Sequence[Sig | None], x: Sig, st: State) -> Sig | None:
    """A linear or recurrent op without a stored weight: attention products, or a recurrence
    whose weights are computed (assumed to keep the scale, at most 1: tanh-bounded)."""
    if node.op_type in RECURRENT_OPS:
        st.assume(node.op_type)
        return gaussian(st, min(x.q, 1.0), x.base, x.hops, x.reset)
    dyn = [s for s in ins if s is not None]
    if len(dyn) < 2:
        # A weight computed in the graph from constants (timm NFNet's ScaledStdConv2d
        # standardizes its weight with F.batch_norm at every call, nfnet.py): its scale is
        # not a stored tensor's, so the op is not modelled (it was squaring the signal).
        return None
    a, b = dyn[:2]
    if a.probs or b.probs:
        v = b if a.probs else a  # attention: a convex mix of V
        return gaussian(st, v.q, v.base, v.hops, v.reset)
    return gaussian(st, a.q * b.q, a.base * b.base, max(a.hops, b.hops), min(a.reset, b.reset))


def _batchnorm(w: Weights, node: Node, ins: Sequence[Sig | None], x: Sig, st: State) -> Sig:
    if node.attrs.training_mode:
        return _norm(w, node, ins, x, st)
    # Inference BatchNorm applies its running statistics: a fixed affine map, which is what
    # the exported graph computes. In training it normalizes by batch statistics, so for
    # judging depth it is still a reset.
    consts = w.graph.consts
    vals = [consts.small_value(node.input(k)) for k in range(1, 5)]
    if any(v is None for v in vals):
        q = affine_moment(w, node)
    else:
        gamma, beta, mean, var = (np.asarray(v, dtype=np.float64).reshape(-1) for v in vals)
        eps = node.attrs.epsilon if node.attrs.epsilon is not None else 1e-5
        inv = 1.0 / np.sqrt(var + eps)
        # y = gamma·(x - mean)·inv + beta, per channel, with E[x] ~ 0 and E[x²] = q_in.
        q = float(np.mean(gamma**2 * inv**2 * (x.q + mean**2) + beta**2))
    out = gaussian(st, q, q)
    if q > 0 and math.isfinite(q):
        st.train_ratio[out.reset] = affine_moment(w, node) / q
    return out


def _norm(w: Weights, node: Node, ins: Sequence[Sig | None], x: Sig, st: State) -> Sig:
    q = affine_moment(w, node)
    return gaussian(st, q, q)


def affine_moment(w: Weights, node: Node) -> float:
    """E[γ²] + E[β²] of a normalization's scale (input 1) and shift (input 2)."""
    scale = next((w.affine[i] for i in node.inputs[1:2] if i in w.affine), 1.0)
    shift = next((w.affine[i] for i in node.inputs[2:3] if i in w.affine), 0.0)
    return scale + shift


def _softmax(w: Weights, node: Node, ins: Sequence[Sig | None], x: Sig, st: State) -> Sig:
    return Sig(0.0, 1.0, None, -1, probs=True, reset=x.reset)


def _activation(w: Weights, node: Node, ins: Sequence[Sig | None], x: Sig, st: State) -> Sig:
    f = activation_fn(PROPAGATED_ACTIVATIONS[node.op_type], node.attrs.alpha)
    base = x if x.pts is not None else gaussian(st, x.q, x.base, x.hops, x.reset, pooled=x.pooled)
    if f is None or base.pts is None:
        return base
    with np.errstate(all="ignore"):
        pts = f(base.pts)
    return Sig(
        moment(pts), base.base, pts, base.src, hops=base.hops, reset=base.reset,
        pooled=base.pooled,
    )  # fmt: skip


def _math(w: Weights, node: Node, ins: Sequence[Sig | None], x: Sig, st: State) -> Sig | None:
    if x.pts is None:
        return None
    with np.errstate(all="ignore"):
        pts = _MATH[node.op_type](x.pts)
    return Sig(
        moment(pts), x.base, pts, x.src, stat=x.stat, hops=x.hops, reset=x.reset,
        pooled=x.pooled,
    )  # fmt: skip


def _binary(w: Weights, node: Node, ins: Sequence[Sig | None], x: Sig, st: State) -> Sig:
    op = node.op_type
    first, second = [*ins, None, None][:2]
    a, b = operands(st, first, second)
    if a is not None and b is not None:
        hops = max(a.hops, b.hops)
        if a.pts is not None and b.pts is not None and a.src == b.src:
            pts = apply_op(op, a.pts, b.pts)
            q = moment(pts)
            if op in ("Div", "Mul") and (a.stat or b.stat) and not (a.stat and b.stat):
                # x / sqrt(mean(x²)): a normalization, a reset point of its own
                return Sig(q, q, pts, a.src, reset=new_reset(st))
            return Sig(q, a.base, pts, a.src, stat=a.stat and b.stat, hops=hops, reset=a.reset)
        if op in ("Add", "Sub"):
            if b.q == 0.0 and a.q > 0.0:
                # A branch that is exactly zero at init (timm ResNet's zero_init_last: the
                # last BatchNorm's γ = 0) adds nothing: the sum is the other summand, a
                # ReLU's non-negative output still, which the ReLU after it passes whole.
                return a
            if a.q == 0.0 and b.q > 0.0 and op == "Add":
                return b
            # Independent summands: their moments add, and so do their means. A ReLU's
            # output added to a centred branch (ResNet v1, relu(bn2(conv2(.)) + x)) is mostly
            # positive, and the ReLU after the sum passes more than half of it: torchvision's
            # resnet34 in train mode passes 65%, 71%, 74%... along a stage (this model:
            # 67%, 73%, 77%), and its stream's E[x²] grows 1.7, 2.4, 3.2 (this: 1.6, 2.3,
            # 3.0), where a centred sum stays at 1 and passes half.
            ma, mb = mean_of(a), mean_of(b) * (1 if op == "Add" else -1)
            q = a.q + b.q + 2 * ma * mb
            return gaussian(st, q, sum_base(a, b), hops, min(a.reset, b.reset), mean=ma + mb)
        if op == "Mul":
            return gaussian(st, a.q * b.q, a.base * b.base, hops, min(a.reset, b.reset))
        if op == "Div":
            return gaussian(st, a.q / b.q if b.q > 0 else math.inf, a.base, hops, a.reset)
        return gaussian(st, a.q, a.base, hops, a.reset)
    sig = a if a is not None else b
    if sig is None:
        return gaussian(st, 1.0, 1.0)
    other = node.input(1) if a is not None else node.input(0)
    c = w.graph.consts.scalar(other)
    if c is not None and sig.pts is not None:
        pts = apply_op(op, sig.pts, c) if a is not None else apply_op(op, c, sig.pts)
        q = moment(pts)
        # A constant rescale of a value still at its reset (Gemma's and the original
        # Transformer's embedding * sqrt(d_model), an input scaled once) moves the reset,
        # not the depth: it does not compound. q == base holds only there.
        fresh = op in ("Mul", "Div") and sig.q == sig.base and not sig.stat
        base = q if fresh else sig.base
        return Sig(
            q, base, pts, sig.src, stat=sig.stat, hops=sig.hops, reset=sig.reset,
            pooled=sig.pooled,
        )  # fmt: skip
    m2 = w.affine.get(other)
    if m2 is None:
        # A stored tensor reached through layout ops: a learned token the stream starts
        # from (CaiT's and ViT's cls_token.expand(B, -1, -1) written into the class-attention
        # stream, timm cait.py), a position table, or a layer scale the legacy exporter
        # deduplicated: torch.onnx's _deduplicate_initializers keeps one of several equal
        # initializers and feeds the others through Identity (timm MaxxViT's ls1.gamma and
        # ls2.gamma, both init_values = 1e-6: the branches were read at 1e12× their scale).
        stored = stored_name(w.graph.index, w.graph.consts, other)
        m2 = (w.affine.get(stored, w.m2.get(stored))) if stored is not None else None
        m2 = m2 if m2 is not None and math.isfinite(m2) else None
    if op in ("Add", "Sub"):
        if not m2:
            return gaussian(st, sig.q, sig.base, sig.hops, sig.reset)
        # The stored tensor is a source of its own at its own scale, as an embedding is: the
        # sum is as far from its reset as the signal was (sum_base), so a unit-scale
        # sinusoidal position table added to a small word embedding (Marian: N(0, 0.02)
        # times sqrt(d)) is not a signal grown 1000x since its reset.
        table = Sig(m2, m2, None, -1)
        return gaussian(st, sig.q + m2, sum_base(sig, table), sig.hops, sig.reset)
    if op == "Mul" and m2 is not None:
        return gaussian(st, sig.q * m2, sig.base, sig.hops, sig.reset)
    return sig


def _concat(w: Weights, node: Node, ins: Sequence[Sig | None], x: Sig, st: State) -> Sig:
    dyn = [s for s in ins if s is not None]
    return gaussian(
        st,
        float(np.mean([s.q for s in dyn])),
        float(np.mean([s.base for s in dyn])),
        max(s.hops for s in dyn),
        min(s.reset for s in dyn),
    )


def _pass(w: Weights, node: Node, ins: Sequence[Sig | None], x: Sig, st: State) -> Sig:
    return x


def _clip(w: Weights, node: Node, ins: Sequence[Sig | None], x: Sig, st: State) -> Sig | None:
    """Clip to constant bounds (ReLU6, a decomposed HardSwish's clip(x + 3, 0, 6)): exact on the
    sampled function. Bounds from inputs 1 and 2 (opset 11+) or the min/max attributes; a
    bound that is computed, not stored, leaves the op unmodelled."""
    if x.pts is None or (len(ins) > 1 and any(s is not None for s in ins[1:])):
        return None
    bounds: list[float | None] = [node.attrs.min, node.attrs.max]
    for k in (1, 2):
        name = node.input(k)
        if not name:
            continue
        v = w.graph.consts.small_value(name)
        if v is None or v.size != 1:
            return None
        bounds[k - 1] = float(v.reshape(-1)[0])
    lo, hi = bounds
    with np.errstate(all="ignore"):
        pts = np.clip(x.pts, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    return Sig(moment(pts), x.base, pts, x.src, hops=x.hops, reset=x.reset, pooled=x.pooled)


def _table() -> dict[str, Handler]:
    """Op type -> handler; where an op is in several families, the first listed wins."""
    families: list[tuple[frozenset[str], Handler]] = [
        (LINEAR_OPS | RECURRENT_OPS, _weightless),
        (frozenset({"BatchNormalization"}), _batchnorm),
        (NORM_OPS, _norm),
        (SOFTMAX_OPS, _softmax),
        (frozenset(PROPAGATED_ACTIVATIONS), _activation),
        (ELEMENTWISE_MATH, _math),
        (REDUCE_OPS, reduction),
        (BINARY_ARITHMETIC, _binary),
        (frozenset({"Concat"}), _concat),
        (frozenset({"Clip"}), _clip),
        (AVERAGE_POOLS, average_pool),
        (MAX_POOLS, max_pool),
        (SIGNAL_PASS, _pass),
    ]
    table: dict[str, Handler] = {}
    for ops, handler in families:
        for op in sorted(ops):
            table.setdefault(op, handler)
    return table


FORWARD: Mapping[str, Handler] = _table()
