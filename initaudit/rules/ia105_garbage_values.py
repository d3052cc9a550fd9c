from __future__ import annotations

from collections.abc import Iterator

from initaudit.findings import Finding, Severity
from initaudit.fixes import Fix
from initaudit.rules._base import Rule, RuleContext
from initaudit.stats.moments import HUGE, TINY

_FIX = Fix(
    torch="initialize this tensor explicitly (it was probably allocated with torch.empty / "
    "np.empty and never filled)",
    keras="initialize this weight explicitly (it was probably created with an initializer "
    "that does not fill it, or assigned from uninitialized memory)",
)


class GarbageValues(Rule):
    """Parameter holds magnitudes no initializer produces: the mark of uninitialized memory.

    ## What it checks
    Any parameter with a finite value of magnitude above 1e4, or a non-zero value below 1e-30
    (a subnormal). No init scheme in use produces either: N(0, 1) on a fan of 1 with a gain of
    2 stays far below 1e4, and a random draw lands below 1e-30 with probability ~1e-30.

    ## Why it matters
    `torch.empty` and `np.empty` return whatever was in memory: huge values, subnormals and
    zeros mixed. A layer built that way and never initialized trains, if at all, from garbage.

    ## Example
    Gemm `fc2.weight` [128, 128] holding values like 3.1e+20 and 1e-41 next to ordinary ones.

    ## Use instead
    Initialize the tensor explicitly after allocating it (`nn.init.kaiming_uniform_(w)`), or
    allocate with `torch.zeros`/`torch.randn`, never `torch.empty`, for parameters.
    """

    code = "IA105"
    name = "garbage-values"
    severity = Severity.ERROR
    summary = "values no initializer produces (uninitialized memory)"

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        for site, st in ctx.parameters():
            m = st.moments
            if not (m.n_huge or m.n_tiny):
                continue
            parts = []
            if m.n_huge:
                parts.append(f"{m.n_huge} with |w| > {HUGE:g} (max |w| = {m.absmax:.3g})")
            if m.n_tiny:
                parts.append(f"{m.n_tiny} non-zero with |w| < {TINY:g}")
            yield self.finding(
                site,
                f"{' and '.join(parts)} of {m.size} values: looks like uninitialized memory",
                fix=ctx.fix(_FIX),
            )
