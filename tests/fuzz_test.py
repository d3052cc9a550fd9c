"""Fuzz: mutated real models end as a clean audit or a documented error, never a crash or hang.

Each case mutates a committed fixture (bit flips, truncation, byte insertion/deletion, or edits
on the parsed ModelProto: dims, data types, raw_data size, hostile external data, rewired node
inputs that make cycles, op types, attributes, self-calling functions, nested subgraphs) and
runs the real pipeline on a file in a fresh folder. Every case must finish within
``TIME_LIMIT`` seconds as a clean audit or an error entry whose code is in
``INPUT_ERROR_CODES`` and is not ``internal``; a few cases go through the CLI and must exit
0/1/2 with at most one stderr line and no traceback.

CI runs a derandomized profile of about 300 cases (well under a minute). For a long, randomized
run, set the total number of cases (spread over the tests in the same proportions):

    INITAUDIT_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q tests/fuzz_test.py
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, Phase, event, given, reject, settings
from hypothesis import currently_in_test_context as in_hypothesis
from hypothesis import strategies as st
from onnx import TensorProto, helper

from initaudit.audit import AuditOptions, audit_file
from initaudit.cli import cli
from initaudit.errors import INPUT_ERROR_CODES
from tests import _fuzzing as F
from tests._click import runner

LONG = int(os.environ.get("INITAUDIT_FUZZ_EXAMPLES", "0"))
TOTAL = LONG or 300
PROFILE = settings(
    derandomize=not LONG,
    database=None,
    deadline=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no tracing "explain"
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
Draw = Callable[[st.SearchStrategy[Any]], Any]

SEEDS = F.seed_models()
HUGE = [-1, 0, 1, 3, 7, 2**31, 2**32 + 1, 2**40, 2**62, 2**63 - 1, -(2**63)]
LOCATIONS = [
    "w.bin", "missing.bin", "../outside/secret.bin", "sub/../../outside/secret.bin",
    "/etc/passwd", "link_out.bin", "link_in.bin", "sub", ".", "fifo", "/dev/zero", "",
    "w.bin\x00.txt",
]  # fmt: skip
OPS = [
    "Gemm", "MatMul", "Conv", "ConvTranspose", "LSTM", "GRU", "Relu", "Gelu", "Clip", "Add",
    "Mul", "Div", "Sub", "Identity", "Cast", "Transpose", "Reshape", "Flatten", "Squeeze",
    "Unsqueeze", "Slice", "Split", "Concat", "Gather", "DequantizeLinear", "QuantizeLinear",
    "LayerNormalization", "BatchNormalization", "Constant", "If", "Loop", "Sigmoid", "Where",
    "MatMulInteger", "QLinearConv", "Attention", "F",
]  # fmt: skip
ATTRS = ["perm", "axis", "axes", "transA", "transB", "group", "to", "block_size", "allowzero",
         "alpha", "activations", "hidden_size", "direction", "kernel_shape", "value"]  # fmt: skip
ATTR_VALUES = st.one_of(
    st.sampled_from(HUGE),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.lists(st.integers(-5, 5), max_size=6),
    st.sampled_from(["tanh", "none", "", "Relu", "\xff"]),
    st.lists(st.sampled_from(["Sigmoid", "Tanh", "x"]), min_size=1, max_size=4),
)


# -- field-level edits on a parsed ModelProto -----------------------------------------------
def edit_dims(m: onnx.ModelProto, draw: Draw, folder: Path) -> None:
    t = draw(st.sampled_from(F.tensors(m)))
    how = draw(st.sampled_from(["set", "append", "pop", "clear"]))
    value = draw(st.sampled_from(HUGE) | st.integers(-2, 70))
    if how == "set" and t.dims:
        t.dims[draw(st.integers(0, len(t.dims) - 1))] = value
    elif how == "append":
        t.dims.append(value)
    elif how == "pop" and t.dims:
        del t.dims[-1]
    elif how == "clear":
        del t.dims[:]


def edit_data_type(m: onnx.ModelProto, draw: Draw, folder: Path) -> None:
    draw(st.sampled_from(F.tensors(m))).data_type = draw(st.integers(-3, 40))


def edit_storage(m: onnx.ModelProto, draw: Draw, folder: Path) -> None:
    t = draw(st.sampled_from(F.tensors(m)))
    how = draw(st.sampled_from(["resize", "typed", "clear"]))
    if how == "resize":
        t.raw_data = F.resized(t.raw_data, draw(st.integers(-20, 20)))
    elif how == "typed":
        field = draw(st.sampled_from(["float_data", "int32_data", "int64_data", "double_data"]))
        t.ClearField("raw_data")
        getattr(t, field).extend([1] * draw(st.integers(0, 40)))
    else:
        t.ClearField("raw_data")


def edit_external(m: onnx.ModelProto, draw: Draw, folder: Path) -> None:
    t = draw(st.sampled_from(F.tensors(m)))
    pad = draw(st.sampled_from([0, 3, 16]))
    raw = t.raw_data
    (folder / "w.bin").write_bytes(b"\x01" * pad + raw)
    t.ClearField("raw_data")
    t.data_location = draw(st.sampled_from([TensorProto.EXTERNAL] * 3 + [TensorProto.DEFAULT]))
    n = len(raw)
    fields = {
        "location": draw(st.sampled_from([*LOCATIONS, None])),
        "offset": draw(st.sampled_from([None, "0", str(pad), "-1", "x", str(2**63)])),
        "length": draw(st.sampled_from([None, str(n), str(n + 1), str(max(n - 1, 0)), "-5"])),
        draw(st.sampled_from(["checksum", "location", "length"])): draw(st.sampled_from(["", "7"])),
    }
    for key, value in fields.items():
        if value is not None:
            e = t.external_data.add()
            e.key, e.value = key, value


def edit_rewire(m: onnx.ModelProto, draw: Draw, folder: Path) -> None:
    nodes = list(m.graph.node)
    if not nodes:
        return
    a = draw(st.sampled_from(nodes))
    b = draw(st.sampled_from(nodes))
    names = [*b.output, *a.output, "", "dangling", *(t.name for t in m.graph.initializer[:3])]
    value = draw(st.sampled_from(names))
    if draw(st.booleans()) and a.input:
        a.input[draw(st.integers(0, len(a.input) - 1))] = value
    elif draw(st.booleans()) and a.output:
        a.output[0] = draw(st.sampled_from([*a.input, value]) if a.input else st.just(value))
    else:
        a.input.append(value)


def edit_op(m: onnx.ModelProto, draw: Draw, folder: Path) -> None:
    nodes = list(m.graph.node)
    if nodes:
        node = draw(st.sampled_from(nodes))
        node.op_type = draw(st.sampled_from(OPS))
        node.domain = draw(st.sampled_from(["", "", "com.microsoft", "local"]))


def edit_attribute(m: onnx.ModelProto, draw: Draw, folder: Path) -> None:
    nodes = list(m.graph.node)
    if nodes:
        node = draw(st.sampled_from(nodes))
        name = draw(st.sampled_from(ATTRS))
        for i in reversed(range(len(node.attribute))):
            if node.attribute[i].name == name:
                del node.attribute[i]
        value = draw(ATTR_VALUES)
        kind = onnx.AttributeProto.INTS if value == [] else None
        node.attribute.append(helper.make_attribute(name, value, attr_type=kind))


def edit_header(m: onnx.ModelProto, draw: Draw, folder: Path) -> None:
    how = draw(st.sampled_from(["ir", "opset", "no-opset", "no-graph", "dup-init"]))
    if how == "ir":
        m.ir_version = draw(st.integers(-1, 12))
    elif how == "opset" and m.opset_import:
        m.opset_import[0].version = draw(st.sampled_from(HUGE))
    elif how == "no-opset":
        del m.opset_import[:]
    elif how == "no-graph":
        m.ClearField("graph")
    elif m.graph.initializer:
        m.graph.initializer.append(m.graph.initializer[-1])
        m.graph.initializer[-1].dims.append(2)


def edit_structure(m: onnx.ModelProto, draw: Draw, folder: Path) -> None:
    how = draw(st.sampled_from(["nest", "function", "constant"]))
    if how == "nest":
        F.nest(m, draw(st.integers(1, 40)))
    elif how == "function":
        # 2 calls expand to 2**17 nodes: legal, but seconds of work; 3 or more are refused.
        F.self_calling_function(m, draw(st.sampled_from([1, 3, 4, 5])))
    else:
        F.to_constant(m)


EDITS = [
    edit_dims, edit_data_type, edit_storage, edit_external, edit_rewire, edit_op,
    edit_attribute, edit_header, edit_structure,
]  # fmt: skip


# -- the properties -----------------------------------------------------------------------
def _check_audit(folder: Path, data: bytes, pieces: bool) -> None:
    """``pieces``: parse through wire.py's wire-format walk (used for files over 64 MiB)."""
    path = folder / "model" / "m.onnx"
    path.write_bytes(data)
    with F.keep_on_hang(data), F.time_limit(F.TIME_LIMIT), F.piece_bytes(256 if pieces else 0):
        result = audit_file(path, AuditOptions(debug=True))  # debug: a bug shows its traceback here
    outcome = result.error.code if result.error else "audited"
    if in_hypothesis():
        event(f"outcome: {outcome}")  # tallied by --hypothesis-show-statistics
    if result.error is not None:
        assert result.error.code in INPUT_ERROR_CODES, result.error
        assert result.error.code != "internal", result.error


