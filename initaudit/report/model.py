"""The records every renderer reads. Renderers format these; they never compute anything."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    """Ordered so ``--fail-on warning`` means "warning or worse"."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.upper()]


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    tensor: str | None  # None for model-level findings
    node: str | None
    message: str
    op_type: str | None = None
    fix: str | None = None

    def sort_key(self) -> tuple[int, str, str, str]:
        # Model-level findings first, then by tensor name and rule code: stable byte for byte.
        return (0 if self.tensor is None else 1, self.tensor or "", self.rule, self.message)


@dataclass(frozen=True)
class TensorReport:
    name: str
    node: str | None
    op_type: str | None
    role: str
    shape: tuple[int, ...]
    dtype: str
    fan_in: int | None
    fan_out: int | None
    activation: str | None
    normalized: bool
    scheme: str | None
    mean: float | None
    std: float | None
    expected_std: float | None
    ratio: float | None
    min: float | None
    max: float | None
    uses: tuple[str, ...] = ()
    quantized: bool = False


@dataclass(frozen=True)
class FileError:
    code: str
    message: str


@dataclass(frozen=True)
class FileResult:
    path: str
    error: FileError | None = None
    tensors: tuple[TensorReport, ...] = ()
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class Summary:
    files: int
    errors: int
    warnings: int
    infos: int
    file_errors: int


@dataclass(frozen=True)
class Report:
    files: tuple[FileResult, ...]
    version: str
    fail_on: Severity | None = field(default=Severity.ERROR)

    @property
    def summary(self) -> Summary:
        counts = {s: 0 for s in Severity}
        for f in self.files:
            for finding in f.findings:
                counts[finding.severity] += 1
        return Summary(
            files=len(self.files),
            errors=counts[Severity.ERROR],
            warnings=counts[Severity.WARNING],
            infos=counts[Severity.INFO],
            file_errors=sum(1 for f in self.files if f.error is not None),
        )

    def exit_code(self) -> int:
        """2 if any file could not be audited, else 1 if a finding reaches fail_on, else 0."""
        if any(f.error is not None for f in self.files):
            return 2
        if self.fail_on is None:
            return 0
        threshold = self.fail_on
        hit = any(x.severity >= threshold for f in self.files for x in f.findings)
        return 1 if hit else 0
