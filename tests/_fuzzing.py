"""Helpers for tests/fuzz_test.py and tests/robustness_test.py: seeds, a hostile sandbox
folder, a time limit, and graph surgery on a parsed ModelProto."""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper

from tests import _models as M

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXTERNAL = FIXTURES / "torch" / "mlp_external_data" / "mlp_external_data__dynamo.onnx"
# Seeds: small real exports covering Gemm/MatMul/Conv/RNN/attention, QDQ and dynamic int8,
# fp16/bf16/float8/int4 storage, an If subgraph, and external data.
SEED_FILES = (
    "built/if_subgraph_zero_weight.onnx",
    "built/int4_blocked_qdq.onnx",
    "built/float8_e4m3_weights.onnx",
    "torch/embedding_padding__legacy.onnx",
    "torch/conv1d__legacy.onnx",
    "torch/cnn_qdq_int8__legacy.onnx",
    "torch/mlp_dynamic_int8__legacy.onnx",
    "torch/lstm_bidirectional__legacy.onnx",
    "torch/gru__dynamo.onnx",
    "torch/mlp_silu__legacy.onnx",
    "torch/mlp_bf16__dynamo.onnx",
    "torch/resnet_block_zero_init_residual__legacy.onnx",
    "torch/multihead_attention__dynamo.onnx",
)
TIME_LIMIT = 10.0
# The module (a package attribute of the same name could shadow it in a plain import).
wire = importlib.import_module("initaudit.wire")


class Hang(BaseException):
    """Raised by :func:`time_limit`. A BaseException, so that neither the pipeline's
    ``except Exception`` nor hypothesis's shrinking (10 s per attempt) catches it."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail a case that uses more than ``seconds`` of CPU, or blocks for 6x that long.

    CPU time (ITIMER_PROF), not wall time, so a busy CI machine does not fail a fast case;
    the wall-clock limit catches a case that blocks without computing (a FIFO read).
    Signals are handled in the main thread; POSIX only.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        kind = "CPU" if signum == signal.SIGPROF else "wall-clock"
        raise Hang(f"no result within {seconds} s of {kind} time")

    timers = ((signal.SIGPROF, signal.ITIMER_PROF, seconds),
              (signal.SIGALRM, signal.ITIMER_REAL, max(6 * seconds, 30.0)))  # fmt: skip
    previous = [signal.signal(sig, on_signal) for sig, _, _ in timers]
    for _, timer, limit in timers:
        signal.setitimer(timer, limit)
    try:
        yield
    finally:
        for (sig, timer, _), handler in zip(timers, previous, strict=True):
            signal.setitimer(timer, 0)
            signal.signal(sig, handler)


@contextmanager
def keep_on_hang(data: bytes) -> Iterator[None]:
    """Save the input of a case that hangs, since hypothesis cannot report it."""
    try:
        yield
    except Hang as exc:
        saved = (
            Path(tempfile.gettempdir()) / f"initaudit-hang-{hashlib.sha1(data).hexdigest()}.onnx"
        )
        saved.write_bytes(data)
        raise Hang(f"{exc}; input saved to {saved}") from None


@contextmanager
def piece_bytes(size: int) -> Iterator[None]:
    """Parse files bigger than ``size`` bytes in pieces, as wire.py does past 64 MiB (0: as is)."""
    saved = wire.PIECE_BYTES
    wire.PIECE_BYTES = size or saved
    try:
        yield
    finally:
        wire.PIECE_BYTES = saved


@contextmanager
def cwd(path: Path) -> Iterator[None]:
    """Run in ``path``, so no pyproject.toml above the repository configures the CLI."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


class Mutant:
    """Mutated bytes, shown in a failure report as the seed and the steps that made them."""

    def __init__(self, seed: str, steps: tuple[str, ...], data: bytes) -> None:
        self.seed, self.steps, self.data = seed, steps, data

    def __repr__(self) -> str:
        return f"Mutant({self.seed!r}, {self.steps!r})"


def seed_models() -> dict[str, bytes]:
    seeds = {Path(f).name: (FIXTURES / f).read_bytes() for f in SEED_FILES}
    seeds[EXTERNAL.name] = EXTERNAL.read_bytes()
    seeds["function_call.onnx"] = function_model().SerializeToString()
    return seeds


