"""The hooks in .pre-commit-hooks.yaml, run by the real ``pre-commit run`` from the
``.pre-commit-config.yaml`` the README documents (this repository by path, a commit SHA).

pre-commit builds a fresh virtualenv and pip-installs the hook repository into it (the
dependencies come from PyPI or pip's cache), so this is the slowest test (``slow``: CI runs
it; ``pytest -m slow`` here). It runs once, over one project holding a clean and a defective
model, as a user's repository holds both. pre-commit clones committed code only, so the
package is copied into a temporary git repository and committed there: the test checks the
working tree, uncommitted changes included.
"""

from __future__ import annotations

import os
import re
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
HOOK_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "CHANGELOG.md")
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


@pytest.mark.slow
@pytest.mark.skipif(
    not PRE_COMMIT.exists(), reason="pre-commit is not installed (pip install -e '.[test]')"
)
def test_both_hooks_fail_on_the_defect_and_pass_the_clean_model(tmp_path: Path) -> None:
    """One real ``pre-commit run`` (it builds the hook's virtualenv: the cost) runs both
    hooks over one project: ``initaudit`` on its two committed models, ``initaudit-factories``
    on the two models its code builds ([tool.initaudit] factories; no file names passed, and
    ONNX-building factories, so the hook's environment needs no framework)."""
    from tests.factory_test import MODELS

    env = _env(tmp_path)
    hook = _hook_repo(tmp_path, env)
    zero = M.mlp(
        [M.torch_default((32, 16), 16), np.zeros((8, 32), np.float32), M.torch_default((4, 8), 8)]
    )
    project = tmp_path / "project"
    for name, model in {"ok.onnx": M.clean_mlp(), "zero.onnx": zero}.items():
        M.save(model, project / "models" / name)
    (project / "factorypkg").mkdir(parents=True)
    (project / "factorypkg" / "__init__.py").write_text("")
    (project / "factorypkg" / "models.py").write_text(textwrap.dedent(MODELS))
    (project / "pyproject.toml").write_text(
        '[tool.initaudit]\nfactories = ["factorypkg.models:build_clean", '
        '"factorypkg.models:build_zero"]\n'
    )
    (project / ".pre-commit-config.yaml").write_text(_readme_config(hook, env))
    _git(project, env, "init", "-q")
    _git(project, env, "add", "-A")
    r = subprocess.run(
        [str(PRE_COMMIT), "run", "--all-files", "--verbose"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT,
    )
    out = r.stdout
    assert r.returncode == 1, out
    files, factories = _sections(out, "initaudit"), _sections(out, "initaudit-factories")
    assert "- exit code: 1" in files, out
    assert "models/zero.onnx: fc2.weight [Gemm /fc2/Gemm] IA101 error" in files, out
    # Both files were passed to the one initaudit process; only the defective one is reported.
    assert "1 finding (1 error, 0 warnings, 0 info) in 2 files." in files, out
    assert "models/ok.onnx" not in files, out
    assert "- exit code: 1" in factories, out
    assert "factorypkg.models:build_zero: fc2.weight [Gemm /fc2/Gemm] IA101 error" in factories
    assert "build_clean" not in factories.split("- exit code: 1", 1)[1], out
    assert "1 finding (1 error, 0 warnings, 0 info) in 2 files." in factories, out


def _readme_config(hook: Path, env: dict[str, str]) -> str:
    """The README's two pre-commit recipes as one config: its placeholders filled with the
    hook repository's path and commit SHA (what README "Use with pre-commit" says to use)."""
    import yaml

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = []
    for recipe in ("pre-commit-hook", "pre-commit"):
        start = readme.index(f"<!-- recipe: {recipe} -->")
        yaml_blocks = re.findall(r"```yaml\n(.*?)```", readme[start:], re.S)
        blocks.append(yaml.safe_load(yaml_blocks[0]))
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=hook, env=env, capture_output=True, text=True
    ).stdout.strip()
    repos = [repo for block in blocks for repo in block["repos"]]
    assert {(r["repo"], r["rev"]) for r in repos} == {("<initaudit-git-url>", "<commit-sha>")}
    hooks = [h for r in repos for h in r["hooks"]]
    for h in hooks:
        h.pop("additional_dependencies", None)  # torch, for torch factories: these build ONNX
    config = {"repos": [{"repo": str(hook), "rev": sha, "hooks": hooks}]}
    return yaml.safe_dump(config)


def _sections(out: str, hook_id: str) -> str:
    """What pre-commit printed for one hook (from its "- hook id:" line to the next hook)."""
    parts = re.split(r"(?m)^(?=\S.*\.{3,}(?:Passed|Failed|Skipped)$)", out)
    found = [p for p in parts if re.search(rf"(?m)^- hook id: {re.escape(hook_id)}$", p)]
    assert len(found) == 1, out
    return found[0]
