"""The canvas (`campaign graph`): a campaign drawn left to right with the counts of its last build.

`canvas(...)` gathers what to draw — activities, transitions, the outputs no activity reads (a
split's complement, a deduplication's duplicates...), the row count of each working table and each
channel's messages and exclusions, read from the warehouse when the models exist, and the compiled
SQL of each model — and `render_html`, `render_mermaid`, `render_dot` draw it, an output nothing
reads as an edge to an end of its own. The HTML page is one self-contained file: inline SVG, CSS and
a little JavaScript, nothing fetched.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..compile.campaign import TYPES
from ..compile.plan import Campaign

CATEGORY_OF = {name: kind.category for name, kind in TYPES.items()}  # targeting, flow or channel
# glyphs that common fonts (DejaVu, system UI fonts) all draw
GLYPH = {"build_audience": "◎", "load_file": "⇪", "reconciliation": "⇄", "combine": "⋃", "split": "⇶",
         "deduplication": "≡", "enrichment": "⊕", "change_dimension": "↷", "save_audience": "⬇", "fork": "⋔",
         "and_join": "⋀", "or_join": "⋁", "test": "?", "end": "■", "email": "✉", "sms": "☎", "push": "◉",
         "direct_mail": "✎"}
NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 156, 56, 92, 26, 24
STUB = 18  # the arrow from an activity to the label of an output nothing reads


@dataclass
class Model:
    name: str
    output: str
    rows: int | None  # None: not built
    sql: str  # compiled SQL, or the model's source when it was never compiled


@dataclass
class Node:
    id: str
    type: str
    category: str
    line: int
    description: str
    parameters: str  # the activity as written, YAML
    models: list[Model] = field(default_factory=list)
    channel: dict | None = None  # messages, recipients, excluded by reason
    layer: int = 0
    order: float = 0.0
    x: float = 0.0
    y: float = 0.0


@dataclass
class Edge:
    source: str
    output: str
    target: str | None  # None: no activity reads the output; the edge ends on its own
    rows: int | None


@dataclass
class Canvas:
    campaign: str
    description: str
    file: str
    target: str | None  # the dbt target the counts come from
    nodes: dict[str, Node]
    edges: list[Edge]


def canvas(campaign: Campaign, rows: dict[str, int], channels: dict, compiled: dict[str, str], target: str | None,
           project_root: Path) -> Canvas:
    """What to draw; `rows` has the row count of each built model, `compiled` its SQL."""
    nodes: dict[str, Node] = {}
    for activity in campaign.ordered():
        spec = {k: v for k, v in activity.spec.items() if k != "description"}
        node = Node(activity.id, activity.type, CATEGORY_OF.get(activity.type, "flow"), activity.line,
                    activity.description, yaml.safe_dump(spec, sort_keys=False, allow_unicode=True).strip(),
                    channel=channels.get(activity.id))
        for model in activity.models:
            node.models.append(Model(model.name, model.table.output, rows.get(model.name), compiled.get(model.name, "")))
        nodes[activity.id] = node
    edges = []
    read = set()
    for activity in campaign.ordered():
        for ref in activity.inputs:
            upstream = campaign.activities[ref.activity]
            table = upstream.tables.get(ref.output)
            edges.append(Edge(ref.activity, ref.output, activity.id, rows.get(table.model) if table else None))
            read.add((ref.activity, ref.output))
    for activity in campaign.ordered():
        # A channel's recipients are not drawn again (its node says how many messages), nor are the
        # rows of an end (its input's, on the edge into it).
        if activity.type == "end" or CATEGORY_OF.get(activity.type) == "channel":
            continue
        for output, table in activity.tables.items():
            if (activity.id, output) not in read:
                edges.append(Edge(activity.id, output, None, rows.get(table.model)))
    try:
        file = campaign.source.path.resolve().relative_to(project_root).as_posix()
    except ValueError:
        file = str(campaign.source.path)
    result = Canvas(campaign.name, campaign.description, file, target, nodes, edges)
    _layout(result)
    return result


# -- layout: layers by longest path, order by barycentres --------------------------------------------
def _layout(c: Canvas) -> None:
    incoming: dict[str, list[str]] = {n: [] for n in c.nodes}
    outgoing: dict[str, list[str]] = {n: [] for n in c.nodes}
    for edge in c.edges:
        if edge.target is not None:
            incoming[edge.target].append(edge.source)
            outgoing[edge.source].append(edge.target)
    for node in c.nodes.values():  # campaign.ordered() is topological
        node.layer = max((c.nodes[s].layer + 1 for s in incoming[node.id]), default=0)
    layers: dict[int, list[Node]] = {}
    for node in c.nodes.values():
        layers.setdefault(node.layer, []).append(node)
    for members in layers.values():
        for i, node in enumerate(members):
            node.order = i
    for sweep in range(8):  # down and up: place each node at the mean position of its neighbours
        forward = sweep % 2 == 0
        for layer in sorted(layers, reverse=not forward):
            members = layers[layer]
            for node in members:
                neighbours = incoming[node.id] if forward else outgoing[node.id]
                if neighbours:
                    node.order = sum(c.nodes[n].order for n in neighbours) / len(neighbours)
            members.sort(key=lambda n: n.order)
            for i, node in enumerate(members):
                node.order = i
    # the gap after a layer leaves room for the labels of the outputs nothing reads beside it
    gaps = dict.fromkeys(layers, float(GAP_X))
    for edge in c.edges:
        if edge.target is None:
            layer = c.nodes[edge.source].layer
            gaps[layer] = max(gaps[layer], _edge_label_width(edge) + 2 * STUB)
    tallest = max(len(m) for m in layers.values())
    x = MARGIN
    for layer in sorted(layers):
        members = layers[layer]
        offset = (tallest - len(members)) * (NODE_H + GAP_Y) / 2
        for i, node in enumerate(members):
            node.x = x
            node.y = MARGIN + offset + i * (NODE_H + GAP_Y)
        x += NODE_W + gaps[layer]


def _size(c: Canvas) -> tuple[float, float]:
    """Room for every node, and for the labels of the outputs nothing reads beside their activity."""
    right = [n.x + NODE_W for n in c.nodes.values()]
    right += [c.nodes[e.source].x + NODE_W + STUB + _edge_label_width(e) for e in c.edges if e.target is None]
    width = max(right, default=NODE_W) + MARGIN
    height = max((n.y for n in c.nodes.values()), default=0) + NODE_H + MARGIN
    return width, height


def _count(rows: int | None) -> str:
    return "not built" if rows is None else f"{rows:,}"


def _output_name(edge: Edge) -> str | None:
    """The output's name, shown unless it is `out`."""
    return None if edge.output == "out" else edge.output


