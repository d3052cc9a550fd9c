"""The HTML report as a person sees it: opened in headless Chromium, clicked, typed into.

One page for two real PyTorch exports: an MLP drawn from N(0, 1) (IA201 on fc1/fc2, IA203) and
one whose fc2.weight is zero (IA101). The browser is Debian's chromium (see _chromium.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from initaudit.cli import cli
from tests._click import runner
from tests.report import _chromium

pytest.importorskip("matplotlib", reason="the HTML report needs the 'report' extra")
if not _chromium.available():
    pytest.skip(
        f"headless Chromium not found at {_chromium.CHROMIUM}: the HTML report's browser tests "
        "need Debian's chromium package (apt-get install chromium)",
        allow_module_level=True,
    )

TORCH = Path(__file__).resolve().parent.parent.parent / "fixtures" / "torch"
NAIVE = TORCH / "mlp_naive_normal__dynamo.onnx"
ZERO = TORCH / "mlp_zero_weight__dynamo.onnx"
ROWS = "Array.from(document.querySelectorAll('#layers-0 tbody tr{}')).map(r => r.dataset.tensor)"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    r = runner().invoke(cli, ["--isolated", str(NAIVE), str(ZERO), "--html", str(out)])
    assert r.exit_code == 1, r.output  # IA101 is an error
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_chromium.Browser]:
    b = _chromium.Browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def page(browser: _chromium.Browser, report: Path) -> _chromium.Browser:
    browser.open(report.as_uri())
    return browser


def test_page_loads_offline_with_no_console_errors(page: _chromium.Browser, report: Path) -> None:
    assert page.js("document.title") == "initaudit report: 2 models"
    assert page.errors() == []
    assert page.requests() == [report.as_uri()]  # no CDN, font or image fetched


def test_flagged_layers_are_shown(page: _chromium.Browser) -> None:
    text = page.js("document.body.innerText")
    assert "all 16384 values of this weight are 0" in text
    # 3 digits of std 1.0127 and 2 of the factor 5.73: far further from a rounding edge than
    # numpy's summation order can move them (~1e-5 relative), so no tolerance is needed.
    assert "std 1.01 is ≈5.7× larger than the 0.177 kaiming_normal(fan_in, relu)" in text
    figures = page.js(
        "Array.from(document.querySelectorAll('figure.histogram'))"
        ".map(f => [f.closest('section').id,"
        " f.querySelector('figcaption').innerText.split('\\n')[0]])"
    )
    assert figures == [
        ["file-0", "fc1.weight IA201"],
        ["file-0", "fc2.weight IA201"],
        ["file-1", "fc2.weight IA101"],
    ]
    flagged = page.js(ROWS.format(".flagged"))
    assert flagged == ["fc1.weight", "fc2.weight"]


def test_clicking_a_header_sorts_the_table(page: _chromium.Browser) -> None:
    ratio = "#layers-0 th:nth-child(11)"
    assert page.js(f"document.querySelector('{ratio}').innerText").startswith("ratio")
    page.click(ratio)
    # Ascending by ratio (1.00, 4.86, 6.76); biases have no ratio and stay last.
    assert page.js(ROWS.format("")) == [
        "fc3.weight",
        "fc1.weight",
        "fc2.weight",
        "fc1.bias",
        "fc2.bias",
        "fc3.bias",
    ]
    page.click(ratio)
    assert page.js(ROWS.format(""))[:3] == ["fc2.weight", "fc1.weight", "fc3.weight"]
    assert page.js(f"document.querySelector('{ratio}').getAttribute('aria-sort')") == "descending"
    page.click("#layers-0 th:nth-child(1)")
    assert page.js(ROWS.format(""))[:2] == ["fc1.bias", "fc1.weight"]


def test_typing_in_the_box_filters_the_rows(page: _chromium.Browser) -> None:
    page.type("#file-0 input.filter", "IA201")
    assert page.js(ROWS.format(":not([hidden])")) == ["fc1.weight", "fc2.weight"]
    assert page.js("document.getElementById('layers-0-count').innerText") == "2 of 6 layers"
    assert page.errors() == []


def test_a_histogram_is_drawn(page: _chromium.Browser) -> None:
    from PIL import Image

    box = page.box("#file-0 figure.histogram svg")
    assert box["width"] > 300 and box["height"] > 150
    shot = Image.open(io.BytesIO(page.screenshot("#file-0 figure.histogram svg"))).convert("RGB")
    colours = shot.getcolors(maxcolors=1 << 20) or []
    inked = sum(n for n, rgb in colours if min(rgb) < 235)  # anything but white or near it
    assert inked > 0.05 * shot.width * shot.height, "the histogram area is blank"

    def near(target: tuple[int, int, int]) -> int:
        """Pixels within 24 of ``target`` in every channel (antialiasing blurs edges)."""
        return sum(n for n, rgb in colours if all(abs(rgb[c] - target[c]) < 24 for c in range(3)))

    assert near((157, 181, 207)) > 500  # the bars (#4c78a8 at alpha 0.55 on white)
    assert near((0xE4, 0x57, 0x56)) > 100  # the expected density's line


def test_depth_profile_is_drawn(page: _chromium.Browser) -> None:
    box = page.box("#depth-0 svg")
    assert box["width"] > 400 and box["height"] > 150
    assert "IA203 band ±2 decades" in page.js("document.querySelector('#depth-0').textContent")


# A second page for what the first one does not show: a name long enough to wrap, a layer
# ~25,000× too wide (its ratio and title), and a residual network (points IA203 does not judge).
LONG = "model.encoder.layer.0.attention.self.query_projection.weight"


@pytest.fixture(scope="module")
def extremes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import numpy as np

    from tests import _models as M

    folder = tmp_path_factory.mktemp("extremes")
    r = M.rng(3)
    ws = [
        r.uniform(-9000, 9000, (128, 64)).astype(np.float32),  # std 5200, no garbage
        M.torch_default((128, 128), 128),
        M.torch_default((10, 128), 128),
    ]
    names = [LONG, "fc2.weight", "fc3.weight"]
    model = M.save(M.mlp(ws, names=names), folder / "wide.onnx")
    out = folder / "report.html"
    bert = TORCH / "hf_bert_tiny__dynamo.onnx"
    args = ["--isolated", str(model), str(bert), "--html", str(out), "--html-all-histograms"]
    r2 = runner().invoke(cli, args)
    assert r2.exit_code == 0, r2.output
    return out


@pytest.fixture
def wide(browser: _chromium.Browser, extremes: Path) -> _chromium.Browser:
    browser.open(extremes.as_uri())
    return browser


def test_a_huge_ratio_prints_short_in_the_table_and_the_title(wide: _chromium.Browser) -> None:
    """It printed 339940056645257134080.00, which also cut the histogram's title."""
    cells = wide.js(
        "Array.from(document.querySelectorAll('#layers-0 tbody td.num')).map(c => c.innerText)"
    )
    assert max(len(c) for c in cells) <= 9, cells
    assert "2.51e+04" in cells  # std 5240 / the closest scheme's 0.208
    caption = wide.js("document.querySelector('#hist-0-0 figcaption .scale').innerText")
    assert caption == "Gemm 128×64 · std 5.24e+03, ≈25,000× larger than the closest scheme's 0.208"
    # Every text of the figure lies inside it: nothing is cut at the edge.
    inside = wide.js(
        "(() => { const svg = document.querySelector('#hist-0-0 svg').getBoundingClientRect();"
        " return Array.from(document.querySelectorAll('#hist-0-0 svg text')).every(t => {"
        " const b = t.getBoundingClientRect(); return b.left >= svg.left - 1 &&"
        " b.right <= svg.right + 1 && b.top >= svg.top - 1; }); })()"
    )
    assert inside


