"""``--html FILE``: one self-contained page a person would rather look at than read.

Per model: the findings (severity, rule, tensor, message, fix), every audited tensor in a
table that sorts and filters, a histogram of each flagged tensor's values against the density
its scheme predicts (of every tensor with ``all_histograms``), and the predicted signal scale
by depth with the IA203 band. Figures are inline SVG and the CSS and script are inline too,
so the file opens anywhere, offline, and can be attached to a CI run as one artifact.

Like every reporter it formats finished records: histograms and densities come from
stats/histogram.py, depth from signal/propagate.py. The page is the same bytes for the same report
(plots.py pins matplotlib's random ids), so it can be diffed or cached.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from html import escape

from initaudit.findings import Finding
from initaudit.report import plots
from initaudit.report.html_assets import CSS, JS
from initaudit.report.model import FileResult, Report, TensorReport


def render(
    report: Report,
    depth_band: float = 100.0,
    all_histograms: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """The whole page. ``depth_band`` is IA203's configured factor (``depth-band``: 100 draws
    the band at ±2 decades); ``all_histograms`` draws one for every tensor, not only the
    flagged ones. ``progress(done, total)`` is called after each figure (matplotlib takes
    ~0.2 s a figure: a 124M model's every histogram is tens of seconds). Needs matplotlib
    (:func:`plots.available`)."""
    decades = math.log10(depth_band) if depth_band > 0 else 2.0
    figures = _Figures(sum(_figure_count(fr, all_histograms) for fr in report.files), progress)
    body = [_header(report)]
    for k, fr in enumerate(report.files):
        body.extend(_file(k, fr, decades, all_histograms, figures))
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>initaudit report: {escape(_title(report))}</title>",
            f"<style>{CSS}</style>",
            "</head>",
            "<body>",
            *body,
            f"<script>{JS}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


class _Figures:
    """Counts drawn figures for the progress callback."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def drawn(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def _drawn(fr: FileResult, all_histograms: bool) -> list[tuple[int, TensorReport]]:
    flagged = {f.tensor for f in fr.findings if f.tensor is not None}
    return [
        (i, t)
        for i, t in enumerate(fr.tensors)
        if t.histogram is not None and (all_histograms or t.name in flagged)
    ]


def _figure_count(fr: FileResult, all_histograms: bool) -> int:
    if fr.error is not None:
        return 0
    return len(_drawn(fr, all_histograms)) + (1 if len(fr.depth) >= 2 else 0)


def _title(report: Report) -> str:
    if len(report.files) == 1:
        return report.files[0].path
    return f"{len(report.files)} models"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _header(report: Report) -> str:
    s = report.summary
    total = s.errors + s.warnings + s.infos
    text = (
        f"{_plural(total, 'finding')} ({_plural(s.errors, 'error')}, "
        f"{_plural(s.warnings, 'warning')}, {s.infos} info) in "
        f"{_plural(s.files - s.file_errors, 'file')}"
    )
    if s.baselined:
        text += f" ({s.baselined} baselined)"
    if s.file_errors:
        text += f"; {_plural(s.file_errors, 'file')} could not be audited"
    return (
        "<header><h1>initaudit report</h1>"
        f'<p class="muted">{escape(text)}. initaudit {escape(report.version)}.</p></header>'
    )


def _file(
    k: int, fr: FileResult, decades: float, all_histograms: bool, figures: _Figures
) -> list[str]:
    out = [f'<section class="file" id="file-{k}">', f"<h2>{breakable(fr.path)}</h2>"]
    if fr.error is not None:
        out.append(
            f'<p class="error-box">could not be audited: <b>{escape(fr.error.code)}</b>: '
            f"{escape(fr.error.message)}</p></section>"
        )
        return out
    out.extend(f'<p class="note">note: {escape(n)}</p>' for n in fr.notes)
    flagged = {f.tensor for f in fr.findings if f.tensor is not None}
    drawn = _drawn(fr, all_histograms)
    anchors = {t.name: f"hist-{k}-{i}" for i, t in drawn}
    out += _findings(fr.findings, anchors)
    out += _layers(k, fr, flagged, anchors)
    out += _histograms(drawn, anchors, fr.findings, all_histograms, figures)
    out += _depth(k, fr, decades, figures)
    out.append("</section>")
    return out


def _findings(findings: Sequence[Finding], anchors: dict[str, str]) -> list[str]:
    out = [f"<h3>Findings ({len(findings)})</h3>"]
    if not findings:
        return [*out, '<p class="muted">No findings.</p>']
    out.append(
        '<div class="scroll"><table class="findings"><thead><tr><th>severity</th><th>rule</th>'
        "<th>tensor</th><th>message</th><th>fix</th></tr></thead><tbody>"
    )
    for f in findings:
        sev = f.severity.label
        out.append(
            f'<tr><td><span class="sev sev-{sev}">{sev}</span></td>'
            f'<td class="code">{escape(f.rule)}</td>'
            f'<td class="name">{_tensor_link(f.tensor, anchors)}</td>'
            f"<td>{escape(f.message)}</td>"
            f'<td class="fix">{escape(f.fix or "")}</td></tr>'
        )
    out.append("</tbody></table></div>")
    return out


def breakable(name: str) -> str:
    """A name, escaped, that wraps only after its separators (``.``, ``/``, ``_``, ``:``):
    ``layers.0.<wbr>self_<wbr>attn...``, never in the middle of a word."""
    return "".join(escape(c) + ("<wbr>" if c in _SEPARATORS else "") for c in name)


_SEPARATORS = frozenset("./_:")


def _tensor_link(name: str | None, anchors: dict[str, str]) -> str:
    if name is None:
        return '<span class="muted">(model)</span>'
    if name in anchors:
        return f'<a href="#{anchors[name]}">{breakable(name)}</a>'
    return breakable(name)


_COLUMNS = (
    ("name", "text"),
    ("role", "text"),
    ("op", "text"),
    ("shape", "text"),
    ("fan_in", "num"),
    ("fan_out", "num"),
    ("activation", "text"),
    ("scheme", "text"),
    ("std", "num"),
    ("expected std", "num"),
    ("ratio", "num"),
    ("findings", "text"),
)


def _num(x: float | int | None, fmt: str) -> str:
    """A numeric cell: the rounded label shown, the full value kept for sorting."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return '<td class="num" data-v=""></td>'
    return f'<td class="num" data-v="{float(x):.17g}">{format(x, fmt)}</td>'


def _layers(k: int, fr: FileResult, flagged: set[str], anchors: dict[str, str]) -> list[str]:
    table = f"layers-{k}"
    codes: dict[str, list[str]] = {}
    for f in fr.findings:
        if f.tensor is not None and f.rule not in codes.setdefault(f.tensor, []):
            codes[f.tensor].append(f.rule)
    heads = "".join(f'<th data-type="{kind}">{name}</th>' for name, kind in _COLUMNS)
    out = [
        f"<h3>Layers ({len(fr.tensors)})</h3>",
        f'<div class="filterbar"><input type="search" class="filter" data-table="{table}" '
        'placeholder="filter: name, op, scheme, IA201..." aria-label="filter layers">'
        f'<span class="muted" id="{table}-count">{len(fr.tensors)} layers</span></div>',
        f'<div class="scroll"><table class="sortable layers" id="{table}">'
        f"<thead><tr>{heads}</tr></thead><tbody>",
    ]
    for t in fr.tensors:
        row = "flagged" if t.name in flagged else ""
        out.append(
            f'<tr class="{row}" data-tensor="{escape(t.name)}">'
            f'<td class="name">{_tensor_link(t.name, anchors)}</td>'
            f"<td>{escape(t.role)}</td><td>{escape(t.op_type or '')}</td>"
            f"<td>{'×'.join(map(str, t.shape)) or 'scalar'}</td>"
            f"{_num(t.fan_in, 'd')}{_num(t.fan_out, 'd')}"
            f"<td>{escape(t.activation or '')}</td><td>{escape(t.scheme or '')}</td>"
            f"{_num(t.std, '.3g')}{_num(t.expected_std, '.3g')}{_num(t.ratio, '.3g')}"
            f'<td class="code">{" ".join(codes.get(t.name, []))}</td></tr>'
        )
    out.append("</tbody></table></div>")
    return out


def _histograms(
    drawn: Sequence[tuple[int, TensorReport]],
    anchors: dict[str, str],
    findings: Iterable[Finding],
    all_histograms: bool,
    figures: _Figures,
) -> list[str]:
    which = "every layer" if all_histograms else "flagged layers"
    out = [f"<h3>Histograms of {which} ({len(drawn)})</h3>"]
    if not all_histograms:
        out.append(
            '<p class="muted">Values against the density of the identified scheme, or of the '
            "closest one when none matched. <code>--html-all-histograms</code> draws every "
            "layer.</p>"
        )
    if not drawn:
        return [*out, '<p class="muted">No layer to draw.</p>']
    rules: dict[str, list[str]] = {}
    for f in findings:
        if f.tensor is not None:
            rules.setdefault(f.tensor, []).append(f.rule)
    out.append('<div class="grid">')
    for _, t in drawn:
        anchor = anchors[t.name]
        caption = breakable(t.name) + (
            f' <span class="muted">{" ".join(rules[t.name])}</span>' if t.name in rules else ""
        )
        caption += f'<br><span class="scale">{escape(plots.describe(t))}</span>'
        out.append(
            f'<figure class="histogram" id="{anchor}" data-tensor="{escape(t.name)}">'
            f"<figcaption>{caption}</figcaption>{plots.histogram_svg(t, anchor)}</figure>"
        )
        figures.drawn()
    out.append("</div>")
    return out


def _depth(k: int, fr: FileResult, decades: float, figures: _Figures) -> list[str]:
    out = ["<h3>Depth profile</h3>"]
    if len(fr.depth) < 2:
        return [*out, '<p class="muted">Fewer than two weighted layers on a path: no profile.</p>']
    out.append(
        f'<figure class="depth" id="depth-{k}">{plots.depth_svg(fr.depth, decades, f"d{k}")}'
        "</figure>"
    )
    figures.drawn()
    if not all(d.judged and d.judged_backward for d in fr.depth):
        out.append(
            '<p class="muted">Filled points are the layers IA203 judges (the residual '
            "stream); hollow ones run inside a residual branch and are shown, not judged.</p>"
        )
    gaps = [
        f"{d.tensor} {what} ({'0' if v < 0 else 'overflow'})"
        for d in fr.depth
        for what, v in (("forward", d.log10_forward), ("backward", d.log10_backward))
        if not math.isfinite(v)
    ]
    if gaps:
        out.append(
            f'<p class="muted">Not drawn, predicted 0 or overflowing: {escape(", ".join(gaps))}</p>'
        )
    if fr.depth_assumptions:
        ops = ", ".join(fr.depth_assumptions)
        out.append(f'<p class="muted">Assumed scale-neutral: {escape(ops)}.</p>')
    return out
