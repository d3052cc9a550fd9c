"""What a run audits from the paths a user types: directories, no path, sidecars, duplicates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from initaudit.cli import cli
from tests import _fuzzing as F
from tests import _models as M
from tests._click import runner

TORCH = Path(__file__).resolve().parent.parent / "fixtures" / "torch"


def run(*args: str | Path) -> tuple[int, str, str]:
    r = runner().invoke(cli, [*map(str, args)])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


def paths(*args: str | Path) -> list[str]:
    code, out, err = run("--isolated", "--format", "json", "--fail-on", "never", *args)
    assert code in (0, 2), err
    return [f["path"] for f in json.loads(out)["files"]]


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """models/{a,b/c}.onnx, a README, an external-data model, and folders never searched."""
    zero = [
        M.torch_default((32, 16), 16),
        np.zeros((8, 32), np.float32),
        M.torch_default((4, 8), 8),
    ]
    M.save(M.mlp(zero), tmp_path / "models" / "a.onnx")
    M.save(M.clean_mlp(), tmp_path / "models" / "b" / "c.onnx")
    (tmp_path / "models" / "README.md").write_text("# models\n")
    shutil.copytree(TORCH / "mlp_external_data", tmp_path / "models" / "ext")
    for skipped in (".venv/lib", ".git", "node_modules/x", "build"):
        M.save(M.mlp(zero), tmp_path / skipped / "skip.onnx")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_directory_is_searched_for_onnx_files(tree: Path) -> None:
    assert paths("models") == [
        "models/a.onnx",
        "models/b/c.onnx",
        "models/ext/mlp_external_data__dynamo.onnx",
    ]
    code, out, _ = run("--isolated", "models/")
    assert code == 1 and out.startswith("models/a.onnx: fc2.weight [Gemm /fc2/Gemm] IA101")


def test_no_path_audits_the_current_directory_like_ruff(tree: Path) -> None:
    """`initaudit` alone is `initaudit .`; hidden folders, venvs, node_modules, build are not
    searched (ruff's default exclude) unless named."""
    assert (
        paths()
        == paths(".")
        == [
            "models/a.onnx",
            "models/b/c.onnx",
            "models/ext/mlp_external_data__dynamo.onnx",
        ]
    )
    assert paths(".venv") == [".venv/lib/skip.onnx"]


def test_exclude_applies_inside_directories(tree: Path) -> None:
    (tree / "pyproject.toml").write_text('[tool.initaudit]\nexclude = ["models/b", "ext"]\n')
    code, out, _ = run("--format", "json", "models")
    assert [f["path"] for f in json.loads(out)["files"]] == ["models/a.onnx"]
    code, _, err = run("models/b")
    assert code == 0
    assert err == (
        "initaudit: warning: no ONNX files to audit: 1 excluded by the configuration's "
        "exclude globs\n"
    )


def test_every_given_file_excluded_is_said_not_silently_clean(tree: Path) -> None:
    (tree / "pyproject.toml").write_text('[tool.initaudit]\nexclude = ["models/*"]\n')
    code, out, err = run("models/a.onnx", "models/b/c.onnx")
    assert code == 0 and out == "0 findings (0 errors, 0 warnings, 0 info) in 0 files.\n"
    assert err == (
        "initaudit: warning: no ONNX files to audit: 2 excluded by the configuration's "
        "exclude globs\n"
    )


def test_a_folder_without_models_says_so(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    code, _, err = run("--isolated", tmp_path / "docs")
    assert code == 0 and err == f"initaudit: warning: no ONNX files found under {tmp_path}/docs\n"


def test_a_glob_over_a_folder_skips_the_external_data_sidecar(tree: Path) -> None:
    """`initaudit models/ext/*` expands to the model and its .onnx.data: the data is the
    model's, not a second (corrupt) model."""
    ext = sorted(str(p.relative_to(tree)) for p in (tree / "models" / "ext").iterdir())
    assert ext[1].endswith(".onnx.data")
    code, out, err = run("--isolated", *ext)
    assert (code, err) == (0, "")
    assert out == "0 findings (0 errors, 0 warnings, 0 info) in 1 file.\n"


def test_a_data_file_another_model_reads_is_not_reported(tmp_path: Path) -> None:
    """data.bin has no telling name, but the model named beside it reads it."""
    model = F.external_model(tmp_path, "data.bin")
    code, _, err = run("--isolated", model, tmp_path / "data.bin")
    assert (code, err) == (0, "")
    # Alone, it is what it is: not a model.
    code, _, err = run("--isolated", tmp_path / "data.bin")
    assert code == 2 and ": not-onnx: " in err


def test_the_same_file_given_twice_is_audited_once(tree: Path) -> None:
    assert paths("models/a.onnx", "./models/a.onnx", "models", "models//a.onnx") == [
        "models/a.onnx",
        "models/b/c.onnx",
        "models/ext/mlp_external_data__dynamo.onnx",
    ]
