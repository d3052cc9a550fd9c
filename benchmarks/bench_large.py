"""Wall time and peak memory of initaudit on GPT-style models, against the exact-scan floor.

Run from the repository root (the default sizes write ~4.5 GB and take ~15 minutes on 2 cores,
most of it in the naive approach; --small takes a few seconds):

    python benchmarks/bench_large.py [--small] [--workdir DIR] [--repeat 3] [--out table.md]

It writes three synthetic GPT-2-style models (token and position embeddings, per block two
LayerNorms, c_attn/c_proj/c_fc/c_proj MatMul+bias, GELU, a head tied through Transpose; HF's
N(0, 0.02) init) into a fresh temporary directory, or DIR (kept, and reused when the same
sizes are asked again). Each model is then read once to warm the page cache, and three
programs run on it as separate processes, whole process against whole process (interpreter
start and imports count):

* initaudit: ``python -m initaudit MODEL --format json -o /dev/null --fail-on never``;
* floor: the exact-scan floor, a tiny script that parses the graph (onnx, no external data),
  memory-maps the data and computes min, max, sum and sum of squares of every tensor with
  numpy (fp16 through ``astype``), in one process on one core;
* naive: ``onnx.load`` with external data, ``numpy_helper.to_array`` and a full
  ``scipy.stats.kstest`` against a normal of the tensor's mean and std, per tensor.

Wall time is the best of --repeat runs (naive runs once); peak RSS is the child's ru_maxrss
from wait4, which counts resident pages of memory-mapped files too. initaudit's modules are
byte-compiled first, as ``pip install`` does (numpy's and onnx's already are).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VOCAB = 50257
POSITIONS = 1024
CHUNK = 1 << 24  # values generated and written at a time


@dataclass(frozen=True)
class Spec:
    label: str
    layers: int
    d_model: int
    dtype: str  # "float32" | "float16"
    external: bool
    vocab: int = VOCAB

    @property
    def params(self) -> int:
        d, v = self.d_model, self.vocab
        norms, attn, mlp = 4 * d, (3 * d * d + 3 * d) + (d * d + d), 8 * d * d + 5 * d
        return v * d + POSITIONS * d + self.layers * (norms + attn + mlp) + 2 * d

    @property
    def stem(self) -> str:
        where = "ext" if self.external else "inline"
        return f"gpt_{self.layers}x{self.d_model}_v{self.vocab}_{self.dtype}_{where}"


def _parse_shape(text: str) -> tuple[int, int]:
    layers, _, width = text.partition("x")
    return int(layers), int(width)


def specs(args: argparse.Namespace) -> list[Spec]:
    if args.small:
        return [
            Spec("fp32 inline", 2, 256, "float32", False, 8192),
            Spec("fp32 external", 4, 256, "float32", True, 8192),
            Spec("fp16 external", 4, 384, "float16", True, 8192),
        ]
    out = []
    for label, text, dtype, ext in (
        ("fp32 inline", args.inline, "float32", False),
        ("fp32 external", args.external, "float32", True),
        ("fp16 external", args.fp16, "float16", True),
    ):
        if text != "0":
            layers, width = _parse_shape(text)
            out.append(Spec(label, layers, width, dtype, ext, args.vocab))
    return out


# --------------------------------------------------------------------------- model writing


def _tensors(spec: Spec) -> list[tuple[str, tuple[int, ...], float, float]]:
    """(name, shape, std, constant): std 0 means every value is ``constant``."""
    d, n = spec.d_model, spec.layers
    out = [("wte", (spec.vocab, d), 0.02, 0.0), ("wpe", (POSITIONS, d), 0.02, 0.0)]
    for i in range(n):
        p = f"h.{i}."
        out += [
            (p + "ln_1.weight", (d,), 0.0, 1.0),
            (p + "ln_1.bias", (d,), 0.0, 0.0),
            (p + "attn.c_attn.weight", (d, 3 * d), 0.02, 0.0),
            (p + "attn.c_attn.bias", (3 * d,), 0.0, 0.0),
            (p + "attn.c_proj.weight", (d, d), 0.02 / math.sqrt(2 * n), 0.0),
            (p + "attn.c_proj.bias", (d,), 0.0, 0.0),
            (p + "ln_2.weight", (d,), 0.0, 1.0),
            (p + "ln_2.bias", (d,), 0.0, 0.0),
            (p + "mlp.c_fc.weight", (d, 4 * d), 0.02, 0.0),
            (p + "mlp.c_fc.bias", (4 * d,), 0.0, 0.0),
            (p + "mlp.c_proj.weight", (4 * d, d), 0.02 / math.sqrt(2 * n), 0.0),
            (p + "mlp.c_proj.bias", (d,), 0.0, 0.0),
        ]
    return [*out, ("ln_f.weight", (d,), 0.0, 1.0), ("ln_f.bias", (d,), 0.0, 0.0)]


def _values(rng: np.random.Generator, size: int, std: float, const: float, dtype: str):
    """The tensor's bytes, CHUNK values at a time."""
    for start in range(0, size, CHUNK):
        k = min(CHUNK, size - start)
        if std == 0.0:
            chunk = np.full(k, const, dtype=np.float32)
        else:
            chunk = rng.standard_normal(k, dtype=np.float32)
            chunk *= np.float32(std)
        yield chunk.astype(dtype).tobytes()


