"""The hook in .pre-commit-hooks.yaml, run by the real ``pre-commit try-repo``.

try-repo builds a fresh virtualenv and pip-installs the hook repository into it (the
dependencies come from PyPI or pip's cache), so this is the slowest test; both scenarios run
in parallel, one try-repo each. try-repo wants committed code and ignores untracked files, so
the package is copied into a temporary git repository and committed there: the test checks
the working tree, uncommitted changes included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
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


def _project(tmp_path: Path, env: dict[str, str], name: str, model: Path) -> Path:
    project = tmp_path / name
    (project / "models").mkdir(parents=True)
    shutil.copy(model, project / "models" / model.name)
    _git(project, env, "init", "-q")
    _git(project, env, "add", "-A")
    return project


@pytest.mark.skipif(
    not PRE_COMMIT.exists(), reason="pre-commit is not installed (pip install -e '.[test]')"
)
def test_hook_passes_clean_model_and_fails_defective_one(tmp_path: Path) -> None:
    env = _env(tmp_path)
    hook = _hook_repo(tmp_path, env)
    zero = M.mlp(
        [M.torch_default((32, 16), 16), np.zeros((8, 32), np.float32), M.torch_default((4, 8), 8)]
    )
    scenarios = {
        "clean": _project(tmp_path, env, "clean", M.save(M.clean_mlp(), tmp_path / "ok.onnx")),
        "defect": _project(tmp_path, env, "defect", M.save(zero, tmp_path / "zero.onnx")),
    }
    procs = {
        name: subprocess.Popen(
            [str(PRE_COMMIT), "try-repo", str(hook), "initaudit", "--all-files", "--verbose"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, project in scenarios.items()
    }
    outputs = {name: p.communicate(timeout=TIMEOUT)[0] for name, p in procs.items()}

    clean = outputs["clean"]
    assert procs["clean"].returncode == 0, clean
    assert "initaudit" in clean and "Passed" in clean, clean
    assert "0 findings (0 errors, 0 warnings, 0 info) in 1 file." in clean, clean

    defect = outputs["defect"]
    assert procs["defect"].returncode == 1, defect
    assert "Failed" in defect and "- exit code: 1" in defect, defect
    assert "models/zero.onnx: fc2.weight [Gemm /fc2/Gemm] IA101 error" in defect, defect


@pytest.mark.skipif(
    not PRE_COMMIT.exists(), reason="pre-commit is not installed (pip install -e '.[test]')"
)
def test_factories_hook_builds_the_configured_models_when_code_changes(tmp_path: Path) -> None:
    """initaudit-factories: no file names passed; the factories in [tool.initaudit] are
    imported from the repository root and their models audited (ONNX-building factories,
    so the hook's environment needs no framework)."""
    from tests.factory_test import MODELS

    env = _env(tmp_path)
    hook = _hook_repo(tmp_path, env)
    project = tmp_path / "code"
    (project / "factorypkg").mkdir(parents=True)
    (project / "factorypkg" / "__init__.py").write_text("")
    (project / "factorypkg" / "models.py").write_text(textwrap.dedent(MODELS))
    (project / "pyproject.toml").write_text(
        '[tool.initaudit]\nfactories = ["factorypkg.models:build_clean", '
        '"factorypkg.models:build_zero"]\n'
    )
    _git(project, env, "init", "-q")
    _git(project, env, "add", "-A")
    out = subprocess.run(
        [str(PRE_COMMIT), "try-repo", str(hook), "initaudit-factories", "--all-files", "--verbose"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "initaudit (model factories)" in text and "Failed" in text, text
    assert "factorypkg.models:build_zero: fc2.weight [Gemm /fc2/Gemm] IA101 error" in text, text
    assert "1 finding (1 error, 0 warnings, 0 info) in 2 files." in text, text
