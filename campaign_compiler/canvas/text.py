"""The canvas as text: Mermaid and Graphviz DOT, for a README, a review or a wiki."""

from __future__ import annotations

from .model import Canvas, Edge, Node, waiting_text

COLOURS = {"targeting": "#dbeafe", "flow": "#f1f5f9", "channel": "#dcfce7"}


def _edge_text(edge: Edge) -> str:
    name = edge.output_name
    return edge.count + (f" ({name})" if name else "")


def _point(edge: Edge) -> str:
    """The id of the point an output nothing reads ends at; activity ids and output names are
    lowercase, so no activity has it."""
    return f"{edge.source}_OUT_{edge.output}"


def _extra(node: Node) -> list[str]:
    """The lines under a node's type: a channel's messages, what waits in a wait."""
    lines = []
    if node.channel:
        lines.append(f"{node.channel['messages']:,} messages")
    if node.waiting is not None:
        lines.append(waiting_text(node.waiting))
    return lines


def render_mermaid(c: Canvas) -> str:
    lines = ["flowchart LR"]
    shapes = {"targeting": ('["', '"]'), "flow": ('{{"', '"}}'), "channel": ('(["', '"])')}
    for node in c.nodes.values():
        opening, closing = shapes[node.category]
        extra = "".join(f"<br/>{line}" for line in _extra(node))
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
    lines = [
        f'digraph "{c.campaign}" {{',
        "  rankdir=LR;",
        '  node [style="rounded,filled", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for node in c.nodes.values():
        extra = "".join(f"\\n{line}" for line in _extra(node))
        lines.append(
            f'  "{node.id}" [label="{node.id}\\n{node.type}{extra}", shape={shapes[node.category]}, '
            f'fillcolor="{COLOURS[node.category]}"];'
        )
    for edge in c.edges:
        if edge.target is None:
            lines.append(f'  "{_point(edge)}" [label="", shape=point];')
        lines.append(f'  "{edge.source}" -> "{edge.target or _point(edge)}" [label="{_edge_text(edge)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
