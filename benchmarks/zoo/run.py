"""The driver's phases for one model, each cached in its folder and resumable.

``export`` and ``measure`` run in one worker process (the model is built once) under a
wall-time cap; ``audit`` runs initaudit through its own console script (a separate venv, so
the sweep never imports the code under test), once plain and once with ``--propagate``.
Every phase leaves ``<phase>.json`` with a status and, when not ok, a reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.records import ModelSpec, Status

PHASES = ("export", "measure", "audit")
ZOO_PACKAGE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, kw_only=True)
class Options:
    cache: Path
    python: str
    initaudit: str
    max_params: int
    model_seconds: int
    dynamo_seconds: int
    audit_seconds: int
    retry_failed: bool


def folder_of(options: Options, spec: ModelSpec) -> Path:
    return options.cache / spec.source / spec.key


def read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def done(path: Path, retry_failed: bool) -> bool:
    """A phase result is kept unless it failed and failures are to be retried."""
    data = read(path)
    return data is not None and (
        not retry_failed or data.get("status") in (Status.OK, Status.SKIPPED)
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ZOO_PACKAGE),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class ForkServer:
    """One warm ``zoo.forkserver`` process per lane (thread) of the driver; restarted when
    it dies, so a model that kills it costs that model only."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [self.python, "-m", "zoo.forkserver"], env=_env(), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        if proc.stdout is None or not proc.stdout.readline():
            raise RuntimeError("zoo.forkserver did not start")
        return proc

    def run(self, job: dict[str, Any]) -> dict[str, str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        stdin, stdout = self.proc.stdin, self.proc.stdout
        line = ""
        if stdin is not None and stdout is not None:
            try:
                stdin.write(json.dumps(job) + "\n")
                stdin.flush()
                line = stdout.readline()
            except OSError:  # BrokenPipeError: the server died
                line = ""
        if not line:
            self.proc = None
            return {"status": Status.CRASHED, "reason": "the fork server died"}
        return json.loads(line)


_lanes = threading.local()


def run_worker(options: Options, spec: ModelSpec, phases: list[str]) -> None:
    folder = folder_of(options, spec)
    folder.mkdir(parents=True, exist_ok=True)
    if not hasattr(_lanes, "server"):
        _lanes.server = ForkServer(options.python)
    job = {"spec": spec.to_json(), "folder": str(folder), "phases": phases,
           "max_params": options.max_params, "dynamo_seconds": options.dynamo_seconds,
           "seconds": options.model_seconds}  # fmt: skip
    answer = _lanes.server.run(job)
    status, why = answer["status"], answer.get("reason", "")
    if status == Status.OK:
        return
    if status == Status.CRASHED:
        why = f"{why}: {_tail(_read_text(folder / 'worker.log'))}"
    for phase in phases:  # the phases the worker did not get to write
        path = folder / f"{phase}.json"
        if read(path) is None:
            write(path, {"status": status, "reason": why})
        if (read(path) or {}).get("status") != Status.OK:
            break


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def audit(options: Options, spec: ModelSpec) -> None:
    """initaudit --format json, plain and with --propagate; raw reports kept beside."""
    folder = folder_of(options, spec)
    model = folder / "model.onnx"
    result: dict[str, Any] = {"status": Status.OK}
    for label, extra in (("plain", []), ("propagate", ["--propagate"])):
        command = [
            options.initaudit,
            "--isolated",
            "--format",
            "json",
            "--fail-on",
            "never",
            *extra,
            str(model),
        ]
        start = time.monotonic()
        try:
            proc = subprocess.run(
                command,
                capture_output=True,
                text=True,
                cwd=folder,
                timeout=options.audit_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired:
            result.update(status=Status.TIMEOUT, reason=f"{label}: over {options.audit_seconds} s")
            break
        except OSError as exc:
            # The console script missing (its venv being reinstalled, say) is this model's
            # failure, not the sweep's: it stopped logging the run that found it.
            result.update(status=Status.CRASHED, reason=f"{label}: {exc}")
            break
        seconds = round(time.monotonic() - start, 1)
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            result.update(
                status=Status.CRASHED,
                reason=f"{label}: exit {proc.returncode}: {_tail(proc.stderr)}",
            )
            break
        (folder / f"initaudit-{label}.json").write_text(proc.stdout)
        result[f"{label}_seconds"] = seconds
        result[f"{label}_exit"] = proc.returncode
        notes = [line for line in proc.stderr.splitlines() if line.strip()]
        result[f"{label}_stderr"] = notes[-5:]
        error = (report.get("files") or [{}])[0].get("error")
        if error:
            result.update(
                status=Status.FAILED, reason=f"{label}: {error.get('code')}: {error.get('message')}"
            )
            break
    if result["status"] == Status.OK:
        result["between"] = _between(folder)
    write(folder / "audit.json", result)


def _between(folder: Path) -> dict[str, list[str]]:
    """The op types between each depth layer and the weighted layers feeding it."""
    from zoo.between import ops_between_file  # imports onnx: the zoo venv has it

    report = read(folder / "initaudit-propagate.json") or {}
    depth = (report.get("files") or [{}])[0].get("depth", [])
    return ops_between_file(str(folder / "model.onnx"), [d["node"] for d in depth])


def sweep_one(options: Options, spec: ModelSpec, phases: tuple[str, ...]) -> str:
    """Run what is missing for one model; returns a one-line progress note."""
    folder = folder_of(options, spec)
    todo = [
        p
        for p in ("export", "measure")
        if p in phases and not done(folder / f"{p}.json", options.retry_failed)
    ]
    export = read(folder / "export.json")
    if "export" in todo or (todo and export and export.get("status") == Status.OK):
        if "export" not in todo and not (folder / "model.onnx").exists():
            todo = ["export", *todo]
        run_worker(options, spec, todo)
    export = read(folder / "export.json") or {}
    if (
        "audit" in phases
        and export.get("status") == Status.OK
        and not done(folder / "audit.json", options.retry_failed)
    ):
        audit(options, spec)
    audited = (read(folder / "audit.json") or {}).get("status", "-")
    measured = (read(folder / "measure.json") or {}).get("status", "-")
    return (
        f"{spec.source}:{spec.name} export={export.get('status', '-')}"
        f"({export.get('exporter', '')}) measure={measured} audit={audited}"
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
