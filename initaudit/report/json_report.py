"""``--format json``: the stable contract (schema_version 1). Key order is set here only.

Fields are added, never renamed or removed; README "JSON output" documents each one.
"""

from __future__ import annotations

import json
import math
from typing import Any

from initaudit.findings import Finding
from initaudit.report.model import DepthEntry, Report, TensorReport

SCHEMA_VERSION = 1


def _num(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.6g}")


def _tensor(t: TensorReport) -> dict[str, Any]:
    return {
        "name": t.name,
        "node": t.node,
        "op_type": t.op_type,
        "role": t.role,
        "shape": list(t.shape),
        "dtype": t.dtype,
        "fan_in": t.fan_in,
        "fan_out": t.fan_out,
        "activation": t.activation,
        "scheme": t.scheme,
        "mean": _num(t.mean),
        "std": _num(t.std),
        "expected_std": _num(t.expected_std),
        "ratio": _num(t.ratio),
        "min": _num(t.min),
        "max": _num(t.max),
        "normalized": t.normalized,
        "quantized": t.quantized,
        "uses": list(t.uses),
        "source": t.source,
    }


def _depth(d: DepthEntry) -> dict[str, Any]:
    return {
        "tensor": d.tensor,
        "node": d.node,
        "op_type": d.op_type,
        "log10_forward": _num(d.log10_forward),
        "log10_backward": _num(d.log10_backward),
        "log10_output": _num(d.log10_output),
        "measured_log10_output": _num(d.measured_log10_output),
        "judged": d.judged,
        "judged_backward": d.judged_backward,
        "assumed": list(d.assumed),
        "assumed_backward": list(d.assumed_backward),
        "batch_norm": d.batch_norm,
    }


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": f.severity.label,
        "tensor": f.tensor,
        "node": f.node,
        "message": f.message,
        "op_type": f.op_type,
        "fix": f.fix,
        "source": f.source,
    }


def render(report: Report) -> str:
    s = report.summary
    doc = {
        "schema_version": SCHEMA_VERSION,
        "initaudit_version": report.version,
        "files": [
            {
                "path": f.path,
                "error": None
                if f.error is None
                else {"code": f.error.code, "message": f.error.message},
                "tensors": [_tensor(t) for t in f.tensors],
                "findings": [_finding(x) for x in f.findings],
                "depth": [_depth(d) for d in f.depth],
                "depth_assumptions": list(f.depth_assumptions),
                "exporter": f.exporter,
            }
            for f in report.files
        ],
        "summary": {
            "files": s.files,
            "errors": s.errors,
            "warnings": s.warnings,
            "infos": s.infos,
            "file_errors": s.file_errors,
            "baselined": s.baselined,
        },
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
