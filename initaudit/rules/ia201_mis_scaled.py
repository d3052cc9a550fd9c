from __future__ import annotations

import math
from collections.abc import Iterator

from initaudit.findings import Finding, Severity
from initaudit.graph.model import End, Role, WeightSite
from initaudit.numfmt import than
from initaudit.rules._base import Rule, RuleContext
from initaudit.stats.measure import SiteStats
from initaudit.stats.recommend import recommended


class MisScaled(Rule):
    """Weight's spread is far from every init scheme that fits its fans and activation.

    ## What it checks
    The std of a weight against every scheme a real framework could have drawn it from for
    this layer's fans, op and position (PyTorch defaults, xavier/kaiming with every standard
    gain and mode, LeCun, Keras/Flax truncated variance scaling, HF's fixed 0.02, GPT-2's
    0.02/sqrt(2L) on residual projections, GPT-NeoX small/wang init, T5's query scale). It
    fires when the nearest one is more than `scale-ratio` (default 1.5) away and the values are
    statistically incompatible with it. A fixed-std recipe (HF's 0.02 or the model's own
    shared `initializer_range`, timm's 0.01 and TF-style truncated 0.02) is a scheme where a
    normalization or a residual stream resets the scale it sets; in a stack with neither, it
    is judged against the fan-based schemes like any other std. A layer whose output a
    normalization resets (a BatchNorm or LayerNorm after it, F.normalize, or a BatchNorm the
    exporter folded into it) is judged only ten times further out: its scale matters to
    training only through the effective step size; so are embeddings whose rows (summed with
    the other tables of the input) go straight into a normalization. A router's logits
    (softmax probabilities the network goes on with) may be drawn N(0, 1) as Switch
    Transformers does, and a gate drawn near zero beside a constant bias (timm gMLP's spatial
    gate, std 1e-6 with bias 1) starts as that constant: neither is judged as a fan-based
    layer. A classifier head scaled below every scheme
    (timm's `head_init_scale`, muP's readout) makes small logits by design: info.

    ## Why it matters
    Each layer multiplies the signal's variance by fan_in·Var(W) times the activation's factor.
    A weight 10× too large explodes activations and gradients within a few layers; 10× too
    small makes them vanish, and the network trains slowly or not at all.

    ## Example
    Gemm `fc1.weight` [128, 64] drawn with `nn.init.normal_(w)` (std 1.0) before a ReLU: "std
    1.01 is ≈5.7× larger than the 0.177 kaiming_normal(fan_in, relu) gives this layer". The
    message compares with the scheme that suits the activation (what the fix gives), or with
    the nearest plausible scheme when the activation suggests none.

    ## Use instead
    The scheme that fits the activation: `nn.init.kaiming_normal_(w, nonlinearity="relu")`
    before ReLU-like activations, `nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain(
    "tanh"))` before tanh, or keep the framework default. If a fixed std is intended, declare
    it in a `[[tool.initaudit.overrides]]` table with `scheme = "normal(std=0.02)"`.
    """

    code = "IA201"
    name = "mis-scaled"
    severity = Severity.WARNING
    summary = "std far from every plausible scheme for its fans/activation"

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        limit = ctx.config.threshold("scale-ratio")
        for site, st in ctx.judged():
            declared = _declared(ctx, site)
            if declared is not None:
                std, scheme = declared
                ratio = (st.moments.std or 0.0) / std
                if _far(ratio, limit):
                    yield self.finding(
                        site,
                        f"std {st.moments.std:.3g} is {than(ratio)} the {std:.3g} of "
                        f"the configured scheme {scheme}",
                        fix="re-initialize it with the configured scheme",
                    )
                continue
            if site.name in ctx.identity_gates:
                continue
            normalized = bool(site.activation and site.activation.normalized) or site.into_norm
            # An embedding's scale is a convention, not a fan's: only layers compound.
            plain = ctx.depth is not None and ctx.depth.plain and site.role != Role.EMBEDDING
            if _misscaled(st, limit * NORMALIZED_SLACK if normalized else limit, plain):
                yield self._report(ctx, site, st)

    def _report(self, ctx: RuleContext, site: WeightSite, st: SiteStats) -> Finding:
        # One comparison: with the scheme that suits this layer's activation when there is
        # one (what the fix gives), else with the nearest plausible scheme the rule judged by
        # (for a fixed-std recipe in a plain stack, the nearest fan-based one).
        fit = st.fit
        std = st.moments.std or 0.0
        act = site.activation.label if site.activation else "unknown"
        rec = ctx.recommended(site)
        closest = fit.fan_based if fit.matched else fit.closest
        head = f"std {std:.3g} is"
        if fit.matched:
            head = (
                f"std {std:.3g} matches the fixed-std recipe {fit.scheme}, but in a network "
                "with no normalization and no residual connection every layer's scale "
                "compounds into the next: it is"
            )
            # The model's own fixed std (the house scheme) is what is judged here: the message
            # and the fix name the textbook scheme for the activation instead of repeating it.
            if rec is not None and rec.fixed:
                rec = recommended(site)
        if (
            closest is not None
            and std < closest.std
            and site.activation is not None
            and site.activation.end == End.OUTPUT
        ):
            # Logits start small by design where the head is scaled down: timm's
            # head_init_scale (eva.py:867-871, `self.head.weight.mul_(head_init_scale)`,
            # 0.001 for EVA; also beit, convnext, hiera), muP's zero readout. The zero head
            # is IA101 info for the same reason.
            msg = (
                f"{head} {than(std / closest.std)} the {closest.std:.3g} of the nearest "
                f"plausible scheme, {closest.label} (fan_in={site.fan_in}, fan_out="
                f"{site.fan_out}); this matches a down-scaled classifier head (timm "
                "head_init_scale, muP readout): small logits at init, which is usually "
                "intentional"
            )
            return self.finding(
                site, msg, fix="if intended, ignore IA201 for this tensor", severity=Severity.INFO
            )
        fix = None if rec is None else f"{ctx.scheme_fix(site, rec)} gives std {rec.std:.3g} here"
        if rec is not None and rec.std > 0:
            msg = (
                f"{head} {than(std / rec.std)} the {rec.std:.3g} {rec.label} gives this "
                f"layer (fan_in={site.fan_in}, before {act})"
            )
            return self.finding(site, msg, fix=fix)
        expected = closest.std if closest else fit.expected_std
        where = f"fan_in={site.fan_in}, fan_out={site.fan_out}"
        if expected:
            kind = "fan-based" if fit.matched else "plausible"
            name = f" of the nearest {kind} scheme, {closest.label}" if closest else ""
            msg = f"{head} {than(std / expected)} the {expected:.3g}{name} ({where})"
        else:
            msg = f"std {std:.3g} fits no plausible scheme for {where}"
        return self.finding(site, msg, fix=fix)


