"""SVG figures for the HTML report, drawn by matplotlib from finished report records.

matplotlib is the optional extra ``initaudit[report]``: it is imported here only, when a
figure is first drawn, so nothing else in initaudit pays its import or needs it installed.
Figures are built with the object-oriented API on an Agg canvas, never through pyplot, so no
GUI backend and no global figure state is touched (a library may run inside someone's
notebook). Everything plotted was computed upstream (stats/histogram.py, signal/propagate.py);
this module only picks axis limits and colours.

The SVG is byte-for-byte reproducible: a fixed ``svg.hashsalt`` (matplotlib otherwise salts
its clip-path ids with a random UUID), no date or creator metadata, and text kept as text
(``svg.fonttype: none``) rather than glyph paths that depend on the installed fonts' files.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from initaudit.numfmt import than
from initaudit.report.model import DepthEntry, TensorReport

if TYPE_CHECKING:
    from initaudit.stats.histogram import Histogram

MISSING = "initaudit: --html needs matplotlib (initaudit's report extra): pip install matplotlib"

_RC: dict[str, Any] = {
    "svg.hashsalt": "initaudit",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
VALUES = "#4c78a8"
EXPECTED = "#e45756"
BACKWARD = "#72b7b2"
MEASURED = "#f58518"
BAND = "#54a24b"
# The expected density is drawn whole up to this many times the histogram's top; a spike
# taller than that (a layer off by orders of magnitude) is cut there and labelled with its
# peak, so the bars stay readable and nothing is clipped silently.
CURVE_HEADROOM = 25.0


def available() -> bool:
    """Whether the ``report`` extra is installed (checked before a long audit, not after)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style() -> AbstractContextManager[None]:
    """The page's figure style (matplotlib's stubs want literal rc keys, hence the ignore)."""
    from matplotlib import rc_context

    return rc_context(_RC)  # type: ignore[arg-type]


def _svg(fig: Any, prefix: str) -> str:
    """The figure as an inline ``<svg>`` element, its ids prefixed to be unique in the page."""
    buf = io.StringIO()
    with _style():
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", text)
    return re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', text)


def histogram_svg(t: TensorReport, prefix: str) -> str:
    """The tensor's values (bars) and the density its scheme predicts (line); the caption
    (:func:`describe`) says what they are."""
    from matplotlib.ticker import MaxNLocator

    h: Histogram | None = t.histogram
    if h is None:
        return ""
    with _style():
        fig = _figure(4.2, 2.7)
        ax = fig.add_subplot()
        ax.stairs(h.density, h.edges, fill=True, color=VALUES, alpha=0.55, label=_values_label(h))
        ax.patch.set_gid("axes")
        bars = max(h.density, default=0.0)
        top = bars
        if h.expected is not None:
            e = h.expected
            kind = "identified" if e.matched else "closest"
            peak = max(e.y, default=0.0)
            top = max(bars, min(peak, CURVE_HEADROOM * bars) if bars > 0 else peak)
            ys = [min(v, top) for v in e.y]  # a spike past the headroom is cut, and says so
            (line,) = ax.plot(e.x, ys, color=EXPECTED, lw=1.6, label=f"{kind}: {e.label}")
            line.set_gid("expected")
            if peak > top * 1.0001:
                ax.annotate(
                    f"peak {peak:.3g} ↑",
                    xy=(e.x[e.y.index(peak)], top),
                    xytext=(4, -10),
                    textcoords="offset points",
                    color=EXPECTED,
                    fontsize=7,
                )
        if top > 0:
            ax.set_ylim(0, top * 1.08)
        ax.set_xlim(h.edges[0], h.edges[-1])
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))  # tick labels never run together
        ax.set_xlabel("value")
        ax.set_ylabel("density")
        # Below the axes: inside, it would hide the spike or the tails it is there to show.
        fig.legend(loc="outside lower center", ncols=2, fontsize=7, frameon=False)
        return _svg(fig, prefix)


def _values_label(h: Histogram) -> str:
    return f"values ({h.n:,} sampled)" if h.n else "values"


