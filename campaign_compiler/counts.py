"""`campaign count`: compile a campaign, build it with dbt, count every working table exactly."""

from __future__ import annotations

from dataclasses import dataclass, field

from .build import build_campaign
from .dbt_runner import DbtTarget, relations
from .plan import Campaign
from .warehouse import Warehouse, count_rows
from .workspace import Workspace


@dataclass
class CountResult:
    campaign: Campaign
    target: str
    adapter: str
    rows: dict[str, int]  # model name -> rows
    channels: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        """The contract of `count --json` (SPEC §8)."""
        return {
            "campaign": self.campaign.name,
            "target": self.target,
            "counts": {t.count_key: self.rows[t.model] for t in self.campaign.tables()},
            "channels": self.channels,
        }


def build_and_count(campaign: Campaign, workspace: Workspace, where: DbtTarget, console) -> CountResult:
    models = campaign.models()
    finished = 0

    with console.status(f"Building {campaign.name} with dbt…") as status:
        def progress(node: str, state: str) -> None:
            nonlocal finished
            finished += 1
            status.update(f"Building {campaign.name} with dbt… {finished} nodes done (last: {node}, {state})")

        build_campaign(campaign, workspace, where, progress)
    with Warehouse.connect(where) as warehouse:
        rows = count_rows(warehouse, relations(workspace.dbt, [m.name for m in models]))
        return CountResult(campaign, warehouse.target_name, warehouse.kind, rows)


def render_table(result: CountResult, console) -> None:
    from rich.table import Table

    table = Table(title=f"Campaign {result.campaign.name}", title_justify="left")
    for header, justify in (("working table", "left"), ("activity", "left"), ("dimension", "left"),
                            ("model", "left"), ("rows", "right")):
        table.add_column(header, justify=justify)
    for activity in result.campaign.ordered():
        for working in activity.tables.values():
            table.add_row(working.count_key, activity.type, working.dimension.label, working.model,
                          f"{result.rows[working.model]:,}")
    console.print(table)
