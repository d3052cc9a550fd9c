"""What every rule is: a code, a name, a default severity, a docstring that ``--explain`` prints,
and a ``check`` that reads measured sites and yields findings. Rules never see protobuf or
arrays: only :class:`WeightSite` (graph facts) and :class:`SiteStats` (measurements).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

from initaudit.config import DEFAULT, Config
from initaudit.findings import Finding, Severity
from initaudit.fixes import BOTH, Fix, Framework, scheme_fix
from initaudit.graph.model import MATRIX_ROLES, End, Kind, Role, WeightSite
from initaudit.signal.model import DepthProfile
from initaudit.stats.measure import SiteStats
from initaudit.stats.model import Family, Scheme
from initaudit.stats.recommend import recommended

HOUSE_MIN = 2  # matched weights that must agree on a fixed std before a fix names it

TRAINED_MIN_SIZE = 1024
GATE_BIAS_SHARE = 0.1  # of a near-identity gate: its weight's output against its bias


@dataclass(frozen=True, kw_only=True)
class RuleContext:
    sites: Sequence[WeightSite]
    stats: Mapping[str, SiteStats]
    config: Config = DEFAULT
    depth: DepthProfile | None = None
    # The frameworks fixes are written for (from the model's producer_name; both if unknown).
    frameworks: tuple[Framework, ...] = BOTH

    def fix(self, fix: Fix) -> str:
        """A suggestion in the words of the framework the model came from."""
        return fix.text(self.frameworks)

    def scheme_fix(self, site: WeightSite, scheme: Scheme) -> str:
        return scheme_fix(scheme, site).text(self.frameworks)

    def recommended(self, site: WeightSite) -> Scheme | None:
        """The scheme a fix should name: the fixed one every identified weight of the model
        uses (HF's N(0, 0.02)), so the fix matches the model's own convention; else the
        textbook scheme for the layer's activation (kaiming before ReLU, xavier otherwise)."""
        textbook = recommended(site)
        if textbook is None or self.house_scheme is None:
            return textbook
        return self.house_scheme

    @cached_property
    def house_scheme(self) -> Scheme | None:
        """The fixed scheme (a chosen std, not a fan rule) that all of at least HOUSE_MIN
        identified weights match, if they agree on one."""
        used = [st.fit.closest for _, st in self.weights() if st.fit.matched and st.fit.closest]
        if len(used) < HOUSE_MIN or len({s.label for s in used}) != 1 or not used[0].fixed:
            return None
        return used[0]

    def measured(self) -> Iterator[tuple[WeightSite, SiteStats]]:
        for site in self.sites:
            st = self.stats.get(site.name)
            if st is not None:
                yield site, st

    def weights(self) -> Iterator[tuple[WeightSite, SiteStats]]:
        """Sites whose values come from an init scheme: matrices and embeddings."""
        for site, st in self.measured():
            if site.role in MATRIX_ROLES:
                yield site, st

    def parameters(self) -> Iterator[tuple[WeightSite, SiteStats]]:
        """Every trainable-looking tensor: weights, biases, norm affines, scales."""
        for site, st in self.measured():
            if site.role != Role.OTHER:
                yield site, st

    def judged(self) -> Iterator[tuple[WeightSite, SiteStats]]:
        """Weights the statistical rules judge: measured, identified, not a tied copy, and
        only when the model as a whole looks freshly initialized (see :func:`looks_trained`)."""
        if self.looks_trained:
            return
        for site, st in self.weights():
            m = st.moments
            # Garbage (IA105) and non-finite (IA103) values already have their finding;
            # moments dominated by them say nothing about a scheme.
            if m.n_huge or m.n_tiny or m.n_nonfinite:
                continue
            if st.tied_to is None and st.fit.scheme is not None:
                yield site, st

    @cached_property
    def identity_gates(self) -> frozenset[str]:
        """Gates drawn near zero beside a constant bias, and those biases: such a layer starts
        as the constant. timm's gMLP does it on purpose (``SpatialGatingUnit.init_weights``,
        mlp_mixer.py:211-213: ``normal_(self.proj.weight, std=1e-6); ones_(self.proj.bias)``),
        the near-identity sibling of a zero-initialized gate (IA101 info): the weight's std
        says how little the gate moves at init, not a scale the signal compounds. For unit
        inputs the weight adds at most GATE_BIAS_SHARE of the bias."""
        names: set[str] = set()
        for site, st in self.weights():
            act = site.activation
            if act is None or act.kind != Kind.LINEAR or act.end != End.GATE or not site.fan_in:
                continue
            bias = self.stats.get(site.bias) if site.bias else None
            if bias is None or bias.moments.std != 0.0 or not bias.moments.mean:
                continue
            share = (st.moments.std or 0.0) * math.sqrt(site.fan_in)
            if share <= GATE_BIAS_SHARE * abs(bias.moments.mean):
                names.update((site.name, site.bias or ""))
        return frozenset(names)

    @cached_property
    def looks_trained(self) -> bool:
        """Most sizeable weights fit no init distribution: judging them one by one against
        init schemes would flood the report, so IA302 says it once for the model."""
        sizeable = [
            st
            for _, st in self.weights()
            if st.moments.size >= TRAINED_MIN_SIZE
            and st.fit.scheme is not None
            and st.fit.family != Family.CONSTANT
        ]
        if len(sizeable) < 2:
            return False
        unfit = sum(1 for st in sizeable if not st.fit.fits_family)
        return unfit > 0.5 * len(sizeable)


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    summary: ClassVar[str]

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        raise NotImplementedError

    def finding(
        self,
        site: WeightSite | None,
        message: str,
        fix: str | None = None,
        severity: Severity | None = None,
    ) -> Finding:
        return Finding(
            rule=self.code,
            severity=severity or self.severity,
            tensor=site.name if site else None,
            node=(site.node or None) if site else None,
            message=message,
            op_type=(site.op_type or None) if site else None,
            fix=fix,
        )

    @classmethod
    def explanation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")