def _block(nodes: list, i: int, x: str) -> str:
    """One pre-norm GPT-2 block reading ``x``; returns its output's name."""
    from onnx import helper

    p, q = f"h.{i}.", f"b{i}_"

    def ln(name: str, inp: str, out: str) -> None:
        ins = [inp, p + name + ".weight", p + name + ".bias"]
        nodes.append(helper.make_node("LayerNormalization", ins, [out], axis=-1, epsilon=1e-5))

    def linear(name: str, inp: str, out: str) -> None:
        mm = q + name + "_mm"
        nodes.append(helper.make_node("MatMul", [inp, p + name + ".weight"], [mm]))
        nodes.append(helper.make_node("Add", [mm, p + name + ".bias"], [out]))

    ln("ln_1", x, q + "ln1")
    linear("attn.c_attn", q + "ln1", q + "qkv")
    qkv = [q + "q", q + "k", q + "v"]
    nodes.append(helper.make_node("Split", [q + "qkv"], qkv, axis=-1, num_outputs=3))
    nodes.append(helper.make_node("Transpose", [q + "k"], [q + "kt"], perm=[0, 2, 1]))
    nodes.append(helper.make_node("MatMul", [q + "q", q + "kt"], [q + "scores"]))
    nodes.append(helper.make_node("Softmax", [q + "scores"], [q + "probs"], axis=-1))
    nodes.append(helper.make_node("MatMul", [q + "probs", q + "v"], [q + "ctx"]))
    linear("attn.c_proj", q + "ctx", q + "attn_out")
    nodes.append(helper.make_node("Add", [x, q + "attn_out"], [q + "res1"]))
    ln("ln_2", q + "res1", q + "ln2")
    linear("mlp.c_fc", q + "ln2", q + "fc")
    nodes.append(helper.make_node("Gelu", [q + "fc"], [q + "gelu"]))
    linear("mlp.c_proj", q + "gelu", q + "mlp_out")
    nodes.append(helper.make_node("Add", [q + "res1", q + "mlp_out"], [q + "out"]))
    return q + "out"


def _nodes(spec: Spec) -> list:
    from onnx import helper

    nodes = [
        helper.make_node("Gather", ["wte", "input_ids"], ["tok"]),
        helper.make_node("Gather", ["wpe", "position_ids"], ["pos"]),
        helper.make_node("Add", ["tok", "pos"], ["x0"]),
    ]
    x = "x0"
    for i in range(spec.layers):
        x = _block(nodes, i, x)
    ln_f = ["LayerNormalization", [x, "ln_f.weight", "ln_f.bias"], ["hf"]]
    return [
        *nodes,
        helper.make_node(*ln_f, axis=-1, epsilon=1e-5),
        helper.make_node("Transpose", ["wte"], ["wte_t"], perm=[1, 0]),
        helper.make_node("MatMul", ["hf", "wte_t"], ["logits"]),
    ]


