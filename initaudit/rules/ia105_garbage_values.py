from __future__ import annotations

from collections.abc import Iterator

from initaudit.findings import Finding, Severity
from initaudit.fixes import Fix
from initaudit.graph.model import Role
from initaudit.rules._base import Rule, RuleContext
from initaudit.stats.moments import HUGE, TINY, TensorStats

# Computed tables (aranges, frequencies) stay far below this; random bit patterns reach it
# for about one value in ten.
BEYOND_TABLES = 1e30

_FIX = Fix(
    torch="initialize this tensor explicitly (it was probably allocated with torch.empty / "
    "np.empty and never filled)",
    keras="initialize this weight explicitly (it was probably created with an initializer "
    "that does not fill it, or assigned from uninitialized memory)",
)


class GarbageValues(Rule):
    """Tensor holds magnitudes no initializer produces: the mark of uninitialized memory.

    ## What it checks
    Every float tensor, whatever its role (weight, bias, norm scale, scalar gate, table). A
    parameter fails with a finite value of magnitude above 1e4, or a non-zero value below 1e-30
    (a subnormal): no init scheme in use produces either (N(0, 1) on a fan of 1 with a gain of
    2 stays far below 1e4, and a random draw lands below 1e-30 with probability ~1e-30). A
    buffer that is no parameter (role `other`: masks, rotary or position tables) may hold one
    large constant, as attention masks hold -1e9 or float32's lowest value; it fails with a
    subnormal, or with huge magnitudes beyond 1e30 that are not all one constant.

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
        for site, st in ctx.measured():
            m = st.moments
            if not (m.n_huge or m.n_tiny):
                continue
            if site.role == Role.OTHER and not m.n_tiny and not _not_a_mask(m):
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


def _not_a_mask(m: TensorStats) -> bool:
    """Huge magnitudes a buffer cannot explain: beyond any computed table, and not one fill
    constant (a mask's -1e9 or finfo.min is a single magnitude)."""
    absmax = m.absmax or 0.0
    return absmax > BEYOND_TABLES and m.huge_min is not None and m.huge_min < absmax
