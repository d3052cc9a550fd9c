from __future__ import annotations

from collections.abc import Iterator

from initaudit.findings import Finding, Severity
from initaudit.graph.model import Role
from initaudit.rules._base import Rule, RuleContext


class NonFiniteValues(Rule):
    """Tensor holds NaN or infinite values.

    ## What it checks
    Any parameter (weight, bias, normalization parameter, scale) containing NaN, +Inf or -Inf.
    Constant buffers that are not parameters (an attention mask of -inf) are only checked for
    NaN.

    ## Why it matters
    One NaN propagates to every activation downstream and to every gradient upstream: the first
    training step turns the whole model into NaN.

    ## Example
    Gemm `fc2.weight` [128, 128] with `w[3, 5] = nan` and `w[7, 1] = inf`.

    ## Use instead
    Re-run the init and check for a division by zero or log of zero in custom init code
    (e.g. std = gain / sqrt(fan) with fan = 0); `torch.isfinite(w).all()` before export.
    """

    code = "IA103"
    name = "non-finite-values"
    severity = Severity.ERROR
    summary = "weight holds NaN or Inf"

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        for site, st in ctx.measured():
            m = st.moments
            bad = m.n_nan if site.role == Role.OTHER else m.n_nonfinite
            if bad == 0:
                continue
            parts = [
                f"{n} {label}"
                for n, label in ((m.n_nan, "NaN"), (m.n_posinf, "+Inf"), (m.n_neginf, "-Inf"))
                if n
            ]
            idx = ", ".join(str(i) for i in m.first_nonfinite or ())
            yield self.finding(
                site,
                f"{bad} of {m.size} values are not finite ({', '.join(parts)}); "
                f"first at index [{idx}]",
                fix="re-initialize this tensor; check custom init code for 0/0, log(0) or overflow",
            )
