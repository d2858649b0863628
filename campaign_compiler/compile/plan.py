"""What a resolved campaign is made of: working tables and the dbt models and seeds that build them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..project.datamodel import Entity
from ..yamlsrc import Path_, Source
from .schedule import Schedule

MAX_RELATION_NAME = 63  # PostgreSQL truncates longer identifiers
START = "start"  # the step of a campaign's activities that no wait holds back


@dataclass(frozen=True)
class Dimension:
    """What one row of a working table is: an entity of the data model, or a loaded file's record."""

    name: str
    key: str
    entity: Entity | None = None

    @property
    def label(self) -> str:
        return self.name


@dataclass(frozen=True)
class Jinja:
    """A Jinja expression written as is into a model, such as `ref('summer__target')`."""

    code: str


def ref(model: str) -> Jinja:
    return Jinja(f"ref({model!r})")


@dataclass
class WorkingTable:
    campaign: str
    activity: str
    output: str  # "out" for the single output
    dimension: Dimension
    columns: dict[str, str]  # name -> column type ("" when computed); the key comes first
    model_name: str = ""  # when the model is not named after the output (a channel's recipients)

    @property
    def model(self) -> str:
        if self.model_name:
            return self.model_name
        base = f"{self.campaign}__{self.activity}"
        return base if self.output == "out" else f"{base}__{self.output}"

    @property
    def reference(self) -> str:
        """How a campaign names this table in `input:`, `<activity>` or `<activity>.<output>`; the
        counts of `count` and `count --json` name it so too."""
        return self.activity if self.output == "out" else f"{self.activity}.{self.output}"

    @property
    def key(self) -> str:
        return self.dimension.key

    def ref(self) -> Jinja:
        return ref(self.model)


@dataclass
class InputRef:
    activity: str
    output: str
    path: Path_

    def __str__(self) -> str:
        return self.activity if self.output == "out" else f"{self.activity}.{self.output}"


@dataclass
class ModelPlan:
    """One dbt model: a call of `macro` with `args`, materializing `table`."""

    table: WorkingTable
    macro: str
    args: dict[str, Any]
    materialized: str = "table"  # or "view" for pass-through outputs
    alias: str | None = None
    counted: bool = True  # reported by `count` (a channel's messages are, its other models are not)
    config: dict[str, Any] = field(default_factory=dict)  # more dbt config (an incremental model's)
    keyed: bool = True  # one row per key (tested unique); a wait's populations hold one per occurrence
    subset_of: str | None = None  # a model whose rows (same key) these are a filter of: unique when its are
    step: str = START  # the wait whose release builds it (see Campaign.steps)

    @property
    def name(self) -> str:
        return self.table.model

    @property
    def reference(self) -> str:
        return self.table.reference


@dataclass
class SeedPlan:
    """A CSV of the project turned into a dbt seed: `file_row` then the declared columns, as text."""

    name: str
    csv: Path
    columns: dict[str, str]  # declared name -> header in the file


@dataclass
class MessageSpec:
    """What the send step needs to know of a channel activity's messages."""

    channel: str
    model: str  # one row per message
    excluded_model: str
    key: str  # the recipient key column
    per_key: str | None  # the linked row's key column, in a multi-level send
    per_alias: str | None
    template: Any = None  # templates.Template (email, sms, push)
    # (name the template or the extract uses, model column): `first_name`, `booking.checkin_date`
    columns: list[tuple[str, str]] = field(default_factory=list)
    category: str = "marketing"


@dataclass
class Activity:
    id: str
    type: str
    spec: dict[str, Any]
    path: Path_
    source: Source
    description: str = ""
    inputs: list[InputRef] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    # activities it comes after without reading their tables (a reaction's channel activity)
    after: list[InputRef] = field(default_factory=list)
    # filled by resolution
    tables: dict[str, WorkingTable] = field(default_factory=dict)
    models: list[ModelPlan] = field(default_factory=list)
    seeds: list[SeedPlan] = field(default_factory=list)
    broken: bool = False  # a required key is missing or an input reference is wrong: never resolved
    message: MessageSpec | None = None  # channel activities

    @property
    def line(self) -> int:
        return self.source.key_at(self.path).line


@dataclass(frozen=True)
class Release:
    """When a wait releases the population that entered it at `entered` (its step's time): `offset`
    later (a duration), or at `floor` and not before it entered (an until)."""

    offset: timedelta = timedelta(0)
    floor: datetime | None = None

    def at(self, entered: datetime) -> datetime:
        moment = entered + self.offset
        return max(moment, self.floor) if self.floor is not None else moment


@dataclass
class Campaign:
    name: str
    description: str
    dimension: str
    source: Source
    activities: dict[str, Activity]
    order: list[str]  # topological
    owner: dict[str, str] = field(default_factory=dict)  # name, email: of the dbt exposures
    audiences: dict[str, Any] = field(default_factory=dict)  # saved audiences it reads: campaign.AudienceSource
    schedule: Schedule | None = None  # None: the campaign runs once, when asked
    # The step of each activity: START, or the wait whose release runs it; and each wait's release.
    steps: dict[str, str] = field(default_factory=dict)
    releases: dict[str, Release] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"campaign_{self.name}"

    def ordered(self) -> list[Activity]:
        return [self.activities[a] for a in self.order]

    def tables(self) -> list[WorkingTable]:
        return [t for a in self.ordered() for t in a.tables.values()]

    def models(self) -> list[ModelPlan]:
        return [m for a in self.ordered() for m in a.models]

    def counted(self) -> list[ModelPlan]:
        """The models `count` reports, in order: every working table, and each channel's messages."""
        return [m for m in self.models() if m.counted]

    def channel_activities(self, step: str | None = None) -> list[Activity]:
        """The channel activities (of `step` only, when given)."""
        return [a for a in self.ordered() if a.message is not None and step in (None, self.step_of(a.id))]

    def step_of(self, activity: str) -> str:
        return self.steps.get(activity, START)

    def step_models(self, step: str) -> list[ModelPlan]:
        return [m for m in self.models() if m.step == step]

    @property
    def waits(self) -> list[str]:
        """The wait activities, in order: the steps after START."""
        return list(self.releases)

    def seeds(self) -> list[SeedPlan]:
        return [s for a in self.ordered() for s in a.seeds]
