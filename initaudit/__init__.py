"""initaudit: lint neural-network weight initialization in ONNX models before training."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