def _edge_label_width(edge: Edge) -> float:
    return _label_width(_count(edge.rows), _output_name(edge))


# -- HTML --------------------------------------------------------------------------------------------
def render_html(c: Canvas) -> str:
    width, height = _size(c)
    svg = [f'<svg id="canvas" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
           f'data-width="{width:.0f}" data-height="{height:.0f}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#8a94a6"/></marker></defs>',
           '<g id="viewport">']
    # An activity with one outgoing transition has its label halfway; the labels of one with several
    # are stacked beside it, one per output, so that they do not fall on each other. An output
    # nothing reads ends at its label, beside the activity.
    outputs: dict[str, list[str]] = {}
    for edge in c.edges:
        outputs.setdefault(edge.source, [])
        if edge.output not in outputs[edge.source]:
            outputs[edge.source].append(edge.output)
    fan_out = {source: sum(e.source == source for e in c.edges) for source in outputs}
    labelled: set[tuple[str, str]] = set()
    for edge in c.edges:
        a = c.nodes[edge.source]
        x1, y1 = a.x + NODE_W, a.y + NODE_H / 2
        names = outputs[edge.source]
        beside = y1 + (names.index(edge.output) - (len(names) - 1) / 2) * 32
        count, name = _count(edge.rows), _output_name(edge)
        if edge.target is None:
            x2, y2 = x1 + STUB, beside
            mx, my = x2 + _edge_label_width(edge) / 2, y2
            bend = STUB / 2
        else:
            b = c.nodes[edge.target]
            x2, y2 = b.x, b.y + NODE_H / 2
            mx, my = (x1 + GAP_X / 2, beside) if fan_out[edge.source] > 1 else ((x1 + x2) / 2, (y1 + y2) / 2)
            bend = max((x2 - x1) / 2, 40)
        path = f"M {x1:.1f} {y1:.1f} C {x1 + bend:.1f} {y1:.1f}, {x2 - bend:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}"
        svg.append(f'<g class="edge" data-source="{_e(edge.source)}" data-target="{_e(edge.target or "")}" '
                   f'data-output="{_e(edge.output)}" data-rows="{"" if edge.rows is None else edge.rows}">'
                   f'<path d="{path}" marker-end="url(#arrow)"/>')
        if (edge.source, edge.output) not in labelled:
            labelled.add((edge.source, edge.output))
            svg.append(_edge_label(mx, my, count, name))
        svg.append("</g>")
    for node in c.nodes.values():
        main = next((m for m in node.models if m.output == "out" and node.category != "channel"), None) or \
            (node.models[0] if node.category != "channel" and len(node.models) == 1 else None)
        if node.channel is not None:
            subtitle = f"{node.channel['messages']:,} messages"
        elif node.category == "channel":
            subtitle = "not built"
        elif main is None and node.models:  # a split's or a test's outputs: their counts are on the edges
            subtitle = f"{len(node.models)} outputs"
        elif main is not None:
            subtitle = f"{_count(main.rows)} rows" if main.rows is not None else "not built"
        else:
            subtitle = ""
        svg.append(
            f'<g class="node {node.category}" data-activity="{_e(node.id)}" data-type="{node.type}" tabindex="0" '
            f'transform="translate({node.x:.1f},{node.y:.1f})">'
            f'<title>{_e(node.id)} ({node.type}), line {node.line}</title>'
            f'<rect width="{NODE_W}" height="{NODE_H}" rx="9"/>'
            f'<text class="glyph" x="17" y="{NODE_H / 2 + 6:.0f}" text-anchor="middle">{GLYPH.get(node.type, "•")}</text>'
            f'<text class="name" x="33" y="19">{_e(_clip(node.id, 17))}</text>'
            f'<text class="kind" x="33" y="33">{_e(node.type.replace("_", " "))}</text>'
            f'<text class="count" x="33" y="48">{_e(subtitle)}</text></g>')
    svg.append("</g></svg>")
    data = {"campaign": c.campaign, "nodes": {n.id: {
        "type": n.type, "category": n.category, "line": n.line, "description": n.description,
        "parameters": n.parameters, "channel": n.channel,
        "models": [{"name": m.name, "output": m.output, "rows": m.rows, "sql": m.sql} for m in n.models],
    } for n in c.nodes.values()}}
    built = "counts of the last build on target " + c.target if c.target else "not built yet"
    return _PAGE.format(
        title=_e(f"Campaign {c.campaign}"), campaign=_e(c.campaign), description=_e(c.description),
        file=_e(c.file), built=_e(built), activities=len(c.nodes), svg="\n".join(svg),
        data=json.dumps(data).replace("</", "<\\/"), style=_STYLE, script=_SCRIPT)


