from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator

from initaudit.findings import Finding, Severity
from initaudit.fixes import Fix
from initaudit.graph.facts import site_template
from initaudit.graph.model import WeightSite
from initaudit.numfmt import than
from initaudit.rules._base import Rule, RuleContext
from initaudit.stats.measure import SiteStats
from initaudit.stats.model import RANDOM_FAMILIES, Family

_FIX = Fix(
    torch="initialize all repeated blocks the same way (e.g. model.apply(init_fn) after building "
    "the whole model)",
    keras="initialize all repeated blocks the same way (the same kernel_initializer in each)",
)

_STREAM_FIX = Fix(
    torch="initialize every embedding summed into the input the same way (e.g. "
    "nn.init.normal_(emb.weight, std=0.02) for each; nn.Embedding alone draws N(0, 1))",
    keras="give every embedding summed into the input the same embeddings_initializer",
)

MIN_GROUP = 3
STREAM_SPREAD = 10.0  # tables of one stream this far apart (by stored std) are not one recipe
SPREAD = 1.25  # a sibling this far from the group's median std is an outlier
MAX_OUTLIER_SHARE = 1 / 3


class SiblingOutlier(Rule):
    """One of a set of repeated layers was initialized differently from the others.

    ## What it checks
    Repeated blocks should share a scheme and scale. Siblings are weights whose names differ
    only in a layer index (`layers.7.mlp.fc1.weight` among `layers.*.mlp.fc1.weight`) with the
    same shape, or, where the exporter dropped names, weights of the same op, shape, role and
    position (activation, residual end). In a group of at least three, a member whose std is
    more than 1.25× from the group's median (and beyond its sampling error), or whose
    distribution family differs from the majority's, is reported when at most a third of the
    group disagrees. A member matched to a scheme tied to its position (T5's query scale,
    GPT-2's residual projections) is not compared: it differs on purpose. Embedding tables
    whose rows are summed into one input stream (word, position and token-type embeddings)
    are siblings too, whatever their names: one whose std is more than 10× the others' is
    reported (frameworks draw positions at up to half the words' std on purpose).

    ## Why it matters
    One outlier among identical blocks is the signature of a copy-paste or skipped-init bug
    (a loop that re-initializes `layers[:-1]`, a block built after the init call), even when
    its scale is plausible on its own.

    ## Example
    Six `layers.*.mlp.fc1.weight` drawn N(0, 0.02) and `layers.3.mlp.fc1.weight` left at
    PyTorch's default U(±1/sqrt(512)) (std 0.0255 and uniform).

    ## Use instead
    Initialize every block the same way, e.g. `model.apply(init_fn)` after the whole model is
    built.
    """

    code = "IA204"
    name = "sibling-outlier"
    severity = Severity.WARNING
    summary = "inconsistent with sibling layers"

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        groups: dict[tuple[object, ...], list[tuple[WeightSite, SiteStats]]] = defaultdict(list)
        for site, st in ctx.judged():
            if st.fit.family in (Family.CONSTANT, Family.FIXED) or not st.moments.std:
                continue
            groups[_key(site)].append((site, st))
        for key, members in groups.items():
            if len(members) >= MIN_GROUP:
                yield from self._outliers(ctx, key, members)
        yield from self._stream_outliers(ctx)

    def _stream_outliers(self, ctx: RuleContext) -> Iterator[Finding]:
        """Tables whose rows are summed into one input stream (word, position and token-type
        embeddings) are siblings whatever their names: one drawn far larger drowns the others'
        rows in the sum. Compared by their stored std, as frameworks draw them: CLIP and GPT-2
        draw positions at half the words' std (0.01 vs 0.02), PLBart multiplies its words by
        √d before the sum on purpose; a table left at nn.Embedding's N(0, 1) beside 0.02 ones
        is 50x off. Sinusoidal and constant tables are no draws and are not compared."""
        if ctx.looks_trained:
            return
        streams: dict[str, list[tuple[WeightSite, float]]] = defaultdict(list)
        for site, st in ctx.measured():
            m = st.moments
            garbage = m.n_huge or m.n_tiny or m.n_nonfinite  # IA103/IA105 report those
            if site.stream and m.std and st.fit.family in RANDOM_FAMILIES and not garbage:
                streams[site.stream].append((site, m.std))
        for members in streams.values():
            if len(members) < 2:
                continue
            stds = [std for _, std in members]
            ref = _median(stds) if len(members) >= MIN_GROUP else min(stds)
            for site, std in members:
                if std > STREAM_SPREAD * ref or std * STREAM_SPREAD < ref:
                    others = ", ".join(
                        f"{o.name} ({ostd:.3g})" for o, ostd in members if o.name != site.name
                    )
                    effect = (
                        "its rows drown theirs in the sum"
                        if std > ref
                        else "their rows drown its own in the sum"
                    )
                    yield self.finding(
                        site,
                        f"std {std:.3g} is {than(std / ref)} the tables summed with it into "
                        f"one input stream ({others}): {effect}",
                        fix=ctx.fix(_STREAM_FIX),
                    )

    def _outliers(
        self,
        ctx: RuleContext,
        key: tuple[object, ...],
        members: list[tuple[WeightSite, SiteStats]],
    ) -> Iterator[Finding]:
        # A member matched to a scheme tied to its position (T5's query scale among the
        # k/v projections an exporter left unnamed) differs from its siblings by design.
        members = [(site, st) for site, st in members if not _placed(st)]
        if len(members) < MIN_GROUP:
            return
        stds = [st.moments.std or 0.0 for _, st in members]
        median = _median(stds)
        families = [_bell(st.fit.family) for _, st in members]
        common = max(set(families), key=families.count)
        odd = []
        for (site, st), std in zip(members, stds, strict=True):
            se = std / math.sqrt(2 * max(st.moments.n_finite, 1))
            off_scale = (
                abs(math.log(std / median)) > math.log(SPREAD) and abs(std - median) > 5 * se
            )
            off_family = (
                _bell(st.fit.family) != common
                and st.fit.fits_family
                and st.fit.family in RANDOM_FAMILIES
            )
            if off_scale or off_family:
                odd.append((site, st, std, off_scale))
        if not odd or len(odd) > MAX_OUTLIER_SHARE * len(members):
            return
        label = key[1] if key[0] == "name" else f"{len(members)} {key[2]} [{key[1]}] weights"
        for site, st, std, off_scale in odd:
            what = (
                f"std {std:.3g} is {than(std / median)} the siblings' median {median:.3g}"
                if off_scale
                else (f"drawn from a {st.fit.family} distribution where its siblings are {common}")
            )
            yield self.finding(
                site,
                f"{what}; siblings: {label} ({len(members)} tensors)",
                fix=ctx.fix(_FIX),
            )


def _bell(family: Family | None) -> Family | None:
    """Normal and truncated normal count as one family among siblings: frameworks draw one
    recipe both ways (timm's trunc_normal_ with absolute bounds is a normal in effect at small
    std), and a small tensor's tails cannot tell them apart (a 128-value attention conv)."""
    return Family.NORMAL if family == Family.TRUNC_NORMAL else family


def _placed(st: SiteStats) -> bool:
    fit = st.fit
    return fit.matched and fit.closest is not None and fit.closest.context


def _key(site: WeightSite) -> tuple[object, ...]:
    template = site_template(site)
    if template is not None:
        return ("name", template, site.shape, site.role)
    act = site.activation
    return (
        "shape",
        "x".join(map(str, site.shape)),
        site.op_type,
        site.role,
        act.label if act else None,
        act.end if act else None,
        bool(act and act.normalized),
    )


def _median(values: list[float]) -> float:
    """``statistics.median``, computed as it does (the middle value, or the mean of the two
    middle ones), without importing statistics: it brings fractions and decimal, which cost
    every run more than this rule."""
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
