"""What the canvas draws: activities, transitions and their counts, gathered from a campaign."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..compile.campaign import TYPES
from ..compile.plan import Campaign
from ..run.occurrences import Waiting
from .layout import place

CATEGORY_OF = {name: kind.category for name, kind in TYPES.items()}  # targeting, flow or channel


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
    waiting: Waiting | None = None  # a wait's populations not released yet (None: nothing recorded)
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

    @property
    def count(self) -> str:
        """The row count as its label shows it."""
        return count_text(self.rows)

    @property
    def output_name(self) -> str | None:
        """The output's name, shown unless it is `out`."""
        return None if self.output == "out" else self.output


@dataclass
class Canvas:
    campaign: str
    description: str
    file: str
    target: str | None  # the dbt target the counts come from
    nodes: dict[str, Node]
    edges: list[Edge]


def count_text(rows: int | None) -> str:
    return "not built" if rows is None else f"{rows:,}"


def release_text(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def waiting_text(waiting: Waiting) -> str:
    """`42 waiting · next release 2026-10-24 08:00 UTC`, as a wait's node says it."""
    if waiting.next_release is None:
        return "none waiting"
    return f"{waiting.rows:,} waiting · next release {release_text(waiting.next_release)}"


def canvas(
    campaign: Campaign,
    rows: dict[str, int],
    channels: dict,
    compiled: dict[str, str],
    target: str | None,
    project_root: Path,
    waits: dict[str, Waiting] | None = None,
) -> Canvas:
    """What to draw, laid out; `rows` has the row count of each built model, `compiled` its SQL,
    `waits` the populations waiting in each wait."""
    nodes = {activity.id: _node(activity, rows, channels, compiled) for activity in campaign.ordered()}
    for wait, waiting in (waits or {}).items():
        if wait in nodes:
            nodes[wait].waiting = waiting
    try:
        file = campaign.source.path.resolve().relative_to(project_root).as_posix()
    except ValueError:
        file = str(campaign.source.path)
    result = Canvas(campaign.name, campaign.description, file, target, nodes, _edges(campaign, rows))
    place(result)
    return result


def _node(activity, rows: dict[str, int], channels: dict, compiled: dict[str, str]) -> Node:
    spec = {k: v for k, v in activity.spec.items() if k != "description"}
    node = Node(
        activity.id,
        activity.type,
        CATEGORY_OF.get(activity.type, "flow"),
        activity.line,
        activity.description,
        yaml.safe_dump(spec, sort_keys=False, allow_unicode=True).strip(),
        channel=channels.get(activity.id),
    )
    for model in activity.models:
        node.models.append(Model(model.name, model.table.output, rows.get(model.name), compiled.get(model.name, "")))
    return node


def _edges(campaign: Campaign, rows: dict[str, int]) -> list[Edge]:
    """The transitions, then an edge of its own for each output no activity reads."""
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
    return edges


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


def measure(campaign: Campaign, workspace, where) -> tuple[dict[str, int], dict, str, dict[str, Waiting]]:
    """Row counts of the campaign's models built on the target, its channels' messages, the target,
    and the populations waiting in its waits."""
    from ..engines.warehouse import count_rows
    from ..project.target import connect
    from ..run.counts import channel_counts
    from ..run.state import recorded

    with connect(where) as warehouse:
        built = recorded(warehouse, campaign.name)
        present = {m.name: built[m.name].relation for m in campaign.models() if m.name in built}
        rows = count_rows(warehouse, present)
        channels = channel_counts(warehouse, present, campaign)
        return rows, channels, warehouse.target_name, _waiting(campaign, warehouse)


def waiting(campaign: Campaign, where) -> dict[str, Waiting]:
    """The populations waiting in each of the campaign's waits on the target, as its occurrence log has them."""
    if not campaign.waits:
        return {}
    from ..project.target import connect

    with connect(where) as warehouse:
        return _waiting(campaign, warehouse)


def _waiting(campaign: Campaign, warehouse) -> dict[str, Waiting]:
    from ..run.occurrences import OccurrenceLog, waiting_in

    log = OccurrenceLog(warehouse)
    if not campaign.waits or not log.exists():
        return {}
    return waiting_in(campaign, log.records(campaign.name))


def draw(
    campaign: Campaign,
    workspace,
    rows: dict[str, int],
    channels: dict,
    target: str | None,
    waits: dict[str, Waiting] | None = None,
) -> Canvas:
    """The canvas of a campaign of the workspace, with its models' compiled SQL."""
    compiled = compiled_sql(campaign, workspace.dbt)
    return canvas(campaign, rows, channels, compiled, target, workspace.dbt.root, waits)
