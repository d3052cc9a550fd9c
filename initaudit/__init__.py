"""initaudit: lint neural-network weight initialization in ONNX models before training.

Python API (README "Python API")::

    import initaudit

    report = initaudit.audit("model.onnx")  # or an onnx.ModelProto
    assert not report.findings, report.findings
    assert report.files[0].tensor("fc1.weight").fan_in == 64

``audit`` reads no configuration file unless you pass one: ``config=initaudit.load_config()``
finds the nearest ``[tool.initaudit]`` exactly as the command line does.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from initaudit import config_file, proto
from initaudit._version import __version__
from initaudit.audit import AuditOptions, audit_file
from initaudit.config import THRESHOLDS, Config, Override
from initaudit.errors import ConfigError
from initaudit.findings import Finding, Severity
from initaudit.report.model import ErrorEntry, FileResult, Report, Summary, TensorReport
from initaudit.rules import CODES

if TYPE_CHECKING:  # a caller's own onnx; initaudit reads models without importing it
    import onnx

MODEL_PROTO_PATH = "<ModelProto>"
"""The ``FileResult.path`` of a model passed as an ``onnx.ModelProto``."""


def audit(
    model: str | os.PathLike[str] | onnx.ModelProto,
    config: Config | None = None,
    *,
    options: AuditOptions | None = None,
) -> Report:
    """Audit one model, given as a path or an in-memory ``onnx.ModelProto``.

    Never raises for a bad model file: like the command line, the problem becomes
    ``report.files[0].error`` and ``report.exit_code()`` is 2. ``config`` defaults to the
    built-in defaults (no file is read); ``options`` sets the rest of a run (threads,
    ``propagate``, histograms), and ``config``, when given, replaces its ``config``. A
    ModelProto is written to a private temporary folder and read back through the same
    loader as a file, so both give the same answer; one whose tensors point at external data
    files raises ValueError (pass its path instead, so the data can be found next to it).
    """
    opts = options or AuditOptions()
    if config is not None:
        opts = dataclasses.replace(opts, config=config)
    if proto.is_model(model):
        result = _audit_proto(model, opts)
    else:  # a path; anything else fails in audit_file, as it always has
        result = audit_file(cast("str | os.PathLike[str]", model), opts)
    return Report((result,), __version__, fail_on=opts.config.fail_level)


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    start: str | os.PathLike[str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Config:
    """The settings the command line would use: ``path`` (a pyproject.toml or an
    initaudit.toml), else the nearest pyproject.toml with ``[tool.initaudit]`` above ``start``
    (default: the current directory), else the defaults. Bad values raise ConfigError;
    unknown keys call ``warn`` (default: a Python UserWarning)."""
    return config_file.load_config(path, codes=CODES, start=start, warn=warn)


def _audit_proto(model: onnx.ModelProto, options: AuditOptions) -> FileResult:
    import tempfile  # here, not above: only this path needs it, and every CLI run imports us

    with tempfile.TemporaryDirectory(prefix="initaudit-") as folder:
        path = os.path.join(folder, "model.onnx")
        with open(path, "wb") as fh:
            fh.write(model.SerializeToString())
        result = audit_file(path, options)
    if result.error is not None and result.error.code.startswith("external-data"):
        raise ValueError(
            "this ModelProto keeps tensors in external data files; pass the model's path "
            f"instead ({result.error.message})"
        )
    return dataclasses.replace(result, path=MODEL_PROTO_PATH)


__all__ = [
    "MODEL_PROTO_PATH",
    "THRESHOLDS",
    "AuditOptions",
    "Config",
    "ConfigError",
    "ErrorEntry",
    "FileResult",
    "Finding",
    "Override",
    "Report",
    "Severity",
    "Summary",
    "TensorReport",
    "__version__",
    "audit",
    "load_config",
]
