"""The real values of a site: the stored tensor, dequantized where the graph says so.

Quantized weights are audited as what the network computes with, (q - zero_point) * scale,
per tensor, per axis or per block exactly as DequantizeLinear defines it (ONNX opset 21).
"""

from __future__ import annotations

import numpy as np

from initaudit.errors import InputError
from initaudit.graph.sites import WeightSite
from initaudit.load import TensorStore


def site_values(site: WeightSite, store: TensorStore) -> np.ndarray:
    """Float values with the stored shape (float32, or float64 for double tensors)."""
    raw = store.read(site.name)
    if site.quant is None:
        if raw.dtype.kind != "f":
            return raw.astype(np.float32)
        return raw
    q = site.quant
    if q.scale not in store:
        raise InputError("bad-tensor", f"tensor {site.name!r}: quantization scale is not stored")
    scale = np.asarray(store.read(q.scale), dtype=np.float32)
    zp = (
        np.asarray(store.read(q.zero_point), dtype=np.float32)
        if q.zero_point and q.zero_point in store
        else np.zeros(1, dtype=np.float32)
    )
    return dequantize(raw, scale, zp, q.axis, q.block_size, site.name)


def dequantize(
    q: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int, block_size: int, name: str
) -> np.ndarray:
    x = q.astype(np.float32)
    if scale.size == 1 and zp.size <= 1:
        return (x - float(zp.reshape(-1)[0] if zp.size else 0.0)) * float(scale.reshape(-1)[0])
    if x.ndim == 0:
        raise InputError("bad-tensor", f"tensor {name!r}: per-axis scale on a scalar")
    ax = axis + x.ndim if axis < 0 else axis
    if not 0 <= ax < x.ndim:
        raise InputError("bad-tensor", f"tensor {name!r}: DequantizeLinear axis {axis} invalid")
    if zp.size <= 1:
        zp = np.full(scale.shape, float(zp.reshape(-1)[0]) if zp.size else 0.0, np.float32)
    if zp.shape != scale.shape:
        raise InputError("bad-tensor", f"tensor {name!r}: zero point and scale shapes differ")
    if block_size > 0:
        if scale.ndim != x.ndim or scale.shape[ax] * block_size < x.shape[ax]:
            raise InputError("bad-tensor", f"tensor {name!r}: block scale shape does not fit")
        idx = np.arange(x.shape[ax]) // block_size
        s = np.take(scale, idx, axis=ax)
        z = np.take(zp, idx, axis=ax)
        return (x - z) * s
    if scale.ndim != 1 or scale.shape[0] != x.shape[ax]:
        raise InputError(
            "bad-tensor",
            f"tensor {name!r}: {scale.size} scales for axis {axis} of length {x.shape[ax]}",
        )
    shape = [1] * x.ndim
    shape[ax] = -1
    return (x - zp.reshape(shape)) * scale.reshape(shape)
