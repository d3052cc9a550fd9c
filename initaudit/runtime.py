"""``--propagate``: measure the signal's scale by running the model on seeded random inputs.

The model is never written: a copy of the graph in memory gets every layer's output added as a
graph output, and runs through onnxruntime when it is installed (``initaudit[runtime]``), else
through onnx's reference evaluator. Float inputs are N(0, 1); integer inputs (token ids) are
uniform over the vocabulary of the embedding table they index; a dynamic dimension is 8
(enough values per layer for a stable mean square), unless ``--input-shape
name=1x3x224x224`` says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from initaudit.load import LoadedModel

if TYPE_CHECKING:
    import onnx

_SEED = 0x1A203
BACKENDS = ("onnxruntime", "reference")


class PropagationError(Exception):
    """The model could not be run; the audit goes on with the prediction alone."""


def parse_shapes(specs: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """``name=1x3x224x224`` (repeatable) -> {name: (1, 3, 224, 224)}."""
    out: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        name, sep, dims = spec.partition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d <= 0 for d in shape):
            raise ValueError(f"--input-shape {spec!r}: expected NAME=DxDx... with positive D")
        out[name] = shape
    return out


def _inputs(
    model: onnx.ModelProto, vocab: Mapping[str, int], shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    import onnx

    rng = np.random.default_rng(_SEED)
    inits = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    unknown = sorted(set(shapes) - {vi.name for vi in inputs})
    if unknown:
        listed = ", ".join(f"{vi.name} ({_spelled(vi)})" for vi in inputs) or "none"
        raise PropagationError(
            f"--input-shape names {', '.join(map(repr, unknown))}, which "
            f"{'is not an input' if len(unknown) == 1 else 'are not inputs'} of this model "
            f"(its inputs: {listed})"
        )
    feeds: dict[str, np.ndarray] = {}
    for vi in inputs:
        tt = vi.type.tensor_type
        if vi.name in shapes:
            shape = shapes[vi.name]
            _check_fixed(vi, shape)
        else:
            shape = tuple(d.dim_value if d.dim_value > 0 else 8 for k, d in enumerate(tt.shape.dim))
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        elif np.issubdtype(dtype, np.integer):
            feeds[vi.name] = rng.integers(0, max(vocab.get(vi.name, 2), 1), shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[vi.name] = np.ones(shape, dtype=bool)
        else:
            raise PropagationError(f"input {vi.name!r} has a type initaudit cannot generate")
    return feeds


def _spelled(vi: onnx.ValueInfoProto) -> str:
    """An input's declared shape: fixed sizes as numbers, dynamic ones by their name."""
    if not vi.type.tensor_type.HasField("shape"):
        return "any shape"
    dims = [
        str(d.dim_value) if d.dim_value > 0 else (d.dim_param or "?")
        for d in vi.type.tensor_type.shape.dim
    ]
    return "x".join(dims) or "scalar"


def _check_fixed(vi: onnx.ValueInfoProto, shape: tuple[int, ...]) -> None:
    """A shape given for an input must keep its fixed sizes: say which, before the runtime
    refuses it with a message of its own."""
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return
    dims = list(tt.shape.dim)
    fixed_ok = len(dims) == len(shape) and all(
        d.dim_value <= 0 or d.dim_value == n for d, n in zip(dims, shape, strict=True)
    )
    if not fixed_ok:
        given = "x".join(map(str, shape))
        raise PropagationError(
            f"--input-shape {vi.name}={given}: input {vi.name!r} has the fixed shape "
            f"{_spelled(vi)} (only the named dimensions can be chosen)"
        )


def measure_outputs(
    loaded: LoadedModel,
    values: Sequence[str],
    vocab: Mapping[str, int],
    shapes: Mapping[str, tuple[int, ...]],
    backend: str | None = None,
) -> dict[str, float]:
    """E[x²] of each named value on one seeded batch.

    ``backend`` is one of :data:`BACKENDS`; None takes onnxruntime when it is installed.
    onnx is imported here, not with the module: the audit alone does not need it, and its
    import costs more than the rest of a small model's audit.
    """
    import onnx

    # The loaded model's classes are initaudit.proto's, not onnx's: a copy crosses by bytes.
    model = onnx.ModelProto.FromString(loaded.model.SerializeToString())
    _inline_external(model, loaded)
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference is best effort; ORT may still run without types
        inferred = model
    types = {vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.value_info}
    existing = {o.name for o in model.graph.output}
    for v in values:
        if v not in existing:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(v, types.get(v, onnx.TensorProto.FLOAT), None)
            )
    feeds = _inputs(model, vocab, shapes)
    results = _run(model, feeds, list(values), backend or default_backend())
    out: dict[str, float] = {}
    for v, arr in zip(values, results, strict=True):
        a = np.asarray(arr, dtype=np.float64)
        m = float(np.mean(a * a)) if a.size else math.nan
        out[v] = m
    return out


def _inline_external(model: onnx.ModelProto, loaded: LoadedModel) -> None:
    """Copy validated external data, and the raw_data a big file's parse left in the file
    (wire.py), into the in-memory copy (the file is never touched)."""
    import onnx

    for t in model.graph.initializer:
        stored = loaded.store.get(t.name)
        if stored is None or stored.mapped_path is None:
            continue
        if t.data_location == onnx.TensorProto.EXTERNAL:
            t.ClearField("external_data")
            t.data_location = onnx.TensorProto.DEFAULT
        elif t.HasField("raw_data"):  # a same-named tensor that kept its own data
            continue
        t.raw_data = bytes(loaded.store.raw_bytes(stored))


def default_backend() -> str:
    """onnxruntime when installed (fast, and what deployments run), else onnx's evaluator."""
    try:
        import onnxruntime  # noqa: F401  (optional extra: initaudit[runtime])
    except ImportError:
        return "reference"
    return "onnxruntime"


def _run(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], names: list[str], backend: str
) -> list[np.ndarray]:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    try:
        if backend == "onnxruntime":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            sess = ort.InferenceSession(
                model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
            )
            return list(sess.run(names, feeds))
        from onnx.reference import ReferenceEvaluator

        return list(ReferenceEvaluator(model).run(names, feeds))
    except Exception as exc:  # any runtime failure: report it, keep the prediction
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PropagationError(_cut(first)) from None


def _cut(text: str, limit: int = 400) -> str:
    """One line, cut at a word (never mid-word) with an ellipsis when too long."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " ..."
