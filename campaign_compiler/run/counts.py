"""`campaign count`: compile a campaign, build it with dbt, count every working table exactly."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..compile.plan import Campaign
from ..engines.warehouse import Warehouse, count_rows
from ..project.target import DbtTarget, connect
from ..workspace import Workspace
from .build import build_campaign
from .state import CampaignBuild


@dataclass
class CountResult:
    campaign: Campaign
    target: str
    adapter: str
    rows: dict[str, int]  # model name -> rows
    channels: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        """What `count --json` prints, as the README documents it."""
        return {
            "campaign": self.campaign.name,
            "target": self.target,
            "counts": {m.reference: self.rows[m.name] for m in self.campaign.counted()},
            "channels": self.channels,
        }


def build_and_count(campaign: Campaign, workspace: Workspace, where: DbtTarget, console,
                    occurrence: str = "once") -> CountResult:
    finished = 0

    with console.status(f"Building {campaign.name} with dbt…") as status:
        def progress(node: str, state: str) -> None:
            nonlocal finished
            finished += 1
            status.update(f"Building {campaign.name} with dbt… {finished} nodes done (last: {node}, {state})")

        build_campaign(campaign, workspace, where, progress, occurrence, notify=console.print)
    with connect(where) as warehouse:
        relation = CampaignBuild(campaign, warehouse, where.target).require([m.name for m in campaign.models()])
        rows = count_rows(warehouse, relation)
        channels = channel_counts(warehouse, relation, campaign)
        return CountResult(campaign, warehouse.target_name, warehouse.kind, rows, channels)


EXCLUSION_ORDER = ("no_address", "no_consent", "suppressed", "frequency_cap", "control_group", "duplicate_address")


def channel_counts(warehouse: Warehouse, relation: dict[str, str], campaign: Campaign) -> dict:
    """Per channel activity whose models are in `relation`: messages, distinct recipients, and
    excluded candidates by reason."""
    result = {}
    for activity in campaign.channel_activities():
        spec = activity.message
        if spec.model not in relation or spec.excluded_model not in relation:
            continue
        ((messages, recipients),) = warehouse.query(
            f'select count(*), count(distinct "{spec.key}") from {relation[spec.model]}')
        reasons = dict(warehouse.query(
            f"select exclusion_reason, count(*) from {relation[spec.excluded_model]} group by 1"))
        result[activity.id] = {
            "channel": spec.channel, "messages": int(messages), "recipients": int(recipients),
            "excluded": {reason: int(reasons[reason]) for reason in EXCLUSION_ORDER if reason in reasons},
        }
    return result


def render_table(result: CountResult, console) -> None:
    from rich.table import Table

    table = Table(title=f"Campaign {result.campaign.name}", title_justify="left")
    for header, justify in (("working table", "left"), ("activity", "left"), ("dimension", "left"),
                            ("model", "left"), ("rows", "right")):
        table.add_column(header, justify=justify)
    for model in result.campaign.counted():
        activity = result.campaign.activities[model.table.activity]
        table.add_row(model.reference, activity.type, model.table.dimension.label, model.name,
                      f"{result.rows[model.name]:,}")
    console.print(table)


def render_channels(result: CountResult, console) -> None:
    """Messages and exclusions of each channel activity."""
    from rich.table import Table

    if not result.channels:
        return
    table = Table(title="Messages", title_justify="left")
    for header in ("activity", "channel", "messages", "recipients", *EXCLUSION_ORDER):
        table.add_column(header.replace("_", " "), justify="left" if header in ("activity", "channel") else "right")
    for activity, counts in result.channels.items():
        table.add_row(activity, counts["channel"], f"{counts['messages']:,}", f"{counts['recipients']:,}",
                      *(f"{counts['excluded'].get(reason, 0):,}" for reason in EXCLUSION_ORDER))
    console.print(table)
