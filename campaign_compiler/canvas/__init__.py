"""The canvas (`campaign graph`): a campaign drawn left to right with the counts of its last build.

`canvas(...)` (model) gathers what to draw — activities, transitions, the outputs no activity reads
(a split's complement, a deduplication's duplicates...), the row count of each working table and
each channel's messages and exclusions, read from the warehouse when the models exist, the
populations waiting in each wait (and their next release) from the occurrence log, and the
compiled SQL of each model — and lays it out (layout). `render_html` (html), `render_mermaid` and
`render_dot` (text) draw it, an output nothing reads as an edge to an end of its own. The HTML page
is one self-contained file: inline SVG, CSS and a little JavaScript, nothing fetched.
"""

from .html import render_html, write_page
from .layout import NODE_H, NODE_W
from .model import CATEGORY_OF, Canvas, Edge, Model, Node, canvas, compiled_sql, draw, measure, waiting
from .text import render_dot, render_mermaid

__all__ = [
    "CATEGORY_OF",
    "NODE_H",
    "NODE_W",
    "Canvas",
    "Edge",
    "Model",
    "Node",
    "canvas",
    "compiled_sql",
    "draw",
    "measure",
    "render_dot",
    "render_html",
    "render_mermaid",
    "waiting",
    "write_page",
]
