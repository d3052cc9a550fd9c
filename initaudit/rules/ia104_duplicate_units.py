from __future__ import annotations

from collections.abc import Iterator

from initaudit.findings import Finding, Severity
from initaudit.rules._base import Rule, RuleContext


class DuplicateUnits(Rule):
    """Several output units of a layer have identical weights.

    ## What it checks
    Output units are compared where they really see the same input: rows of a Gemm weight
    with transB=1, columns of a MatMul weight (K, N), output filters of a Conv within one group,
    hidden units of an LSTM/GRU/RNN across all gates, per expert or head for batched weights.
    Units that are entirely zero are left out (identity and dirac inits leave those by design),
    and a coincidence is ruled out: duplicates are reported only when rows are long enough that
    equal random rows are practically impossible for the tensor's value grid (fp16, bf16, int8).

    ## Why it matters
    Identical units compute identical outputs and, when what follows treats them alike, receive
    identical gradients: they never diverge, and the layer is narrower than it looks. Exact
    copies are the signature of a broadcast bug (`w[:] = row`, `repeat`, `expand`).

    ## Example
    Gemm `fc2.weight` [128, 128] where `fc2.weight[1:8] = fc2.weight[0]`: units 0..7 equal.

    ## Use instead
    Draw every unit independently: `nn.init.kaiming_uniform_(w, a=math.sqrt(5))` (PyTorch's
    default) or `nn.init.xavier_uniform_(w)` on the whole tensor.
    """

    code = "IA104"
    name = "duplicate-units"
    severity = Severity.ERROR
    summary = "identical output units stay symmetric"

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        for site, st in ctx.weights():
            dup = st.duplicates
            if dup is None or not dup.groups:
                continue
            fix = "initialize every output unit independently (no broadcast/repeat of one row)"
            if len(dup.groups) == 1 and len(dup.groups[0]) == dup.n_units:
                yield self.finding(site, f"all {dup.n_units} output units are identical", fix=fix)
                continue
            shown = "; ".join(_fmt(g) for g in dup.groups[:3])
            more = f" and {len(dup.groups) - 3} more groups" if len(dup.groups) > 3 else ""
            axis = site.units.axis if site.units else 0
            yield self.finding(
                site,
                f"{dup.n_duplicated} of {dup.n_units} output units are exact copies of another "
                f"(indices along axis {axis}: {shown}{more})",
                fix=fix,
            )


def _fmt(group: tuple[int, ...]) -> str:
    if len(group) > 6:
        return ", ".join(str(i) for i in group[:5]) + f", ... ({len(group)} units)"
    return ", ".join(str(i) for i in group)
