from __future__ import annotations

from collections.abc import Iterator

from initaudit.findings import Finding, Severity
from initaudit.rules._base import TRAINED_MIN_SIZE, Rule, RuleContext

MIN_SIZE = 256  # below this a KS test cannot tell families apart reliably


class UnfitDistribution(Rule):
    """Values fit no known init distribution.

    ## What it checks
    A weight whose values fit none of the init families (uniform, normal, truncated normal,
    orthogonal, identity, constant) at any scale, by a Kolmogorov–Smirnov test on a
    deterministic subsample: heavy tails, several modes, or a mixture. When most sizeable
    weights of a model look like that, the model was trained (or fine-tuned), not freshly
    initialized: this is said once for the model and per-tensor scheme findings are skipped.

    ## Why it matters
    initaudit judges initializations. A tensor that is not one was loaded from a checkpoint,
    corrupted, or built by custom code worth a second look; its scale verdicts would be
    meaningless.

    ## Example
    Gemm `fc2.weight` [128, 128] whose values are a mixture of N(0, 0.01) and N(0, 1), or
    Laplace-distributed like trained weights.

    ## Use instead
    Run initaudit on the model right after construction, before loading a checkpoint or
    training; if the custom init is intended, ignore IA302 for that tensor.
    """

    code = "IA302"
    name = "unfit-distribution"
    severity = Severity.INFO
    summary = "values fit no known init distribution"

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        if ctx.looks_trained:
            unfit = [
                s
                for s, st in ctx.weights()
                if st.moments.size >= TRAINED_MIN_SIZE and not st.fit.fits_family
            ]
            yield self.finding(
                None,
                f"{len(unfit)} of the model's sizeable weights fit no init distribution: the "
                "model looks trained rather than freshly initialized, so per-tensor scheme "
                "checks (IA2xx, IA3xx, IA401) are skipped",
                fix="audit the model right after construction, before training or loading a "
                "checkpoint",
            )
            return
        for site, st in ctx.judged():
            m = st.moments
            if st.fit.fits_family or m.size < MIN_SIZE or m.n_huge or m.n_tiny:
                continue
            yield self.finding(
                site,
                f"values fit no init distribution (best family {st.fit.family}, KS D="
                f"{st.fit.statistic:.3g}; mean {m.mean:.3g}, std {m.std:.3g}, range "
                f"{m.min:.3g} to {m.max:.3g}): trained, mixed or corrupted values?",
                fix="re-initialize with a standard scheme, or ignore IA302 here if the custom "
                "init is intended",
            )
