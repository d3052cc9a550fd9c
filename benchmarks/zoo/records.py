"""Records the sweep passes between its processes: plain, frozen, JSON-round-trippable."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Source(StrEnum):
    TIMM = "timm"
    HF = "hf"


class Status(StrEnum):
    OK = "ok"
    SKIPPED = "skipped"  # not attempted by design (over the parameter cap, no input we can make)
    FAILED = "failed"  # the framework or the tool raised: the reason says what
    TIMEOUT = "timeout"
    CRASHED = "crashed"  # the process died (signal, out of memory) or printed no result


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One model to sweep: ``group`` is the timm module or the HF model type."""

    source: str
    name: str
    group: str
    parameters: int | None = None
    input_shape: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(**{**data, "input_shape": tuple(data.get("input_shape", ()))})

    @property
    def key(self) -> str:
        """A file-system-safe name, unique within a source."""
        return "".join(c if c.isalnum() or c in "._-" else "_" for c in self.name)
