"""What a resolved campaign is made of: working tables and the dbt models and seeds that build them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .datamodel import Entity
from .yamlsrc import Path_, Source

MAX_RELATION_NAME = 63  # PostgreSQL truncates longer identifiers


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

    @property
    def model(self) -> str:
        base = f"{self.campaign}__{self.activity}"
        return base if self.output == "out" else f"{base}__{self.output}"

    @property
    def count_key(self) -> str:
        """The name of this table in `count --json`: `<activity>` or `<activity>.<output>`."""
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

    @property
    def name(self) -> str:
        return self.table.model


@dataclass
class SeedPlan:
    """A CSV of the project turned into a dbt seed: `file_row` then the declared columns, as text."""

    name: str
    csv: Path
    columns: dict[str, str]  # declared name -> header in the file


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
    # filled by resolution
    tables: dict[str, WorkingTable] = field(default_factory=dict)
    models: list[ModelPlan] = field(default_factory=list)
    seeds: list[SeedPlan] = field(default_factory=list)
    broken: bool = False  # an input reference is wrong
    resolved: bool = False

    @property
    def line(self) -> int:
        return self.source.key_at(self.path).line


@dataclass
class Campaign:
    name: str
    description: str
    dimension: str
    source: Source
    activities: dict[str, Activity]
    order: list[str]  # topological

    @property
    def tag(self) -> str:
        return f"campaign_{self.name}"

    def ordered(self) -> list[Activity]:
        return [self.activities[a] for a in self.order]

    def tables(self) -> list[WorkingTable]:
        return [t for a in self.ordered() for t in a.tables.values()]

    def models(self) -> list[ModelPlan]:
        return [m for a in self.ordered() for m in a.models]

    def seeds(self) -> list[SeedPlan]:
        return [s for a in self.ordered() for s in a.seeds]
