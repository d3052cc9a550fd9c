from __future__ import annotations

import math
from collections.abc import Iterator

from initaudit.findings import Finding, Severity
from initaudit.fixes import Fix
from initaudit.graph.model import Role
from initaudit.rules._base import Rule, RuleContext
from initaudit.stats.moments import TensorStats

_WHAT = {
    Role.BIAS: "bias is not zero or a framework default",
    Role.NORM_SCALE: "norm scale is not one",
    Role.NORM_SHIFT: "norm shift is not zero",
}
_FIX = {
    Role.BIAS: Fix(
        torch="nn.init.zeros_(b) (or keep the framework default)",
        keras='bias_initializer="zeros" (the default)',
    ),
    Role.NORM_SCALE: Fix(torch="nn.init.ones_(norm.weight)", keras='gamma_initializer="ones"'),
    Role.NORM_SHIFT: Fix(torch="nn.init.zeros_(norm.bias)", keras='beta_initializer="zeros"'),
}


class AffineNotDefault(Rule):
    """Bias, norm scale or norm shift set to something frameworks do not use.

    ## What it checks
    Biases that are neither zero, PyTorch's default U(±1/sqrt(fan_in)) (U(±1/sqrt(hidden)) for
    RNNs), Keras' LSTM forget-gate ones, a near-zero N(0, 1e-6) nor a -log(num_classes) head
    prior; normalization scales other than one and shifts other than zero. A zero norm scale
    is reported with the patterns that use it on purpose (Gemma's (1 + w) RMSNorm,
    zero_init_residual).

    ## Why it matters
    A large random bias shifts every unit's operating point (dead ReLUs, saturated gates); a
    norm scale other than one rescales the whole residual stream.

    ## Example
    Gemm `fc1.bias` [128] drawn N(0, 1).

    ## Use instead
    `nn.init.zeros_(layer.bias)`; `nn.init.ones_(norm.weight)` and `nn.init.zeros_(norm.bias)`.
    """

    code = "IA401"
    name = "affine-not-default"
    severity = Severity.INFO
    summary = "bias not zero / norm scale not one / norm shift not zero"

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        if ctx.looks_trained:
            return
        for site, st in ctx.parameters():
            v = st.vector
            if v is None or v.expected:
                continue
            msg = f"{_WHAT[site.role]}: {v.scheme}"
            severity = None
            if site.role == Role.NORM_SCALE and v.scheme == "zeros":
                msg += (
                    "; this matches Gemma-style (1 + w) RMSNorm or a zero_init_residual "
                    "BatchNorm gamma, which is intentional there"
                )
            elif site.name in ctx.identity_gates:
                yield self.finding(
                    site,
                    f"{msg}; this is the constant a near-identity gate starts at (its weight is "
                    "drawn near zero: timm gMLP's spatial gate), which is intentional there",
                    fix="if intended, ignore IA401 for this tensor",
                )
                continue
            elif site.role == Role.NORM_SCALE and _random_near_zero(st.moments):
                rms = _rms(st.moments)
                msg = (
                    f"norm scale drawn at random near zero ({v.scheme}, root mean square "
                    f"{rms:.2g}): it multiplies this normalization's output by ~{rms:.2g}, "
                    "silencing the block it sits in (was it initialized like a weight?)"
                )
                severity = Severity.WARNING
            yield self.finding(site, msg, fix=ctx.fix(_FIX[site.role]), severity=severity)


NEAR_ZERO = 0.1  # a norm scale's root mean square below this silences its block


def _rms(m: TensorStats) -> float:
    return math.sqrt((m.mean or 0.0) ** 2 + (m.std or 0.0) ** 2)


def _random_near_zero(m: TensorStats) -> bool:
    return m.min != m.max and _rms(m) < NEAR_ZERO
