"""The framework side of predicted-vs-measured: E[x²] of each weighted layer's output in torch.

What training sees at step 0 is measured, not what the exported graph computes: every module
that keeps running statistics (BatchNorm and its subclasses, tracked InstanceNorm) is put in
train mode, so it normalizes by batch statistics, while everything else stays in eval mode, so
dropout and stochastic depth are off. The eval-mode pass (running statistics, the identity at
init) is measured too: it is what the ONNX graph and ``--propagate`` compute, and checks the
mapping from initializers to modules.

A layer is measured by a forward hook on the leaf module that owns the weight (``weight`` of a
Linear, Conv, Embedding, ...): the hook sees the module's output, bias included. A convolution
the exporter fused with its BatchNorm is measured at the BatchNorm's output, as the fused ONNX
node computes conv+BN. A weight owned
by a composite module (a parameter used inside a custom ``forward``) has no such output and is
not measured; the report says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

Forward = Callable[[], object]
FOLDED = re.compile(r"bn_folded\((.+)\)")


@dataclass(frozen=True, kw_only=True)
class Owner:
    """The module that owns a state_dict entry, if a forward hook can measure its output."""

    param: str
    module: str
    module_type: str
    hookable: bool
    # Where the hook reads: ``module``'s output, or the input of this child of it.
    input_of: str | None = None

    @property
    def point(self) -> str:
        return f"{self.input_of}:input" if self.input_of else self.module


def owner_of(model: nn.Module, param: str, transform: str = "identity") -> Owner:
    """The module to hook for ``param``. A convolution whose BatchNorm the exporter folded
    into it is the pair conv+BN in the graph: its ONNX output is the BatchNorm's output, so
    the BatchNorm is hooked (in train mode: batch statistics)."""
    folded = FOLDED.fullmatch(transform)
    if folded:
        name = folded.group(1)
        try:
            bn = model.get_submodule(name)
        except AttributeError:
            return Owner(param=param, module=name, module_type="?", hookable=False)
        # A BatchNorm with an activation fused in (timm's BatchNormAct2d runs drop, then act,
        # after the normalization) is read at its first child's input: the normalized value.
        first = next((n for n, _ in bn.named_children()), None)
        return Owner(param=param, module=name, module_type=type(bn).__name__, hookable=True,
                     input_of=f"{name}.{first}" if first else None)  # fmt: skip
    path, _, local = param.rpartition(".")
    try:
        sub = model.get_submodule(path) if path else model
    except AttributeError:
        return Owner(param=param, module=path, module_type="?", hookable=False)
    leaf = not any(True for _ in sub.children())
    return Owner(
        param=param,
        module=path,
        module_type=type(sub).__name__,
        hookable=leaf and local == "weight",
    )


def first_tensor(value: object) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, tuple | list) and value:
        return first_tensor(value[0])
    return None


def log10_mean_square(tensor: torch.Tensor) -> float | None:
    if not tensor.is_floating_point() and not tensor.is_complex():
        return None
    m = float(tensor.detach().to(torch.float64).pow(2).mean()) if tensor.numel() else math.nan
    return math.log10(m) if m > 0 and math.isfinite(m) else None


def set_training_view(model: nn.Module) -> int:
    """Eval mode everywhere but in modules with running statistics; returns how many."""
    model.eval()
    count = 0
    for sub in model.modules():
        if (
            getattr(sub, "running_var", None) is not None
            or getattr(sub, "running_mean", None) is not None
        ):
            sub.train()
            count += 1
    return count


def measure_modules(
    model: nn.Module, points: Iterable[str], forward: Forward
) -> dict[str, tuple[float | None, int]]:
    """hook point (a module path, or ``path:input``) -> (log10 E[x²] of the first call's
    output, or input, and the number of calls)."""
    seen: dict[str, list[float | None]] = {}
    handles = []

    def keep(point: str, value: object) -> None:
        out = first_tensor(value)
        seen.setdefault(point, []).append(None if out is None else log10_mean_square(out))

    def output_hook(point: str) -> Callable[[nn.Module, object, object], None]:
        return lambda _mod, _args, output: keep(point, output)

    def input_hook(point: str) -> Callable[[nn.Module, object], None]:
        return lambda _mod, args: keep(point, args)

    for point in sorted(set(points)):
        path, _, where = point.partition(":")
        sub = model.get_submodule(path)
        if where == "input":
            handles.append(sub.register_forward_pre_hook(input_hook(point)))
        else:
            handles.append(sub.register_forward_hook(output_hook(point)))
    try:
        with torch.no_grad():
            forward()
    finally:
        for h in handles:
            h.remove()
    return {path: (values[0], len(values)) for path, values in seen.items()}


def measure(
    model: nn.Module, owners: Mapping[tuple[str, str], Owner], forward: Forward
) -> tuple[dict[str, dict[str, object]], int]:
    """Per hook point: train-view and eval-mode log10 E[x²] and call counts; and how many
    modules were put in train mode. Running statistics are restored afterwards."""
    paths = [o.point for o in owners.values() if o.hookable]
    saved = {
        k: v.clone() for k, v in model.state_dict().items() if "running_" in k or "num_batches" in k
    }
    model.eval()
    evaluated = measure_modules(model, paths, forward)
    trained = set_training_view(model)
    training = measure_modules(model, paths, forward)
    model.load_state_dict(saved, strict=False)
    model.eval()
    out: dict[str, dict[str, object]] = {}
    for path in sorted(set(paths)):
        train_value, calls = training.get(path, (None, 0))
        out[path] = {
            "train": train_value,
            "eval": evaluated.get(path, (None, 0))[0],
            "calls": calls,
        }
    return out, trained
