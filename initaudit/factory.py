"""``--factory mypkg.models:build_resnet``: audit the model a function of the user's code builds.

The point is to stop a broken init in a commit that touches model *code*, before anyone
exports anything (the ``initaudit-factories`` pre-commit hook). The factory is imported from
the current directory first (the repository root, where pre-commit runs), called with no
arguments, and what it returns is audited like a file: an ``onnx.ModelProto`` as is, a
``torch.nn.Module`` through :mod:`initaudit.torch`, a ``keras.Model`` through
:mod:`initaudit.keras`. Neither framework is imported unless the factory already did.

Whatever goes wrong (import, the factory's own exception, an export failure) becomes the
result's ``error`` (exit 2, one stderr line naming the factory and the exception), never a
traceback; ``--debug`` re-raises it.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Mapping
from typing import Any

from initaudit import proto
from initaudit.audit import AuditOptions
from initaudit.errors import InitauditError
from initaudit.report.model import ErrorEntry, FileResult

Shapes = Mapping[str, tuple[int, ...]]


class FactoryError(InitauditError):
    """A factory could not be imported or called, or returned no model."""

    code = "factory-failed"


def audit_factory(spec: str, inputs: Shapes, options: AuditOptions) -> FileResult:
    """Build the model ``spec`` (``module:function``) names and audit it; the result's path is
    ``spec``. ``inputs`` (``--factory-input NAME=1x3x224x224``) are the model's inputs by name,
    for a model whose first layer does not say them."""
    try:
        model = build(spec)
        result = _audit_model(model, spec, inputs, options)
    except InitauditError as exc:
        if options.debug:
            raise
        return FileResult(spec, ErrorEntry(code=_code(exc), message=exc.message))
    return dataclasses.replace(result, path=spec)


def _code(exc: InitauditError) -> str:
    code = getattr(exc, "code", "factory-failed")
    return code if isinstance(code, str) else "factory-failed"


def build(spec: str) -> Any:
    """Import ``module:function`` and call it; any failure is a :class:`FactoryError` whose
    message is the exception's type and first line."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise FactoryError(f"{spec!r} is not MODULE:FUNCTION (e.g. mypkg.models:build_resnet)")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # the repository's own packages, as `python -m` would see them
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # the user's module may raise anything while importing
        raise FactoryError(f"cannot import {spec}: {_one_line(exc)}") from exc
    try:
        return factory()
    except Exception as exc:  # the factory is the user's code
        raise FactoryError(f"{spec}() raised {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


def _audit_model(model: Any, spec: str, inputs: Shapes, options: AuditOptions) -> FileResult:
    import initaudit

    if proto.is_model(model):  # an onnx.ModelProto, told without importing onnx
        return initaudit.audit(model, options=options).files[0]
    if _is_instance(model, "torch", "nn.Module"):
        from initaudit import torch as audit_torch

        try:
            return audit_torch.audit(model, _torch_inputs(inputs), options=options).files[0]
        except ValueError as exc:  # no inputs given and none can be built from the model
            raise FactoryError(f"{spec}: {exc} (--factory-input NAME=1x3x224x224)") from exc
    if _is_instance(model, "keras", "Model"):
        from initaudit import keras as audit_keras

        signature = _keras_signature(inputs)
        return audit_keras.audit(model, signature, options=options).files[0]
    raise FactoryError(
        f"{spec}() returned a {type(model).__name__}, not a torch.nn.Module, keras.Model or "
        "onnx.ModelProto"
    )


def _is_instance(obj: Any, module: str, qualname: str) -> bool:
    """isinstance against ``module.qualname`` only if that module is already imported: a
    factory that returns a torch model has imported torch; checking costs no import."""
    root = sys.modules.get(module)
    if root is None:
        return False
    cls: Any = root
    for part in qualname.split("."):
        cls = getattr(cls, part, None)
    return isinstance(cls, type) and isinstance(obj, cls)


def _torch_inputs(inputs: Shapes) -> Any:
    if not inputs:
        return None  # built from the first layer, or a clear error saying what to pass
    import torch

    gen = torch.Generator().manual_seed(0)
    return {name: torch.randn(shape, generator=gen) for name, shape in inputs.items()}


def _keras_signature(inputs: Shapes) -> Any:
    if not inputs:
        return None
    import tensorflow as tf

    return [tf.TensorSpec(shape, "float32", name=name) for name, shape in inputs.items()]
