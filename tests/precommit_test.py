"""The hook in .pre-commit-hooks.yaml, run by the real ``pre-commit try-repo``.

try-repo builds a fresh virtualenv and pip-installs the hook repository into it (the
dependencies come from PyPI or pip's cache), so this is the slowest test (``slow``: CI runs
it; ``pytest -m slow`` here). It runs once, over one project holding a clean and a defective
model, as a user's repository holds both. try-repo wants committed code and ignores
untracked files, so the package is copied into a temporary git repository and committed
there: the test checks the working tree, uncommitted changes included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests import _models as M

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = Path(sys.executable).parent / ("pre-commit.exe" if os.name == "nt" else "pre-commit")
HOOK_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml")
TIMEOUT = 900


def _env(tmp_path: Path) -> dict[str, str]:
    # No GIT_* from a calling git hook (GIT_INDEX_FILE would point into another repo).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    env["PRE_COMMIT_COLOR"] = "never"
    return env


def _git(cwd: Path, env: dict[str, str], *args: str) -> None:
    ident = ["-c", "user.name=initaudit tests", "-c", "user.email=tests@invalid"]
    cmd = ["git", *ident, "-c", "commit.gpgsign=false", *args]
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)


def _hook_repo(tmp_path: Path, env: dict[str, str]) -> Path:
    repo = tmp_path / "hook-repo"
    repo.mkdir()
    for name in HOOK_FILES:
        shutil.copy(ROOT / name, repo / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "initaudit", repo / "initaudit", ignore=ignore)
    _git(repo, env, "init", "-q")
    _git(repo, env, "add", "-A")
    _git(repo, env, "commit", "-q", "-m", "working tree")
    return repo


def _project(tmp_path: Path, env: dict[str, str], models: dict[str, onnx.ModelProto]) -> Path:
    project = tmp_path / "project"
    for name, model in models.items():
        M.save(model, project / "models" / name)
    _git(project, env, "init", "-q")
    _git(project, env, "add", "-A")
    return project


@pytest.mark.slow
@pytest.mark.skipif(
    not PRE_COMMIT.exists(), reason="pre-commit is not installed (pip install -e '.[test]')"
)
def test_hook_fails_on_the_defective_model_and_passes_the_clean_one(tmp_path: Path) -> None:
    env = _env(tmp_path)
    hook = _hook_repo(tmp_path, env)
    zero = M.mlp(
        [M.torch_default((32, 16), 16), np.zeros((8, 32), np.float32), M.torch_default((4, 8), 8)]
    )
    project = _project(tmp_path, env, {"ok.onnx": M.clean_mlp(), "zero.onnx": zero})
    r = subprocess.run(
        [str(PRE_COMMIT), "try-repo", str(hook), "initaudit", "--all-files", "--verbose"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT,
    )
    out = r.stdout
    assert r.returncode == 1, out
    assert "initaudit" in out and "Failed" in out and "- exit code: 1" in out, out
    assert "models/zero.onnx: fc2.weight [Gemm /fc2/Gemm] IA101 error" in out, out
    # Both files were passed to the one initaudit process; only the defective one is reported.
    assert "1 finding (1 error, 0 warnings, 0 info) in 2 files." in out, out
    assert "models/ok.onnx" not in out, out