def function_model() -> onnx.ModelProto:
    """A Linear layer inside a model-local function, called once, with a Constant bias."""
    m = M.clean_mlp((8, 16, 4))
    gemm = m.graph.node[0]
    body = helper.make_node("Gemm", ["a", "w", "b"], ["y"], transB=1)
    fn = helper.make_function(
        "local", "Linear", ["a", "w", "b"], ["y"], [body], [helper.make_opsetid("", M.OPSET)]
    )
    gemm.op_type, gemm.domain = "Linear", "local"
    bias = m.graph.initializer[1]
    m.graph.node.insert(0, helper.make_node("Constant", [], [bias.name], value=bias))
    del m.graph.initializer[1]
    m.functions.append(fn)
    m.opset_import.append(helper.make_opsetid("local", 1))
    return m


@contextmanager
def sandbox(seeds: dict[str, bytes]) -> Iterator[Path]:
    """``root/model/`` (where the model goes) with every kind of hostile neighbour.

    ``link_out.bin`` points to ``root/outside/secret.bin``, ``link_in.bin`` to ``w.bin``;
    ``fifo`` is a named pipe and ``sub`` a folder; the external-data fixture's data file is
    copied in so that seed resolves.
    """
    with tempfile.TemporaryDirectory(prefix="initaudit-fuzz-") as tmp:
        root = Path(tmp)
        (root / "outside").mkdir()
        (root / "outside" / "secret.bin").write_bytes(b"\x7f" * 4096)
        model = root / "model"
        (model / "sub").mkdir(parents=True)
        (model / "w.bin").write_bytes(b"\0" * 64)
        os.symlink(root / "outside" / "secret.bin", model / "link_out.bin")
        os.symlink("w.bin", model / "link_in.bin")
        os.mkfifo(model / "fifo")
        data = EXTERNAL.with_name(EXTERNAL.name + ".data")
        shutil.copyfile(data, model / data.name)
        yield root


def tensors(m: onnx.ModelProto) -> list[TensorProto]:
    """Every stored tensor, as references into ``m``: initializers, Constant values and
    subgraph initializers. A detached placeholder when there is none."""
    found = list(m.graph.initializer)
    for node in m.graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                found.append(attr.t)
            if attr.HasField("g"):
                found.extend(attr.g.initializer)
    return found or [TensorProto()]


def resized(raw: bytes, delta: int) -> bytes:
    return raw[: max(len(raw) + delta, 0)] if delta < 0 else raw + b"\x5a" * delta


def nest(m: onnx.ModelProto, depth: int) -> None:
    """Move the whole graph (nodes and initializers) ``depth`` If bodies down."""
    body = onnx.GraphProto()
    body.CopyFrom(m.graph)
    body.name = "body0"
    del body.input[:]
    outs = [o.name for o in m.graph.output]
    for k in range(depth):
        try:
            node = helper.make_node("If", ["cond"], outs, name=f"if{k}", then_branch=body)
        except DecodeError:  # past upb's depth limit: deeper cannot be built in Python
            break
        body = helper.make_graph([node], f"body{k + 1}", [], list(m.graph.output))
    del m.graph.node[:]
    del m.graph.initializer[:]
    m.graph.node.extend(body.node)
    m.graph.input.append(M.value_info("cond", [], TensorProto.BOOL))


def self_calling_function(m: onnx.ModelProto, calls: int) -> None:
    """Replace the first node by a call of a local function that runs it and calls itself
    ``calls`` times: the graph stage expands calls 16 levels deep, so calls**16 nodes."""
    if not m.graph.node:
        return
    node = m.graph.node[0]
    ins = [f"i{k}" for k in range(len(node.input))]
    outs = [f"o{k}" for k in range(len(node.output))]
    inner = onnx.NodeProto()
    inner.CopyFrom(node)
    inner.input[:], inner.output[:] = ins, outs
    selves = [helper.make_node("Self", ins, [f"t{c}"], domain="local") for c in range(calls)]
    fn = helper.make_function(
        "local", "Self", ins, outs, [inner, *selves], [helper.make_opsetid("", M.OPSET)]
    )
    m.functions.append(fn)
    m.opset_import.append(helper.make_opsetid("local", 1))
    node.op_type, node.domain = "Self", "local"
    del node.attribute[:]