def write_model(spec: Spec, folder: Path) -> Path:
    """``folder/<stem>/model.onnx`` (+ ``model.onnx.data``); reused when already complete."""
    import onnx
    from onnx import TensorProto, helper

    out = folder / spec.stem
    path = out / "model.onnx"
    if (out / "done").exists():
        return path
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    dt = TensorProto.FLOAT if spec.dtype == "float32" else TensorProto.FLOAT16
    rng = np.random.default_rng(0)
    inits = []
    data = open(out / "model.onnx.data", "wb") if spec.external else None  # noqa: SIM115
    for name, shape, std, const in _tensors(spec):
        t = TensorProto(name=name, data_type=dt, dims=list(shape))
        size = math.prod(shape)
        chunks = _values(rng, size, std, const, spec.dtype)
        if data is None:
            t.raw_data = b"".join(chunks)
        else:
            offset = data.tell()
            for c in chunks:
                data.write(c)
            for k, v in (
                ("location", "model.onnx.data"),
                ("offset", offset),
                ("length", data.tell() - offset),
            ):
                entry = t.external_data.add()
                entry.key, entry.value = k, str(v)
            t.data_location = TensorProto.EXTERNAL
            pad = -data.tell() % 4096
            data.write(b"\0" * pad)
        inits.append(t)
    if data is not None:
        data.close()
    graph = helper.make_graph(
        _nodes(spec),
        "gpt",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["B", "T"]),
            helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["B", "T"]),
        ],
        [helper.make_tensor_value_info("logits", dt, ["B", "T", spec.vocab])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    with open(path, "wb") as fh:
        fh.write(model.SerializeToString())
    del model, graph, inits
    onnx.checker.check_model(str(path))  # by path: works past 2 GB and with external data
    (out / "done").touch()
    return path


# --------------------------------------------------------------------------- the programs

FLOOR = r"""
import mmap, sys
import numpy as np
import onnx

path = sys.argv[1]
model = onnx.load(path, load_external_data=False)
maps = {}
dtypes = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.FLOAT16: np.float16}
for t in model.graph.initializer:
    dtype = dtypes[t.data_type]
    if t.data_location == onnx.TensorProto.EXTERNAL:
        info = {e.key: e.value for e in t.external_data}
        loc = info["location"]
        if loc not in maps:
            with open(path.rsplit("/", 1)[0] + "/" + loc, "rb") as fh:
                maps[loc] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        count = int(info["length"]) // np.dtype(dtype).itemsize
        a = np.frombuffer(maps[loc], dtype, count, int(info["offset"]))
    else:
        a = np.frombuffer(t.raw_data, dtype)
    if dtype is not np.float32:
        a = a.astype(np.float32)
    stats = (a.min(), a.max(), a.sum(dtype=np.float64), np.dot(a, a))
"""

NAIVE = r"""
import sys
import numpy as np
import onnx
from onnx import numpy_helper
from scipy import stats

model = onnx.load(sys.argv[1])
for t in model.graph.initializer:
    a = numpy_helper.to_array(t).astype(np.float64).ravel()
    std = a.std()
    if std > 0:
        stats.kstest(a, "norm", args=(a.mean(), std))
"""


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of the process (and its threads)
    rss: float  # peak resident set, MB
    status: int


FAILED = Run(math.inf, math.nan, math.nan, -1)


# Measures one command from a small process. A child's ru_maxrss starts at the size of the
# process it was spawned from (Linux keeps the high-water mark across exec), so measuring
# from this script, which held a whole model while writing it, would inflate every figure.
LAUNCHER = r"""
import json, os, subprocess, sys, time
timeout, env, cmd = float(sys.argv[1]), dict(os.environ), sys.argv[3:]
env.update(json.loads(sys.argv[2]))
start = time.perf_counter()
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
while True:
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid:
        break
    if timeout and time.perf_counter() - start > timeout:
        proc.kill()
        pid, status, usage = os.wait4(proc.pid, 0)
        break
    time.sleep(0.002)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
print(json.dumps([wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code]))
"""


def run(cmd: list[str], timeout: float = 0.0, env: dict[str, str] | None = None) -> Run:
    """One child process's wall time, CPU time and peak RSS (its own rusage, from wait4)."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(timeout), json.dumps(env or {}), *cmd],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    try:
        wall, cpu, rss, code = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        code = -1
    if code != 0:
        tail = done.stderr.strip()[-500:]
        print(f"  {' '.join(cmd[1:4])[:60]} failed ({code}): {tail}", file=sys.stderr)
        return FAILED
    return Run(wall, cpu, rss, 0)


def best_of(cmd: list[str], repeat: int) -> Run:
    return _best([run(cmd) for _ in range(repeat)])


def _warm(folder: Path) -> None:
    for f in sorted(folder.iterdir()):
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def programs(path: Path) -> dict[str, list[str]]:
    py = sys.executable
    audit = ["-m", "initaudit", str(path), "--format", "json", "-o", os.devnull]
    return {
        "initaudit": [py, *audit, "--fail-on", "never", "--isolated"],
        "floor": [py, "-c", FLOOR, str(path)],
        "naive": [py, "-c", NAIVE, str(path)],
    }


def bench(path: Path, repeat: int, naive: bool, timeout: float) -> dict[str, Run]:
    """initaudit and the floor alternately (best of ``repeat``), then the naive approach once."""
    cmds = programs(path)
    _warm(path.parent)
    runs: dict[str, list[Run]] = {"floor": [], "initaudit": []}
    # One core for the floor: its sum of squares is a BLAS dot product.
    envs = {"floor": {"OPENBLAS_NUM_THREADS": "1"}}
    for _ in range(repeat):
        for name, done in runs.items():
            done.append(run(cmds[name], env=envs.get(name)))
    out = {name: _best(done) for name, done in runs.items()}
    out["naive"] = run(cmds["naive"], timeout) if naive else FAILED
    return out


def _best(runs: list[Run]) -> Run:
    """The fastest run, with the largest peak RSS seen in any."""
    fastest = min(runs, key=lambda r: r.wall)
    return Run(fastest.wall, fastest.cpu, max(r.rss for r in runs), fastest.status)


def _secs(x: float) -> str:
    return "timeout/failed" if x == math.inf else "-" if math.isnan(x) else f"{x:.2f} s"


def _mb(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.0f} MB"


def table(rows: list[tuple[Spec, int, dict[str, Run]]]) -> str:
    head = (
        "| model | params | on disk | initaudit | floor | ratio | naive "
        "| initaudit RSS | floor RSS | naive RSS | initaudit CPU | floor CPU |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for spec, size, r in rows:
        ia, fl, nv = r["initaudit"], r["floor"], r["naive"]
        lines.append(
            f"| {spec.label} ({spec.layers}x{spec.d_model}) | {spec.params / 1e6:,.0f}M "
            f"| {size / 1e9:.2f} GB | {_secs(ia.wall)} | {_secs(fl.wall)} "
            f"| {ia.wall / fl.wall:.2f}x | {_secs(nv.wall)} | {_mb(ia.rss)} | {_mb(fl.rss)} "
            f"| {_mb(nv.rss)} | {_secs(ia.cpu)} | {_secs(fl.cpu)} |"
        )
    return "\n".join(lines) + "\n"


def startup(repeat: int) -> str:
    """Interpreter start plus imports, and the whole CLI on a tiny committed model."""
    py = sys.executable
    tiny = ROOT / "fixtures" / "torch" / "mlp_relu__dynamo.onnx"
    imp = best_of([py, "-c", "import initaudit.cli"], repeat)
    cli = best_of([py, "-m", "initaudit", str(tiny), "--isolated", "-q"], repeat)
    bare = best_of([py, "-c", "import numpy, onnx"], repeat)
    return (
        f"Startup: `python -c 'import initaudit.cli'` {imp.wall:.2f} s "
        f"(`import numpy, onnx` alone: {bare.wall:.2f} s); the CLI on {tiny.name}: "
        f"{cli.wall:.2f} s.\n"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="tiny models: a quick check (seconds)")
    p.add_argument("--inline", default="12x768", help="LAYERSxWIDTH of the fp32 inline model")
    p.add_argument("--external", default="24x1024", help="... of the fp32 external-data model")
    p.add_argument("--fp16", default="48x1600", help="... of the fp16 external-data model")
    p.add_argument("--vocab", type=int, default=VOCAB)
    p.add_argument("--workdir", type=Path, help="keep (and reuse) the models here")
    p.add_argument("--repeat", type=int, default=3, help="runs of initaudit and floor (best)")
    p.add_argument("--no-naive", dest="naive", action="store_false", help="skip the naive approach")
    p.add_argument("--naive-timeout", type=float, default=1800.0)
    p.add_argument("--out", type=Path, help="also write the table here")
    args = p.parse_args(argv)
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="initaudit-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    need = sum(s.params * (2 if s.dtype == "float16" else 4) for s in specs(args))
    free = shutil.disk_usage(folder).free
    if need * 1.1 > free:
        sys.exit(f"need {need / 1e9:.1f} GB in {folder}, only {free / 1e9:.1f} GB free")
    # Byte-compile initaudit as `pip install` does: an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module on every run.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "initaudit")], check=True)
    rows = []
    try:
        for spec in specs(args):
            t0 = time.perf_counter()
            path = write_model(spec, folder)
            print(
                f"{spec.label}: {spec.params / 1e6:.0f}M params written in "
                f"{time.perf_counter() - t0:.0f} s; measuring",
                file=sys.stderr,
            )
            size = sum(f.stat().st_size for f in path.parent.glob("model.onnx*"))
            rows.append((spec, size, bench(path, args.repeat, args.naive, args.naive_timeout)))
    finally:
        if args.workdir is None:
            shutil.rmtree(folder, ignore_errors=True)
    text = table(rows) + "\n" + startup(args.repeat)
    text += (
        f"\nWarm page cache; initaudit and floor: best of {args.repeat} alternating runs "
        f"(naive: 1 run); {os.cpu_count()} cores; python {sys.version.split()[0]}, "
        f"numpy {np.__version__}.\n"
    )
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