def test_the_expected_density_is_not_clipped_at_the_top(wide: _chromium.Browser) -> None:
    """docs/report.png showed the expected curve running out of the axes."""
    tops = wide.js(
        "Array.from(document.querySelectorAll('figure.histogram')).map(f => {"
        " const line = f.querySelector('[id$=\"-expected\"] path');"
        " const axes = f.querySelector('[id$=\"-axes\"] path');"
        " if (!line) return null;"
        " return [line.getBoundingClientRect().top, axes.getBoundingClientRect().top,"
        " f.querySelectorAll('text').length]; })"
    )
    drawn = [t for t in tops if t is not None]
    assert len(drawn) >= 3
    for line_top, axes_top, _ in drawn:
        assert line_top >= axes_top - 0.5  # screen y grows downwards
    # The one spike taller than the headroom (the 25,000× layer) is labelled, not hidden.
    labels = wide.js(
        "Array.from(document.querySelectorAll('#hist-0-0 svg text')).map(t => t.textContent)"
    )
    assert any(t.startswith("peak ") and t.endswith("↑") for t in labels), labels


def test_names_wrap_between_words_never_inside_one(wide: _chromium.Browser) -> None:
    wide.js("document.body.style.maxWidth = '520px'")  # a narrow window
    pieces = wide.js(
        "(() => { const a = document.querySelector('#layers-0 tbody td.name');"
        " const texts = []; const walk = n => { for (const c of n.childNodes) {"
        " if (c.nodeType === 3) texts.push(c); else walk(c); } }; walk(a);"
        " return texts.map(t => { const r = document.createRange(); r.selectNodeContents(t);"
        " const tops = new Set(Array.from(r.getClientRects()).map(b => Math.round(b.top)));"
        " return [t.textContent, tops.size, Math.round(r.getBoundingClientRect().top)]; }); })()"
    )
    assert "".join(p[0] for p in pieces) == LONG
    assert all(lines == 1 for _, lines, _ in pieces), pieces  # no piece is split
    assert len({top for *_, top in pieces}) > 1  # and the name did wrap
    assert all(p[0][-1] in "./_:" for p in pieces[:-1])  # each line ends at a separator


def test_the_depth_chart_marks_the_points_ia203_judges(wide: _chromium.Browser) -> None:
    """BERT: IA203 judges the residual stream; q/k/v and the MLP's first layer are drawn
    hollow, as shown but not judged."""
    counts = wide.js(
        "['forward-judged', 'forward-not-judged'].map(k =>"
        ' document.querySelectorAll(`#depth-1 [id$="-${k}"] use`).length)'
    )
    assert counts[0] >= 3 and counts[1] >= 3 and sum(counts) == 13  # BERT's 13 layers
    note = wide.js("document.querySelector('#file-1').innerText")
    assert "Filled points are the layers IA203 judges" in note
