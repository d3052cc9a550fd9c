"""Audit a live Keras model in one call (extra ``initaudit[keras]``: tensorflow-cpu, tf2onnx)::

    from initaudit.keras import assert_initialized

    def test_init() -> None:
        assert_initialized(build_model())

The model is converted in memory with tf2onnx (from a ``tf.function`` of the model called with
``training=False``: tf2onnx's ``from_keras`` fails on Keras 3 Sequential models), audited like a
file, and every initializer is named after the ``model.weights`` path it came from, found by
value (:mod:`initaudit.origins`): tf2onnx renames (``functional_1/dense_1/Cast/ReadVariableOp:0``
for ``dense/kernel``), transposes kernels to ONNX layouts, folds BatchNormalization into convs
and drops all-zero biases.

This is the only module that imports tensorflow and keras; the core never imports them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ banners, before its import
import keras
import tensorflow as tf
import tf2onnx

from initaudit.audit import AuditOptions
from initaudit.config import Config
from initaudit.errors import InitauditError
from initaudit.findings import Severity
from initaudit.live import FailOn, assert_clean, audit_exported
from initaudit.origins import Norm, OriginMap, Part, Transform, View, map_origins
from initaudit.report.model import Report

# The ONNX ops each layer type converts to: of two tensors with equal values, the one whose
# layer reads the initializer is named. Keras 3 recurrent layers convert to a Loop of MatMuls.
_LAYER_OPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Dense", frozenset({"MatMul", "Gemm"})),
    ("EinsumDense", frozenset({"MatMul", "Einsum", "Gemm"})),
    ("Embedding", frozenset({"Gather"})),
    ("Conv1DTranspose", frozenset({"ConvTranspose"})),
    ("Conv2DTranspose", frozenset({"ConvTranspose"})),
    ("Conv3DTranspose", frozenset({"ConvTranspose"})),
    ("LSTM", frozenset({"LSTM", "Loop", "MatMul"})),
    ("GRU", frozenset({"GRU", "Loop", "MatMul"})),
    ("SimpleRNN", frozenset({"RNN", "Loop", "MatMul"})),
    ("LayerNormalization", frozenset({"LayerNormalization", "Mul", "Add"})),
    ("BatchNormalization", frozenset({"BatchNormalization", "Mul", "Add"})),
)
_CONV_OPS = frozenset({"Conv"})
# ONNX LSTM gates are i,o,f,c; Keras keeps i,f,c,o. GRU z,r,h is the same in both.
_GATES = {"LSTM": ((0, 3, 1, 2), "gates i,f,c,o → i,o,f,c"), "GRU": ((0, 1, 2), "")}


class ExportError(InitauditError):
    """tf2onnx could not convert the model, or the model's inputs are not known."""

    code = "export-failed"


@dataclass(frozen=True, kw_only=True)
class Exported:
    """An in-memory conversion: the ModelProto and the converter that made it."""

    model: onnx.ModelProto
    exporter: str


def audit(
    model: keras.Model,
    input_signature: Sequence[tf.TensorSpec] | None = None,
    *,
    config: Config | None = None,
    options: AuditOptions | None = None,
    opset: int | None = None,
) -> Report:
    """Convert ``model`` in memory, audit it, and name findings by ``model.weights`` paths.

    ``input_signature`` is needed only for a model not built from ``keras.Input`` (a subclassed
    model): one ``tf.TensorSpec`` per input, batch 1. ``config`` and ``options`` are as for
    :func:`initaudit.audit`. Findings keep the ONNX name in
    ``tensor`` and carry ``source``, ``dense_1/kernel (Dense)``; the model is left as it was.
    """
    exported = export(model, input_signature, opset=opset)
    return audit_exported(
        exported.model,
        origins(model, exported.model),
        path=f"<keras {model.name}>",
        exporter=f"{exported.exporter} (tensorflow {tf.__version__}, keras {keras.__version__})",
        config=config,
        options=options,
    )


def assert_initialized(
    model: keras.Model,
    input_signature: Sequence[tf.TensorSpec] | None = None,
    fail_on: FailOn = Severity.ERROR,
    *,
    config: Config | None = None,
    options: AuditOptions | None = None,
    opset: int | None = None,
) -> Report:
    """:func:`audit`, then raise AssertionError with the text report as its message when a
    finding reaches ``fail_on`` (``"error"``, ``"warning"``, ``"info"``); returns the report."""
    report = audit(model, input_signature, config=config, options=options, opset=opset)
    return assert_clean(report, fail_on)


def input_signature_of(model: keras.Model) -> list[tf.TensorSpec]:
    """One ``TensorSpec`` per model input, batch 1 (a model built from ``keras.Input``)."""
    try:
        inputs = list(model.inputs)
    except (AttributeError, ValueError) as exc:
        raise ExportError(
            f"{type(model).__name__} has no defined inputs ({exc}); build it from keras.Input "
            "or pass input_signature=[tf.TensorSpec((1, ...), 'float32')]"
        ) from exc
    return [
        tf.TensorSpec((1, *tuple(x.shape)[1:]), x.dtype, name=f"input_{i}")
        for i, x in enumerate(inputs)
    ]