@st.composite
def byte_mutants(draw: Draw) -> F.Mutant:
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        # Half the edits land in the first 2 KiB, where the graph's structure is.
        end = len(data) - 1 if draw(st.booleans()) else min(len(data) - 1, 2048)
        pos = draw(st.integers(0, end))
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "varint"]))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[max(pos, 1) :]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        else:
            data[pos : pos + 5] = b"\xff\xff\xff\xff\x0f"  # the largest 32-bit varint
        steps.append(f"{kind}@{pos}")
    return F.Mutant(name, tuple(steps), bytes(data))


@settings(PROFILE, max_examples=TOTAL * 10 // 30)
@given(byte_mutants(), st.booleans())
def test_byte_mutations_fail_closed(case: F.Mutant, pieces: bool) -> None:
    with F.sandbox(SEEDS) as folder:
        _check_audit(folder, case.data, pieces)


@settings(PROFILE, max_examples=TOTAL * 17 // 30)
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_field_edits_fail_closed(seed: str, data: st.DataObject) -> None:
    with F.sandbox(SEEDS) as folder:
        m = onnx.ModelProto()
        m.ParseFromString(SEEDS[seed])
        try:
            for _ in range(data.draw(st.integers(1, 3))):
                edit = data.draw(st.sampled_from(EDITS))
                edit(m, data.draw, folder / "model")
            mutated = m.SerializeToString()
        except DecodeError:  # nested past upb's limit: the Python API cannot build it
            reject()
        _check_audit(folder, mutated, data.draw(st.booleans()))


ERROR_LINE = re.compile(r"^initaudit: .+: ([a-z-]+): .+$")


@settings(PROFILE, max_examples=max(TOTAL * 3 // 30, 5))
@given(byte_mutants(), st.sampled_from(["text", "json"]))
def test_cli_on_mutants_exits_0_1_or_2_with_one_line(case: F.Mutant, fmt: str) -> None:
    with F.sandbox(SEEDS) as folder, F.cwd(folder):
        path = folder / "model" / "m.onnx"
        path.write_bytes(case.data)
        with F.keep_on_hang(case.data), F.time_limit(F.TIME_LIMIT):
            r = runner().invoke(cli, [str(path), "--format", fmt])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert r.exit_code in (0, 1, 2)
    assert "Traceback" not in r.stdout + r.stderr
    if r.exit_code == 2:
        (line,) = r.stderr.splitlines()
        match = ERROR_LINE.match(line)
        assert match, line
        assert match.group(1) in INPUT_ERROR_CODES and match.group(1) != "internal", line


# -- structural mutations of valid models, judged against onnx.checker ----------------------
# Seeds onnx.checker accepts as they are (the others fail on value_info shapes or on external
# data the checker looks for beside the current directory).
VALID_SEEDS = sorted(
    name
    for name, data in SEEDS.items()
    if name not in ("if_subgraph_zero_weight.onnx", "int4_blocked_qdq.onnx")
    and "external" not in name
)
READ_ATTRS = {  # attributes the audit reads, and a value of another type for each
    "transA": 1.0, "transB": 1.0, "alpha": 1, "axis": 1.5, "group": 2.0, "perm": 1,
    "hidden_size": "64", "epsilon": 1, "axes": 0.5, "allowzero": 0.0,
}  # fmt: skip


def _ordered(m: onnx.ModelProto) -> bool:
    """Whether the main graph's nodes can be put in an order where every input is defined
    first: the checker's "topologically sorted" then only means "not sorted yet", which the
    audit does not need (its index has no order); otherwise there is a cycle or a dangling
    input, which the audit must refuse."""
    g = m.graph
    defined = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    pending = list(g.node)
    while pending:
        ready = [n for n in pending if all(i in defined for i in n.input)]
        if not ready:
            return False
        for n in ready:
            defined.update(n.output)
        pending = [n for n in pending if n not in ready]
    return True


def _checker_verdict(m: onnx.ModelProto) -> str | None:
    """None when onnx.checker accepts the model; else "structural" when it refuses it for a
    reason the audit depends on (the graph it reads), or "other"."""
    try:
        onnx.checker.check_model(m)
    except onnx.checker.ValidationError as exc:
        text = str(exc)
        if "topologically sorted" in text:
            return "other" if _ordered(m) else "structural"
        attr = re.search(r"(?:Mismatched attribute type in '[^']* : |Attribute ')(\w+)", text)
        if attr is not None:
            return "structural" if attr.group(1) in READ_ATTRS else "other"
        structural = ("single static assignment", "is not an output of any node", "opset_import")
        return "structural" if any(s in text for s in structural) else "other"
    return None


def struct_cycle(m: onnx.ModelProto, draw: Draw) -> None:
    """An earlier node reads a later node's output (or its own)."""
    nodes = list(m.graph.node)
    a = draw(st.integers(0, len(nodes) - 1))
    b = draw(st.integers(a, len(nodes) - 1))
    if nodes[b].output:
        nodes[a].input.append(nodes[b].output[0])


def struct_dangling(m: onnx.ModelProto, draw: Draw) -> None:
    node = draw(st.sampled_from(list(m.graph.node)))
    if node.input and draw(st.booleans()):
        node.input[draw(st.integers(0, len(node.input) - 1))] = "nothing_makes_this"
    else:
        node.input.append("nothing_makes_this")


def struct_duplicate_output(m: onnx.ModelProto, draw: Draw) -> None:
    nodes = list(m.graph.node)
    a, b = draw(st.sampled_from(nodes)), draw(st.sampled_from(nodes))
    names = [*b.output, *(i.name for i in m.graph.input), *(t.name for t in m.graph.initializer)]
    if a.output and names:
        a.output[0] = draw(st.sampled_from(names))


def struct_unproduced_output(m: onnx.ModelProto, draw: Draw) -> None:
    m.graph.output[draw(st.integers(0, len(m.graph.output) - 1))].name = "produced_by_nobody"


def struct_attribute_type(m: onnx.ModelProto, draw: Draw) -> None:
    node = draw(st.sampled_from(list(m.graph.node)))
    name = draw(st.sampled_from(sorted(READ_ATTRS)))
    value = READ_ATTRS[name]
    if draw(st.booleans()):  # replace it, or give it a second time
        for i in reversed(range(len(node.attribute))):
            if node.attribute[i].name == name:
                del node.attribute[i]
    node.attribute.append(helper.make_attribute(name, value))


def struct_drop_opset(m: onnx.ModelProto, draw: Draw) -> None:
    del m.opset_import[:]


def struct_nest(m: onnx.ModelProto, draw: Draw) -> None:
    """Valid: the whole graph moves into If bodies that read the outer graph's inputs."""
    F.nest(m, draw(st.integers(1, 3)))


def struct_reorder(m: onnx.ModelProto, draw: Draw) -> None:
    """Valid for the audit (a DAG in another order), though not sorted for the checker."""
    nodes = list(m.graph.node)
    order = draw(st.permutations(range(len(nodes))))
    del m.graph.node[:]
    m.graph.node.extend(nodes[i] for i in order)


STRUCTURAL = [
    struct_cycle, struct_dangling, struct_duplicate_output, struct_unproduced_output,
    struct_attribute_type, struct_drop_opset, struct_nest, struct_reorder,
]  # fmt: skip


@settings(PROFILE, max_examples=max(TOTAL * 4 // 30, 10))
@given(st.sampled_from(VALID_SEEDS), st.data())
def test_structural_mutations_are_refused_exactly_when_the_graph_is_not_one(
    seed: str, data: st.DataObject
) -> None:
    """A model onnx.checker refuses for its graph is never audited as if clean; one it
    accepts is never refused as invalid (no false input errors on nested or reordered ones)."""
    m = onnx.ModelProto()
    m.ParseFromString(SEEDS[seed])
    for _ in range(data.draw(st.integers(1, 2))):
        edit = data.draw(st.sampled_from(STRUCTURAL))
        edit(m, data.draw)
    verdict = _checker_verdict(m)
    with F.sandbox(SEEDS) as folder:
        path = folder / "model" / "m.onnx"
        path.write_bytes(m.SerializeToString())
        with F.time_limit(F.TIME_LIMIT):
            result = audit_file(path, AuditOptions(debug=True))
    outcome = result.error.code if result.error else "audited"
    if in_hypothesis():
        event(f"checker: {verdict or 'accepts'}; initaudit: {outcome}")
    assert result.error is None or result.error.code in INPUT_ERROR_CODES
    if verdict == "structural":
        assert result.error is not None, "audited a model whose graph onnx.checker refuses"
    if verdict is None:
        assert result.error is None or result.error.code != "invalid-model", result.error


# What the fuzzer found, replayed on every run: (seed, edit, xfail reason or "").
FOUND = {
    "name-not-utf8": ("conv1d__legacy.onnx", F.bad_utf8_name, ""),
    "blocked-scale-other-axis": (
        "int4_blocked_qdq.onnx",
        F.set_attr("DequantizeLinear", "axis", 0),
        "",
    ),
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_fuzzer_finds_stay_fixed(name: str, request: pytest.FixtureRequest) -> None:
    seed, edit, broken = FOUND[name]
    if broken:
        request.applymarker(pytest.mark.xfail(strict=True, raises=ValueError, reason=broken))
    m = onnx.ModelProto()
    m.ParseFromString(SEEDS[seed])
    edit(m)
    data = m.SerializeToString().replace(F.NOT_UTF8, b"\xff" * len(F.NOT_UTF8))
    with F.sandbox(SEEDS) as folder:
        _check_audit(folder, data, pieces=False)
