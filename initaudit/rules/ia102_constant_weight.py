from __future__ import annotations

from collections.abc import Iterator

from initaudit.findings import Finding, Severity
from initaudit.fixes import FAN_AWARE
from initaudit.rules._base import Rule, RuleContext


class ConstantWeight(Rule):
    """Weight tensor holds one non-zero value everywhere.

    ## What it checks
    A weight matrix, kernel, recurrent matrix or embedding table with more than one element in
    which every element equals the same non-zero number. Biases and normalization parameters
    are exempt: constant vectors (ones, 0.25 for PReLU, 1e-6 layer scale) are normal there.

    ## Why it matters
    Like an all-zero weight, a constant one makes every output unit identical: they receive the
    same gradient and never break symmetry.

    ## Example
    Gemm `fc2.weight` [128, 128] after `nn.init.constant_(fc2.weight, 0.05)`.

    ## Use instead
    Random init with a fan-aware scale: `nn.init.kaiming_uniform_(w, nonlinearity="relu")`,
    `nn.init.xavier_uniform_(w)`, or the framework default.
    """

    code = "IA102"
    name = "constant-weight"
    severity = Severity.ERROR
    summary = "weight is constant (one non-zero value everywhere)"

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        for site, st in ctx.weights():
            m = st.moments
            if m.size > 1 and m.n_nonfinite == 0 and m.min == m.max and m.min != 0:
                yield self.finding(
                    site,
                    f"all {m.size} values of this {site.role} equal {m.min:.6g}",
                    fix=ctx.fix(FAN_AWARE),
                )
