"""Zoo sweep (issue 14): audit random-init exports of published architectures with initaudit.

For timm and Hugging Face transformers models built at random init (nothing is downloaded),
each phase cached per model under ``--cache`` (outside the repository) and resumable:

* ``export``  — one worker process per model, under a wall-time and a parameter cap:
  ``torch.onnx.export(dynamo=True)``, then the legacy ``dynamo=False`` exporter if that fails;
* ``measure`` — in torch, in the same worker: each weighted layer's log10 E[x²] with forward
  hooks, normalizations on batch statistics (train mode), dropout off (eval mode), and each
  ONNX initializer mapped back to its torch tensor by value (``zoo/match.py``);
* ``audit``   — ``initaudit --format json`` and ``--propagate``, through ``--initaudit``'s
  console script (its own venv: the sweep never imports initaudit);
* ``report``  — ``docs/zoo-sweep.json`` and ``docs/zoo-sweep.md``: stable order, no
  timestamps. A crash, a timeout or an error in one model never stops the sweep: every model
  gets a status and a reason.

On demand, not in CI: a full run takes hours on two cores. Setup (Python 3.11, x86_64)::

    python3 -m venv /work/venvs/zoo
    /work/venvs/zoo/bin/pip install torch==2.14.1 torchvision==0.29.1  # from this disk (pip cap)
    /work/venvs/zoo/bin/pip install timm onnx onnxscript onnxruntime  # keeps torch 2.14.1
    /work/venvs/zoo/bin/pip install --no-deps transformers==5.23.0
    /work/venvs/zoo/bin/pip install regex tokenizers  # transformers' import-time deps
    # (huggingface_hub, safetensors, pyyaml, tqdm, packaging, filelock come with timm/torch;
    # typer, in transformers' metadata, is only used by its CLI)
    python3 -m venv /work/venvs/ia-stable
    /work/venvs/ia-stable/bin/pip install '/work/wt/sweep[runtime]'  # a non-editable snapshot

Run from the repository root (the cache makes a second run resume where the first stopped)::

    nice -n 10 /work/venvs/zoo/bin/python benchmarks/zoo_sweep.py \\
        --initaudit /work/venvs/ia-stable/bin/initaudit --cache /work/zoo/cache --jobs 2

``--phases report`` rewrites docs/ from the cache alone; ``--retry-failed`` reruns failures.
The committed run used ``--jobs 6 --timm-per-module 5 --hf-limit 220`` (the defaults otherwise):
582 models in about 1 h 50 min on two shared cores; the cache takes 18 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zoo import report
from zoo.records import ModelSpec, Source
from zoo.run import PHASES, Options, log, sweep_one
from zoo.run import _env as worker_env
from zoo.select import interleave, select_timm, spread

REPO = Path(__file__).resolve().parent.parent
CATALOG_MODULES = {Source.TIMM: "zoo.plan_timm", Source.HF: "zoo.plan_hf"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--initaudit", default="initaudit", help="initaudit console script to audit with"
    )
    p.add_argument("--cache", type=Path, default=Path("/work/zoo/cache"), help="models and results")
    p.add_argument("--docs", type=Path, default=REPO / "docs", help="where the report goes")
    p.add_argument("--python", default=sys.executable, help="zoo venv python for the workers")
    p.add_argument("--sources", default="timm,hf", help="comma-separated: timm, hf")
    p.add_argument("--phases", default=",".join((*PHASES, "report")))
    p.add_argument("--jobs", type=int, default=2, help="models in flight at once")
    p.add_argument("--max-params", type=int, default=30_000_000, help="parameter cap per model")
    p.add_argument("--model-seconds", type=int, default=480, help="wall-time cap of a worker")
    p.add_argument("--dynamo-seconds", type=int, default=240, help="dynamo's share of it")
    p.add_argument("--audit-seconds", type=int, default=300, help="cap of each initaudit run")
    p.add_argument("--timm-per-module", type=int, default=3, help="minimum models per module")
    p.add_argument(
        "--hf-limit",
        type=int,
        default=0,
        help="N single-config HF model types, evenly spread (0: all)",
    )
    p.add_argument(
        "--hf-composite",
        action="store_true",
        help="also the composite (multimodal, sub-config) HF model types",
    )
    p.add_argument("--only", nargs="*", default=(), help="model names to run (default all)")
    p.add_argument(
        "--stop-after",
        type=float,
        default=0.0,
        help="minutes after which no new model is started (0: no limit)",
    )
    p.add_argument("--retry-failed", action="store_true", help="rerun phases that failed")
    p.add_argument("--replan", action="store_true", help="rebuild the model catalogs")
    return p.parse_args(argv)


def catalog(args: argparse.Namespace, source: Source) -> list[ModelSpec]:
    """The source's catalog, built once by a zoo-venv process and cached."""
    path = args.cache / f"catalog-{source}.json"
    if args.replan or not path.exists():
        args.cache.mkdir(parents=True, exist_ok=True)
        log(f"building the {source} catalog (minutes)")
        subprocess.run(
            [args.python, "-m", CATALOG_MODULES[source], str(path)], env=worker_env(), check=True
        )
    return [ModelSpec.from_json(d) for d in json.loads(path.read_text())]


def plan(args: argparse.Namespace) -> list[ModelSpec]:
    sources = [Source(s) for s in args.sources.split(",") if s]
    queues = []
    if Source.TIMM in sources:
        chosen = select_timm(catalog(args, Source.TIMM), args.max_params, args.timm_per_module)
        queues.append(sorted(chosen, key=lambda s: (s.parameters or 0, s.name)))
    if Source.HF in sources:
        specs = catalog(args, Source.HF)
        single = [s for s in specs if not s.extra.get("composite")]
        composite = [s for s in specs if s.extra.get("composite")]
        queues.append(spread(single, args.hf_limit) + (composite if args.hf_composite else []))
    specs = interleave(*queues)
    return [s for s in specs if s.name in args.only] if args.only else specs


def sweep(args: argparse.Namespace, specs: list[ModelSpec], phases: tuple[str, ...]) -> None:
    options = Options(
        cache=args.cache,
        python=args.python,
        initaudit=args.initaudit,
        max_params=args.max_params,
        model_seconds=args.model_seconds,
        dynamo_seconds=args.dynamo_seconds,
        audit_seconds=args.audit_seconds,
        retry_failed=args.retry_failed,
    )
    deadline = time.monotonic() + args.stop_after * 60 if args.stop_after else None

    def job(spec: ModelSpec) -> str:
        if deadline is not None and time.monotonic() > deadline:
            return f"{spec.source}:{spec.name} not started (--stop-after)"
        return sweep_one(options, spec, phases)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(job, spec) for spec in specs]
        for n, future in enumerate(as_completed(futures), start=1):
            log(f"[{n}/{len(specs)}] {future.result()}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    phases = tuple(p for p in args.phases.split(",") if p)
    specs = plan(args)
    log(f"{len(specs)} models planned")
    work = tuple(p for p in phases if p in PHASES)
    if work:
        sweep(args, specs, work)
    if "report" in phases:
        report.write(args.cache, args.docs, specs, args)


if __name__ == "__main__":
    main()
