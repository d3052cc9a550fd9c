"""Wall time, CPU time and peak memory of initaudit on GPT-style models, against the floor.

Run from the repository root (the default sizes write ~4.5 GB and take ~10 minutes on 2 cores;
--small takes seconds; --naive adds the naive approach, ~7 minutes more):

    python benchmarks/bench_large.py [--small] [--workdir DIR] [--repeat 5] [--naive] [--out FILE]

It writes three synthetic GPT-2-style models (token and position embeddings, per block two
LayerNorms, c_attn/c_proj/c_fc/c_proj MatMul+bias, GELU, a head tied through Transpose; HF's
N(0, 0.02) init) into a fresh temporary directory, or DIR (kept, and reused when the same
sizes are asked again). Each model is then read once to warm the page cache, and these
programs run on it as separate processes, whole process against whole process (interpreter
start and imports count):

* initaudit: ``python -m initaudit MODEL --format json -o /dev/null --fail-on never``;
* floor: the exact-scan floor, a tiny script that parses the graph (no external data) with
  protobuf and the ONNX classes of initaudit's committed descriptor (so it imports what
  initaudit imports: numpy and protobuf, not onnx), memory-maps the data and computes min,
  max, sum and sum of squares of every tensor with numpy (fp16 through ``astype``), in one
  process on one core (OPENBLAS_NUM_THREADS=1);
* floor+onnx: the same, parsing with ``onnx.load`` (the floor before the startup work, which
  pays onnx's import), for comparison with older figures;
* naive (``--naive``): ``onnx.load`` with external data, ``numpy_helper.to_array`` and a full
  ``scipy.stats.kstest`` against a normal of the tensor's mean and std, per tensor.

initaudit and the floors run in --repeat rounds, the order rotating each round, from one
launcher process each (a child's ru_maxrss starts at its parent's). Reported: the medians of
wall time and of CPU time (user + sys of the child and its threads, from wait4), their ratios
to the floor's, and the largest peak RSS of any round (ru_maxrss, which counts the resident
pages of memory-mapped files too). Then one more initaudit run with INITAUDIT_PROFILE=1 gives
the seconds per stage, and each target of issue 17 is said met or not. initaudit's modules are
byte-compiled first, as ``pip install`` does (numpy's and onnx's already are).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
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

# The exact-scan floor: parse the graph (no external data) with protobuf, memory-map the
# data, and compute min, max, sum and sum of squares of every tensor with numpy. argv[1] says
# how the graph is parsed: "protobuf", with the ONNX classes built from initaudit's committed
# descriptor (what initaudit itself imports: numpy and protobuf, not onnx), or "onnx",
# ``onnx.load(load_external_data=False)`` (the floor of the figures before issue 17's
# startup half, which paid onnx's ~0.7 s import).
FLOOR = r"""
import mmap, os, sys
import numpy as np

how, root, path = sys.argv[1:4]
if how == "onnx":
    import onnx

    with open(path, "rb") as fh:
        model = onnx.load(fh, load_external_data=False)
else:
    import importlib.util
    from google.protobuf import descriptor_pool, message_factory

    spec = importlib.util.spec_from_file_location(
        "descriptor", os.path.join(root, "initaudit", "proto", "_descriptor.py")
    )
    blob = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(blob)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(blob.FILE_DESCRIPTOR)
    model_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("onnx.ModelProto"))
    with open(path, "rb") as fh:
        model = model_class.FromString(fh.read())
maps = {}
dtypes = {1: np.float32, 10: np.float16}  # TensorProto.FLOAT, FLOAT16
for t in model.graph.initializer:
    dtype = dtypes[t.data_type]
    if t.data_location == 1:  # TensorProto.EXTERNAL
        info = {e.key: e.value for e in t.external_data}
        loc = info["location"]
        if loc not in maps:
            with open(os.path.join(os.path.dirname(path), loc), "rb") as fh:
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
    cpu: float  # user + system seconds of the child (all its threads), from wait4
    rss: float  # peak resident set, MiB
    status: int
    stderr: str = ""


FAILED = Run(math.inf, math.nan, math.nan, -1)


# Measures one command from a small process. A child's ru_maxrss starts at the size of the
# process it was spawned from (Linux keeps the high-water mark across exec), so measuring
# from this script, which held a whole model while writing it, would inflate every figure.
# The child's rusage comes from wait4; its stderr goes to the launcher's, read by run().
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
    return Run(wall, cpu, rss, 0, done.stderr)


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
        "floor": [py, "-c", FLOOR, "protobuf", str(ROOT), str(path)],
        "floor+onnx": [py, "-c", FLOOR, "onnx", str(ROOT), str(path)],
        "naive": [py, "-c", NAIVE, str(path)],
    }


# One core for the floors: their sum of squares is a BLAS dot product.
ONE_CORE = {"OPENBLAS_NUM_THREADS": "1"}
TIMED = ("initaudit", "floor", "floor+onnx")


@dataclass(frozen=True)
class Result:
    runs: dict[str, list[Run]]  # every timed run of each program, in the order run
    profile: dict[str, tuple[float, float]]  # stage -> (wall, cpu) of one profiled run
    naive: Run

    def median(self, name: str, what: str) -> float:
        values = [getattr(r, what) for r in self.runs[name]]
        return statistics.median(values) if values else math.nan

    def peak(self, name: str) -> float:
        return max((r.rss for r in self.runs[name]), default=math.nan)


PROFILE_LINE = re.compile(r"initaudit: profile: +(\S+) +(?:wall +([\d.]+) s +)?cpu +([\d.]+) s")


