"""Ctrl-C stops the whole run, releases the memory maps and exits 130: a real SIGINT sent to
the real command while it measures a memory-mapped model, serial and threaded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from initaudit.audit import AuditOptions, audit_file
from initaudit.stats import measure as measure_module
from initaudit.stats.values import Values

EXE = Path(sys.executable).parent / "initaudit"
COMMAND = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "initaudit"]
pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 Gemm layers of 2048x2048 float32 in one external data file (128 MB): long enough to
    be measuring when the signal comes, small enough for CI."""
    folder = tmp_path_factory.mktemp("big")
    d, n = 2048, 8
    rng = np.random.default_rng(0)
    inits, nodes, x, offset = [], [], "x", 0
    with open(folder / "big.onnx.data", "wb") as data:
        for i in range(n):
            w = (rng.standard_normal((d, d), dtype=np.float32) / np.float32(np.sqrt(d))).tobytes()
            t = TensorProto(name=f"fc{i}.weight", data_type=TensorProto.FLOAT, dims=[d, d])
            t.data_location = TensorProto.EXTERNAL
            for key, value in (
                ("location", "big.onnx.data"),
                ("offset", offset),
                ("length", len(w)),
            ):
                t.external_data.add(key=key, value=str(value))
            data.write(w)
            offset += len(w)
            inits.append(t)
            nodes.append(helper.make_node("Gemm", [x, t.name], [f"y{i}"], transB=1))
            x = f"y{i}"
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", d])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    (folder / "big.onnx").write_bytes(model.SerializeToString())
    return folder / "big.onnx"


def _mapped(pid: int | str, data: Path) -> bool:
    try:
        return str(data) in Path(f"/proc/{pid}/maps").read_text()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigint_while_measuring_stops_the_run_with_130(big: Path, jobs: str) -> None:
    """The second model on the command line is never audited, no "internal error", no
    click "Aborted!" with exit 1 (the findings status)."""
    data = big.with_name("big.onnx.data").resolve()
    proc = subprocess.Popen(
        [*COMMAND, "--isolated", "-j", jobs, str(big), str(big.with_name("second.onnx"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _mapped(proc.pid, data):  # measuring: the data file is memory-mapped
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "never started measuring"
            time.sleep(0.002)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (proc.returncode, out, err) == (130, "", "initaudit: interrupted\n")


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_interrupted_audit_releases_the_memory_maps(
    big: Path, jobs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: Ctrl-C in the middle of a tensor's scan, while views of the memory map are
    alive, propagates as KeyboardInterrupt (not an internal error for this file and on to the
    next one) and leaves no map of the data behind."""
    data = big.with_name("big.onnx.data").resolve()
    real = measure_module.compute_stats
    calls: list[bool] = []

    def scan_then_interrupt(values: Values) -> object:
        calls.append(True)
        if len(calls) != 3:  # one Ctrl-C, in the third tensor's scan
            return real(values)
        _, chunk = next(values.chunks())  # a view of the map, alive in this frame
        assert _mapped(os.getpid(), data) and chunk.size
        raise KeyboardInterrupt

    monkeypatch.setattr(measure_module, "compute_stats", scan_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        audit_file(big, AuditOptions(jobs=jobs))
    assert len(calls) >= 3
    assert not _mapped(os.getpid(), data)
