"""INITAUDIT_PROFILE=1 prints where the time went, one stderr line per stage; stdout and the
exit status stay what they are without it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("fixtures/torch/mlp_zero_weight__dynamo.onnx", "fixtures/torch/hf_gpt2_tiny__dynamo.onnx")
LINE = re.compile(r"initaudit: profile: +(\S+) +wall +[\d.]+ s +cpu +[\d.]+ s +x\d+")


def _cli(profile: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "INITAUDIT_PROFILE"}
    if profile is not None:
        env["INITAUDIT_PROFILE"] = profile
    return subprocess.run(
        [sys.executable, "-m", "initaudit", "--isolated", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )


def test_profile_prints_each_stage_and_leaves_stdout_alone() -> None:
    plain = _cli(None, "--format", "json", "-j", "2", *MODELS)
    profiled = _cli("1", "--format", "json", "-j", "2", *MODELS)
    assert profiled.stdout == plain.stdout
    assert profiled.returncode == plain.returncode == 1  # the zero weight is an error
    assert plain.stderr == ""
    stages = [m.group(1) for m in map(LINE.fullmatch, profiled.stderr.splitlines()) if m]
    assert stages[:3] == ["load", "graph", "measure"]
    assert {"moments", "fit", "duplicates", "depth", "rules", "report"} <= set(stages)
    assert profiled.stderr.splitlines()[-1].startswith("initaudit: profile: process      cpu")


def test_profile_off_when_zero() -> None:
    done = _cli("0", "-q", MODELS[1])
    assert "profile" not in done.stderr