def _label_width(count: str, output: str | None) -> float:
    return 6.6 * max(len(count), len(output or "")) + 12


def _edge_label(x: float, y: float, count: str, output: str | None) -> str:
    """A pill with the row count, and under it the output's name when it is not `out`."""
    width = _label_width(count, output)
    height = 28 if output else 16
    text = f'<text x="{x:.1f}" y="{y - height / 2 + 12:.1f}" text-anchor="middle">{_e(count)}</text>'
    if output:
        text += f'<text class="output" x="{x:.1f}" y="{y - height / 2 + 24:.1f}" text-anchor="middle">{_e(output)}</text>'
    return (f'<rect x="{x - width / 2:.1f}" y="{y - height / 2:.1f}" width="{width:.1f}" height="{height}" rx="8"/>'
            + text)


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


# -- text formats ------------------------------------------------------------------------------------
COLOURS = {"targeting": "#dbeafe", "flow": "#f1f5f9", "channel": "#dcfce7"}


def _edge_text(edge: Edge) -> str:
    name = _output_name(edge)
    return _count(edge.rows) + (f" ({name})" if name else "")


def _point(edge: Edge) -> str:
    """The id of the point an output nothing reads ends at; activity ids and output names are
    lowercase, so no activity has it."""
    return f"{edge.source}_OUT_{edge.output}"


