"""Where each activity goes: layers by longest path from left to right, order within a layer by
barycentres, and room beside an activity for the labels of the outputs nothing reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Canvas, Edge, Node

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 156, 56, 92, 26, 24
STUB = 18  # the arrow from an activity to the label of an output nothing reads


def place(c: Canvas) -> None:
    """Set the layer, order and position of every node."""
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
    _order(c, layers, incoming, outgoing)
    _position(c, layers)


def _order(
    c: Canvas, layers: dict[int, list[Node]], incoming: dict[str, list[str]], outgoing: dict[str, list[str]]
) -> None:
    """Sort each layer, sweeping down and up: each node at the mean position of its neighbours."""
    for members in layers.values():
        for i, node in enumerate(members):
            node.order = i
    for sweep in range(8):
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


def _position(c: Canvas, layers: dict[int, list[Node]]) -> None:
    """Layers side by side, each centred vertically on the tallest."""
    # the gap after a layer leaves room for the labels of the outputs nothing reads beside it
    gaps = dict.fromkeys(layers, float(GAP_X))
    for edge in c.edges:
        if edge.target is None:
            layer = c.nodes[edge.source].layer
            gaps[layer] = max(gaps[layer], edge_label_width(edge) + 2 * STUB)
    tallest = max(len(m) for m in layers.values())
    x = MARGIN
    for layer in sorted(layers):
        members = layers[layer]
        offset = (tallest - len(members)) * (NODE_H + GAP_Y) / 2
        for i, node in enumerate(members):
            node.x = x
            node.y = MARGIN + offset + i * (NODE_H + GAP_Y)
        x += NODE_W + gaps[layer]


def size(c: Canvas) -> tuple[float, float]:
    """Room for every node, and for the labels of the outputs nothing reads beside their activity."""
    right = [n.x + NODE_W for n in c.nodes.values()]
    right += [c.nodes[e.source].x + NODE_W + STUB + edge_label_width(e) for e in c.edges if e.target is None]
    width = max(right, default=NODE_W) + MARGIN
    height = max((n.y for n in c.nodes.values()), default=0) + NODE_H + MARGIN
    return width, height


def label_width(count: str, output: str | None) -> float:
    """The width of an edge's label: its row count over its output's name."""
    return 6.6 * max(len(count), len(output or "")) + 12


def edge_label_width(edge: Edge) -> float:
    return label_width(edge.count, edge.output_name)
