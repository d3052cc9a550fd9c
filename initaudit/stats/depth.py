"""Predict how the signal's scale evolves through depth, forward and backward (IA203).

Forward, every value carries its second moment q = E[x²] and, while it is an elementwise
function of one Gaussian source, that function sampled on a 64-point Gauss–Hermite grid. So a
decomposed GELU, SiLU or LayerNorm (ReduceMean/Sub/Pow/Sqrt/Div) is evaluated as the exact
composition, not pattern-matched. The rules (README "Signal propagation"):

* a linear op with a weight: q_out = alpha² · fan_in · E[w²] · q_in (+ E[b²]); a new Gaussian;
* activations and other elementwise ops: applied to the sampled function, exactly;
* normalizations reset to E[γ²] + E[β²]; reductions (ReduceMean) give the expectation;
* a residual Add sums second moments (independent branches); a Mul of two independent
  signals multiplies them; Concat averages; pooling, layout ops and Dropout pass through;
* attention: Softmax outputs weights that sum to one, so probs·V keeps V's second moment;
* embeddings: E[w²] of the table; integer inputs carry no signal; unknown ops pass the signal
  through and are listed as assumptions.

Backward, gradient second moments flow from the outputs (g = 1): a linear op multiplies by
alpha² · fan_out · E[w²], an elementwise op by E[f'(x)²] on its sampled input, a norm by
E[γ²] / q_in, a residual split sums its branches.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from initaudit.graph.consts import Constants
from initaudit.graph.index import GraphIndex, Node
from initaudit.graph.layout import (
    BIAS,
    LINEAR_OPS,
    MATRIX_ROLES,
    NORM_SCALE,
    NORM_SHIFT,
    SCALE,
)
from initaudit.graph.sites import WeightSite
from initaudit.stats.gains import _W, _Z, _fn, erf
from initaudit.stats.signal import (
    EW_UNARY,
    NO_SIGNAL,
    NORMS,
    PASS,
    REDUCE,
    UNARY,
    Sig,
    State,
    apply_op,
    divides_by_stat,
    gaussian,
    moment,
    sum_base,
)


@dataclass(frozen=True)
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
    zero: bool = False  # an all-zero weight: IA101 reports it, IA203 does not judge past it
    # Weighted layers compounding since the last reset, up to here (forward) and from the
    # outputs back to here (backward): one layer alone scales, it does not compound.
    hops_forward: int = 0
    hops_backward: int = 0


@dataclass(frozen=True)
class DepthProfile:
    layers: tuple[DepthLayer, ...]
    assumptions: tuple[str, ...] = ()  # op types whose effect was assumed, not modelled


class Propagator:
    def __init__(
        self,
        index: GraphIndex,
        consts: Constants,
        sites: Sequence[WeightSite],
        second_moments: Mapping[str, float],
    ) -> None:
        self.index = index
        self.consts = consts
        self.m2 = second_moments  # E[w²] per site (dequantized)
        self.weight_of: dict[int, WeightSite] = {}
        self.affine: dict[str, float] = {}
        names = {n.name: n for n in index.nodes}
        for s in sites:
            for u in s.uses:
                node = names.get(u.node)
                if (
                    node is not None
                    and s.role in MATRIX_ROLES
                    and (node.op_type in LINEAR_OPS or node.op_type == "Gather")
                ):
                    self.weight_of.setdefault(node.id, s)
            m2 = second_moments.get(s.name, 0.0)
            if s.role in (BIAS, NORM_SCALE, NORM_SHIFT, SCALE) and math.isfinite(m2):
                self.affine[s.name] = m2

    # -- ordering --------------------------------------------------------------------------
    def _topological(self) -> list[Node]:
        indeg: dict[int, int] = {}
        users: dict[int, list[Node]] = {}
        for n in self.index.nodes:
            preds = {p.id for i in n.inputs if (p := self.index.producer_of(i)) is not None}
            preds.discard(n.id)
            indeg[n.id] = len(preds)
            for p in preds:
                users.setdefault(p, []).append(n)
        ready = deque(n for n in self.index.nodes if indeg[n.id] == 0)
        order: list[Node] = []
        while ready:
            n = ready.popleft()
            order.append(n)
            for u in users.get(n.id, []):
                indeg[u.id] -= 1
                if indeg[u.id] == 0:
                    ready.append(u)
        return order  # nodes on a cycle are left out

    # -- forward ---------------------------------------------------------------------------
    def forward(self, order: list[Node]) -> State:
        st = State()
        for name in self.index.graph_inputs:
            if not self.consts.is_constant(name):
                st.sig[name] = gaussian(st, 1.0, 1.0)
        for node in order:
            out = self._node_forward(node, st)
            if out is not None:
                # Multi-output ops (Split, LSTM's Y and Y_h) give each output the same scale;
                # a dynamic quantizer's scale and zero point are not the signal.
                dq = node.op_type == "DynamicQuantizeLinear"
                for o in node.outputs[:1] if dq else node.outputs:
                    if o:
                        st.sig[o] = out
        return st

    def _node_forward(self, node: Node, st: State) -> Sig | None:
        op = node.op_type
        ins = [st.sig.get(i) for i in node.inputs]
        dyn = [s for s in ins if s is not None]
        site = self.weight_of.get(node.id)
        if site is not None and op == "Gather":
            m2 = self.m2.get(site.name, 0.0)
            return gaussian(st, m2, m2)
        if not dyn or op in NO_SIGNAL:
            return None
        x = dyn[0]
        if site is not None:
            return self._linear(node, site, x, st)
        if op in LINEAR_OPS or op in ("LSTM", "GRU", "RNN"):
            if op in ("LSTM", "GRU", "RNN"):
                st.assumed.add(op)
                return gaussian(st, min(x.q, 1.0), x.base, x.hops)
            a, b = [*dyn, x][:2]
            if a.probs or b.probs:
                v = b if a.probs else a  # attention: a convex mix of V
                return gaussian(st, v.q, v.base, v.hops)
            return gaussian(st, a.q * b.q, a.base * b.base, max(a.hops, b.hops))
        if op == "BatchNormalization" and not node.attr("training_mode", 0):
            # Inference BatchNorm applies its running statistics: a fixed affine map, which is
            # what the exported graph computes. In training it normalizes by batch statistics,
            # so for judging depth it is still a reset.
            q = self._batchnorm_moment(node, x.q)
            return gaussian(st, q, q)
        if op in NORMS:
            q = self._affine_moment(node)
            return gaussian(st, q, q)
        if op in ("Softmax", "LogSoftmax"):
            return Sig(0.0, 1.0, None, -1, probs=True)
        if op in UNARY:
            return self._unary(node, x, st)
        if op in EW_UNARY and x.pts is not None:
            f = EW_UNARY[op] or erf
            with np.errstate(all="ignore"):
                pts = f(x.pts)
            return Sig(moment(pts), x.base, pts, x.src, stat=x.stat, hops=x.hops)
        if op in REDUCE and x.pts is not None:
            mean = float(np.sum(_W * x.pts))
            return Sig(mean * mean, x.base, np.full_like(_Z, mean), x.src, stat=True, hops=x.hops)
        if op in ("Add", "Sub", "Mul", "Div", "Pow"):
            return self._binary(node, ins, st)
        if op == "Concat":
            return gaussian(
                st,
                float(np.mean([s.q for s in dyn])),
                float(np.mean([s.base for s in dyn])),
                max(s.hops for s in dyn),
            )
        if op in PASS:
            return x
        st.assumed.add(op)
        return x

    def _linear(self, node: Node, site: WeightSite, x: Sig, st: State) -> Sig:
        if node.folded_norm:
            # A BatchNorm the exporter folded in normalizes again in training: a reset to a
            # fresh BN's unit scale (zero when the folded weight is, as zero_init_residual).
            q = 1.0 if self.m2.get(site.name, 0.0) > 0 else 0.0
            return gaussian(st, q, q)
        alpha = node.attr("alpha", 1.0) if node.op_type == "Gemm" else 1.0
        alpha = float(alpha) if isinstance(alpha, float) else 1.0
        fan = site.fan_in or 1
        q = alpha * alpha * fan * self.m2.get(site.name, 0.0) * x.q
        for i in node.inputs:
            if i in self.affine and i != site.name and self._is_bias(i):
                q += self.affine[i]
        return gaussian(st, q, x.base, x.hops + 1)

    def _is_bias(self, name: str) -> bool:
        return name in self.affine

    def _batchnorm_moment(self, node: Node, q_in: float) -> float:
        vals = [self.consts.small_value(node.input(k)) for k in range(1, 5)]
        if any(v is None for v in vals):
            return self._affine_moment(node)
        gamma, beta, mean, var = (np.asarray(v, dtype=np.float64).reshape(-1) for v in vals)
        eps = node.attr("epsilon", 1e-5)
        inv = 1.0 / np.sqrt(var + (float(eps) if isinstance(eps, float) else 1e-5))
        # y = gamma·(x - mean)·inv + beta, per channel, with E[x] ~ 0 and E[x²] = q_in.
        return float(np.mean(gamma**2 * inv**2 * (q_in + mean**2) + beta**2))

    def _affine_moment(self, node: Node) -> float:
        scale = next((self.affine[i] for i in node.inputs[1:2] if i in self.affine), 1.0)
        shift = next((self.affine[i] for i in node.inputs[2:3] if i in self.affine), 0.0)
        return scale + shift

    def _unary(self, node: Node, x: Sig, st: State) -> Sig:
        kind = UNARY[node.op_type]
        alpha = node.attr("alpha")
        f = _fn(kind, float(alpha) if isinstance(alpha, float) else None)
        base = x if x.pts is not None else gaussian(st, x.q, x.base, x.hops)
        if f is None or base.pts is None:
            return base
        with np.errstate(all="ignore"):
            pts = f(base.pts)
        return Sig(moment(pts), base.base, pts, base.src, hops=base.hops)

    def _binary(self, node: Node, ins: list[Sig | None], st: State) -> Sig:
        op = node.op_type
        a, b = [*ins, None, None][:2]
        if a is not None and b is not None:
            hops = max(a.hops, b.hops)
            if a.pts is not None and b.pts is not None and a.src == b.src:
                pts = apply_op(op, a.pts, b.pts)
                q = moment(pts)
                if op in ("Div", "Mul") and (a.stat or b.stat) and not (a.stat and b.stat):
                    return Sig(q, q, pts, a.src)  # x / sqrt(mean(x²)): a normalization
                return Sig(q, a.base, pts, a.src, stat=a.stat and b.stat, hops=hops)
            if op in ("Add", "Sub"):
                return gaussian(st, a.q + b.q, sum_base(a, b), hops)
            if op == "Mul":
                return gaussian(st, a.q * b.q, a.base * b.base, hops)
            if op == "Div":
                return gaussian(st, a.q / b.q if b.q > 0 else math.inf, a.base, hops)
            return gaussian(st, a.q, a.base, hops)
        sig = a if a is not None else b
        if sig is None:
            return gaussian(st, 1.0, 1.0)
        other = node.input(1) if a is not None else node.input(0)
        c = self.consts.scalar(other)
        if c is not None and sig.pts is not None:
            pts = apply_op(op, sig.pts, c) if a is not None else apply_op(op, c, sig.pts)
            q = moment(pts)
            # A constant rescale of a value still at its reset (Gemma's and the original
            # Transformer's embedding * sqrt(d_model), an input scaled once) moves the reset,
            # not the depth: it does not compound. q == base holds only there.
            fresh = op in ("Mul", "Div") and sig.q == sig.base and not sig.stat
            return Sig(q, q if fresh else sig.base, pts, sig.src, stat=sig.stat, hops=sig.hops)
        m2 = self.affine.get(other)
        if op in ("Add", "Sub"):
            return gaussian(st, sig.q + (m2 or 0.0), sig.base, sig.hops)
        if op == "Mul" and m2 is not None:
            return gaussian(st, sig.q * m2, sig.base, sig.hops)
        return sig

    # -- backward --------------------------------------------------------------------------
    def backward(self, order: list[Node], fwd: State) -> tuple[dict[str, float], dict[str, int]]:
        """Gradient second moment relative to the last reset going backward (an output, a
        normalization's input): where branches meet, gradients add and the relative level is
        the larger one's, as in the forward pass. Also the weighted layers since that reset."""
        g: dict[str, float] = {o: 1.0 for o in self.index.graph_outputs}
        rel: dict[str, float] = dict.fromkeys(g, 1.0)
        hops: dict[str, int] = dict.fromkeys(g, 0)
        for node in reversed(order):
            out = node.outputs[0] if node.outputs else ""
            if out not in g:
                continue
            reset = node.op_type in NORMS or node.folded_norm or divides_by_stat(node, fwd)
            weighted = node.id in self.weight_of and node.op_type != "Gather"
            for i, factor in self._local_backward(node, fwd):
                g[i] = g.get(i, 0.0) + g[out] * factor
                rel[i] = max(rel.get(i, 0.0), 1.0 if reset else rel[out] * factor)
                hops[i] = max(hops.get(i, 0), 0 if reset else hops[out] + weighted)
        return rel, hops

    def _local_backward(self, node: Node, fwd: State) -> list[tuple[str, float]]:
        dyn = [i for i in node.inputs if i in fwd.sig]
        if not dyn:
            return []
        op = node.op_type
        site = self.weight_of.get(node.id)
        if site is not None:
            if op == "Gather":
                return []
            fan_out = site.fan_out or 1
            return [(dyn[0], fan_out * self.m2.get(site.name, 0.0))]
        x = fwd.sig[dyn[0]]
        if op in NORMS:
            return [(dyn[0], self._affine_moment(node) / x.q if x.q > 0 else 1.0)]
        if op in UNARY and x.pts is not None:
            alpha = node.attr("alpha")
            f = _fn(UNARY[op], float(alpha) if isinstance(alpha, float) else None)
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
            c = self.consts.scalar(other[0]) if other else None
            if c is not None and c != 0:
                return [(dyn[0], c * c if op == "Mul" else 1.0 / (c * c))]
        return [(i, 1.0) for i in dyn]

    # -- profile ---------------------------------------------------------------------------
    def _stream_point(self, value: str, fwd: State) -> tuple[str, bool]:
        """Where a layer's output joins the signal that runs through depth: the residual Add
        it flows into (through bias, layout ops and activations), else the output itself;
        and whether it reached one.

        Judging a residual branch on its own would call HF's fixed-std attention branches
        "vanishing" in narrow models; what propagates is the residual stream they add to.
        """
        v = value
        for _ in range(16):
            users = self.index.consumers_of(v)
            if len(users) != 1:
                return v, False
            node, slot = users[0]
            others = [i for j, i in enumerate(node.inputs) if j != slot and i]
            dynamic = [i for i in others if i in fwd.sig]
            if node.op_type in ("Add", "Sub") and dynamic:
                return node.outputs[0], True
            passable = (
                node.op_type in PASS
                or node.op_type in UNARY
                or (node.op_type in ("Add", "Sub", "Mul", "Div") and not dynamic)
            )
            if not passable or not node.outputs or not node.outputs[0]:
                return v, False
            v = node.outputs[0]
        return v, False

    def profile(self) -> DepthProfile:
        order = self._topological()
        fwd = self.forward(order)
        bwd, bwd_hops = self.backward(order, fwd)
        rows: list[tuple[WeightSite, Node, float, float, float, float, bool, int, int]] = []
        for node in order:
            site = self.weight_of.get(node.id)
            out = node.outputs[0] if node.outputs else ""
            if site is None or node.op_type == "Gather" or out not in fwd.sig:
                continue
            q_in = next((fwd.sig[i].q for i in node.inputs if i in fwd.sig), None)
            if q_in is None:
                continue
            point, on_stream = self._stream_point(out, fwd)
            units = float(_units(site))
            sig = fwd.sig.get(point, fwd.sig[out])
            # Relative to the last reset on the path: what compounds through depth.
            q = sig.q / sig.base if sig.base > 0 else math.inf
            # Backward compares total squared gradient (per position): a classifier head's
            # 10 outputs against 512 hidden units is a change of width, not of depth.
            g = bwd.get(point, bwd.get(out, 0.0)) * units
            # Backward, the layer's own weight acts on the gradient that reaches its input.
            hops_b = bwd_hops.get(point, bwd_hops.get(out, 0)) + 1
            row = (site, node, q_in, q, g, fwd.sig[out].q, on_stream, sig.hops, hops_b)
            rows.append(row)
        if not rows:
            return DepthProfile((), tuple(sorted(fwd.assumed)))
        q_ref = 1.0
        g_ref = rows[-1][4] or 1.0
        # With residual connections the signal that runs through depth is the residual
        # stream: layers inside a branch (q/k/v, an MLP's first layer) are reported but not
        # judged. Without any, every layer is on the path.
        residual = any(r[6] for r in rows)
        layers = []
        for k, (site, node, q_in, q, g, q_out, on_stream, hops_f, hops_b) in enumerate(rows):
            q_next = rows[k + 1][2] if k + 1 < len(rows) else q_out
            judged = not residual or on_stream or k == len(rows) - 1
            layers.append(
                DepthLayer(
                    site.name,
                    node.name,
                    node.op_type,
                    _log10(q / q_ref),
                    _log10(g / g_ref),
                    _log10(q_next) - _log10(q_in),
                    _log10(q_out / q_ref),
                    judged,
                    self.m2.get(site.name, 0.0) == 0.0,
                    hops_f,
                    hops_b,
                )
            )
        return DepthProfile(tuple(layers), tuple(sorted(fwd.assumed)))


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


def propagate(
    index: GraphIndex,
    consts: Constants,
    sites: Sequence[WeightSite],
    second_moments: Mapping[str, float],
) -> DepthProfile:
    return Propagator(index, consts, sites, second_moments).profile()
