"""One model, one process: build it, export it to ONNX, measure it in torch.

``zoo.forkserver`` runs :func:`run` in a forked child per model, under a wall-time cap; by
hand, ``python -m zoo.worker SPEC_JSON DIR PHASES MAX_PARAMS DYNAMO_SECONDS`` does the same.
Each phase writes ``DIR/<phase>.json`` as soon as it ends, so a phase that finished survives
a crash or a timeout of the next one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import torch
from zoo.built import Built
from zoo.match import match_initializers
from zoo.measure import Owner, measure, owner_of
from zoo.records import ModelSpec, Source, Status

MODEL_FILE = "model.onnx"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class DynamoTimeout(Exception):
    pass


def reason(exc: BaseException) -> str:
    """One line: the exception type and the first line of its message, then the same for
    its cause (the dynamo exporter wraps the real error in a generic 'step 1/3' one)."""
    lines = [ANSI.sub("", line).strip() for line in str(exc).splitlines()]
    text = f"{type(exc).__name__}: {next((x for x in lines if x), '')[:300]}"
    cause = exc.__cause__
    return f"{text} <- {reason(cause)}" if cause is not None and cause is not exc else text


def build(spec: ModelSpec) -> Built:
    if spec.source == Source.TIMM:
        from zoo import build_timm

        return build_timm.build(spec)
    from zoo import build_hf

    return build_hf.build(spec)


@contextlib.contextmanager
def alarm(seconds: int) -> Iterator[None]:
    """Raise DynamoTimeout in this thread after ``seconds`` (dynamo is Python: it is
    interruptible), so the legacy exporter still gets its turn."""

    def ring(_signum: int, _frame: object) -> None:
        raise DynamoTimeout(f"dynamo export took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def export_model(built: Built, path: Path, dynamo_seconds: int) -> dict[str, Any]:
    """dynamo=True first; the legacy TorchScript exporter (dynamo=False) if that fails."""
    module = built.module.eval()
    attempts: dict[str, str] = {}
    for exporter in ("dynamo", "legacy"):
        start = time.monotonic()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
                warnings.simplefilter("ignore")
                if exporter == "dynamo":
                    with alarm(dynamo_seconds):
                        torch.onnx.export(
                            module,
                            built.args,
                            str(path),
                            dynamo=True,
                            external_data=False,
                            input_names=list(built.input_names),
                            verbose=False,
                        )
                else:
                    torch.onnx.export(
                        module,
                        built.args,
                        str(path),
                        dynamo=False,
                        input_names=list(built.input_names),
                    )
        except (Exception, DynamoTimeout) as exc:
            attempts[exporter] = reason(exc)
            path.unlink(missing_ok=True)
            continue
        model = onnx.load(str(path), load_external_data=False)
        return {
            "status": Status.OK,
            "exporter": exporter,
            "export_seconds": round(time.monotonic() - start, 1),
            "failed_exporters": attempts,
            "onnx_bytes": path.stat().st_size,
            "opset": next(
                (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None
            ),
            "nodes": len(model.graph.node),
            "initializers": len(model.graph.initializer),
        }
    return {
        "status": Status.FAILED,
        "reason": "; ".join(f"{k}: {v}" for k, v in attempts.items()),
        "failed_exporters": attempts,
    }


def export_phase(
    spec: ModelSpec, folder: Path, max_params: int, dynamo_seconds: int
) -> Built | None:
    start = time.monotonic()
    try:
        built = build(spec)
    except Exception as exc:
        write(folder / "export.json", {"status": Status.FAILED, "reason": f"build: {reason(exc)}"})
        return None
    params = sum(p.numel() for p in built.module.parameters())
    if params > max_params:
        write(
            folder / "export.json",
            {
                "status": Status.SKIPPED,
                "parameters": params,
                "reason": f"{params} parameters > cap {max_params}",
            },
        )
        return None
    result = export_model(built, folder / MODEL_FILE, dynamo_seconds)
    result.update(
        parameters=params,
        input_shapes=[list(a.shape) for a in built.args],
        input_dtypes=[str(a.dtype) for a in built.args],
        seconds=round(time.monotonic() - start, 1),
    )
    write(folder / "export.json", result)
    return built if result["status"] == Status.OK else None


def _log(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 4)


def measure_phase(spec: ModelSpec, folder: Path, built: Built | None) -> None:
    start = time.monotonic()
    try:
        built = built or build(spec)
        model = onnx.load(str(folder / MODEL_FILE))
        matches = match_initializers(model, built.module)
        del model
        owners: dict[tuple[str, str], Owner] = {}
        for found in matches.values():
            for m in found:
                owners.setdefault(
                    (m.name, m.transform), owner_of(built.module, m.name, m.transform)
                )
        scales, trained = measure(built.module, owners, built.forward)
    except Exception as exc:
        write(
            folder / "measure.json",
            {
                "status": Status.FAILED,
                "reason": reason(exc),
                "trace": traceback.format_exc(limit=-3),
            },
        )
        return
    tensors: dict[str, list[dict[str, Any]]] = {}
    for init, found in sorted(matches.items()):
        rows = []
        for m in found:
            owner = owners[(m.name, m.transform)]
            scale = scales.get(owner.point, {}) if owner.hookable else {}
            rows.append(
                {
                    "param": m.name,
                    "transform": m.transform,
                    "module": owner.module,
                    "module_type": owner.module_type,
                    "hookable": owner.hookable,
                    "train": _log(scale.get("train")),
                    "eval": _log(scale.get("eval")),
                    "calls": scale.get("calls", 0),
                }
            )
        tensors[init] = rows
    write(
        folder / "measure.json",
        {
            "status": Status.OK,
            "train_mode_modules": trained,
            "matched_initializers": len(matches),
            "seconds": round(time.monotonic() - start, 1),
            "tensors": tensors,
        },
    )


def write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def run(
    spec: ModelSpec, folder: Path, phases: list[str], max_params: int, dynamo_seconds: int
) -> None:
    """The phases asked for, each writing its result file as soon as it ends."""
    torch.set_num_threads(1)
    built = None
    if "export" in phases:
        built = export_phase(spec, folder, max_params, dynamo_seconds)
        if built is None:
            return
    if "measure" in phases:
        measure_phase(spec, folder, built)


def main() -> None:
    spec = ModelSpec.from_json(json.loads(sys.argv[1]))
    run(spec, Path(sys.argv[2]), sys.argv[3].split(","), int(sys.argv[4]), int(sys.argv[5]))


if __name__ == "__main__":
    main()