def render_mermaid(c: Canvas) -> str:
    lines = ["flowchart LR"]
    shapes = {"targeting": ('["', '"]'), "flow": ('{{"', '"}}'), "channel": ('(["', '"])')}
    for node in c.nodes.values():
        opening, closing = shapes[node.category]
        extra = f"<br/>{node.channel['messages']:,} messages" if node.channel else ""
        lines.append(f"    {node.id}{opening}{node.id}<br/><i>{node.type}</i>{extra}{closing}")
    for edge in c.edges:
        target = edge.target or f'{_point(edge)}((" "))'
        lines.append(f'    {edge.source} -- "{_edge_text(edge)}" --> {target}')
    for category, colour in COLOURS.items():
        members = [n.id for n in c.nodes.values() if n.category == category]
        if members:
            lines.append(f"    classDef {category} fill:{colour}")
            lines.append(f"    class {','.join(members)} {category}")
    return "\n".join(lines) + "\n"


def render_dot(c: Canvas) -> str:
    shapes = {"targeting": "box", "flow": "diamond", "channel": "cds"}
    lines = [f'digraph "{c.campaign}" {{', "  rankdir=LR;",
             '  node [style="rounded,filled", fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=10];']
    for node in c.nodes.values():
        extra = f"\\n{node.channel['messages']:,} messages" if node.channel else ""
        lines.append(f'  "{node.id}" [label="{node.id}\\n{node.type}{extra}", shape={shapes[node.category]}, '
                     f'fillcolor="{COLOURS[node.category]}"];')
    for edge in c.edges:
        if edge.target is None:
            lines.append(f'  "{_point(edge)}" [label="", shape=point];')
        lines.append(f'  "{edge.source}" -> "{edge.target or _point(edge)}" [label="{_edge_text(edge)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


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


def compiled_sql(campaign: Campaign, project) -> dict[str, str]:
    """Each model's SQL as dbt last compiled it, else the model file itself."""
    result = {}
    for model in campaign.models():
        source = project.models_dir(campaign.name) / f"{model.name}.sql"
        relative = source.relative_to(project.root)
        compiled = project.target_dir / "compiled" / project.name / relative
        for path in (compiled, source):
            if path.is_file():  # without the blank lines Jinja leaves
                result[model.name] = re.sub(r"\n\s*\n(\s*\n)+", "\n\n", path.read_text(encoding="utf-8")).strip()
                break
    return result


def measure(campaign: Campaign, workspace, where) -> tuple[dict[str, int], dict, str]:
    """Row counts of the campaign's models built on the target, its channels' messages, the target."""
    from ..engines.warehouse import count_rows
    from ..project.target import connect
    from ..run.counts import channel_counts
    from ..run.state import recorded

    with connect(where) as warehouse:
        built = recorded(warehouse, campaign.name)
        present = {m.name: built[m.name].relation for m in campaign.models() if m.name in built}
        rows = count_rows(warehouse, present)
        return rows, channel_counts(warehouse, present, campaign), warehouse.target_name


def draw(campaign: Campaign, workspace, rows: dict[str, int], channels: dict, target: str | None) -> Canvas:
    """The canvas of a campaign of the workspace, with its models' compiled SQL."""
    return canvas(campaign, rows, channels, compiled_sql(campaign, workspace.dbt), target, workspace.dbt.root)


def write_page(campaign: Campaign, workspace, rows: dict[str, int], channels: dict, target: str,
               path: Path | None = None) -> Path:
    """The HTML canvas, by default target/canvas/<target>/<campaign>.html of the project."""
    drawn = draw(campaign, workspace, rows, channels, target)
    path = path or workspace.dbt.target_dir / "canvas" / target / f"{campaign.name}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(drawn), encoding="utf-8")
    return path
