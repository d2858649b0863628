"""The canvas as one self-contained HTML page: inline SVG, CSS and a little JavaScript, nothing fetched.

Clicking an activity shows its parameters, its models with their row counts and SQL, and a
channel's messages and exclusions; the page carries them as JSON.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..compile.plan import Campaign
from .layout import GAP_X, NODE_H, NODE_W, STUB, edge_label_width, label_width, size
from .model import Canvas, Edge, Node, count_text, draw, release_text, waiting_text

# glyphs that common fonts (DejaVu, system UI fonts) all draw
GLYPH = {
    "build_audience": "◎",
    "incremental_query": "◔",
    "load_file": "⇪",
    "reconciliation": "⇄",
    "combine": "⋃",
    "split": "⇶",
    "deduplication": "≡",
    "enrichment": "⊕",
    "change_dimension": "↷",
    "save_audience": "⬇",
    "fork": "⋔",
    "and_join": "⋀",
    "or_join": "⋁",
    "test": "?",
    "wait": "◷",
    "reaction": "↺",
    "end": "■",
    "email": "✉",
    "sms": "☎",
    "push": "◉",
    "direct_mail": "✎",
}


def render_html(c: Canvas) -> str:
    width, height = size(c)
    svg = [
        f'<svg id="canvas" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'data-width="{width:.0f}" data-height="{height:.0f}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#8a94a6"/></marker></defs>',
        '<g id="viewport">',
        *_edges(c),
        *(_node(node) for node in c.nodes.values()),
        "</g></svg>",
    ]
    data = {
        "campaign": c.campaign,
        "nodes": {
            n.id: {
                "type": n.type,
                "category": n.category,
                "line": n.line,
                "description": n.description,
                "parameters": n.parameters,
                "channel": n.channel,
                "models": [{"name": m.name, "output": m.output, "rows": m.rows, "sql": m.sql} for m in n.models],
                "waiting": _waiting_data(n),
            }
            for n in c.nodes.values()
        },
    }
    built = "counts of the last build on target " + c.target if c.target else "not built yet"
    return _PAGE.format(
        title=_e(f"Campaign {c.campaign}"),
        campaign=_e(c.campaign),
        description=_e(c.description),
        file=_e(c.file),
        built=_e(built),
        activities=len(c.nodes),
        svg="\n".join(svg),
        data=json.dumps(data).replace("</", "<\\/"),
        style=_STYLE,
        script=_SCRIPT,
    )


def _edges(c: Canvas) -> list[str]:
    """Each edge, an output's label on the first edge that carries it.

    An activity with one outgoing transition has its label halfway; the labels of one with several
    are stacked beside it, one per output, so that they do not fall on each other. An output
    nothing reads ends at its label, beside the activity."""
    outputs: dict[str, list[str]] = {}
    for edge in c.edges:
        outputs.setdefault(edge.source, [])
        if edge.output not in outputs[edge.source]:
            outputs[edge.source].append(edge.output)
    fan_out = {source: sum(e.source == source for e in c.edges) for source in outputs}
    labelled: set[tuple[str, str]] = set()
    svg = []
    for edge in c.edges:
        path, mx, my = _edge_path(c, edge, outputs[edge.source], fan_out[edge.source])
        svg.append(
            f'<g class="edge" data-source="{_e(edge.source)}" data-target="{_e(edge.target or "")}" '
            f'data-output="{_e(edge.output)}" data-rows="{"" if edge.rows is None else edge.rows}">'
            f'<path d="{path}" marker-end="url(#arrow)"/>'
        )
        if (edge.source, edge.output) not in labelled:
            labelled.add((edge.source, edge.output))
            svg.append(_edge_label(mx, my, edge.count, edge.output_name))
        svg.append("</g>")
    return svg


def _edge_path(c: Canvas, edge: Edge, names: list[str], fan_out: int) -> tuple[str, float, float]:
    """The curve of an edge, and the centre of its label; `names` are the outputs of its source."""
    a = c.nodes[edge.source]
    x1, y1 = a.x + NODE_W, a.y + NODE_H / 2
    beside = y1 + (names.index(edge.output) - (len(names) - 1) / 2) * 32
    if edge.target is None:
        x2, y2 = x1 + STUB, beside
        mx, my = x2 + edge_label_width(edge) / 2, y2
        bend = STUB / 2
    else:
        b = c.nodes[edge.target]
        x2, y2 = b.x, b.y + NODE_H / 2
        mx, my = (x1 + GAP_X / 2, beside) if fan_out > 1 else ((x1 + x2) / 2, (y1 + y2) / 2)
        bend = max((x2 - x1) / 2, 40)
    path = f"M {x1:.1f} {y1:.1f} C {x1 + bend:.1f} {y1:.1f}, {x2 - bend:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}"
    return path, mx, my


def _waiting_data(node: Node) -> dict | None:
    w = node.waiting
    if w is None:
        return None
    release = release_text(w.next_release) if w.next_release else None
    return {"rows": w.rows, "occurrences": w.occurrences, "next_release": release}


def _node(node: Node) -> str:
    waiting = f" — {waiting_text(node.waiting)}" if node.waiting is not None else ""
    release = ""
    if node.waiting is not None and node.waiting.next_release is not None:  # under the box: it is long
        release = (
            f'<text class="release" x="0" y="{NODE_H + 12}">next release {_e(release_text(node.waiting.next_release))}'
            "</text>"
        )
    return (
        f'<g class="node {node.category}" data-activity="{_e(node.id)}" data-type="{node.type}" tabindex="0" '
        f'transform="translate({node.x:.1f},{node.y:.1f})">'
        f"<title>{_e(node.id)} ({node.type}), line {node.line}{_e(waiting)}</title>"
        f'<rect width="{NODE_W}" height="{NODE_H}" rx="9"/>'
        f'<text class="glyph" x="17" y="{NODE_H / 2 + 6:.0f}" text-anchor="middle">{GLYPH.get(node.type, "•")}</text>'
        f'<text class="name" x="33" y="19">{_e(_clip(node.id, 17))}</text>'
        f'<text class="kind" x="33" y="33">{_e(node.type.replace("_", " "))}</text>'
        f'<text class="count" x="33" y="48">{_e(_subtitle(node))}</text>{release}</g>'
    )


def _subtitle(node: Node) -> str:
    """What a node says under its type: its messages, or its rows, or how many outputs it has."""
    main = next((m for m in node.models if m.output == "out" and node.category != "channel"), None) or (
        node.models[0] if node.category != "channel" and len(node.models) == 1 else None
    )
    if node.channel is not None:
        return f"{node.channel['messages']:,} messages"
    if node.waiting is not None:
        return f"{node.waiting.rows:,} waiting"
    if node.category == "channel":
        return "not built"
    if main is None and node.models:  # a split's or a test's outputs: their counts are on the edges
        return f"{len(node.models)} outputs"
    if main is not None:
        return f"{count_text(main.rows)} rows" if main.rows is not None else "not built"
    return ""


def _edge_label(x: float, y: float, count: str, output: str | None) -> str:
    """A pill with the row count, and under it the output's name when it is not `out`."""
    width = label_width(count, output)
    height = 28 if output else 16
    text = f'<text x="{x:.1f}" y="{y - height / 2 + 12:.1f}" text-anchor="middle">{_e(count)}</text>'
    if output:
        text += (
            f'<text class="output" x="{x:.1f}" y="{y - height / 2 + 24:.1f}" text-anchor="middle">{_e(output)}</text>'
        )
    return (
        f'<rect x="{x - width / 2:.1f}" y="{y - height / 2:.1f}" width="{width:.1f}" height="{height}" rx="8"/>' + text
    )


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def write_page(
    campaign: Campaign,
    workspace,
    rows: dict[str, int],
    channels: dict,
    target: str,
    path: Path | None = None,
    waits: dict | None = None,
) -> Path:
    """The HTML canvas, by default target/canvas/<target>/<campaign>.html of the project; `waits`: the
    populations waiting in each wait (canvas.model.measure)."""
    drawn = draw(campaign, workspace, rows, channels, target, waits)
    path = path or workspace.dbt.target_dir / "canvas" / target / f"{campaign.name}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(drawn), encoding="utf-8")
    return path


