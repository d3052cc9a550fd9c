"""The HTML report's stylesheet and script, inlined into the page so it opens with no network.

The script is plain DOM code with no library: click a header to sort its table (again to
reverse; empty cells stay last), type in the box to keep only the rows that contain the text.
Numeric columns sort by each cell's ``data-v`` (the unrounded number), not by its label.
"""

from __future__ import annotations

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg2: #f6f8fa;
  --error: #cf222e; --warning: #9a6700; --info: #0969da; --flag: #fff8c5; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
  color: var(--fg); margin: 0 auto; padding: 16px 24px 48px; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-top: 12px; border-top: 2px solid var(--line);
  font-family: ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: break-word; }
h3 { font-size: 15px; margin: 22px 0 8px; }
p.muted, span.muted, .note { color: var(--muted); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
  vertical-align: top; }
th { background: var(--bg2); position: sticky; top: 0; white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \\2195"; color: #8c959f; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; color: var(--fg); }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; color: var(--fg); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name, td.code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
td.name { overflow-wrap: break-word; min-width: 10em; } td.code { white-space: nowrap; }
td.fix { white-space: pre-wrap; }
tr.flagged td { background: var(--flag); }
.sev { font-weight: 600; text-transform: uppercase; font-size: 11px; }
.sev-error { color: var(--error); } .sev-warning { color: var(--warning); }
.sev-info { color: var(--info); }
.fix { color: var(--muted); }
.filterbar { display: flex; gap: 12px; align-items: center; margin: 4px 0 8px; }
input.filter { font: inherit; padding: 4px 8px; width: 320px; max-width: 100%;
  border: 1px solid var(--line); border-radius: 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr));
  gap: 12px; }
figure { margin: 0; padding: 6px; border: 1px solid var(--line); border-radius: 6px; }
figure svg { display: block; width: 100%; height: auto; }
figure.depth { max-width: 900px; }
figcaption { font-size: 12px; margin-bottom: 4px; }
figcaption .scale { color: var(--muted); }
.error-box { border-left: 4px solid var(--error); background: #ffebe9; padding: 8px 12px; }
a { color: var(--info); text-decoration: none; } a:hover { text-decoration: underline; }
"""

JS = """
"use strict";
for (const th of document.querySelectorAll("table.sortable th")) {
  th.title = "click to sort";
  th.addEventListener("click", () => {
    const table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
    const num = th.dataset.type === "num";
    const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    for (const h of table.tHead.rows[0].cells) h.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    const key = (row) => {
      const cell = row.cells[col], v = cell.dataset.v ?? cell.textContent;
      return num ? (v === "" ? NaN : parseFloat(v)) : v.toLowerCase();
    };
    const rows = Array.from(body.rows).map((r) => [key(r), r]);
    rows.sort(([a], [b]) => {
      if (num) {
        if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) - Number.isNaN(b);
        return (a - b) * dir;
      }
      return a < b ? -dir : a > b ? dir : 0;
    });
    for (const [, r] of rows) body.appendChild(r);
  });
}
for (const box of document.querySelectorAll("input.filter")) {
  box.addEventListener("input", () => {
    const table = document.getElementById(box.dataset.table);
    const q = box.value.trim().toLowerCase();
    let shown = 0;
    for (const r of table.tBodies[0].rows) {
      r.hidden = q !== "" && !r.textContent.toLowerCase().includes(q);
      if (!r.hidden) shown += 1;
    }
    const n = table.tBodies[0].rows.length;
    document.getElementById(box.dataset.table + "-count").textContent =
      q === "" ? n + " layers" : shown + " of " + n + " layers";
  });
}
"""