def to_constant(m: onnx.ModelProto) -> None:
    """Store the first initializer as a Constant node's value instead."""
    if m.graph.initializer:
        t = m.graph.initializer[0]
        m.graph.node.insert(0, helper.make_node("Constant", [], [t.name], value=t))
        del m.graph.initializer[0]


def external_model(folder: Path, location: str | None, **entries: str) -> Path:
    """``folder/m.onnx``: a 4-3 MLP whose fc1.weight (3x4 float, 48 bytes) is stored in
    ``folder/data.bin`` with the given location (``None``: no location entry) and entries."""
    m = M.clean_mlp((4, 3))
    t = m.graph.initializer[0]
    (folder / "data.bin").write_bytes(t.raw_data)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for key, value in ({"location": location} if location is not None else {}).items():
        e = t.external_data.add()
        e.key, e.value = key, value
    for key, value in entries.items():
        e = t.external_data.add()
        e.key, e.value = key, value
    return M.save(m, folder / "m.onnx")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def deep_if_model(depth: int) -> bytes:
    """``depth`` nested If bodies, serialized by hand (protobuf field numbers from onnx.proto):
    the Python API cannot build messages nested deeper than upb's limit."""
    g = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)],
        "g0",
        [],
        [M.value_info("y", [1, 3])],
        [M.tensor("W", M.torch_default((3, 4), 4))],
    ).SerializeToString()
    for k in range(depth):
        # AttributeProto{name=1, g=6, type=20 (GRAPH=5)}; NodeProto{input=1, output=2,
        # op_type=4, attribute=5}; GraphProto{node=1, name=2}
        attr = _field(1, b"then_branch") + _field(6, g) + _varint(20 << 3) + _varint(5)
        node = _field(1, b"cond") + _field(2, b"y") + _field(4, b"If") + _field(5, attr)
        g = _field(1, node) + _field(2, f"g{k + 1}".encode())
    opset = _field(1, b"") + _varint(2 << 3) + _varint(M.OPSET)
    # ModelProto{ir_version=1, graph=7, opset_import=8}
    return _varint(1 << 3) + _varint(10) + _field(7, g) + _field(8, opset)


def wide_model(path: Path, kind: str, n: int) -> Path:
    """``fan-out``: one activation read by ``n`` Relu nodes; ``slice-concat``: the weight cut
    into ``n`` slices and concatenated back."""
    w = M.tensor("W", M.torch_default((6, 4), 4))
    if kind == "fan-out":
        gemm = helper.make_node("Gemm", ["x", "W"], ["h"], transB=1)
        nodes = [gemm, *(helper.make_node("Relu", ["h"], [f"r{i}"]) for i in range(n))]
        inits = [w]
    else:
        nodes = [helper.make_node("Slice", ["W", "s", "e"], [f"p{i}"]) for i in range(n)]
        nodes.append(helper.make_node("Concat", [f"p{i}" for i in range(n)], ["Wc"], axis=0))
        nodes.append(helper.make_node("Gemm", ["x", "Wc"], ["r0"], transB=1))
        inits = [w, M.tensor("s", np.array([0], np.int64)), M.tensor("e", np.array([1], np.int64))]
    m = M.model(nodes, inits, [M.value_info("x", [1, 4])], [M.value_info("r0", [1, 6])])
    return M.save(m, path)


def set_attr(op: str, name: str, value: object) -> Callable[[onnx.ModelProto], None]:
    """An edit setting attribute ``name`` of the first ``op`` node to ``value``."""

    def edit(m: onnx.ModelProto) -> None:
        node = next(n for n in m.graph.node if n.op_type == op)
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend([*kept, helper.make_attribute(name, value)])

    return edit


NOT_UTF8 = b"\x7f~NOT-UTF8~\x7f"


def bad_utf8_name(m: onnx.ModelProto) -> None:
    """Name the first node NOT_UTF8: the caller swaps those bytes for invalid UTF-8 ones."""
    m.graph.node[0].name = NOT_UTF8.decode()
