"""A warm parent that forks one child process per model.

Importing torch, timm, transformers and onnxscript and warming up the dynamo exporter costs
10-20 s, more than exporting a small model. ``python -m zoo.forkserver`` pays it once: it
imports everything, exports a tiny model, then reads one job per line on stdin
(``{"spec", "folder", "phases", "max_params", "dynamo_seconds", "seconds"}``), forks a
child for it, kills the child past ``seconds``, and answers one line on stdout
(``{"status": "ok" | "timeout" | "crashed", "reason"}``). Each model still runs in a process
of its own: a segfault or an out-of-memory kill ends that child only. The child's output
goes to ``worker.log`` in the model's folder.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from zoo import build_hf, build_timm, worker  # noqa: F401  (imported for the children)
from zoo.records import ModelSpec, Status

POLL_SECONDS = 0.2


def warm_up() -> None:
    """One dynamo export in the parent, so every child starts with the exporter loaded."""
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2)
    )
    x = torch.randn(1, 3, 8, 8)
    model(x)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), (x,), str(Path(tmp) / "warm.onnx"), dynamo=True, verbose=False
        )


def child(job: dict[str, Any]) -> None:
    folder = Path(job["folder"])
    log = os.open(folder / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    worker.run(ModelSpec.from_json(job["spec"]), folder, job["phases"], job["max_params"],
               job["dynamo_seconds"])  # fmt: skip


def run_job(job: dict[str, Any]) -> dict[str, str]:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            child(job)
        except BaseException:  # the child reports through its phase files; exit says crashed
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + job["seconds"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                return {"status": Status.OK, "reason": ""}
            how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"exit {os.WEXITSTATUS(status)}")  # fmt: skip
            return {"status": Status.CRASHED, "reason": f"worker {how}"}
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"status": Status.TIMEOUT, "reason": f"worker over {job['seconds']} s"}
        time.sleep(POLL_SECONDS)


def main() -> None:
    torch.set_num_threads(1)
    warm_up()
    print(json.dumps({"status": "ready"}), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(run_job(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
