"""Map ONNX initializers back to the torch tensors they came from, by value.

As ``fixtures/make_torch_fixtures.py`` builds its MANIFEST: exporters rename weights (dynamo's
``val_N``, the legacy exporter's ``onnx::MatMul_N``), transpose MatMul weights, and fold a
fresh BatchNorm into the convolution before it (values x gamma/sqrt(var+eps), here
1/sqrt(1+eps)), so names cannot be trusted and values can. A candidate is a torch tensor,
as is, transposed (2-D), or BN-folded (compared with a tolerance).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

FLOAT_TYPES = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
        onnx.TensorProto.DOUBLE,
    }
)


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A value an initializer may hold: ``name`` is a state_dict key."""

    name: str
    transform: str
    value: np.ndarray
    tolerant: bool = False


@dataclass(frozen=True, kw_only=True)
class Match:
    initializer: str
    name: str
    transform: str


def _f32(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(torch.float32).cpu().numpy()


def plain_candidates(module: nn.Module) -> Iterator[Candidate]:
    """Every float state_dict entry (tied weights under each of their names), and its
    transpose when it is a matrix."""
    for name, tensor in module.state_dict(keep_vars=True).items():
        if not tensor.is_floating_point() or tensor.numel() <= 1:
            continue
        value = _f32(tensor)
        yield Candidate(name=name, transform="identity", value=value)
        if value.ndim == 2:
            yield Candidate(name=name, transform="transposed", value=value.T)


def bn_fold_candidates(module: nn.Module) -> Iterator[Candidate]:
    """A convolution's weight with the BatchNorm registered right after it folded in."""
    previous: tuple[str, nn.Module] | None = None
    for name, sub in module.named_modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm) and previous is not None:
            conv_name, conv = previous
            fits = sub.num_features == conv.weight.shape[0]  # not a mixed/grouped pair
            if fits and sub.running_var is not None and sub.weight is not None:
                var = sub.running_var.detach().double().cpu().numpy()
                scale = sub.weight.detach().double().cpu().numpy() / np.sqrt(var + sub.eps)
                weight = conv.weight.detach().double().cpu().numpy()
                folded = weight * scale.reshape(-1, *[1] * (weight.ndim - 1))
                yield Candidate(
                    name=f"{conv_name}.weight",
                    transform=f"bn_folded({name})",
                    value=folded.astype(np.float32),
                    tolerant=True,
                )
        is_conv = isinstance(sub, nn.Conv1d | nn.Conv2d | nn.Conv3d)
        previous = (name, sub) if is_conv and sub.weight.shape[0] > 0 else None


def _same(value: np.ndarray, cand: Candidate) -> bool:
    if cand.tolerant:
        return bool(np.allclose(value, cand.value, rtol=1e-5, atol=1e-8, equal_nan=True))
    return bool(np.array_equal(value, cand.value, equal_nan=True))


def match_initializers(model: onnx.ModelProto, module: nn.Module) -> dict[str, list[Match]]:
    """Every float initializer of ``model`` with more than one value -> the state_dict entries
    it equals (all of them: tied weights have several names), same-named ones first."""
    by_shape: dict[tuple[int, ...], list[Candidate]] = defaultdict(list)
    for cand in [*plain_candidates(module), *bn_fold_candidates(module)]:
        by_shape[cand.value.shape].append(cand)
    found: dict[str, list[Match]] = {}
    for init in model.graph.initializer:
        shape = tuple(init.dims)
        if init.data_type not in FLOAT_TYPES or int(np.prod(shape)) <= 1 or shape not in by_shape:
            continue
        value = numpy_helper.to_array(init).astype(np.float32)
        matches = [
            Match(initializer=init.name, name=c.name, transform=c.transform)
            for c in by_shape[shape]
            if _same(value, c)
        ]
        if matches:
            found[init.name] = sorted(matches, key=lambda m: (m.name != init.name, m.name))
    return found