_STYLE = """
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2937;
       display: flex; flex-direction: column; height: 100vh; }
header { padding: 8px 14px; border-bottom: 1px solid #e5e7eb; display: flex; gap: 14px; align-items: baseline;
         flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; }
header .meta { color: #6b7280; }
header .tools { margin-left: auto; display: flex; gap: 4px; }
header button { font: inherit; padding: 1px 9px; }
#stage { position: relative; flex: 1; overflow: hidden; background: #fafbfc; cursor: grab; }
#stage svg { width: 100%; height: 100%; display: block; }
aside { position: absolute; top: 8px; right: 8px; bottom: 8px; width: min(460px, 45vw); overflow: auto;
        background: #fff; border: 1px solid #d1d5db; border-radius: 8px; padding: 10px 14px;
        box-shadow: 0 4px 18px rgba(0, 0, 0, .12); cursor: auto; }
aside[hidden] { display: none; }
aside .close { float: right; }
aside h2 { font-size: 16px; margin: 2px 0; }
aside h3 { font-size: 14px; margin: 12px 0 2px; }
aside pre { background: #f6f8fa; padding: 8px; overflow: auto; font-size: 12px; white-space: pre; margin: 4px 0; }
aside table { border-collapse: collapse; margin: 4px 0; }
aside td { padding: 1px 10px 1px 0; }
aside td.n { text-align: right; font-variant-numeric: tabular-nums; }
.hint { position: absolute; left: 12px; bottom: 8px; color: #6b7280; font-size: 12px; }
.node rect { stroke-width: 1.5; }
.node.targeting rect { fill: #dbeafe; stroke: #3b82f6; }
.node.flow rect { fill: #f1f5f9; stroke: #64748b; stroke-dasharray: 5 3; }
.node.channel rect { fill: #dcfce7; stroke: #16a34a; }
.node { cursor: pointer; }
.node:hover rect, .node.selected rect { stroke-width: 3.5; }
.node .glyph { font-size: 18px; }
.node .name { font-weight: 600; font-size: 13px; }
.node .kind { fill: #6b7280; font-size: 11px; }
.node .count { font-size: 12px; font-variant-numeric: tabular-nums; }
.node .release { font-size: 10.5px; fill: #6b7280; font-variant-numeric: tabular-nums; }
.edge path { fill: none; stroke: #8a94a6; stroke-width: 1.4; }
.edge rect { fill: #fff; stroke: #cbd5e1; }
.edge text { font-size: 11px; fill: #374151; font-variant-numeric: tabular-nums; }
.edge text.output { fill: #6b7280; font-style: italic; }
.legend span { margin-right: 10px; }
"""

