"""Audit a live PyTorch module in one call (extra ``initaudit[torch]``)::

    from initaudit.torch import assert_initialized

    def test_init() -> None:
        assert_initialized(build_model())

The module is exported in memory with ``torch.onnx.export`` (dynamo first, the legacy
TorchScript exporter when dynamo fails), audited like a file, and every initializer is named
after the ``named_parameters()``/``named_buffers()`` tensor it came from, found by value
(:mod:`initaudit.origins`): the exporters rename, transpose, fold BatchNorm and reorder
recurrent gates (init-reference.md §5.2), so names alone would mislead.

This is the only module that imports torch; the core never imports it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import onnx
import torch
from torch import nn

from initaudit.audit import AuditOptions
from initaudit.config import Config
from initaudit.errors import InitauditError
from initaudit.findings import Severity
from initaudit.live import FailOn, assert_clean, audit_exported
from initaudit.origins import Norm, OriginMap, Part, Transform, View, map_origins
from initaudit.report.model import Report

Exporter = Literal["auto", "dynamo", "legacy"]
ExampleInputs: TypeAlias = "torch.Tensor | tuple[Any, ...] | Mapping[str, Any]"

_TOKENS = 8  # length of the token-id sequence built for a model that starts with nn.Embedding
_IMAGE = 64  # side of the image built for a model that starts with nn.Conv2d
# The ONNX ops each layer type exports to: of two tensors with equal values (a tied embedding
# and lm_head), the one whose layer reads the initializer is named.
_LAYER_OPS: tuple[tuple[type[nn.Module], frozenset[str]], ...] = (
    (nn.Linear, frozenset({"Gemm", "MatMul"})),
    (nn.Bilinear, frozenset({"MatMul", "Einsum"})),
    (nn.Embedding, frozenset({"Gather"})),
    (nn.EmbeddingBag, frozenset({"Gather"})),
    (nn.modules.conv._ConvTransposeNd, frozenset({"ConvTranspose"})),
    (nn.modules.conv._ConvNd, frozenset({"Conv"})),
    (nn.LSTM, frozenset({"LSTM"})),
    (nn.GRU, frozenset({"GRU"})),
    (nn.RNN, frozenset({"RNN"})),
    (nn.MultiheadAttention, frozenset({"MatMul", "Gemm"})),
    (nn.LayerNorm, frozenset({"LayerNormalization"})),
    (nn.modules.batchnorm._BatchNorm, frozenset({"BatchNormalization"})),
    (nn.GroupNorm, frozenset({"Mul", "Add", "GroupNormalization"})),
)
# ONNX gate order from PyTorch's: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h (§5.2).
_GATES: tuple[tuple[type[nn.RNNBase], tuple[int, ...], str], ...] = (
    (nn.LSTM, (0, 3, 1, 2), "gates i,f,g,o → i,o,f,c"),
    (nn.GRU, (1, 0, 2), "gates r,z,n → z,r,h"),
    (nn.RNN, (0,), ""),
)


class ExportError(InitauditError):
    """The module could not be exported to ONNX by either exporter, or export changed it."""

    code = "export-failed"


@dataclass(frozen=True, kw_only=True)
class Exported:
    """An in-memory export: the ModelProto, which exporter made it, and why not the other."""

    model: onnx.ModelProto
    exporter: Literal["dynamo", "legacy"]
    notes: tuple[str, ...] = ()


def audit(
    model: nn.Module,
    example_inputs: ExampleInputs | None = None,
    *,
    config: Config | None = None,
    options: AuditOptions | None = None,
    exporter: Exporter = "auto",
    opset: int | None = None,
) -> Report:
    """Export ``model`` in memory, audit it, and name findings by its parameters.

    ``example_inputs`` are what the model is called with (a tensor, a tuple of positional
    arguments, or a dict of keyword arguments); without them they are built from the first
    layer (:func:`build_example_inputs`). ``config`` and ``options`` are as for
    :func:`initaudit.audit` (``options.propagate`` runs the exported model too).
    Findings keep the ONNX tensor name in ``tensor`` and carry ``source``,
    ``encoder.layers.0.linear1.weight (nn.Linear)``; the file's ``exporter`` says which
    exporter made the ONNX model. The model itself is left as it was (see :func:`untouched`).
    """
    inputs = build_example_inputs(model) if example_inputs is None else example_inputs
    exported = export(model, inputs, exporter=exporter, opset=opset)
    return audit_exported(
        exported.model,
        origins(model, exported.model),
        path=f"<torch {type(model).__name__}>",
        exporter=f"torch.onnx.export {exported.exporter} (torch {torch.__version__})",
        notes=exported.notes,
        config=config,
        options=options,
    )


def assert_initialized(
    model: nn.Module,
    example_inputs: ExampleInputs | None = None,
    fail_on: FailOn = Severity.ERROR,
    *,
    config: Config | None = None,
    options: AuditOptions | None = None,
    exporter: Exporter = "auto",
    opset: int | None = None,
) -> Report:
    """:func:`audit`, then raise AssertionError with the text report as its message when a
    finding reaches ``fail_on`` (``"error"``, ``"warning"``, ``"info"``); returns the report."""
    report = audit(
        model, example_inputs, config=config, options=options, exporter=exporter, opset=opset
    )
    return assert_clean(report, fail_on)


# --------------------------------------------------------------------------- example inputs


def build_example_inputs(model: nn.Module) -> tuple[torch.Tensor, ...]:
    """Inputs built from the model's first layer, when its type says what it reads.

    A first ``nn.Embedding`` reads token ids (1×8), a first ``nn.Conv2d`` an image
    (1×C×64×64), a first ``nn.Linear`` a vector (1×in_features). Anything else is ambiguous
    (an LSTM reads (T, N, I) or (N, T, I), a Conv1d any length): ValueError says what to pass.
    Values are drawn from a private generator, so the global RNG is not advanced.
    """
    first = next(((n, m) for n, m in model.named_modules() if _owns_parameters(m)), None)
    where = type(model).__name__
    if first is None:
        raise ValueError(
            f"cannot build example inputs for {where}: it has no parameters; "
            "pass example_inputs=(torch.randn(...),)"
        )
    name, layer = first
    weight = next(layer.parameters(recurse=False))
    gen = torch.Generator(device="cpu").manual_seed(0)
    if isinstance(layer, nn.Embedding):
        ids = torch.arange(_TOKENS, dtype=torch.long).remainder(layer.num_embeddings)
        return (ids.reshape(1, _TOKENS).to(weight.device),)
    if isinstance(layer, nn.Conv2d):
        shape: tuple[int, ...] = (1, layer.in_channels, _IMAGE, _IMAGE)
    elif isinstance(layer, nn.Linear):
        shape = (1, layer.in_features)
    else:
        raise ValueError(
            f"cannot build example inputs for {where}: its first layer {name or '(root)'} is "
            f"{_owner(layer)}, whose input shape is ambiguous (inputs are built only for a "
            "first nn.Embedding, nn.Conv2d or nn.Linear); pass example_inputs=(tensor, ...) "
            "as you would call the model"
        )
    x = torch.randn(shape, generator=gen, dtype=torch.float32)
    return (x.to(device=weight.device, dtype=weight.dtype),)


# --------------------------------------------------------------------------- export


def export(
    model: nn.Module,
    inputs: ExampleInputs,
    *,
    exporter: Exporter = "auto",
    opset: int | None = None,
) -> Exported:
    """Export ``model`` in memory, in eval mode, leaving it exactly as it was.

    ``auto`` tries dynamo (the default exporter since torch 2.9) and falls back to the legacy
    TorchScript exporter when dynamo raises; the result says which one made the model. The
    exporters' progress lines, warnings and log records are kept out of the caller's output.
    """
    args, kwargs = _split_inputs(inputs)
    order: tuple[Literal["dynamo", "legacy"], ...] = (
        ("dynamo", "legacy") if exporter == "auto" else (exporter,)
    )
    failures: list[str] = []
    with untouched(model):
        model.eval()  # BatchNorm folds as at inference; dropout is off (and draws nothing)
        for name in order:
            try:
                with _quiet():
                    proto = _run_exporter(name, model, args, kwargs, opset)
            except Exception as exc:  # an exporter's failure is any exception it raises
                failures.append(f"{name} export failed: {_first_line(exc)}")
                continue
            return Exported(model=proto, exporter=name, notes=tuple(failures))
    raise ExportError(f"could not export {type(model).__name__} to ONNX: " + "; ".join(failures))


def _split_inputs(inputs: ExampleInputs) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(inputs, torch.Tensor):
        return (inputs,), {}
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    return tuple(inputs), {}


def _run_exporter(
    name: Literal["dynamo", "legacy"],
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    opset: int | None,
) -> onnx.ModelProto:
    if name == "dynamo":
        program = torch.onnx.export(
            model, args, kwargs=kwargs or None, dynamo=True, opset_version=opset, verbose=False
        )
        if program is None:  # only when given a file name
            raise RuntimeError("dynamo export returned no program")
        proto: onnx.ModelProto = program.model_proto
        return proto
    buffer = io.BytesIO()
    # The legacy exporter writes to any binary file object; torch's annotation names paths only.
    sink: Any = buffer
    torch.onnx.export(
        model,
        args,
        sink,
        kwargs=kwargs or None,
        dynamo=False,
        opset_version=opset,
    )
    return onnx.load_from_string(buffer.getvalue())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters: dynamo prints progress to stdout and logs a warning per missing
    torchvision op; both warn about deprecations. A test's output should show findings only."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


@contextlib.contextmanager
def untouched(model: nn.Module) -> Iterator[None]:
    """Run the body and leave ``model`` and the process's random state as they were.

    Restored: each submodule's training flag (the legacy exporter resets all of them to the
    root's), each parameter's ``requires_grad``, buffers (a forward pass in training mode moves
    BatchNorm's running statistics), grad mode, and the torch, numpy and ``random`` generator
    states. Parameters are not copied: an in-place change to one is seen by its version
    counter and raises ExportError rather than go unnoticed.
    """
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    versions = [(n, p, p._version) for n, p in model.named_parameters(remove_duplicate=False)]
    buffers = [(b, b._version, b.detach().clone()) for b in model.buffers()]
    grad_mode = torch.is_grad_enabled()
    torch_state = torch.random.get_rng_state()
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
        for param, requires_grad in grads:
            param.requires_grad_(requires_grad)
        with torch.no_grad():
            for buffer, version, saved in buffers:
                if buffer._version != version:
                    buffer.copy_(saved)
        torch.set_grad_enabled(grad_mode)
        torch.random.set_rng_state(torch_state)
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    changed = [n for n, p, version in versions if p._version != version]
    if changed:
        raise ExportError(f"exporting changed parameters in place: {', '.join(changed[:5])}")


# --------------------------------------------------------------------------- name mapping


def origins(model: nn.Module, exported: onnx.ModelProto) -> OriginMap:
    """Name every float initializer of ``exported`` after the tensor of ``model`` it holds."""
    return map_origins(exported, views(model), norms(model), scope=node_scope)


def node_scope(node: onnx.NodeProto) -> str | None:
    """The module path a node was exported from: the innermost module of dynamo's
    ``namespace`` metadata (``: Model/layers.0: …Sequential/layers.0.0: …Linear/linear:
    aten.linear.default``) or of the legacy exporter's node name
    (``/layers.0/layers.0.0/MatMul``); each level there is already the full path."""
    for prop in node.metadata_props:
        if prop.key == "namespace":
            levels = prop.value.split("/")[1:-1]  # after the root module, before the op
            return levels[-1].split(":")[0].strip() or None if levels else None
    levels = node.name.split("/")[1:-1] if node.name.startswith("/") else []
    return levels[-1] or None if levels else None


def views(model: nn.Module) -> list[View]:
    """Every float parameter and buffer as the exporters may lay it out: as is, transposed
    (2-D), and for LSTM/GRU/RNN the ONNX W, R, B with gates reordered and directions stacked.

    Tied parameters are listed under every name (``remove_duplicate=False``), so a tied
    lm_head is named ``head.weight`` where the head reads it and ``emb.weight`` elsewhere.
    """
    modules = dict(model.named_modules(remove_duplicate=False))
    out: list[View] = []
    named = [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]
    for name, tensor in named:
        if not tensor.is_floating_point():
            continue
        layer, _, leaf = name.rpartition(".")
        module = modules.get(layer, model)
        value = _numpy(tensor)
        part = _part(module, leaf)
        common: dict[str, Any] = {
            "name": name,
            "owner": _owner(module),
            "layer": layer,
            "part": part,
            "ops": _ops(module),
            "table": isinstance(module, nn.Embedding) and leaf == "weight",
        }
        out.append(View(value=value, out_axis=_out_axis(module, part), **common))
        if value.ndim == 2:
            axis = 1 if part is Part.WEIGHT and isinstance(module, nn.Linear) else None
            out.append(View(value=value.T, transform=Transform.TRANSPOSED, out_axis=axis, **common))
    for layer, module in model.named_modules():
        if isinstance(module, nn.RNNBase):
            out.extend(_recurrent_views(layer, module))
    return out


def norms(model: nn.Module) -> list[Norm]:
    """BatchNorms with running statistics, each as the ``x·scale + shift`` an exporter folds
    into the conv (or linear) layer defined just before it."""
    out: list[Norm] = []
    previous: str | None = None
    for name, module in model.named_modules():
        stats = isinstance(module, nn.modules.batchnorm._BatchNorm) and (
            module.running_var is not None and module.running_mean is not None
        )
        if stats:
            var = _numpy(module.running_var).astype(np.float64)
            mean = _numpy(module.running_mean).astype(np.float64)
            gamma = _numpy(module.weight).astype(np.float64) if module.weight is not None else 1.0
            beta = _numpy(module.bias).astype(np.float64) if module.bias is not None else 0.0
            scale = np.broadcast_to(gamma / np.sqrt(var + module.eps), var.shape)
            prefix = f"{name}." if name else ""
            out.append(
                Norm(
                    name=name,
                    owner=_owner(module),
                    pattern=f"{prefix}*",
                    sources=tuple(
                        f"{prefix}{k}"
                        for k, v in [*module.named_parameters(), *module.named_buffers()]
                        if v.is_floating_point()
                    ),
                    scale_name=f"{prefix}weight" if module.weight is not None else f"{prefix}*",
                    shift_name=f"{prefix}bias" if module.bias is not None else f"{prefix}*",
                    scale=scale,
                    shift=beta - mean * scale,
                    after=previous,
                )
            )
        if isinstance(module, nn.modules.conv._ConvNd | nn.Linear):
            previous = name
    return out


def _recurrent_views(layer: str, rnn: nn.RNNBase) -> Iterator[View]:
    """ONNX LSTM/GRU/RNN inputs W [D, G·H, I], R [D, G·H, H], B [D, 2·G·H] = [Wb; Rb]."""
    order, detail = next((o, d) for cls, o, d in _GATES if isinstance(rnn, cls))
    if rnn.proj_size:
        return  # ONNX LSTM has no projection: no exporter emits one
    params = {k: _numpy(v) for k, v in rnn.named_parameters()}
    suffixes = ("", "_reverse") if rnn.bidirectional else ("",)
    prefix = f"{layer}." if layer else ""

    def gates(key: str) -> np.ndarray:
        chunks = np.split(params[key], len(order))
        return np.concatenate([chunks[i] for i in order])

    def view(keys: list[str], value: np.ndarray, part: Part) -> View:
        names = tuple(prefix + k for k in keys)
        extra = [f"with {' and '.join(names[1:])}"] if len(names) > 1 else []
        return View(
            name=names[0],
            owner=_owner(rnn),
            layer=layer,
            value=value,
            transform=Transform.GATES,
            detail=", ".join([*extra, *([detail] if detail else [])]),
            sources=names,
            part=part,
            ops=_ops(rnn),
        )

    for n in range(rnn.num_layers):
        for kind in ("weight_ih", "weight_hh"):
            keys = [f"{kind}_l{n}{s}" for s in suffixes]
            yield view(keys, np.stack([gates(k) for k in keys]), Part.WEIGHT)
        if rnn.bias:
            keys = [f"{b}_l{n}{s}" for s in suffixes for b in ("bias_ih", "bias_hh")]
            pairs = zip(keys[::2], keys[1::2], strict=True)
            value = np.stack([np.concatenate([gates(i), gates(h)]) for i, h in pairs])
            yield view(keys, value, Part.BIAS)


def _owns_parameters(module: nn.Module) -> bool:
    return next(module.parameters(recurse=False), None) is not None


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A float32 (or float64) numpy view, without a copy where torch allows one."""
    t = tensor.detach()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    return np.asarray(t.cpu().numpy())


def _owner(module: nn.Module) -> str:
    """``nn.Linear`` for torch's own layers, the bare class name for the user's.

    A private torch subclass is named after its public base (MultiheadAttention's out_proj is
    a ``NonDynamicallyQuantizableLinear``, which users know as nn.Linear)."""
    cls = type(module)
    if not cls.__module__.startswith("torch."):
        return cls.__name__
    public = next((c for c in cls.__mro__ if getattr(nn, c.__name__, None) is c), cls)
    return f"nn.{public.__name__}"


def _ops(module: nn.Module) -> frozenset[str]:
    return next((ops for cls, ops in _LAYER_OPS if isinstance(module, cls)), frozenset())


def _part(module: nn.Module, leaf: str) -> Part:
    if not isinstance(module, nn.modules.conv._ConvNd | nn.Linear):
        return Part.OTHER
    return {"weight": Part.WEIGHT, "bias": Part.BIAS}.get(leaf, Part.OTHER)


def _out_axis(module: nn.Module, part: Part) -> int | None:
    """The output-channel axis a folded BatchNorm scales: 0 for Conv and Linear (out, in),
    1 for ConvTranspose (in, out/g, k…), where only groups=1 has one channel per row."""
    if part is not Part.WEIGHT:
        return None
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return 1 if module.groups == 1 else None
    return 0
