"""The records every renderer reads. Renderers format these; they never compute anything.

They are also the Python API's results (``initaudit.audit`` returns a :class:`Report`), so
every field is documented and every record is frozen.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING

from initaudit.findings import Finding, Severity

if TYPE_CHECKING:  # a record of the stats stage, carried as is; only --html reads it
    from initaudit.stats.histogram import Histogram


@dataclass(frozen=True, kw_only=True)
class TensorReport:
    """What initaudit inferred and measured about one tensor (README "JSON output" has each
    field). ``mean``/``std``/``min``/``max`` are over finite values, after dequantization.
    ``source``: the framework tensor it came from, as for :class:`Finding`."""

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
    # The values' histogram beside the expected density, when asked for (``--html``); not in
    # the JSON output, which it would bloat.
    histogram: Histogram | None = field(default=None, repr=False)
    source: str | None = None


@dataclass(frozen=True)
class ErrorEntry:
    """Why a file could not be audited: a stable ``code`` (README "Error codes") and a message."""

    code: str
    message: str


# --propagate: a measurement this many times off the prediction gets a footnote (README
# "Signal propagation" lists what the prediction does not model).
DISAGREE = 3.0


@dataclass(frozen=True, kw_only=True)
class DepthEntry:
    """One weighted layer on the path from inputs to outputs (README "Signal propagation").

    ``log10_forward``: predicted second moment of the layer's output relative to the first
    layer's input; ``log10_backward``: predicted gradient second moment at the layer's output
    relative to the last layer's; ``log10_output``: the layer's own output, absolute (inputs
    N(0, 1)); ``measured_log10_output``: that output measured by running the model on random
    inputs (``--propagate``), else None.
    """

    tensor: str
    node: str
    op_type: str
    log10_forward: float
    log10_backward: float
    measured_log10_output: float | None = None
    log10_output: float | None = None  # predicted second moment of the layer's own output
    judged: bool = True  # on the path IA203 judges (the residual stream, or every layer)
    judged_backward: bool = True  # judged backward too (on a stream: the stream's layers)
    assumed: tuple[str, ...] = ()  # ops assumed scale-neutral on the way since the last reset
    assumed_backward: tuple[str, ...] = ()  # ops whose gradient was assumed, output to here
    batch_norm: bool = False  # a BatchNorm acts here: graph (running stats) ≠ training

    @property
    def measured_factor(self) -> float | None:
        """Measured / predicted E[x²] of the output (``--propagate``); None without both."""
        if self.measured_log10_output is None or self.log10_output is None:
            return None
        if not (math.isfinite(self.measured_log10_output) and math.isfinite(self.log10_output)):
            return None
        return float(10.0 ** (self.measured_log10_output - self.log10_output))

    @property
    def disagrees(self) -> bool:
        """Prediction and measurement differ by more than :data:`DISAGREE`."""
        f = self.measured_factor
        return f is not None and not 1 / DISAGREE <= f <= DISAGREE


@dataclass(frozen=True)
class FileResult:
    """One model: either ``error`` is set, or ``tensors`` and (sorted) ``findings`` are.

    ``exporter`` says what made the ONNX model from a live framework model
    (``torch.onnx dynamo``, ``tf2onnx 1.17.0``); None for a file.
    """

    path: str
    error: ErrorEntry | None = None
    _: KW_ONLY
    tensors: tuple[TensorReport, ...] = ()
    findings: tuple[Finding, ...] = ()
    depth: tuple[DepthEntry, ...] = ()
    depth_assumptions: tuple[str, ...] = ()  # op types whose effect on scale was assumed
    notes: tuple[str, ...] = ()  # warnings about this file that are not findings (stderr)
    exporter: str | None = None
    # The command line's run: this file's own fail-on ("error", ..., "never"), from the
    # configuration found for it; None follows the report's.
    fail_on: str | None = None
    # Absolute paths of the external data files the model read (not in the JSON): a run
    # skips such a file when it is also named as a model.
    data_files: tuple[str, ...] = ()

    def tensor(self, name: str) -> TensorReport:
        """The report of the tensor called ``name``; KeyError if it was not audited."""
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)


@dataclass(frozen=True, kw_only=True)
class Summary:
    files: int
    errors: int
    warnings: int
    infos: int
    file_errors: int
    baselined: int = 0


@dataclass(frozen=True)
class Report:
    """A whole run: one :class:`FileResult` per model, in the order given.

    ``fail_on`` is the severity that makes :meth:`exit_code` 1 (None: never). ``baselined``
    counts findings a ``--baseline`` file hid; they are not in ``files``.
    """

    files: tuple[FileResult, ...]
    version: str
    _: KW_ONLY
    fail_on: Severity | None = field(default=Severity.ERROR)
    baselined: int = 0

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding of every file, in report order: handy for ``assert`` in a test."""
        return tuple(x for f in self.files for x in f.findings)

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
            baselined=self.baselined,
        )

    def exit_code(self) -> int:
        """2 if any file could not be audited, else 1 if a finding reaches its file's fail-on
        (the report's ``fail_on`` unless the file has its own), else 0."""
        if any(f.error is not None for f in self.files):
            return 2
        for f in self.files:
            threshold = self.fail_on if f.fail_on is None else _level(f.fail_on)
            if threshold is not None and any(x.severity >= threshold for x in f.findings):
                return 1
        return 0


def _level(fail_on: str) -> Severity | None:
    return None if fail_on == "never" else Severity.parse(fail_on)