def _far(ratio: float, limit: float) -> bool:
    return ratio > 0 and abs(math.log(ratio)) > math.log(limit)


# A normalization right after a layer (BatchNorm, LayerNorm, or one the exporter folded into
# it) resets its output's scale, so its std matters for training only through the effective
# learning rate, which falls as 1/|W|: fixed-std convs before a BatchNorm (N(0, 0.01), TF's
# truncated N(0, 0.1)) train as well as fan-based ones. Such a layer is mis-scaled only this
# many times further out than scale-ratio.
NORMALIZED_SLACK = 10.0


def _misscaled(st: SiteStats, limit: float, plain: bool) -> bool:
    """Off every scheme, or, in a plain network (no normalization, no residual stream),
    matched only to a fixed-std recipe but far from every fan-based one: a fixed std is a
    scheme where something resets the scale it sets, not where it compounds layer after layer
    (timm's N(0, 0.01) Linears sit in pre-norm residual blocks; a plain MLP drawn N(0, 0.01)
    loses 1/300 of its signal per layer)."""
    fit = st.fit
    if fit.matched:
        fixed = fit.closest is not None and fit.closest.fixed and not fit.closest.context
        if not (plain and fixed and fit.fan_based is not None and st.moments.std):
            return False
        return _far(st.moments.std / fit.fan_based.std, limit)
    if fit.ratio is None or not fit.fits_family:
        return False
    return _far(fit.ratio, limit)


def _declared(ctx: RuleContext, site: WeightSite) -> tuple[float, str] | None:
    """The std a configured override declares for this tensor, and the scheme as written
    (config.parse_scheme: validated when the configuration was read)."""
    for o in ctx.config.overrides_for(site.name, site.node or None):
        std = o.declared_std
        if std is not None and o.scheme is not None:
            return std, o.scheme
    return None