def export(
    model: keras.Model,
    signature: Sequence[tf.TensorSpec] | None = None,
    *,
    opset: int | None = None,
) -> Exported:
    """Convert ``model`` with tf2onnx in memory, in inference mode, leaving it as it was."""
    spec = list(signature) if signature is not None else input_signature_of(model)

    @tf.function(input_signature=spec)  # type: ignore[untyped-decorator]
    def call(*xs: tf.Tensor) -> Any:
        return model(xs[0] if len(xs) == 1 else list(xs), training=False)

    with untouched(model), _quiet():
        try:
            proto, _ = tf2onnx.convert.from_function(call, input_signature=spec, opset=opset)
        except Exception as exc:  # a converter's failure is any exception it raises
            lines = [s.strip() for s in str(exc).splitlines() if s.strip()]
            first = lines[0][:300] if lines else ""
            raise ExportError(
                f"tf2onnx could not convert {type(model).__name__}: {type(exc).__name__}: {first}"
            ) from exc
    return Exported(model=proto, exporter=f"tf2onnx {tf2onnx.__version__}")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """tf2onnx logs every rewriter pass at INFO; a test's output should show findings only."""
    loggers = [logging.getLogger(n) for n in ("tf2onnx", "tensorflow")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def untouched(model: keras.Model) -> Iterator[None]:
    """Run the body and leave ``model`` and the random state as they were.

    Restored: every layer's ``trainable`` flag, every non-trainable variable (moving statistics,
    seed-generator states), and the numpy and ``random`` generator states. Trainable weights
    are compared, not copied back: conversion reads them, and one that changed raises.
    """
    layers = list(_layers(model))
    flags = [(layer, layer.trainable) for layer in layers]
    frozen = [(v, np.array(v.numpy(), copy=True)) for v in model.non_trainable_variables]
    checksums = {str(v.path): _digest(v.numpy()) for v in model.trainable_variables}
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    try:
        yield
    finally:
        for layer, trainable in flags:
            layer.trainable = trainable
        for variable, saved in frozen:
            if not np.array_equal(variable.numpy(), saved, equal_nan=True):
                variable.assign(saved)
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    after = {str(v.path): _digest(v.numpy()) for v in model.trainable_variables}
    changed = [p for p, digest in checksums.items() if after.get(p) != digest]
    if changed:
        raise ExportError(f"converting changed weights: {', '.join(changed[:5])}")


def _digest(value: Any) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(value).tobytes(), digest_size=16).digest()


# --------------------------------------------------------------------------- name mapping


def origins(model: keras.Model, exported: onnx.ModelProto) -> OriginMap:
    """Name every float initializer of ``exported`` after the ``model.weights`` path it holds."""
    return map_origins(exported, views(model), norms(model))


