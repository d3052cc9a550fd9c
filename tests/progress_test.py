"""The progress bar shows on a terminal only: never in a pipe, in CI, or with --quiet."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from initaudit import progress
from initaudit.cli import cli
from initaudit.progress import ProgressBar
from initaudit.stats.measure import Progress
from tests._click import runner

MODEL = Path(__file__).resolve().parent.parent / "fixtures" / "torch" / "hf_gpt2_tiny__dynamo.onnx"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_wanted_on_a_terminal_outside_ci_without_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert progress.wanted(False, Terminal())
    assert not progress.wanted(True, Terminal())
    assert not progress.wanted(False, io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not progress.wanted(False, Terminal())


def test_bar_shows_tensors_and_bytes_done() -> None:
    term = Terminal()
    bar = ProgressBar(term, delay=0.0)
    for done in range(3):
        bar(
            "model.onnx",
            Progress(
                tensors_done=done,
                tensors_total=2,
                bytes_done=done * 3_000_000,
                bytes_total=6_000_000,
            ),
        )
    bar.close()
    assert "2/2 tensors, 6/6 MB" in term.getvalue()


def test_quick_file_prints_no_bar() -> None:
    term = Terminal()
    bar = ProgressBar(term)  # the default delay: a fast audit stays silent
    bar("model.onnx", Progress(tensors_done=0, tensors_total=1, bytes_done=0, bytes_total=10))
    bar("model.onnx", Progress(tensors_done=1, tensors_total=1, bytes_done=10, bytes_total=10))
    bar.close()
    assert term.getvalue() == ""


def test_cli_stderr_stays_clean_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(progress, "DELAY", 0.0)
    r = runner().invoke(cli, ["--isolated", "--fail-on", "never", str(MODEL)])
    assert r.exit_code == 0 and r.stderr == ""
