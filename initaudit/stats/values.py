"""The real values of a site: the stored tensor, dequantized where the graph says so.

A :class:`Values` reads the stored elements on demand (a view of the memory map for external
data) and widens only what is asked for: a chunk, some rows, a sample. No statistic needs the
whole tensor as floats at once, so a 1.5B-parameter fp16 model costs a few chunks of memory.

Quantized weights are audited as what the network computes with, (q - zero_point) * scale,
per tensor, per axis or per block exactly as DequantizeLinear defines it (ONNX opset 21).
They are dequantized whole, as before: their scale depends on the element's position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from initaudit.errors import InputError
from initaudit.graph.model import WeightSite
from initaudit.stats.decode import Widen, widener, widener_for
from initaudit.store import TensorStore

# Elements widened at a time by :meth:`Values.chunks` (4 MB of float32).
CHUNK = 1 << 20
# A scan gives back the memory-mapped pages of tensors bigger than this chunk by chunk; smaller
# ones keep them until measured (samples and rows are read again), then give them back whole.
EAGER_RELEASE = 64 << 20


def _keep(start: int, stop: int) -> None:
    """Default release hook: values held in memory have nothing to give back."""


@dataclass(frozen=True)
class Values:
    """A tensor's float values, read from its stored elements a selection at a time."""

    stored: np.ndarray  # elements as stored (float16, bfloat16 bits, float32...), with the dims
    widen: Widen  # exact elementwise conversion to float32 (float64 for double)
    release: Callable[[int, int], None] = _keep  # flat elements [a, b) will not be read soon

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.stored.shape)

    @property
    def ndim(self) -> int:
        return self.stored.ndim

    @property
    def size(self) -> int:
        return int(self.stored.size)

    def __getitem__(self, key: Any) -> np.ndarray:
        """Float values of ``stored[key]``: keep the selection small (rows, a sample)."""
        return self.widen(self.stored[key])

    def view(self, fn: Callable[[np.ndarray], np.ndarray]) -> Values:
        """The values of ``fn(stored)``, where ``fn`` only reshapes, transposes or indexes."""
        return Values(fn(self.stored), self.widen)

    def chunks(self, size: int = CHUNK) -> Iterator[tuple[int, np.ndarray]]:
        """(flat offset, float values) of consecutive flat chunks of ``size`` elements.

        A chunk is valid until the next one is asked for: converted values reuse one buffer.
        """
        flat = self.stored.reshape(-1)
        eager = flat.nbytes > EAGER_RELEASE
        # Converted (or, unaligned, copied: decode.py) into one reused buffer.
        copied = flat.dtype.itemsize < 4 or (flat.dtype == np.float32 and not flat.flags.aligned)
        out = np.empty(min(size, flat.size), np.float32) if copied else None
        for start in range(0, flat.size, size):
            stop = min(flat.size, start + size)
            yield start, self.widen(flat[start:stop], None if out is None else out[: stop - start])
            if eager:
                self.release(start, stop)

    def take(self, flat_index: np.ndarray) -> np.ndarray:
        """Float values at sorted flat positions (a sample)."""
        return self.widen(self.stored.reshape(-1)[flat_index])

    def array(self) -> np.ndarray:
        """Every value as floats at once: for vectors and other small tensors only."""
        return self.widen(self.stored)


def as_values(values: Values | np.ndarray) -> Values:
    if isinstance(values, Values):
        return values
    arr = np.asarray(values)
    return Values(arr, widener(arr.dtype))


def site_reader(site: WeightSite, store: TensorStore) -> Values:
    """The site's values, read lazily (float32, or float64 for double tensors)."""
    if site.quant is None:
        stored, t = store.stored(site.name), store.tensors[site.name]
        return Values(stored, widener_for(t.data_type), store.releaser(site.name))
    return as_values(site_values(site, store))


def site_values(site: WeightSite, store: TensorStore) -> np.ndarray:
    """All the site's float values at once (float32, or float64 for double tensors)."""
    if site.quant is None:
        return site_reader(site, store).array()
    raw = store.read(site.name)
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
        # DequantizeLinear (opset 21): the scale has x's shape except on the blocked axis,
        # where it has ceil(len / block_size) entries.
        want = tuple(-(-d // block_size) if i == ax else d for i, d in enumerate(x.shape))
        if scale.shape != want:
            raise InputError(
                "bad-tensor",
                f"tensor {name!r}: block scale shape {list(scale.shape)} does not fit "
                f"{list(x.shape)} with block_size {block_size} on axis {axis}",
            )
        idx = np.arange(x.shape[ax]) // block_size
        s = np.take(scale, idx, axis=ax)
        z = np.take(zp, idx, axis=ax)
        return np.asarray((x - z) * s)
    if scale.ndim != 1 or scale.shape[0] != x.shape[ax]:
        raise InputError(
            "bad-tensor",
            f"tensor {name!r}: {scale.size} scales for axis {axis} of length {x.shape[ax]}",
        )
    shape = [1] * x.ndim
    shape[ax] = -1
    return np.asarray((x - zp.reshape(shape)) * scale.reshape(shape))
