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

from initaudit.report.model import DepthEntry, TensorReport

if TYPE_CHECKING:
    from initaudit.stats.histogram import Histogram

MISSING = "initaudit: --html needs matplotlib: pip install 'initaudit[report]'"

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
CURVE_HEADROOM = 4.0  # an expected spike may rise to this many times the histogram's top


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
    """The tensor's values (bars) and the density its scheme predicts (line)."""
    h: Histogram | None = t.histogram
    if h is None:
        return ""
    with _style():
        fig = _figure(4.2, 2.7)
        ax = fig.add_subplot()
        ax.stairs(h.density, h.edges, fill=True, color=VALUES, alpha=0.55, label=_values_label(h))
        top = max(h.density, default=0.0)
        if h.expected is not None:
            e = h.expected
            kind = "identified" if e.matched else "closest"
            ax.plot(e.x, e.y, color=EXPECTED, lw=1.6, label=f"{kind}: {e.label}")
            top = max(top, min(max(e.y, default=0.0), CURVE_HEADROOM * top))
        if top > 0:
            ax.set_ylim(0, top * 1.08)
        ax.set_xlim(h.edges[0], h.edges[-1])
        ax.set_title(_title(t), loc="left")
        ax.set_xlabel("value")
        ax.set_ylabel("density")
        # Below the axes: inside, it would hide the spike or the tails it is there to show.
        fig.legend(loc="outside lower center", ncols=2, fontsize=7, frameon=False)
        return _svg(fig, prefix)


def _values_label(h: Histogram) -> str:
    return f"values ({h.n:,} sampled)" if h.n else "values"


def _title(t: TensorReport) -> str:
    """The figure's caption names the tensor; the title says what it is and how it scales."""
    parts = [t.op_type or t.role, "x".join(map(str, t.shape)) or "scalar"]
    if t.std is not None:
        parts.append(f"std {t.std:.3g}")
        if t.expected_std is not None and t.ratio is not None:
            parts[-1] += f" vs {t.expected_std:.3g} expected ({t.ratio:.2f}x)"
    return "  ".join(parts)


def _finite(values: Sequence[float | None]) -> list[float]:
    """None and ±inf (a zero layer) become gaps in the line, not points off the chart."""
    return [v if v is not None and math.isfinite(v) else math.nan for v in values]


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
        ax.plot(x, forward, "o-", ms=3, color=VALUES, label="forward: activations")
        ax.plot(x, backward, "s-", ms=3, color=BACKWARD, label="backward: gradients")
        ax.set_ylabel("log10 E[x²], relative")
        ax.set_title(f"Predicted signal scale by depth (IA203 band ±{band:g} decades)", loc="left")
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
        bottom.set_xticks(x[::step], [d.tensor for d in depth][::step], rotation=60, ha="right")
        bottom.set_xlabel("layer (path from inputs to outputs)")
        return _svg(fig, prefix)
