"""The default audit imports numpy, protobuf and initaudit, not onnx, scipy or ml_dtypes.

A pre-commit hook starts a new process on every commit: ``import onnx`` alone costs ~1 s
(ml_dtypes' import, which onnx does eagerly), scipy's stats ~1 s, ten times ``import numpy``.
onnx stays for ``--propagate`` and for callers that hand in their own ``onnx.ModelProto``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("onnx", "scipy", "ml_dtypes")
# Runs the console entry point in this process, then prints which heavy packages it imported.
_CLI = (
    "import atexit, sys\n"
    "heavy = {heavy!r}\n"
    "atexit.register(lambda: print(sorted({{m.split('.')[0] for m in sys.modules}} & set(heavy)),"
    " file=sys.stderr))\n"
    "from initaudit.cli import main\n"
    "main(sys.argv[1:])\n"
)
TINY = "fixtures/torch/mlp_relu__dynamo.onnx"
# bf16, float8 and int4 storage: decoded by initaudit's own tables, not ml_dtypes.
LOW_PRECISION = (
    "fixtures/torch/mlp_bf16__dynamo.onnx",
    "fixtures/torch/mlp_fp16__legacy.onnx",
    "fixtures/built/float8_e4m3_weights.onnx",
    "fixtures/built/int4_blocked_qdq.onnx",
    "fixtures/torch/cnn_qdq_int8__legacy.onnx",
)


def _imported(args: list[str]) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _CLI.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return done.stderr.strip().splitlines()[-1], done.returncode


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["-q", TINY],
        ["--format", "json", TINY],
        ["--format", "sarif", TINY],
        ["--format", "github", *LOW_PRECISION],
        ["-q", "fixtures/broken/truncated.onnx", "fixtures/broken/not_onnx.onnx"],
    ],
    ids=["version", "text", "json", "sarif", "low-precision", "broken"],
)
def test_the_command_line_imports_no_heavy_package(args: list[str]) -> None:
    line, code = _imported(args)
    assert code in (0, 1, 2)
    assert line == "[]"


def test_the_python_api_imports_no_heavy_package() -> None:
    code = (
        "import sys, initaudit\n"
        f"for path in {[TINY, *LOW_PRECISION]!r}:\n"
        "    assert initaudit.audit(path).files[0].tensors\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "[]"


def test_an_onnx_model_proto_is_still_accepted() -> None:
    """A caller's own onnx.ModelProto is audited as its file would be (serialized, not
    copied: its classes are not initaudit's)."""
    import onnx

    import initaudit

    model = onnx.load(ROOT / TINY)
    from_proto, from_file = initaudit.audit(model), initaudit.audit(ROOT / TINY)
    assert from_proto.files[0].path == initaudit.MODEL_PROTO_PATH
    assert from_proto.files[0].tensors == from_file.files[0].tensors
    assert from_proto.findings == from_file.findings
