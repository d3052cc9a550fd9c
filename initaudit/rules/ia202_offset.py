from __future__ import annotations

import math
from collections.abc import Iterator

from initaudit.findings import Finding, Severity
from initaudit.fixes import Fix
from initaudit.rules._base import Rule, RuleContext

_FIX = Fix(
    torch="draw symmetrically around zero, e.g. nn.init.uniform_(w, -b, b) instead of "
    "uniform_(w) / torch.rand",
    keras="draw symmetrically around zero, e.g. keras.initializers.RandomUniform(-b, b) instead "
    "of RandomUniform(0, b)",
)

MIN_EFFECT = 0.1  # |mean| / std below this is harmless whatever n says
# Exact structures, not draws: a sinusoidal position table's cosines are positive on average.
# Exact structures and computed tables: centred or not by design.
_CENTRED = frozenset(
    {"identity", "dirac", "orthogonal", "constant", "zeros", "ones", "sinusoidal", "fixed_filter"}
)


class Offset(Rule):
    """Weight's mean is far from zero relative to its own spread.

    ## What it checks
    The mean of a weight against its standard error std/sqrt(n): the rule fires when it is more
    than `offset-z` (default 6) standard errors from zero, which honest sampling noise never
    reaches (p < 1e-8), *and* at least 0.1 std, so a negligible shift in a huge tensor is not
    reported. Identity, dirac, constant inits and sinusoidal position tables are exempt.

    ## Why it matters
    Init schemes are centred: with a positive mean every unit sees a shifted input sum, ReLUs
    saturate on one side and the first updates are spent cancelling the shift. The usual cause
    is a one-sided draw: `torch.rand`, `nn.init.uniform_(w)` (U[0, 1) by default) or JAX's
    `initializers.uniform(scale)`, which is U[0, scale).

    ## Example
    Gemm `fc1.weight` [128, 64] from `nn.init.uniform_(w, 0, 0.2)`: mean 0.1, std 0.058.

    ## Use instead
    A symmetric draw: `nn.init.uniform_(w, -b, b)`, `nn.init.kaiming_uniform_(w)`,
    `nn.init.xavier_uniform_(w)`, or the framework default.
    """

    code = "IA202"
    name = "offset"
    severity = Severity.WARNING
    summary = "mean far from zero"

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        limit = ctx.config.threshold("offset-z")
        for site, st in ctx.judged():
            m = st.moments
            if st.fit.key in _CENTRED or not m.std or m.mean is None or m.n_finite < 2:
                continue
            z = abs(m.mean) / (m.std / math.sqrt(m.n_finite))
            effect = abs(m.mean) / m.std
            if z > limit and effect >= MIN_EFFECT:
                side = "positive" if m.mean > 0 else "negative"
                yield self.finding(
                    site,
                    f"mean {m.mean:.3g} is {effect:.2g} std from zero ({z:.0f} standard "
                    f"errors; values range {m.min:.3g} to {m.max:.3g}): a {side} one-sided or "
                    "shifted draw",
                    fix=ctx.fix(_FIX),
                )
