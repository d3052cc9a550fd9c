"""Map an exported model's initializers back to the framework tensors they came from, by value.

Exporters rename (``onnx::MatMul_6``, ``val_12``), transpose, fold BatchNorm into the layer
before it, reorder recurrent gates and merge equal tensors (init-reference.md §5.2). Names
cannot be trusted: dynamo keeps the name ``c.weight`` on a BN-folded weight whose values
changed. Values can: an exporter moves numbers around but does not invent them, so every
initializer is looked up among the framework's tensors laid out as an exporter may lay them out
(a :class:`View`), and what is not found exactly is tested as a per-channel rescaling of a
weight by a normalization layer (a :class:`Norm`) or as rows gathered from an embedding table.

This module knows neither torch nor keras: ``initaudit.torch`` and ``initaudit.keras`` build
the views and norms from a live model, and only they import their framework.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from initaudit._compat import StrEnum

# Ops that pass an initializer through unchanged in value (Identity from legacy
# deduplication, Transpose of a tied lm_head, Cast of half weights): their consumers are the
# initializer's real consumers.
_PASSTHROUGH = frozenset({"Identity", "Transpose", "Cast"})
# Ops whose weight an exporter may fold a following normalization into, and the input slot
# of the bias the fold creates or changes.
_FOLD_BIAS_SLOT = {"Conv": 2, "ConvTranspose": 2, "Gemm": 2}
# How closely a folded tensor must fit, relative to its largest value: the exporters fold in
# the tensor's own precision, so γ/√(var+ε) differs from ours in float32's 7th digit, and in
# half precision's 3rd.
_FOLD_RTOL: dict[int, float] = {onnx.TensorProto.FLOAT16: 2e-3, onnx.TensorProto.BFLOAT16: 1e-2}
_FOLD_RTOL_DEFAULT = 1e-4
_MAX_ALSO_SHOWN = 3


class Transform(StrEnum):
    """How an initializer's values relate to the framework tensors they came from."""

    IDENTITY = "identity"
    TRANSPOSED = "transposed"
    LAYOUT = "layout"  # axes permuted from the framework's layout (Keras HWIO -> ONNX OIHW)
    GATES = "gates"  # recurrent gate blocks reordered and directions stacked
    FOLDED = "folded"  # a normalization layer folded in (weight × scale, bias × scale + shift)
    ROWS = "rows"  # rows of an embedding table, gathered at export by constant folding
    DERIVED = "derived"  # a normalization's scale or shift, computed from its statistics


class Part(StrEnum):
    """Which tensor of its layer a view is: a fold rescales the weight and rewrites the bias."""

    WEIGHT = "weight"
    BIAS = "bias"
    OTHER = "other"


@dataclass(frozen=True, kw_only=True)
class View:
    """A framework tensor (or several, concatenated) laid out as an exporter may emit it.

    ``name`` is the framework's path of the (first) tensor, ``sources`` every tensor the value
    combines (an ONNX LSTM ``B`` is ``b_ih`` and ``b_hh``); ``layer`` is the owning layer's path
    and ``owner`` its class as the user writes it (``nn.Linear``, ``Dense``). ``ops`` are the
    ONNX op types the layer exports to, so that of two tensors with equal values (tied
    embedding and lm_head) the one whose layer reads it is named. ``out_axis`` is the axis of
    output channels in this layout, along which a normalization would be folded in; None when
    this view is never folded.
    """

    name: str
    owner: str | None
    layer: str
    value: np.ndarray = field(repr=False)
    transform: Transform = Transform.IDENTITY
    detail: str = ""
    sources: tuple[str, ...] = ()
    part: Part = Part.OTHER
    ops: frozenset[str] = frozenset()
    out_axis: int | None = None
    table: bool = False  # an embedding table, whose rows export may gather and fold

    @property
    def all_sources(self) -> tuple[str, ...]:
        return self.sources or (self.name,)


