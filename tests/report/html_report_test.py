"""``--html``: one self-contained, reproducible page, and a clear line when the extra is missing.

What the page looks like in a browser is tests/report/html_test.py; here, what a user sees
without one: files, bytes, exit codes and stderr.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from initaudit.cli import cli
from initaudit.report import html_report
from initaudit.report.model import DepthEntry, FileResult, Report
from tests._click import runner

pytest.importorskip("matplotlib", reason="the HTML report needs the 'report' extra")

TORCH = Path(__file__).resolve().parent.parent.parent / "fixtures" / "torch"
NAIVE = TORCH / "mlp_naive_normal__dynamo.onnx"
ZERO = TORCH / "mlp_zero_weight__dynamo.onnx"
FIGURE = re.compile(r'<figure class="histogram" id="[^"]+" data-tensor="([^"]+)"')


def _run(*args: object) -> tuple[int, str, str]:
    r = runner().invoke(cli, ["--isolated", *(str(a) for a in args)])
    return r.exit_code, r.stdout, r.stderr


def test_same_model_same_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    assert _run(NAIVE, "--html", a)[0] == 0  # warnings only
    # Another process too: matplotlib would salt its SVG ids with a random UUID.
    cmd = [sys.executable, "-m", "initaudit", "--isolated", str(NAIVE), "--html", str(b)]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert a.read_bytes() == b.read_bytes()


def test_page_is_self_contained(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    _run(NAIVE, ZERO, "--html", out)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page
    assert page.count("<svg") == 5  # three flagged layers and two depth profiles
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "figures' ids must not collide in one page"


def test_only_flagged_layers_unless_asked(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    _run(NAIVE, "--html", out)
    shown = FIGURE.findall(out.read_text())
    assert shown == ["fc1.weight", "fc2.weight"]
    _run(NAIVE, "--html", out, "--html-all-histograms")
    shown = FIGURE.findall(out.read_text())
    assert shown == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]


def test_stdout_report_is_unchanged(tmp_path: Path) -> None:
    plain = _run(NAIVE, "--format", "json")
    with_html = _run(NAIVE, "--format", "json", "--html", tmp_path / "r.html")
    assert with_html == plain
    assert '"histogram"' not in plain[1]


def test_depth_band_follows_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "pyproject.toml"
    config.write_text("[tool.initaudit.thresholds]\ndepth-band = 1000\n")
    out = tmp_path / "r.html"
    r = runner().invoke(cli, ["--config", str(config), str(NAIVE), "--html", str(out)])
    assert r.exit_code == 0, r.output
    assert "IA203 band ±3 decades" in out.read_text()


def test_missing_matplotlib_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an absent package imports as
    out = tmp_path / "r.html"
    code, stdout, stderr = _run(NAIVE, "--html", out)
    assert code == 2
    assert stderr == (
        "initaudit: --html needs matplotlib (initaudit's report extra): pip install matplotlib\n"
    )
    assert stdout == ""
    assert not out.exists()


def test_all_histograms_needs_html() -> None:
    code, _, stderr = _run(NAIVE, "--html-all-histograms")
    assert code == 2
    assert "--html-all-histograms needs --html FILE" in stderr


def test_depth_profile_shows_measurement_and_gaps() -> None:
    """With --propagate a second panel sets the measured scale beside the prediction; a layer
    whose prediction is 0 (after a zero weight) is named, not plotted off the chart."""
    depth = (
        DepthEntry(
            tensor="a.weight",
            node="n0",
            op_type="Gemm",
            log10_forward=0.1,
            log10_backward=0.0,
            measured_log10_output=0.2,
            log10_output=0.1,
        ),
        DepthEntry(
            tensor="b.weight",
            node="n1",
            op_type="Gemm",
            log10_forward=-math.inf,
            log10_backward=-0.5,
            log10_output=-math.inf,
        ),
    )
    report = Report((FileResult("m.onnx", depth=depth),), "0")
    page = html_report.render(report)
    assert "measured (--propagate)" in page
    assert "Not drawn, predicted 0 or overflowing: b.weight forward (0)" in page


def test_every_histogram_reports_progress(tmp_path: Path) -> None:
    """--html-all-histograms on a big model draws for tens of seconds: the page reports each
    figure (the command line shows it as a bar on a terminal)."""
    from initaudit.audit import AuditOptions, audit_file
    from initaudit.report.model import Report

    result = audit_file(TORCH / "hf_gpt2_tiny__dynamo.onnx", AuditOptions(histograms=True))
    calls: list[tuple[int, int]] = []
    html_report.render(
        Report((result,), "0"), all_histograms=True, progress=lambda *a: calls.append(a)
    )
    total = calls[-1][1]
    assert calls == [(k, total) for k in range(1, total + 1)]
    assert total == len(result.tensors) + 1  # every tensor and the depth profile


def test_a_step_bar_appears_on_a_terminal_only() -> None:
    import io

    from initaudit.progress import StepBar

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    bar = StepBar("writing HTML", term, delay=0.0)
    for done in range(1, 4):
        bar(done, 3)
    assert "writing HTML" in term.getvalue() and "3/3" in term.getvalue()


def test_a_long_name_leaves_the_charts_drawable(tmp_path: Path) -> None:
    """A 60-character name as a rotated tick label collapsed the depth chart (matplotlib
    printed a UserWarning on stderr)."""
    import numpy as np

    from tests import _models as M

    names = ["model.encoder.layer.0.attention.self.query_projection.weight", "b.w", "c.w"]
    ws = [M.torch_default((16, 8), 8), M.torch_default((16, 16), 16), M.torch_default((4, 16), 16)]
    model = M.save(M.mlp([np.asarray(w) for w in ws], names=names), tmp_path / "m.onnx")
    code, _, err = _run(model, "--html", tmp_path / "r.html", "--html-all-histograms")
    assert (code, err) == (0, "")
    assert ">model.encod…rojection.weight<" in (tmp_path / "r.html").read_text()
