"""What README and CHANGELOG promise works from this repository: no PyPI package, tag or
GitHub location that does not exist, and the version in one place."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from initaudit._version import __version__

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_installs_only_from_this_repository() -> None:
    """`pip install initaudit`, `rev: v0.1.0` and `uses: initaudit/initaudit@v0.1.0` did not
    exist: there is no PyPI release, no tag and no such GitHub repository."""
    # Every `pip install ...initaudit` names this repository: `initaudit[...] @ git+...`.
    assert not re.search(r"pip install [\"']?initaudit\b(?![\w\[\], ]* @)", README)
    assert not re.search(r"rev: v\d", README)
    assert "initaudit/initaudit@" not in README and "github.com/initaudit" not in README
    assert "<initaudit-git-url>" in README and "<commit-sha>" in README


def test_the_version_is_in_one_place() -> None:
    """initaudit/_version.py holds it; nothing else tracked repeats it (golden files and the
    README's JSON example write <version>), except the changelog's headings."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    text_files = [
        f
        for f in tracked
        if f.endswith((".py", ".md", ".toml", ".yml", ".yaml", ".json", ".txt", ".sarif"))
        and not f.startswith("fixtures/")
        and not (f.startswith("docs/") and f.endswith(".json"))  # recorded runs, as they ran
    ]
    quoted = re.compile(rf"['\"]{re.escape(__version__)}['\"]")
    found = [f for f in text_files if quoted.search((ROOT / f).read_text(encoding="utf-8"))]
    assert found == ["initaudit/_version.py"]


def test_the_changelog_has_the_current_version_and_what_is_unreleased() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"(?m)^## (.+)$", changelog)
    assert headings[0] == "Unreleased"
    assert __version__ in headings


@pytest.mark.slow
def test_the_documented_git_url_install_works(tmp_path: Path) -> None:
    """README "Install": `pip install "initaudit @ git+<initaudit-git-url>@<commit-sha>"`,
    here with the file://localhost URL of a commit of the working tree (--no-deps: the package
    itself)."""
    from tests.precommit_test import _env, _hook_repo

    env = _env(tmp_path)
    repo = _hook_repo(tmp_path, env)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    (line,) = [ln for ln in README.splitlines() if "# no clone needed" in ln]
    spec = line.split('"')[1]
    url = f"file://localhost{repo.as_posix()}"  # as README says for a clone
    spec = spec.replace("<initaudit-git-url>", url).replace("<commit-sha>", sha)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", spec]
    r = subprocess.run(pip, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    version = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('initaudit'))",
        ],
        capture_output=True,
        text=True,
    )
    assert version.stdout.strip() == __version__
