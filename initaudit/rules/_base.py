"""What every rule is: a code, a name, a default severity, a docstring that ``--explain`` prints,
and a ``check`` that reads measured sites and yields findings. Rules never see protobuf or
arrays: only :class:`WeightSite` (graph facts) and :class:`SiteStats` (measurements).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from initaudit.config import DEFAULT, Config
from initaudit.graph.layout import MATRIX_ROLES, OTHER
from initaudit.graph.sites import WeightSite
from initaudit.report.model import Finding, Severity
from initaudit.stats import SiteStats


@dataclass(frozen=True)
class RuleContext:
    sites: Sequence[WeightSite]
    stats: Mapping[str, SiteStats]
    config: Config = DEFAULT

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
            if site.role != OTHER:
                yield site, st


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


def where(site: WeightSite) -> str:
    """'Gemm fc1.weight [256, 512]'-style context for messages."""
    shape = "x".join(str(d) for d in site.shape) or "scalar"
    return f"{site.role} [{shape}]"
