"""Settings that shape an audit: rule selection, fail level, thresholds, per-tensor overrides.

Discovery and validation of ``[tool.initaudit]`` live here too (see README "Configuration").
The pipeline only reads the frozen :class:`Config`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Override:
    """Settings for tensors whose name (or consuming node's name) matches a glob."""

    tensors: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()  # rule codes or prefixes
    allow_zeros: bool = False
    scheme: str | None = None  # expected scheme, e.g. "normal(std=0.02)"

    def matches(self, tensor: str | None, node: str | None) -> bool:
        if tensor is not None and any(fnmatch.fnmatchcase(tensor, g) for g in self.tensors):
            return True
        return node is not None and any(fnmatch.fnmatchcase(node, g) for g in self.nodes)


@dataclass(frozen=True)
class Config:
    select: tuple[str, ...] = ("IA",)
    ignore: tuple[str, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)
    overrides: tuple[Override, ...] = ()

    def threshold(self, key: str, default: float) -> float:
        return float(self.thresholds.get(key, default))

    def overrides_for(self, tensor: str | None, node: str | None) -> tuple[Override, ...]:
        return tuple(o for o in self.overrides if o.matches(tensor, node))


DEFAULT = Config()
