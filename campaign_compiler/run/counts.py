"""`campaign count`: compile a campaign, build it with dbt, count every working table exactly."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from ..compile.contract import EXCLUSION_ORDER
from ..compile.plan import START, Campaign
from ..engines.warehouse import KeyViolation, Warehouse, count_rows
from ..errors import RuntimeFailure
from ..project.target import DbtTarget, connect
from ..timing import ONCE
from ..workspace import Workspace
from .build import build_campaign
from .dbt import Progress
from .state import CampaignBuild


@dataclass
class CountResult:
    campaign: Campaign
    target: str
    adapter: str
    rows: dict[str, int]  # model name -> rows, of the step built
    channels: dict = field(default_factory=dict)
    occurrence: str = ONCE
    step: str = START

    def as_json(self) -> dict:
        """What `count --json` prints, as the README documents it."""
        return {
            "campaign": self.campaign.name,
            "target": self.target,
            "counts": {m.reference: self.rows[m.name] for m in self.campaign.counted() if m.name in self.rows},
            "channels": self.channels,
        }


def build_and_count(
    campaign: Campaign,
    workspace: Workspace,
    where: DbtTarget,
    building: Callable[[str], AbstractContextManager[Progress]] | None = None,
    occurrence: str = ONCE,
    notify: Callable[[str], None] | None = None,
    now: datetime | None = None,
    step: str = START,
    simulate: bool = False,
) -> CountResult:
    """Build `step` for `occurrence` at `now` (run.build), then count it.

    The build runs in the context `building(campaign name)`, which gives the callable told of each
    dbt node done; `notify(text)` is told of the other campaigns built along."""
    with building(campaign.name) if building is not None else nullcontext() as progress:
        build_campaign(
            campaign, workspace, where, progress, occurrence, notify=notify, now=now, step=step, simulate=simulate
        )
    return count_built(campaign, where, step, occurrence)


def count_built(campaign: Campaign, where: DbtTarget, step: str = START, occurrence: str | None = None) -> CountResult:
    """The exact row count of every model of a step of the campaign (the whole campaign when it has no
    wait) as built on the target (for `occurrence`, when given), and its channels'."""
    with connect(where) as warehouse:
        build = CampaignBuild(campaign, warehouse, where.target)
        models = campaign.step_models(step)
        names = [m.name for m in models]
        relation = build.require(names, occurrence)
        rows = checked_counts(warehouse, relation, campaign, models)
        channels = channel_counts(warehouse, relation, campaign)
        return CountResult(
            campaign, warehouse.target_name, warehouse.kind, rows, channels, build.occurrence(names), step
        )


def checked_counts(warehouse: Warehouse, relation: dict[str, str], campaign: Campaign, models: list) -> dict[str, int]:
    """The row counts of `relation`, whose keyed models' keys are checked unique and not NULL in the
    same query (the build runs no test: see count_rows). A broken key stops the command before
    anything is sent, naming the activity of the first model that breaks it, as a failed test did.

    The SQL guarantees the keys when every entity's key is unique and not NULL in its source:
    build_audience keeps distinct keys, and each later model keeps at most one row per
    input row; a source whose declared key repeats multiplies the rows joined to it, which this
    check reports. A channel's messages, exclusions and recipients filter its candidates, or its
    input, built in the same step: those are checked, not the filters (the messages' key is an md5,
    whose distinct count is the costliest of the checks on PostgreSQL)."""
    keys = checked_keys(models)
    try:
        return count_rows(warehouse, relation, keys)
    except KeyViolation as violation:
        name, (repeated, missing) = next(iter(violation.broken.items()))
        model = next(m for m in models if m.name == name)
        activity = campaign.activities[model.table.activity]
        what = f"{repeated} repeated values" if repeated else f"{missing} NULL values"
        more = f" (and {len(violation.broken) - 1} more models)" if len(violation.broken) > 1 else ""
        raise RuntimeFailure(
            f"model {name} ({campaign.source.display}:{activity.line}, activity {activity.id}): its key "
            f"{violation.keys[name]} has {what}, so its rows are not one per key; are the keys of the "
            f"entities it reads unique and never NULL?{more}"
        ) from None


def checked_keys(models: list) -> dict[str, str]:
    """The models whose key the count checks (see checked_counts), with their key column."""
    names = {m.name for m in models}
    return {
        m.name: m.table.key
        for m in models
        if m.keyed and m.table.key in m.table.columns and m.subset_of not in names  # else checked there
    }


def channel_counts(warehouse: Warehouse, relation: dict[str, str], campaign: Campaign) -> dict:
    """Per channel activity whose models are in `relation`: messages, distinct recipients, and
    excluded candidates by reason."""
    result = {}
    for activity in campaign.channel_activities():
        spec = activity.message
        if spec.model not in relation or spec.excluded_model not in relation:
            continue
        ((messages, recipients),) = warehouse.query(
            f"select count(*), count(distinct {warehouse.quote(spec.key)}) from {relation[spec.model]}"
        )
        reasons = dict(
            warehouse.query(f"select exclusion_reason, count(*) from {relation[spec.excluded_model]} group by 1")
        )
        result[activity.id] = {
            "channel": spec.channel,
            "messages": int(messages),
            "recipients": int(recipients),
            "excluded": {reason: int(reasons[reason]) for reason in EXCLUSION_ORDER if reason in reasons},
        }
    return result