_SCRIPT = """
const data = JSON.parse(document.getElementById('campaign-data').textContent);
const svg = document.getElementById('canvas');
const panel = document.getElementById('details');
const full = {w: +svg.dataset.width, h: +svg.dataset.height};
let box = {x: 0, y: 0, w: full.w, h: full.h};
function apply() { svg.setAttribute('viewBox', `${box.x} ${box.y} ${box.w} ${box.h}`); }
function fit() { box = {x: 0, y: 0, w: full.w, h: full.h}; apply(); }
document.getElementById('fit').onclick = fit;
function zoom(scale) {
  const cx = box.x + box.w / 2, cy = box.y + box.h / 2;
  box = {x: cx - box.w * scale / 2, y: cy - box.h * scale / 2, w: box.w * scale, h: box.h * scale};
  apply();
}
document.getElementById('zoom-in').onclick = () => zoom(1 / 1.4);
document.getElementById('zoom-out').onclick = () => zoom(1.4);
svg.addEventListener('wheel', (event) => {
  event.preventDefault();
  const r = svg.getBoundingClientRect();
  const scale = event.deltaY > 0 ? 1.15 : 1 / 1.15;
  const px = box.x + (event.clientX - r.left) / r.width * box.w, py = box.y + (event.clientY - r.top) / r.height * box.h;
  box = {x: px - (px - box.x) * scale, y: py - (py - box.y) * scale, w: box.w * scale, h: box.h * scale};
  apply();
}, {passive: false});
let drag = null;
svg.addEventListener('mousedown', (e) => { drag = {x: e.clientX, y: e.clientY, box: {...box}}; });
function hide() { panel.hidden = true; document.querySelectorAll('.node.selected').forEach(el => el.classList.remove('selected')); }
svg.addEventListener('click', hide);
window.addEventListener('keydown', (e) => { if (e.key === 'Escape') hide(); });
window.addEventListener('mouseup', () => { drag = null; });
window.addEventListener('mousemove', (e) => {
  if (!drag) return;
  const r = svg.getBoundingClientRect();
  box.x = drag.box.x - (e.clientX - drag.x) / r.width * box.w;
  box.y = drag.box.y - (e.clientY - drag.y) / r.height * box.h;
  apply();
});
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c])); }
function rows(n) { return n === null ? 'not built' : n.toLocaleString('en'); }
function show(id) {
  const n = data.nodes[id];
  document.querySelectorAll('.node.selected').forEach(el => el.classList.remove('selected'));
  document.querySelector(`.node[data-activity="${CSS.escape(id)}"]`).classList.add('selected');
  let h = `<button class="close" type="button" onclick="hide()">×</button><h2>${esc(id)}</h2><div>${esc(n.type.replace(/_/g, ' '))} · ${esc(n.category)} · line ${n.line}</div>`;
  if (n.description) h += `<p>${esc(n.description)}</p>`;
  if (n.channel) {
    h += `<h3>Messages</h3><table><tr><td>messages</td><td class="n">${rows(n.channel.messages)}</td></tr>`;
    h += `<tr><td>recipients</td><td class="n">${rows(n.channel.recipients)}</td></tr>`;
    for (const [reason, count] of Object.entries(n.channel.excluded))
      h += `<tr><td>excluded: ${esc(reason.replace(/_/g, ' '))}</td><td class="n">${rows(count)}</td></tr>`;
    h += '</table>';
  }
  if (n.waiting) {
    h += `<h3>Waiting</h3><table><tr><td>rows waiting</td><td class="n">${rows(n.waiting.rows)}</td></tr>`;
    h += `<tr><td>occurrences waiting</td><td class="n">${rows(n.waiting.occurrences)}</td></tr>`;
    h += `<tr><td>next release</td><td class="n">${esc(n.waiting.next_release || '-')}</td></tr></table>`;
  }
  h += `<h3>Parameters</h3><pre>${esc(n.parameters)}</pre>`;
  for (const m of n.models) {
    h += `<h3 class="model">${esc(m.name)}</h3><div>${m.output === 'out' ? '' : 'output ' + esc(m.output) + ' · '}${rows(m.rows)} rows</div>`;
    h += `<pre class="sql">${esc(m.sql)}</pre>`;
  }
  panel.innerHTML = h;
  panel.hidden = false;
}
document.querySelectorAll('.node').forEach(el => {
  el.addEventListener('click', (e) => { e.stopPropagation(); show(el.dataset.activity); });
  el.addEventListener('keydown', (e) => { if (e.key === 'Enter') show(el.dataset.activity); });
});
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header>
  <h1>Campaign {campaign}</h1>
  <span class="meta">{description}</span>
  <span class="meta">{file} · {activities} activities · {built}</span>
  <span class="legend meta"><span>◎ targeting</span><span>⋔ flow control</span><span>✉ channel</span></span>
  <span class="tools"><button id="zoom-out" type="button" title="Zoom out">−</button><button id="zoom-in"
    type="button" title="Zoom in">+</button><button id="fit" type="button">Fit</button></span>
</header>
<div id="stage">
{svg}
<span class="hint">Click an activity for its parameters, models and SQL · scroll to zoom · drag to move</span>
<aside id="details" hidden></aside>
</div>
<script type="application/json" id="campaign-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""