@dataclass(frozen=True, kw_only=True)
class Norm:
    """A normalization an exporter may fold into the layer before it: ``y = x·scale + shift``.

    For BatchNorm in inference, ``scale = γ/√(running_var + ε)`` and ``shift = β − μ·scale``.
    ``pattern`` is how a message names all of its tensors (``bn1.*``), ``sources`` those
    tensors' names, ``scale_name`` the tensor an exported ``scale`` is named after (γ),
    ``shift_name`` the
    tensor a folded bias is named after when the layer had no bias of its own; ``after`` is
    the layer it follows in the model's definition, preferred among norms of equal scale.
    """

    name: str
    owner: str | None
    pattern: str
    sources: tuple[str, ...]
    scale_name: str
    shift_name: str
    scale: np.ndarray = field(repr=False)
    shift: np.ndarray = field(repr=False)
    after: str | None = None


@dataclass(frozen=True, kw_only=True)
class Origin:
    """Where one ONNX initializer came from in the framework's model.

    ``name`` is the framework tensor a message names and ``owner`` its layer's class;
    ``sources`` are all the framework tensors its values were computed from; ``also`` other
    framework tensors with exactly the same values (a tied weight, or tensors the exporter
    merged into this one).
    """

    tensor: str
    name: str
    owner: str | None
    transform: Transform
    sources: tuple[str, ...]
    detail: str = ""
    also: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``encoder.layers.0.linear1.weight (nn.Linear)``: how a report names the tensor."""
        text = self.name if self.owner is None else f"{self.name} ({self.owner})"
        if self.detail:
            text += f", {self.detail}"
        if self.also:
            shown = ", ".join(self.also[:_MAX_ALSO_SHOWN])
            more = len(self.also) - _MAX_ALSO_SHOWN
            text += f"; same values as {shown}" + (f" and {more} more" if more > 0 else "")
        return text


@dataclass(frozen=True, kw_only=True)
class OriginMap:
    """Every float initializer's :class:`Origin`, and the framework tensors none came from
    (dynamo drops all-zero biases, a fold absorbs a norm's tensors, constants get folded)."""

    origins: tuple[Origin, ...]
    unmatched: tuple[str, ...]

    def get(self, tensor: str) -> Origin | None:
        return next((o for o in self.origins if o.tensor == tensor), None)

    def __getitem__(self, tensor: str) -> Origin:
        found = self.get(tensor)
        if found is None:
            raise KeyError(tensor)
        return found


def map_origins(
    model: onnx.ModelProto,
    views: Sequence[View],
    norms: Sequence[Norm] = (),
    scope: Callable[[onnx.NodeProto], str | None] | None = None,
) -> OriginMap:
    """Find each float initializer of ``model`` among ``views`` (exactly) or as a view with one
    of ``norms`` folded in; initializers found nowhere are left out of the map.

    ``scope`` reads the framework layer a node was exported from, when the exporter says
    (``/layers.0/linear1/MatMul``): of two tensors with equal values (two zeroed layers),
    the one of the layer that reads the initializer is named."""
    values, rtols = _initializer_values(model)
    readers = _readers(model)
    index = _ExactIndex(views)
    found: dict[str, Origin] = {}
    for name, value in values.items():
        hits = index.lookup(value)
        if hits:
            nodes = readers.get(name, ())
            ops = frozenset(n.op_type for n in nodes)
            scopes = frozenset(s for s in map(scope, nodes) if s) if scope else frozenset()
            found[name] = _best_exact(name, hits, ops, scopes)
    loose = [n for n in values if n not in found]
    found.update(_folded(model, {n: values[n] for n in loose}, rtols, views, norms))
    for name in loose:
        if name not in found:
            rest = _norm_constant(name, values[name], rtols[name], norms)
            found.update({name: rest} if rest else {})
        if name not in found:
            rows = _gathered(name, values[name], views)
            if rows is not None:
                found[name] = rows
    used = {s for o in found.values() for s in (*o.sources, *o.also)}
    unmatched = tuple(dict.fromkeys(s for v in views for s in v.all_sources if s not in used))
    ordered = tuple(found[n] for n in values if n in found)
    return OriginMap(origins=ordered, unmatched=unmatched)


# --------------------------------------------------------------------------- reading the model


def _initializer_values(
    model: onnx.ModelProto,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Float initializers with more than one element, as float32 (a scalar matches anything),
    and the tolerance of a fold check for each (by its precision)."""
    out: dict[str, np.ndarray] = {}
    rtols: dict[str, float] = {}
    for init in model.graph.initializer:
        if init.data_type not in _FLOAT_TYPES or int(np.prod(init.dims)) <= 1:
            continue
        out[init.name] = np.asarray(numpy_helper.to_array(init)).astype(np.float32)
        rtols[init.name] = _FOLD_RTOL.get(init.data_type, _FOLD_RTOL_DEFAULT)
    return out, rtols


_FLOAT_TYPES = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
        onnx.TensorProto.DOUBLE,
    }
)


def _readers(model: onnx.ModelProto) -> dict[str, tuple[onnx.NodeProto, ...]]:
    """The nodes reading each initializer, looking through value-preserving ops (Identity, …)."""
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def real(name: str, seen: frozenset[str]) -> Iterator[onnx.NodeProto]:
        for node in readers.get(name, ()):
            if node.op_type in _PASSTHROUGH and node.output and node.output[0] not in seen:
                yield from real(node.output[0], seen | {node.output[0]})
            else:
                yield node

    return {init.name: tuple(real(init.name, frozenset())) for init in model.graph.initializer}


# --------------------------------------------------------------------------- exact matches


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _digest(value: np.ndarray) -> bytes:
    """A hash of the values in row-major order and of the shape without unit axes: inserting
    an axis of 1 moves no value (tf2onnx runs a Conv1D as a Conv2D on an (out, in, 1, k)
    kernel; a per-channel bias becomes (1, C, 1, 1) to broadcast)."""
    flat = np.ascontiguousarray(value, dtype=np.float32)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(_squeezed(flat.shape)).encode())
    h.update(flat.tobytes())
    return h.digest()


class _ExactIndex:
    """Views by a hash of their float32 bytes: one pass over the model, whatever its size."""

    def __init__(self, views: Iterable[View]) -> None:
        self._by_digest: dict[bytes, list[tuple[int, View]]] = {}
        for order, view in enumerate(views):
            if view.value.size > 1:
                self._by_digest.setdefault(_digest(view.value), []).append((order, view))

    def lookup(self, value: np.ndarray) -> list[tuple[int, View]]:
        return self._by_digest.get(_digest(value), [])


def _best_exact(
    tensor: str, hits: list[tuple[int, View]], ops: frozenset[str], scopes: frozenset[str]
) -> Origin:
    """Of views with equal values, name the one whose layer exports to the op reading the
    tensor (a Gather reads the embedding, not the lm_head tied to it), then the one whose
    layer the reading node was exported from, then the one the exporter named it after, then
    the plainest layout; list the others as ``also``."""

    def rank(hit: tuple[int, View]) -> tuple[bool, bool, bool, int, int]:
        order, view = hit
        reads = bool(view.ops & ops)
        placed = view.layer in scopes
        named = tensor in view.all_sources
        return (not reads, not placed, not named, list(Transform).index(view.transform), order)

    ordered = sorted(hits, key=rank)
    best = ordered[0][1]
    others = (s for _, v in ordered[1:] for s in v.all_sources if s not in best.all_sources)
    return Origin(
        tensor=tensor,
        name=best.name,
        owner=best.owner,
        transform=best.transform,
        sources=best.all_sources,
        detail=best.detail,  # a transposed or re-laid-out copy is still just that weight
        also=tuple(dict.fromkeys(others)),
    )


# --------------------------------------------------------------------------- folded norms


def _channel_scale(
    value: np.ndarray, weight: np.ndarray, axis: int, rtol: float
) -> np.ndarray | None:
    """``s`` with ``value == weight · s`` along ``axis`` (to float32 rounding), else None.

    A channel whose weight is all zero must stay zero and gets s = nan (any scale fits)."""
    w = np.moveaxis(weight.astype(np.float64), axis, 0).reshape(weight.shape[axis], -1)
    x = np.moveaxis(value.astype(np.float64), axis, 0).reshape(value.shape[axis], -1)
    ww = np.einsum("ij,ij->i", w, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(ww > 0, np.einsum("ij,ij->i", x, w) / ww, np.nan)
    fitted = np.where(np.isnan(s)[:, None], 0.0, w * np.nan_to_num(s)[:, None])
    tol = rtol * np.abs(x).max(initial=0.0) + 1e-30
    return s if np.all(np.abs(x - fitted) <= tol) else None


def _same_scale(s: np.ndarray, norm: Norm, rtol: float) -> bool:
    if norm.scale.shape != s.shape:
        return False
    known = ~np.isnan(s)
    return bool(np.allclose(s[known], norm.scale[known], rtol=rtol, atol=1e-12))


def _pick_norm(s: np.ndarray, layer: str, norms: Sequence[Norm], rtol: float) -> Norm | None:
    fits = [n for n in norms if _same_scale(s, n, rtol)]
    if not fits:
        return None
    return next((n for n in fits if n.after == layer), fits[0])


def _folded(
    model: onnx.ModelProto,
    loose: dict[str, np.ndarray],
    rtols: dict[str, float],
    views: Sequence[View],
    norms: Sequence[Norm],
) -> dict[str, Origin]:
    """Weights found as ``view · norm.scale`` per channel, and the biases of the nodes that
    read them found as ``bias · scale + shift`` (or ``shift`` when the layer had no bias)."""
    if not norms or not loose:
        return {}
    weights = [v for v in views if v.part is Part.WEIGHT and v.out_axis is not None]
    folds: dict[str, tuple[View, Norm]] = {}
    for name, value in loose.items():
        for view in weights:
            axis = _axis_in(value.shape, view)
            if axis is None:
                continue
            rtol = rtols[name]
            s = _channel_scale(value, view.value.reshape(value.shape), axis, rtol)
            norm = None if s is None else _pick_norm(s, view.layer, norms, rtol)
            if norm is not None:
                folds[name] = (view, norm)
                break
    out = {name: _folded_weight(name, view, norm) for name, (view, norm) in folds.items()}
    biases = {(v.layer, v.part): v for v in views if v.part is Part.BIAS}
    for node in model.graph.node:
        slot = _FOLD_BIAS_SLOT.get(node.op_type)
        if slot is None or len(node.input) <= slot or node.input[1] not in folds:
            continue
        bias_name = node.input[slot]
        if bias_name not in loose or bias_name in out:
            continue
        view, norm = folds[node.input[1]]
        bias = biases.get((view.layer, Part.BIAS))
        origin = _folded_bias(bias_name, loose[bias_name], rtols[bias_name], view, bias, norm)
        if origin is not None:
            out[bias_name] = origin
    return out


def _axis_in(shape: tuple[int, ...], view: View) -> int | None:
    """``view``'s output-channel axis in an initializer of ``shape`` holding the same values
    (maybe with unit axes inserted), or None when the shapes or the axis do not line up."""
    own = view.value.shape
    if view.out_axis is None or _squeezed(own) != _squeezed(shape):
        return None
    if shape == own:
        return view.out_axis
    axis = view.out_axis % len(own)
    before, after = own[:axis], own[axis + 1 :]
    if shape[: len(before)] == before and own[axis] != 1:
        return axis  # the channel axis keeps its place (unit axes were added after it)
    if after and shape[len(shape) - len(after) :] == after:
        return len(shape) - len(after) - 1
    return None


def _folded_weight(tensor: str, view: View, norm: Norm) -> Origin:
    return Origin(
        tensor=tensor,
        name=view.name,
        owner=view.owner,
        transform=Transform.FOLDED,
        sources=(*view.all_sources, *norm.sources),
        detail=f"folded from {view.name} and {norm.pattern}",
    )


def _folded_bias(
    tensor: str, value: np.ndarray, rtol: float, weight: View, bias: View | None, norm: Norm
) -> Origin | None:
    base = np.zeros_like(norm.shift) if bias is None else bias.value.astype(np.float64)
    if _squeezed(base.shape) != _squeezed(value.shape):
        return None
    value = value.reshape(base.shape)
    expected = base * norm.scale + norm.shift
    scale = np.abs(expected).max(initial=0.0) + np.abs(norm.shift).max(initial=0.0)
    if not np.allclose(value, expected, rtol=rtol, atol=rtol * scale + 1e-12):
        return None
    if bias is None:
        return Origin(
            tensor=tensor,
            name=norm.shift_name,
            owner=norm.owner,
            transform=Transform.FOLDED,
            sources=norm.sources,
            detail=f"folded from {norm.pattern} into {weight.layer} (which has no bias)",
        )
    return Origin(
        tensor=tensor,
        name=bias.name,
        owner=bias.owner,
        transform=Transform.FOLDED,
        sources=(*bias.all_sources, *norm.sources),
        detail=f"folded from {bias.name} and {norm.pattern}",
    )


def _norm_constant(
    tensor: str, value: np.ndarray, rtol: float, norms: Sequence[Norm]
) -> Origin | None:
    """A normalization exported unfolded as ``Mul(scale)`` and ``Add(shift)`` constants
    (tf2onnx does this for a BatchNormalization after a conv with a bias)."""
    flat = value.reshape(-1)
    for norm in norms:
        for kind, target, name in (
            ("γ/√(var+ε)", norm.scale, norm.scale_name),
            ("β − μ·γ/√(var+ε)", norm.shift, norm.shift_name),
        ):
            if flat.shape != target.reshape(-1).shape:
                continue
            size = np.abs(target).max(initial=0.0)
            if np.allclose(flat, target.reshape(-1), rtol=rtol, atol=rtol * size + 1e-12):
                return Origin(
                    tensor=tensor,
                    name=name,
                    owner=norm.owner,
                    transform=Transform.DERIVED,
                    sources=norm.sources,
                    detail=f"exported as {kind} of {norm.pattern}",
                )
    return None


# --------------------------------------------------------------------------- gathered rows


def _gathered(tensor: str, value: np.ndarray, views: Sequence[View]) -> Origin | None:
    """Rows of an embedding table that export gathered and constant-folded (a position table
    sliced to the example's length): ``[a:b]`` when contiguous, else the row indices."""
    if value.ndim != 2:
        return None
    for view in views:
        table = view.value
        if not view.table or table.ndim != 2 or table.shape[1] != value.shape[1]:
            continue
        if table.shape == value.shape:
            continue
        rows = _row_indices(value, table)
        if rows is None:
            continue
        contiguous = rows == list(range(rows[0], rows[0] + len(rows)))
        where = f"[{rows[0]}:{rows[-1] + 1}]" if contiguous else str(rows)
        return Origin(
            tensor=tensor,
            name=view.name,
            owner=view.owner,
            transform=Transform.ROWS,
            sources=view.all_sources,
            detail=f"rows {where}",
        )
    return None


def _row_indices(value: np.ndarray, table: np.ndarray) -> list[int] | None:
    flat = np.ascontiguousarray(table, dtype=np.float32)
    index = {row.tobytes(): i for i, row in reversed(list(enumerate(flat)))}
    rows = [index.get(row.tobytes()) for row in np.ascontiguousarray(value, dtype=np.float32)]
    return None if any(r is None for r in rows) else [r for r in rows if r is not None]
