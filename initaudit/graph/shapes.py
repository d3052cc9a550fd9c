"""Shape algebra of the layout ops a weight passes through on its way to its op: pure
functions of shapes and attribute values, so each is tested on its own.

Each returns the output shape, or None when it cannot be known (a dynamic target, an
inconsistent attribute): fans are then not computed from a guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Shape = tuple[int, ...]


def transposed(shape: Shape, perm: Sequence[int] | None) -> Shape | None:
    """ONNX Transpose: ``perm`` defaults to reversing the axes."""
    order = tuple(perm) if perm else tuple(reversed(range(len(shape))))
    if sorted(order) != list(range(len(shape))):
        return None
    return tuple(shape[p] for p in order)


def reshaped(shape: Shape, target: Sequence[int] | None, allowzero: bool) -> Shape | None:
    """ONNX Reshape: 0 copies the input's axis (unless ``allowzero``), -1 is inferred once."""
    if target is None:
        return None
    total = math.prod(shape)
    out: list[int] = []
    infer = -1
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(shape):
                return None
            out.append(shape[i])
        elif d == -1:
            if infer >= 0:
                return None
            infer = i
            out.append(1)
        elif d < 0:
            return None
        else:
            out.append(d)
    known = math.prod(out)
    if infer >= 0:
        if known == 0 or total % known:
            return None
        out[infer] = total // known
    return tuple(out) if math.prod(out) == total else None


def flattened(shape: Shape, axis: int) -> Shape:
    """ONNX Flatten: the axes before ``axis`` and the ones from it, each multiplied out."""
    axis = axis + len(shape) if axis < 0 else axis
    return (math.prod(shape[:axis]), math.prod(shape[axis:]))


def squeezed(shape: Shape, axes: Sequence[int] | None, unsqueeze: bool) -> Shape | None:
    """ONNX Squeeze (no axes: every axis of length 1) and Unsqueeze (axes are required)."""
    if unsqueeze:
        if axes is None:
            return None
        rank = len(shape) + len(axes)
        norm = sorted(a + rank if a < 0 else a for a in axes)
        out = list(shape)
        for a in norm:
            if not 0 <= a <= len(out):
                return None
            out.insert(a, 1)
        return tuple(out)
    if axes is None:
        return tuple(d for d in shape if d != 1)
    drop = {a + len(shape) if a < 0 else a for a in axes}
    return tuple(d for i, d in enumerate(shape) if i not in drop)
