"""``report``: docs/zoo-sweep.json and docs/zoo-sweep.md from the cache alone.

Stable order (source, then model name), no timestamps, numbers rounded: rerunning the report
on an unchanged cache rewrites the same bytes.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from zoo.gaps import DEPTH_COLUMNS, GAP_KINDS, gap_summary, layer_rows
from zoo.records import ModelSpec, Status
from zoo.run import read

SEVERITIES = ("error", "warning", "info")
VERSIONS = ("torch", "timm", "transformers", "onnx", "onnxscript", "onnxruntime")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def model_record(cache: Path, spec: ModelSpec) -> dict[str, Any]:
    folder = cache / spec.source / spec.key
    export = read(folder / "export.json") or {"status": "not run"}
    measure = read(folder / "measure.json") or {"status": "not run"}
    audit = read(folder / "audit.json") or {"status": "not run"}
    plain = read(folder / "initaudit-plain.json") or {}
    propagated = read(folder / "initaudit-propagate.json") or {}
    file_plain = (plain.get("files") or [{}])[0]
    file_prop = (propagated.get("files") or [{}])[0]
    findings = sorted(
        (
            {k: f.get(k) for k in ("rule", "severity", "tensor", "node", "op_type", "message")}
            for f in file_plain.get("findings", [])
        ),
        key=lambda f: (f["rule"], f["tensor"] or "", f["node"] or ""),
    )
    depth = layer_rows(
        file_prop.get("depth", []), measure.get("tensors", {}), audit.get("between", {})
    )
    return {
        "source": spec.source,
        "model": spec.name,
        "group": spec.group,
        "parameters": export.get("parameters", spec.parameters),
        "input_shapes": export.get("input_shapes"),
        "export": {k: export.get(k) for k in ("status", "reason", "exporter", "failed_exporters")},
        "measure": {
            k: measure.get(k)
            for k in ("status", "reason", "train_mode_modules", "matched_initializers")
        },
        "audit": {k: audit.get(k) for k in ("status", "reason")},
        "propagate_notes": [n for n in audit.get("propagate_stderr", []) if "propagate" in n],
        "initaudit_version": plain.get("initaudit_version"),
        "severities": dict(Counter(f["severity"] for f in findings)),
        "findings": findings,
        "depth_assumptions": file_prop.get("depth_assumptions", []),
        "depth": [row.to_json() for row in depth],
    }


def _counts(records: list[dict[str, Any]]) -> dict[str, int]:
    def status(r: dict[str, Any], phase: str) -> str:
        return r[phase]["status"]

    return {
        "tried": len(records),
        "exported": sum(status(r, "export") == Status.OK for r in records),
        "exported_dynamo": sum(r["export"].get("exporter") == "dynamo" for r in records),
        "exported_legacy": sum(r["export"].get("exporter") == "legacy" for r in records),
        "export_failed": sum(status(r, "export") == Status.FAILED for r in records),
        "skipped_over_cap": sum(status(r, "export") == Status.SKIPPED for r in records),
        "timeout_or_crash": sum(
            status(r, p) in (Status.TIMEOUT, Status.CRASHED)
            for r in records
            for p in ("export", "measure", "audit")
        ),
        "not_run": sum(status(r, "export") == "not run" for r in records),
        "audited": sum(status(r, "audit") == Status.OK for r in records),
        "measured": sum(status(r, "measure") == Status.OK for r in records),
        "with_error": sum(r["severities"].get("error", 0) > 0 for r in records),
        "with_warning": sum(r["severities"].get("warning", 0) > 0 for r in records),
        "with_info_only": sum(
            bool(r["severities"]) and set(r["severities"]) == {"info"} for r in records
        ),
    }


def build_document(
    cache: Path, specs: Iterable[ModelSpec], settings: dict[str, Any]
) -> dict[str, Any]:
    records = sorted(
        (model_record(cache, s) for s in specs), key=lambda r: (r["source"], r["model"])
    )
    sources = sorted({r["source"] for r in records})
    versions = {p: _version(p) for p in VERSIONS}
    audited = [r["initaudit_version"] for r in records if r["initaudit_version"]]
    versions["initaudit"] = audited[0] if audited else "unknown"
    return {
        "versions": versions,
        "settings": settings,
        "summary": {s: _counts([r for r in records if r["source"] == s]) for s in sources},
        "rules": {s: _rule_counts([r for r in records if r["source"] == s]) for s in sources},
        "predicted_vs_measured": gap_summary(records),
        "models": records,
    }


def _rule_counts(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """rule/severity -> models with it, and findings."""
    out: dict[str, dict[str, int]] = {}
    for sev in SEVERITIES:
        models: Counter[str] = Counter()
        findings: Counter[str] = Counter()
        for r in records:
            rules = [f["rule"] for f in r["findings"] if f["severity"] == sev]
            findings.update(rules)
            models.update(set(rules))
        for rule in sorted(models):
            out[f"{rule} {sev}"] = {"models": models[rule], "findings": findings[rule]}
    return out


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def render_markdown(doc: dict[str, Any], command: str) -> str:
    out = ["# Zoo sweep: initaudit on random-init timm and Hugging Face models", ""]
    out += [
        "Generated by `benchmarks/zoo_sweep.py` (issue 14). Regenerate with:",
        "",
        "```sh",
        command,
        "```",
        "",
    ]
    out += ["Versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items()) + ".", ""]
    out += [f"Settings: {', '.join(f'{k}={v}' for k, v in doc['settings'].items())}.", ""]
    out += _md_counts(doc)
    out += _md_rules(doc)
    out += _md_gaps(doc["predicted_vs_measured"])
    out += _md_findings(doc["models"])
    out += _md_info_only(doc["models"])
    out += _md_failures(doc["models"])
    return "\n".join(out) + "\n"


def _md_counts(doc: dict[str, Any]) -> list[str]:
    keys = (
        "tried",
        "exported",
        "exported_dynamo",
        "exported_legacy",
        "export_failed",
        "skipped_over_cap",
        "timeout_or_crash",
        "not_run",
        "audited",
        "measured",
        "with_error",
        "with_warning",
        "with_info_only",
    )
    out = [
        "## Models",
        "",
        "| source | " + " | ".join(k.replace("_", " ") for k in keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    for source, counts in doc["summary"].items():
        out.append(f"| {source} | " + " | ".join(str(counts[k]) for k in keys) + " |")
    out += [
        "",
        "*exported*: an ONNX file was written (dynamo=True first, the legacy exporter as "
        "fallback); *timeout or crash*: a phase of a model hit its wall-time cap or its "
        "process died; *with error / warning*: models with at least one finding of that "
        "severity (the plain `--format json` run).",
        "",
    ]
    return out


def _md_rules(doc: dict[str, Any]) -> list[str]:
    out = [
        "## Findings by rule",
        "",
        "| source | rule | severity | models | findings |",
        "|---|---|---|---|---|",
    ]
    for source, rules in doc["rules"].items():
        for key, n in rules.items():
            rule, sev = key.split()
            out.append(f"| {source} | {rule} | {sev} | {n['models']} | {n['findings']} |")
    return [*out, ""]


def _md_gaps(gaps: dict[str, Any]) -> list[str]:
    out = [
        "## Predicted vs measured log10 E[x²] per layer",
        "",
        "Predicted: initaudit's `depth[].log10_output` (inputs N(0, 1), token ids through "
        "their embedding). *onnxruntime*: `--propagate` on the exported graph (BatchNorm on "
        "running statistics, the identity at init). *framework, train view*: torch forward "
        "hooks on the module owning each weight, BatchNorm on batch statistics (train mode), "
        "dropout and stochastic depth off (eval mode) — what training sees at step 0. "
        "*framework, eval*: the same hooks in eval mode, which should agree with onnxruntime "
        "(a check of the initializer-to-module mapping). Output of the hooked module includes "
        "its bias; the ONNX node's output may not.",
        "",
        "| comparison | layers | models | median \\|gap\\| | 95th pct | max "
        "| worst model (median gap) |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in GAP_KINDS:
        g = gaps.get(kind)
        if not g or not g["layers"]:
            continue
        worst = g["worst_model"]
        out.append(
            f"| {GAP_KINDS[kind]} | {g['layers']} | {g['models']} | {_fmt(g['median'])} | "
            f"{_fmt(g['p95'])} | {_fmt(g['max'])} | {worst['model']} ({_fmt(worst['median'])}) |"
        )
    for source, per in gaps.get("by_source", {}).items():
        for kind, g in per.items():
            if g["layers"]:
                out.append(
                    f"| {source}: {GAP_KINDS[kind]} | {g['layers']} | {g['models']} | "
                    f"{_fmt(g['median'])} | {_fmt(g['p95'])} | {_fmt(g['max'])} | "
                    f"{g['worst_model']['model']} ({_fmt(g['worst_model']['median'])}) |"
                )
    out += [
        "",
        "### Largest disagreements (predicted vs framework, train view)",
        "",
        "| model | tensor | op | predicted | onnxruntime | framework "
        "| ops since the previous layer | ops the model assumed scale-neutral |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w in gaps.get("worst_layers", []):
        out.append(
            f"| {w['model']} | `{w['tensor']}` | {w['op_type']} | {_fmt(w['predicted'])} | "
            f"{_fmt(w['onnxruntime'])} | {_fmt(w['framework'])} | "
            f"{_md_escape(', '.join(w['between']) or '—')} | "
            f"{_md_escape(', '.join(w.get('assumed', [])) or '—')} |"
        )
    return [*out, ""]


def _md_findings(models: list[dict[str, Any]]) -> list[str]:
    out = [
        "## Models with an error or a warning",
        "",
        "One row per model, rule and severity: the first tensor, and how many tensors in all.",
        "",
        "| source | model | rule | severity | tensors | first tensor | message |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in models:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for f in r["findings"]:
            if f["severity"] in ("error", "warning"):
                groups.setdefault((f["rule"], f["severity"]), []).append(f)
        for (rule, sev), found in sorted(groups.items()):
            first = found[0]
            out.append(
                f"| {r['source']} | {r['model']} | {rule} | {sev} | {len(found)} | "
                f"`{_md_escape(first['tensor'] or '(model)')}` | {_md_escape(first['message'])} |"
            )
    return [*out, ""]


def _md_info_only(models: list[dict[str, Any]]) -> list[str]:
    out = ["## Models with info findings only", "", "| source | model | rules (findings) |",
           "|---|---|---|"]  # fmt: skip
    for r in models:
        if not r["severities"] or set(r["severities"]) != {"info"}:
            continue
        rules = Counter(f["rule"] for f in r["findings"])
        listed = ", ".join(f"{rule} ({n})" for rule, n in sorted(rules.items()))
        out.append(f"| {r['source']} | {r['model']} | {listed} |")
    return [*out, ""]


def _md_failures(models: list[dict[str, Any]]) -> list[str]:
    out = [
        "## Models not exported, measured or audited",
        "",
        "| source | model | phase | status | reason |",
        "|---|---|---|---|---|",
    ]
    for r in models:
        for phase in ("export", "measure", "audit"):
            status = r[phase]["status"]
            if status in (Status.OK, "not run"):
                continue
            out.append(
                f"| {r['source']} | {r['model']} | {phase} | {status} | "
                f"{_md_escape(r[phase].get('reason') or '')[:240]} |"
            )
            break
    return [*out, ""]


def _compact(record: dict[str, Any]) -> dict[str, Any]:
    """A model record with its depth rows as lists in ``depth_columns`` order (``param``
    null where the initializer kept the torch name)."""
    rows = [
        [
            None if c == "param" and row.get(c) == row["tensor"] else row.get(c)
            for c in DEPTH_COLUMNS
        ]
        for row in record["depth"]
    ]
    return {**{k: v for k, v in record.items() if k != "initaudit_version"}, "depth": rows}


def dump(doc: dict[str, Any]) -> str:
    """Indented JSON, except each model's record, which takes one line: a rerun that changes
    one model changes one line of the diff, and the file stays a few MB."""
    head = {k: v for k, v in doc.items() if k != "models"}
    head["depth_columns"] = list(DEPTH_COLUMNS)
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2]
    models = ",\n".join(
        json.dumps(_compact(m), ensure_ascii=False, separators=(",", ":")) for m in doc["models"]
    )
    return f'{text},\n "models": [\n{models}\n ]\n}}\n'


def write(cache: Path, docs: Path, specs: list[ModelSpec], args: argparse.Namespace) -> None:
    settings = {
        "max_params": args.max_params,
        "model_seconds": args.model_seconds,
        "dynamo_seconds": args.dynamo_seconds,
        "timm_per_module": args.timm_per_module,
        "hf_limit": args.hf_limit,
    }
    doc = build_document(cache, specs, settings)
    command = (
        "nice -n 10 /work/venvs/zoo/bin/python benchmarks/zoo_sweep.py --initaudit "
        "/work/venvs/ia-stable/bin/initaudit --cache /work/zoo/cache --jobs 2 "
        f"--max-params {args.max_params} --timm-per-module {args.timm_per_module} "
        f"--hf-limit {args.hf_limit}"
    )
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "zoo-sweep.json").write_text(dump(doc))
    (docs / "zoo-sweep.md").write_text(render_markdown(doc, command))
