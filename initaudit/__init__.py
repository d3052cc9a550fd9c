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

# Before the imports: the pipeline modules import __version__ from here.
__version__ = "0.1.0"

import dataclasses
import os
import tempfile

import onnx

from initaudit.audit import audit_file
from initaudit.config import DEFAULT, THRESHOLDS, Config, Override
from initaudit.config_file import load_config
from initaudit.errors import ConfigError
from initaudit.report.model import (
    FileError,
    FileResult,
    Finding,
    Report,
    Severity,
    Summary,
    TensorReport,
)

MODEL_PROTO_PATH = "<ModelProto>"
"""The ``FileResult.path`` of a model passed as an ``onnx.ModelProto``."""


def audit(model: str | os.PathLike[str] | onnx.ModelProto, config: Config | None = None) -> Report:
    """Audit one model, given as a path or an in-memory ``onnx.ModelProto``.

    Never raises for a bad model file: like the command line, the problem becomes
    ``report.files[0].error`` and ``report.exit_code()`` is 2. ``config`` defaults to the
    built-in defaults (no file is read). A ModelProto is written to a private temporary
    folder and read back through the same loader as a file, so both give the same answer;
    one whose tensors point at external data files raises ValueError (pass its path instead,
    so the data can be found next to it).
    """
    cfg = DEFAULT if config is None else config
    if isinstance(model, onnx.ModelProto):
        result = _audit_proto(model, cfg)
    else:
        result = audit_file(model, config=cfg)
    return Report((result,), __version__, cfg.fail_level)


def _audit_proto(model: onnx.ModelProto, config: Config) -> FileResult:
    with tempfile.TemporaryDirectory(prefix="initaudit-") as folder:
        path = os.path.join(folder, "model.onnx")
        with open(path, "wb") as fh:
            fh.write(model.SerializeToString())
        result = audit_file(path, config=config)
    if result.error is not None and result.error.code.startswith("external-data"):
        raise ValueError(
            "this ModelProto keeps tensors in external data files; pass the model's path "
            f"instead ({result.error.message})"
        )
    return dataclasses.replace(result, path=MODEL_PROTO_PATH)


__all__ = [
    "MODEL_PROTO_PATH",
    "THRESHOLDS",
    "Config",
    "ConfigError",
    "FileError",
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