def describe(t: TensorReport) -> str:
    """What the tensor is and how it scales, for the figure's caption (HTML, so it wraps
    whatever the numbers): ``Gemm 128×64 · std 1.01, ≈4.9× larger than the closest scheme's
    0.208``."""
    head = f"{t.op_type or t.role} {'×'.join(map(str, t.shape)) or 'scalar'}"
    if t.std is None:
        return head
    scale = f"std {t.std:.3g}"
    e = t.histogram.expected if t.histogram is not None else None
    if e is not None and e.std > 0:
        whose = "identified" if e.matched else "closest"
        scale += f", {than(t.std / e.std)} the {whose} scheme's {e.std:.3g}"
    return f"{head} · {scale}"


def _finite(values: Sequence[float | None]) -> list[float]:
    """None and ±inf (a zero layer) become gaps in the line, not points off the chart."""
    return [v if v is not None and math.isfinite(v) else math.nan for v in values]


TICK_CHARS = 28


def _short(name: str) -> str:
    """A tick label that leaves room for the chart: a long name keeps its start and end
    (``model.encoder…query.weight``); the table and the findings have it whole."""
    if len(name) <= TICK_CHARS:
        return name
    return name[:11] + "…" + name[-(TICK_CHARS - 12) :]


def _judged_line(
    ax: Any,
    x: list[int],
    y: list[float],
    judged: list[bool],
    marker: str,
    colour: str,
    label: str,
    gid: str,
) -> None:
    """The line through every layer; filled markers where IA203 judges (the residual stream,
    or every layer of a plain stack), hollow ones inside a residual branch."""
    ax.plot(x, y, "-", color=colour, lw=1.4, label=label)
    ins = [(a, b) for a, b, j in zip(x, y, judged, strict=True) if j]
    outs = [(a, b) for a, b, j in zip(x, y, judged, strict=True) if not j]
    if ins:
        (pts,) = ax.plot(*zip(*ins, strict=True), marker, ms=4, color=colour, ls="none")
        pts.set_gid(f"{gid}-judged")
    if outs:
        (pts,) = ax.plot(
            *zip(*outs, strict=True), marker, ms=4, color=colour, mfc="white", ls="none"
        )
        pts.set_gid(f"{gid}-not-judged")


def depth_svg(depth: Sequence[DepthEntry], band: float, prefix: str) -> str:
    """Predicted log10 second moment by layer, forward and backward, inside the IA203 band;
    with ``--propagate`` a second panel sets the measured output scale beside the prediction."""
    measured = any(d.measured_log10_output is not None for d in depth)
    x = list(range(1, len(depth) + 1))
    with _style():
        fig = _figure(7.5, 5.2 if measured else 3.0)
        axes = fig.subplots(2 if measured else 1, 1, sharex=True, squeeze=False)[:, 0]
        ax = axes[0]
        ax.axhspan(-band, band, color=BAND, alpha=0.10, lw=0)
        for y in (-band, band):
            ax.axhline(y, color=BAND, lw=0.8, ls="--")
        forward = _finite([d.log10_forward for d in depth])
        backward = _finite([d.log10_backward for d in depth])
        judged = [d.judged for d in depth]
        _judged_line(ax, x, forward, judged, "o", VALUES, "forward: activations", "forward")
        back = [d.judged_backward for d in depth]
        _judged_line(ax, x, backward, back, "s", BACKWARD, "backward: gradients", "backward")
        ax.set_ylabel("log10 E[x²], relative")
        title = f"Predicted signal scale by depth (IA203 band ±{band:g} decades)"
        if not all(judged):
            title += "; filled: judged by IA203"
        ax.set_title(title, loc="left")
        ax.legend(loc="best", fontsize=7, frameon=False)
        if measured:
            bx = axes[1]
            predicted = _finite([d.log10_output for d in depth])
            seen = _finite([d.measured_log10_output for d in depth])
            bx.plot(x, predicted, "o-", ms=3, color=VALUES, label="predicted")
            bx.plot(x, seen, "D--", ms=3, color=MEASURED, label="measured (--propagate)")
            bx.set_ylabel("log10 E[x²] of output")
            bx.set_title("Each layer's output, inputs N(0, 1)", loc="left")
            bx.legend(loc="best", fontsize=7, frameon=False)
        bottom = axes[-1]
        step = max(1, math.ceil(len(depth) / 40))
        labels = [_short(d.tensor) for d in depth][::step]
        bottom.set_xticks(x[::step], labels, rotation=60, ha="right")
        bottom.set_xlabel("layer (path from inputs to outputs)")
        return _svg(fig, prefix)
