"""README "Gate training in CI": each recipe runs as written (the pytest test, the command of
the Actions job, the pre-commit configuration). The hook itself runs in tests/precommit_test.py
under the real pre-commit."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
needs_torch = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode != 0,
    reason="torch is not installed: pip install torch==2.13.0 onnxscript",
)
# The user's model code the recipes name (mypkg.models:build_model).
MODELS = """
    from torch import nn

    def build_model():
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
"""


def _blocks(recipe: str) -> list[str]:
    """The fenced code blocks after ``<!-- recipe: NAME -->``, up to the next recipe."""
    start = README.index(f"<!-- recipe: {recipe} -->")
    end = README.find("<!-- recipe:", start + 1)
    text = README[start : end if end > 0 else None]
    return re.findall(r"```\w*\n(.*?)```", text, re.S)


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "models.py").write_text(textwrap.dedent(MODELS))
    return tmp_path


def _initaudit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "initaudit"
    return subprocess.run([str(script), *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.torch
@needs_torch
def test_the_pytest_recipe_passes(tmp_path: Path) -> None:
    code = _blocks("pytest")[0]
    (tmp_path / "init_test.py").write_text(code)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "init_test.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout


@pytest.mark.torch
@needs_torch
def test_the_actions_recipe_command_audits_the_factory(user_repo: Path) -> None:
    job = _blocks("actions")[0]
    steps = yaml.safe_load(job)["jobs"]["init"]["steps"]
    [command] = [s["run"] for s in steps if str(s.get("run", "")).startswith("initaudit ")]
    out = _initaudit(*command.split()[1:], cwd=user_repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == "", out.stdout  # --format github: no finding, no annotation


@pytest.mark.torch
@needs_torch
def test_the_pre_commit_recipe_audits_the_configured_factories(user_repo: Path) -> None:
    toml = _blocks("pre-commit")[0]
    (user_repo / "pyproject.toml").write_text(toml)
    out = _initaudit(cwd=user_repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 findings (0 errors, 0 warnings, 0 info) in 1 file." in out.stdout


def test_the_pre_commit_recipe_names_a_hook_this_repository_has() -> None:
    toml, config = _blocks("pre-commit")[:2]
    assert tomllib.loads(toml)["tool"]["initaudit"]["factories"]
    [hook] = yaml.safe_load(config)["repos"][0]["hooks"]
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hook["id"] in hooks
    assert (hooks[hook["id"]]["files"], hooks[hook["id"]]["pass_filenames"]) == (r"\.py$", False)