def bench(path: Path, repeat: int, naive: bool, timeout: float) -> Result:
    """initaudit and both floors in turn, ``repeat`` rounds (the order rotates each round, so
    a busy neighbour slows all alike); then one profiled initaudit run and, if asked, naive."""
    cmds = programs(path)
    _warm(path.parent)
    runs: dict[str, list[Run]] = {name: [] for name in TIMED}
    for i in range(repeat):
        for name in TIMED[i % len(TIMED) :] + TIMED[: i % len(TIMED)]:
            done = run(cmds[name], env=None if name == "initaudit" else ONE_CORE)
            if done.status == 0:
                runs[name].append(done)
    profiled = run(cmds["initaudit"], env={"INITAUDIT_PROFILE": "1"})
    profile = {
        m.group(1): (float(m.group(2) or "nan"), float(m.group(3)))
        for m in map(PROFILE_LINE.match, profiled.stderr.splitlines())
        if m
    }
    return Result(runs, profile, run(cmds["naive"], timeout) if naive else FAILED)


def _secs(x: float) -> str:
    return "timeout/failed" if x == math.inf else "-" if math.isnan(x) else f"{x:.2f} s"


def _mib(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.0f}"


def table(rows: list[tuple[Spec, int, Result]], naive: bool) -> str:
    head = (
        "| model | params (on disk) | initaudit wall | floor wall | wall ratio "
        "| initaudit CPU | floor CPU | CPU ratio | floor+onnx wall / CPU "
        "| peak RSS initaudit / floor, MiB | initaudit RSS / file |"
    ) + (" naive |" if naive else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for spec, size, r in rows:
        w, f = r.median("initaudit", "wall"), r.median("floor", "wall")
        c, fc = r.median("initaudit", "cpu"), r.median("floor", "cpu")
        rss = r.peak("initaudit")
        lines.append(
            f"| {spec.label} {spec.layers}x{spec.d_model} | {spec.params / 1e6:,.0f}M "
            f"({size / 1e9:.2f} GB) | {_secs(w)} | {_secs(f)} | {w / f:.2f}x "
            f"| {_secs(c)} | {_secs(fc)} | {c / fc:.2f}x "
            f"| {_secs(r.median('floor+onnx', 'wall'))} / {_secs(r.median('floor+onnx', 'cpu'))} "
            f"| {_mib(rss)} / {_mib(r.peak('floor'))} | {rss * 2**20 / size:.2f}x |"
            + (f" {_secs(r.naive.wall)}, {_mib(r.naive.rss)} MiB |" if naive else "")
        )
    return "\n".join(lines) + "\n"


def profile_table(rows: list[tuple[Spec, int, Result]]) -> str:
    """Seconds per stage of one profiled run per model (INITAUDIT_PROFILE=1), wall / CPU."""
    stages = ["load", "graph", "measure", "tied", "moments", "duplicates", "fit", "vectors"]
    stages += ["depth", "rules", "report", "process"]
    head = "| model | " + " | ".join(stages) + " |"
    lines = [head, "|" + "---|" * (len(stages) + 1)]
    for spec, _size, r in rows:
        cells = []
        for s in stages:
            wall, cpu = r.profile.get(s, (math.nan, math.nan))
            cells.append(f"{cpu:.2f}" if s == "process" else f"{wall:.2f} / {cpu:.2f}")
        lines.append(f"| {spec.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def verdicts(rows: list[tuple[Spec, int, Result]]) -> str:
    """issue 17's targets, each met or not on this run."""
    out = []
    for spec, size, r in rows:
        wall = r.median("initaudit", "wall") / r.median("floor", "wall")
        cpu = r.median("initaudit", "cpu") / r.median("floor", "cpu")
        rss = r.peak("initaudit")
        checks = []
        if spec.external and spec.dtype == "float32":
            checks += [("wall <= 1.2x floor", wall <= 1.2), ("CPU <= 1.5x floor", cpu <= 1.5)]
        if spec.external and spec.dtype == "float16":
            checks += [("wall <= 1.0x floor", wall <= 1.0)]
        if spec.external:
            checks += [("peak RSS <= 300 MiB", rss <= 300)]
        else:
            checks += [("peak RSS <= 1.2x file size", rss * 2**20 <= 1.2 * size)]
        said = ", ".join(f"{what}: {'met' if ok else 'NOT met'}" for what, ok in checks)
        out.append(f"- {spec.label}: {said}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="tiny models: a quick check (seconds)")
    p.add_argument("--inline", default="12x768", help="LAYERSxWIDTH of the fp32 inline model")
    p.add_argument("--external", default="24x1024", help="... of the fp32 external-data model")
    p.add_argument("--fp16", default="48x1600", help="... of the fp16 external-data model")
    p.add_argument("--vocab", type=int, default=VOCAB)
    p.add_argument("--workdir", type=Path, help="keep (and reuse) the models here")
    p.add_argument("--repeat", type=int, default=5, help="rounds of initaudit and the floors")
    p.add_argument("--naive", action="store_true", help="also run the naive approach (slow)")
    p.add_argument("--naive-timeout", type=float, default=1800.0)
    p.add_argument("--out", type=Path, help="also write the tables here")
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
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    text = (
        table(rows, args.naive)
        + "\nSeconds per stage, wall / CPU, of one more initaudit run (INITAUDIT_PROFILE=1; "
        "the parts of measure are summed over its threads; process: the whole process's "
        "CPU, imports included):\n\n"
        + profile_table(rows)
        + "\nTargets (issue 17), against the floor's medians:\n"
        + verdicts(rows)
        + f"\nWarm page cache; medians of {args.repeat} rotating rounds of initaudit, floor and "
        f"floor+onnx (peak RSS: the largest of any round); {os.cpu_count()} cores, load "
        f"average {load:.1f} at the end; python {sys.version.split()[0]}, "
        f"numpy {np.__version__}.\n"
    )
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
