"""A file committed as .onnx that is not a model says what it is (sniff.py): a Git LFS pointer
(the classic CI failure) or a text file, not "the protobuf does not parse"."""

from __future__ import annotations

from pathlib import Path

from initaudit.cli import cli
from tests._click import runner


def run(*args: str | Path) -> tuple[int, str, str]:
    r = runner().invoke(cli, ["--isolated", *map(str, args)])
    return r.exit_code, r.stdout, r.stderr


def test_a_git_lfs_pointer_says_run_git_lfs_pull(tmp_path: Path) -> None:
    pointer = tmp_path / "model.onnx"
    pointer.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 1234567\n"
    )
    code, _, err = run(pointer)
    assert code == 2
    assert err == (
        f"initaudit: {pointer}: not-onnx: a Git LFS pointer of a 1234567-byte file, not the "
        "model: run `git lfs pull` (in CI, check out with `lfs: true`)\n"
    )


def test_a_text_file_is_called_a_text_file(tmp_path: Path) -> None:
    text = tmp_path / "model.onnx"
    text.write_text("<html><body>404 Not Found</body></html>\n")
    code, _, err = run(text)
    assert code == 2
    assert err == (
        f"initaudit: {text}: not-onnx: a text file, not an ONNX model (it starts with "
        "'<html><body>404 Not Found</body></html>')\n"
    )
    binary = tmp_path / "noise.onnx"
    binary.write_bytes(bytes(range(256)) * 4)
    code, _, err = run(binary)
    assert code == 2 and "text file" not in err and "LFS" not in err