def _layers(model: keras.Model) -> Iterator[Any]:
    """Every layer, outermost first, looking inside nested models but not inside layers (an
    LSTM's cell is the LSTM to its user)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def _prefix(variable: Any) -> str:
    return str(variable.path).rpartition("/")[0]


def views(model: keras.Model) -> list[View]:
    """Every float weight as tf2onnx may lay it out: as is, transposed (2-D), conv kernels in
    ONNX's (out, in, spatial…) order, depthwise kernels as (in·mult, 1, spatial…), and LSTM/GRU
    kernels as ONNX W, R, B for a converter that emits those ops."""
    out: list[View] = []
    for layer in _layers(model):
        cls = type(layer).__name__
        ops = next((o for name, o in _LAYER_OPS if name == cls), frozenset())
        if _is_conv(layer):
            ops = frozenset({"ConvTranspose"}) if "Transpose" in cls else _CONV_OPS
        for variable in layer.weights:
            value = np.asarray(variable.numpy())
            if value.dtype.kind != "f":
                continue
            out.extend(_weight_views(layer, variable, value, ops))
        if cls in _GATES:
            out.extend(_recurrent_views(layer, ops))
    return out


def _weight_views(layer: Any, variable: Any, value: np.ndarray, ops: frozenset[str]) -> list[View]:
    cls = type(layer).__name__
    leaf = str(variable.path).rpartition("/")[2]
    part = {"kernel": Part.WEIGHT, "pointwise_kernel": Part.WEIGHT, "bias": Part.BIAS}.get(
        leaf, Part.OTHER
    )
    if cls in _GATES or not (_is_conv(layer) or cls in ("Dense", "EinsumDense")):
        part = Part.OTHER if part is Part.WEIGHT else part
    common: dict[str, Any] = {
        "name": str(variable.path),
        "owner": cls,
        "layer": _prefix(variable),
        "ops": ops,
        "table": cls == "Embedding",
    }
    views = [View(value=value, part=part, out_axis=_identity_axis(layer, part), **common)]
    if value.ndim == 2:
        axis = 0 if part is Part.WEIGHT else None
        views.append(
            View(value=value.T, transform=Transform.TRANSPOSED, part=part, out_axis=axis, **common)
        )
    if _is_conv(layer) and value.ndim >= 3:
        onnx_value = _conv_layout(cls, leaf, value)
        transposed = "Transpose" in cls
        views.append(
            View(
                value=onnx_value,
                transform=Transform.LAYOUT,
                part=part,
                out_axis=(1 if transposed else 0) if part is Part.WEIGHT else None,
                **common,
            )
        )
    return views


def _is_conv(layer: Any) -> bool:
    return "Conv" in type(layer).__name__ and hasattr(layer, "kernel_size")


def _identity_axis(layer: Any, part: Part) -> int | None:
    """A Dense kernel (in, out) feeds MatMul as is: its output channels are the last axis."""
    if part is not Part.WEIGHT or not type(layer).__name__.endswith("Dense"):
        return None
    return -1


def _conv_layout(cls: str, leaf: str, value: np.ndarray) -> np.ndarray:
    """Keras (spatial…, in, out) kernels in ONNX's (out, in, spatial…); a depthwise kernel
    (spatial…, in, mult) as (in·mult, 1, spatial…), one group per input channel. A transposed
    conv's (spatial…, out, in) lands on ONNX ConvTranspose's (in, out, spatial…) by the same
    permutation."""
    rank = value.ndim
    spatial = tuple(range(rank - 2))
    if cls.startswith("Depthwise") or leaf == "depthwise_kernel":
        flat = value.reshape(*value.shape[:-2], -1)  # (spatial…, in·mult), channel c·mult + m
        moved = np.moveaxis(flat, -1, 0)
        return np.ascontiguousarray(moved[:, None])
    perm = (rank - 1, rank - 2, *spatial)
    return np.ascontiguousarray(value.transpose(perm))


def _recurrent_views(layer: Any, ops: frozenset[str]) -> Iterator[View]:
    """ONNX W [1, G·H, I], R [1, G·H, H], B [1, 2·G·H] from Keras kernel (I, G·H),
    recurrent_kernel (H, G·H) and bias (G·H) or, for a GRU with reset_after, (2, G·H)."""
    cls = type(layer).__name__
    order, detail = _GATES[cls]
    weights = {str(v.path).rpartition("/")[2]: v for v in layer.weights}
    if "kernel" not in weights or "recurrent_kernel" not in weights:
        return

    def gates(value: np.ndarray) -> np.ndarray:
        chunks = np.split(value, len(order))
        return np.concatenate([chunks[i] for i in order])

    def view(names: list[str], value: np.ndarray, part: Part) -> View:
        extra = [f"with {' and '.join(names[1:])}"] if len(names) > 1 else []
        return View(
            name=names[0],
            owner=cls,
            layer=_prefix(weights["kernel"]),
            value=value,
            transform=Transform.GATES,
            detail=", ".join([*extra, *([detail] if detail else [])]),
            sources=tuple(names),
            part=part,
            ops=ops,
        )

    for key in ("kernel", "recurrent_kernel"):
        value = np.asarray(weights[key].numpy()).T
        yield view([str(weights[key].path)], gates(value)[None], Part.OTHER)
    if "bias" in weights:
        bias = np.asarray(weights["bias"].numpy())
        halves = [bias, np.zeros_like(bias)] if bias.ndim == 1 else list(bias)
        value = np.concatenate([gates(h) for h in halves])[None]
        yield view([str(weights["bias"].path)], value, Part.BIAS)


def norms(model: keras.Model) -> list[Norm]:
    """BatchNormalization layers, each as the ``x·scale + shift`` tf2onnx folds into the conv
    or dense layer before it (in the model's layer order)."""
    out: list[Norm] = []
    previous: str | None = None
    for layer in _layers(model):
        cls = type(layer).__name__
        if cls == "BatchNormalization":
            out.append(_batch_norm(layer, previous))
        kernel = next((v for v in layer.weights if str(v.path).endswith("kernel")), None)
        if kernel is not None and (_is_conv(layer) or cls == "Dense"):
            previous = _prefix(kernel)
    return out


def _batch_norm(layer: Any, after: str | None) -> Norm:
    weights = {str(v.path).rpartition("/")[2]: v for v in layer.weights}

    def get(key: str, default: float) -> np.ndarray | float:
        v = weights.get(key)
        return default if v is None else np.asarray(v.numpy(), dtype=np.float64)

    var = np.asarray(get("moving_variance", 1.0), dtype=np.float64)
    scale = np.asarray(get("gamma", 1.0)) / np.sqrt(var + float(layer.epsilon))
    shift = np.asarray(get("beta", 0.0)) - np.asarray(get("moving_mean", 0.0)) * scale
    prefix = _prefix(next(iter(weights.values())))
    beta, gamma = weights.get("beta"), weights.get("gamma")
    return Norm(
        name=prefix,
        owner="BatchNormalization",
        pattern=f"{prefix}/*",
        sources=tuple(str(v.path) for v in weights.values()),
        scale_name=str(gamma.path) if gamma is not None else f"{prefix}/*",
        shift_name=str(beta.path) if beta is not None else f"{prefix}/*",
        scale=np.broadcast_to(scale, var.shape),
        shift=np.broadcast_to(shift, var.shape),
        after=after,
    )
