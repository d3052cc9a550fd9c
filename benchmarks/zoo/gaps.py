"""Per-layer predicted / onnxruntime / framework scales, and the distribution of their gaps."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

GAP_KINDS = {
    "predicted_vs_framework": "predicted vs framework (train view)",
    "predicted_vs_onnxruntime": "predicted vs onnxruntime (--propagate)",
    "onnxruntime_vs_framework_eval": "onnxruntime vs framework (eval mode): mapping check",
}
DEPTH_COLUMNS = ("tensor", "op_type", "predicted", "onnxruntime", "framework", "framework_eval",
                 "param", "module_type", "note", "between")  # fmt: skip
BETWEEN_FROM = 1.0  # list the ops between layers where |predicted - framework| reaches this
WORST_LAYERS = 40


@dataclass(frozen=True, kw_only=True)
class LayerRow:
    tensor: str
    node: str
    op_type: str
    predicted: float | None
    onnxruntime: float | None
    framework: float | None
    framework_eval: float | None
    param: str | None
    module_type: str | None
    note: str | None = None
    between: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [])}


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 3)


def _pick(op_type: str, rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Of the torch tensors an initializer equals (tied weights have several), the one whose
    module does what the ONNX node does: an Embedding for a Gather, else not an Embedding."""
    if not rows:
        return None

    def fit(row: Mapping[str, Any]) -> tuple[bool, bool, bool]:
        embedding = "Embedding" in str(row.get("module_type"))
        return (
            embedding != (op_type == "Gather"),
            row.get("train") is None,
            row.get("transform") != "identity",
        )

    return min(rows, key=fit)


def layer_rows(
    depth: Sequence[Mapping[str, Any]],
    measured: Mapping[str, Sequence[Mapping[str, Any]]],
    between: Mapping[str, Sequence[str]],
) -> list[LayerRow]:
    rows = []
    for d in depth:
        row = _pick(d["op_type"], measured.get(d["tensor"], []))
        note = None
        if row is None:
            note = "no torch tensor has these values"
        elif not row.get("hookable"):
            note = f"owned by a composite {row.get('module_type')}: no hook output"
        elif row.get("train") is None:
            note = "module not called, or its output not a float tensor"
        pred, fw = _round(d.get("log10_output")), _round(row.get("train") if row else None)
        far = pred is not None and fw is not None and abs(pred - fw) >= BETWEEN_FROM
        rows.append(
            LayerRow(
                tensor=d["tensor"],
                node=d["node"],
                op_type=d["op_type"],
                predicted=pred,
                onnxruntime=_round(d.get("measured_log10_output")),
                framework=fw,
                framework_eval=_round(row.get("eval") if row else None),
                param=row.get("param") if row else None,
                module_type=row.get("module_type") if row else None,
                note=note,
                between=list(between.get(d["node"], [])) if far else [],
            )
        )
    return rows


def _pairs(kind: str) -> Callable[[Mapping[str, Any]], tuple[Any, Any]]:
    return {
        "predicted_vs_framework": lambda r: (r.get("predicted"), r.get("framework")),
        "predicted_vs_onnxruntime": lambda r: (r.get("predicted"), r.get("onnxruntime")),
        "onnxruntime_vs_framework_eval": lambda r: (r.get("onnxruntime"), r.get("framework_eval")),
    }[kind]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return round(s[lo] + (s[hi] - s[lo]) * (pos - lo), 3)


def _distribution(records: Sequence[Mapping[str, Any]], kind: str) -> dict[str, Any]:
    pair = _pairs(kind)
    every: list[float] = []
    per_model: list[tuple[float, str]] = []
    for r in records:
        gaps = [abs(a - b) for a, b in map(pair, r["depth"]) if a is not None and b is not None]
        every.extend(gaps)
        if gaps:
            per_model.append((percentile(gaps, 0.5) or 0.0, f"{r['source']}:{r['model']}"))
    worst = max(per_model, default=(None, "—"))
    return {
        "layers": len(every),
        "models": len(per_model),
        "median": percentile(every, 0.5),
        "p95": percentile(every, 0.95),
        "max": round(max(every), 3) if every else None,
        "worst_model": {"model": worst[1], "median": worst[0]},
    }


def gap_summary(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {kind: _distribution(records, kind) for kind in GAP_KINDS}
    out["by_source"] = {
        source: {
            kind: _distribution([r for r in records if r["source"] == source], kind)
            for kind in GAP_KINDS
        }
        for source in sorted({r["source"] for r in records})
    }
    worst: list[dict[str, Any]] = []
    for r in records:
        rows = [
            d
            for d in r["depth"]
            if d.get("predicted") is not None and d.get("framework") is not None
        ]
        if not rows:
            continue
        d = max(rows, key=lambda d: abs(d["predicted"] - d["framework"]))
        worst.append(
            {
                "model": f"{r['source']}:{r['model']}",
                "tensor": d["tensor"],
                "op_type": d["op_type"],
                "predicted": d["predicted"],
                "onnxruntime": d.get("onnxruntime"),
                "framework": d["framework"],
                "gap": round(abs(d["predicted"] - d["framework"]), 3),
                "between": d.get("between", []),
                "assumed": r.get("depth_assumptions", []),
            }
        )
    out["worst_layers"] = sorted(worst, key=lambda w: (-w["gap"], w["model"]))[:WORST_LAYERS]
    return out
