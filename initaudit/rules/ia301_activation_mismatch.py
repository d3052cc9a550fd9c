from __future__ import annotations

from collections.abc import Iterator

from initaudit.findings import Finding, Severity
from initaudit.graph.model import End, Kind
from initaudit.rules._base import Rule, RuleContext

DEEP = 8  # this many unnormalized ReLU layers make a gain of 1 compound into a real loss


class ActivationMismatch(Rule):
    """The identified scheme's gain was designed for another activation.

    ## What it checks
    A weight identified as He/kaiming with the ReLU gain (sqrt 2) whose output goes through
    tanh or sigmoid, or is a linear output head (one init applied to the whole model,
    `model.apply(init_fn)`, gives the head the body's ReLU gain), or a Glorot/xavier weight
    with gain 1 in a deep stack (8 or more layers) of ReLU layers without normalization.

    ## Why it matters
    Gains compensate for what the activation does to the variance. He's sqrt(2) pushes tanh and
    sigmoid into saturation, where gradients vanish; Glorot's gain of 1 under ReLU halves the
    signal's second moment at every layer, so a deep unnormalized stack starts with vanishing
    activations. Neither is an error in a shallow or normalized network, hence info.

    ## Example
    Gemm `fc1.weight` [128, 64] from `kaiming_normal_(w, nonlinearity="relu")` followed by
    Tanh.

    ## Use instead
    `nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain("tanh"))` before tanh;
    `nn.init.kaiming_normal_(w, nonlinearity="relu")` in deep ReLU stacks.
    """

    code = "IA301"
    name = "activation-mismatch"
    severity = Severity.INFO
    summary = "scheme does not suit the activation"

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        deep_relu = (
            sum(
                1
                for site, _ in ctx.weights()
                if site.activation
                and site.activation.kind == Kind.RELU
                and not site.activation.normalized
            )
            >= DEEP
        )
        for site, st in ctx.judged():
            act = site.activation
            fit = st.fit
            if act is None or not fit.matched:
                continue
            rec = ctx.recommended(site)
            fix = f"{ctx.scheme_fix(site, rec)} (std {rec.std:.3g})" if rec else None
            if fit.gain_for == "relu" and act.kind in (Kind.TANH, Kind.SIGMOID):
                yield self.finding(
                    site,
                    f"{fit.scheme} uses the ReLU gain sqrt(2) but the layer feeds {act.label}: "
                    "it starts saturated",
                    fix=fix,
                )
            elif fit.gain_for == "relu" and act.kind == Kind.LINEAR and act.end == End.OUTPUT:
                yield self.finding(
                    site,
                    f"{fit.scheme} uses the ReLU gain sqrt(2) on a linear output layer: its "
                    "outputs start sqrt(2) times wider than a linear layer's gain of 1 gives",
                    fix=fix,
                )
            elif (
                fit.key in ("xavier_uniform", "xavier_normal", "glorot_normal")
                and fit.gain_for == "linear"
                and act.kind == Kind.RELU
                and not act.normalized
                and deep_relu
            ):
                yield self.finding(
                    site,
                    f"{fit.scheme} (gain 1) in a deep unnormalized ReLU stack: each layer halves "
                    "the signal's second moment",
                    fix=fix,
                )
