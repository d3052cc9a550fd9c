from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import replace

from initaudit.findings import Finding, Severity
from initaudit.fixes import DEEP_RELU
from initaudit.numfmt import approx, factor_log10
from initaudit.rules._base import Rule, RuleContext
from initaudit.signal.model import MIN_COMPOUNDING, DepthLayer


class DepthSignal(Rule):
    """The signal explodes or vanishes through the network's depth.

    ## What it checks
    initaudit predicts, without running the model, the second moment of every weighted
    layer's output (forward) and of the gradient at it (backward), by carrying each op's effect
    from the inputs to the outputs: fan_in·E[w²] per linear layer, each activation's exact
    second moment under a Gaussian input, normalizations resetting the scale, residual
    branches adding up (README "Signal propagation"). It fires when the prediction leaves
    the `depth-band` (default 100, i.e. 1e-2 to 1e+2 of the first layer's input, or of the
    last layer's gradient) after at least two weighted layers since the last reset (one layer
    alone is a scale, judged by IA201), and names the direction, the layer where it crosses
    and the layers that contribute most. It judges only confident predictions: where a level
    rests on an op the depth model does not model (listed in the JSON depth entry's
    `assumed`), it stays quiet.

    ## Why it matters
    Per-layer checks miss the classic failure: many layers each slightly off. 30 ReLU layers
    with PyTorch's default init (1/6 of the second moment kept per layer) leave 1e-23 of the
    input signal; with N(0, 1) weights the activations overflow. Training then starts from
    dead or saturated units and exploding or vanishing gradients.

    ## Example
    A 12-layer Linear+ReLU MLP of width 64 left at PyTorch's default U(±1/sqrt(fan_in)): no
    layer is mis-scaled on its own, but each keeps 1/6 of the second moment (fan_in · 1/(3
    fan_in) · 1/2), 1/6¹² ≈ 5e-10 through the stack. (When layers are mis-scaled on their own,
    IA201 reports them and this finding is their consequence: README "One root cause, one
    finding".)

    ## Use instead
    `nn.init.kaiming_normal_(w, nonlinearity="relu")` keeps the second moment constant
    through ReLU layers; or add normalization (BatchNorm, LayerNorm) or residual connections.
    """

    code = "IA203"
    name = "depth-signal"
    severity = Severity.WARNING
    summary = "signal explodes or vanishes through the network's depth (model-level)"

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        profile = ctx.depth
        if profile is None or len(profile.layers) < 2:
            return
        band = math.log10(ctx.config.threshold("depth-band"))
        layers = [d for d in profile.layers if d.judged]
        if len(layers) < 2:
            return
        yield from self._direction(
            layers,
            [d.log10_forward for d in layers],
            [d.hops_forward for d in layers],
            # A level read only through normalizations (a pre-norm stream) does not carry
            # its scale forward to any layer: it is not where a forward signal vanishes.
            [not d.normalized_after for d in layers],
            [d.assumed for d in layers],
            band,
            "forward activations",
            "at the input (or the last normalization)",
            ctx.fix(DEEP_RELU),
        )
        back = [d for d in layers if d.judged_backward][::-1]
        if len(back) < 2:
            return
        yield from self._direction(
            back,
            [d.log10_backward for d in back],
            [d.hops_backward for d in back],
            [True] * len(back),
            [d.assumed_backward for d in back],
            band,
            "backward gradients",
            "at the output (or the last normalization)",
            ctx.fix(DEEP_RELU),
        )

    def _direction(
        self,
        layers: Sequence[DepthLayer],
        values: Sequence[float],
        hops: Sequence[int],
        candidate: Sequence[bool],
        assumed: Sequence[tuple[str, ...]],
        band: float,
        what: str,
        reference: str,
        fix: str,
    ) -> Iterator[Finding]:
        # Depth means compounding: a level reached through one layer alone since the last
        # reset (DCGAN's N(0, 0.02) first conv before its BatchNorm) is that layer's scale,
        # which IA201 judges, not the network's depth.
        cross = next(
            (
                k
                for k, (v, h, c) in enumerate(zip(values, hops, candidate, strict=True))
                if c and abs(v) > band and h >= MIN_COMPOUNDING and math.isfinite(v)
            ),
            None,
        )
        if cross is None or any(d.zero for d in layers[: cross + 1]):
            # A zero weight on the way (reported by IA101, or an intentional zero readout or
            # residual branch) stops the signal by construction: not a depth problem.
            return
        if any(assumed[: cross + 1]):
            # A level that rests on an op the model does not model (a scatter, a cumulative
            # sum, a recurrence) is a guess: the JSON depth entry names the ops, and the
            # rule stays quiet rather than warn on a guess.
            return
        sign = 1 if values[cross] > 0 else -1
        # A level of exactly zero (or its infinite inverse) is a zero on the way, not depth:
        # a zero-initialized last conv gates a squeeze-excite branch to nothing (timm's NFNet
        # blocks, skipinit), which IA101 or the user's intent accounts for.
        extreme = max((v for v in values if math.isfinite(v)), key=lambda v: v * sign)
        kind = "explode" if sign > 0 else "vanish"
        # Forward, a layer's own weight is in the step up to its output. Backward (layers in
        # reverse), the gradient at a layer's output has passed the *next* layer's weight, so
        # that step is the next layer's doing: one ×100 layer is named, not its predecessor.
        backward = what.startswith("backward")
        steps = [
            (
                values[k] - (values[k - 1] if k else 0.0),
                layers[k - 1 if backward and k else k].tensor,
            )
            for k in range(len(values))
        ]
        worst = sorted((s for s in steps if s[0] * sign > 0), key=lambda s: -abs(s[0]))[:3]
        top = ", ".join(f"{name} ({factor_log10(step)})" for step, name in worst)
        msg = (
            f"{what} {kind}: the predicted second moment becomes {factor_log10(extreme)} "
            f"than {reference} and leaves the {approx(10**band)}× "
            f"band at {layers[cross].tensor} (layer {cross + 1} of {len(layers)} in this "
            f"direction); largest contributions: {top}"
        )
        # The layers to blame, largest first: the precedence layer (precedence.py) drops this
        # finding when the largest one already has its own root-cause finding.
        finding = self.finding(None, msg, fix=fix)
        yield replace(finding, related=tuple(name for _, name in worst))
