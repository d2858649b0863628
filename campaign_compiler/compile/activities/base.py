"""What every activity type shares: the `ActivityType` it subclasses, the `Context` it resolves
in, and the helpers that build working tables and their conditions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from ...errors import Diagnostics, did_you_mean
from ...project.datamodel import DataModel, Entity
from ...project.dbt import PACKAGE_NAME, DbtProject
from ...reader import Reader, describe, quoted
from ...yamlsrc import Path_
from ..conditions import DIMENSION_ALIAS, Query, Scope
from ..plan import MAX_RELATION_NAME, Activity, Dimension, InputRef, Jinja, Release, WorkingTable


@dataclass
class Context:
    """What resolving one campaign's activities needs."""

    campaign: str
    default_dimension: str
    model: DataModel
    dbt: DbtProject
    diagnostics: Diagnostics
    reader: Reader
    audiences: Callable[[str], Any]  # name -> AudienceSource, or an error message
    steps: dict[str, str] = field(default_factory=dict)  # of each activity (Campaign.steps)
    releases: dict[str, Release] = field(default_factory=dict)  # of each wait
    # every activity of the campaign, by id: those resolved before this one hold their tables
    activities: dict[str, Activity] = field(default_factory=dict)

    def query(self) -> Query:
        return Query(self.model, self.diagnostics)

    def error(self, path: Path_, message: str, *, at_key: bool = False) -> None:
        self.reader.error(path, message, at_key=at_key)

    def entity(self, activity: Activity, key: str = "dimension") -> Entity | None:
        name = activity.spec.get(key, self.default_dimension)
        entity = self.model.entities.get(name) if isinstance(name, str) else None
        if entity is None:
            self.error(
                activity.path + (key,),
                f"unknown dimension {quoted(name)}: not an entity of campaign_project.yml"
                f"{did_you_mean(str(name), self.model.entities)}",
            )
        return entity

    def output(self, activity: Activity, output: str, dimension: Dimension, columns: dict[str, str]) -> WorkingTable:
        table = WorkingTable(self.campaign, activity.id, output, dimension, columns)
        self.check_name(activity, table.model)
        activity.tables[output] = table
        return table

    def check_name(self, activity: Activity, model: str) -> None:
        if len(model) > MAX_RELATION_NAME:
            self.error(
                activity.path,
                f'model name "{model}" is {len(model)} characters; warehouses '
                f"allow {MAX_RELATION_NAME}: shorten the campaign, activity or output name",
                at_key=True,
            )

    def node_exists(self, path: Path_, name: Any, what: str) -> str | None:
        if not isinstance(name, str) or not name:
            self.error(path, f"{what} must be the name of a dbt model, not {describe(name)}")
            return None
        if name not in self.dbt.node_names:
            self.error(
                path, f'no dbt model or seed named "{name}" in the project{did_you_mean(name, self.dbt.node_names)}'
            )
            return None
        return name


def package_source(table: str) -> Jinja:
    """A table campaigns share (the delivery log, the occurrences), as the package's dbt source."""
    return Jinja(f"source({PACKAGE_NAME!r}, {table!r})")


def entity_dimension(entity: Entity) -> Dimension:
    return Dimension(entity.name, entity.key, entity)


def working_scope(table: WorkingTable) -> Scope:
    return Scope.of(table.dimension.entity, DIMENSION_ALIAS, table.columns)


def dimension_arg(query: Query, table: WorkingTable) -> Jinja | None:
    """The entity relation, passed only when the activity's SQL reads entity columns."""
    if query.uses_entity and table.dimension.entity is not None:
        return Jinja(table.dimension.entity.relation.jinja())
    return None


def holds(condition: exp.Expression | None) -> exp.Expression:
    """`coalesce(condition, false)`: TRUE only where the condition is TRUE (NULL is not).

    >>> from sqlglot import parse_one
    >>> holds(parse_one("country = 'FR'")).sql()  # a customer without a country is not in France
    "COALESCE((country = 'FR'), FALSE)"
    """
    if condition is None:
        return exp.true()
    return exp.Coalesce(this=exp.Paren(this=condition), expressions=[exp.false()])


def first_holding(conditions: list[exp.Expression | None], index: int | None) -> exp.Expression:
    """Rows whose first TRUE condition is `conditions[index]` (or none is TRUE, for index None).

    A split's subsets without `overlap`, a test's outputs: each row goes to the first that takes it.

    >>> from sqlglot import parse_one
    >>> conditions = [parse_one("vip"), parse_one("country = 'FR'"), None]
    >>> first_holding(conditions, 1).sql()
    "COALESCE((country = 'FR'), FALSE) AND NOT COALESCE((vip), FALSE)"
    >>> first_holding(conditions, 2).sql()  # no condition: the rows the others leave
    "NOT COALESCE((vip), FALSE) AND NOT COALESCE((country = 'FR'), FALSE)"
    >>> first_holding(conditions, None).sql()  # rows none takes: none, the last takes every row
    'FALSE'
    """
    earlier = conditions if index is None else conditions[:index]
    if any(c is None for c in earlier):
        return exp.false()  # an earlier output without condition takes every row
    parts = [] if index is None or conditions[index] is None else [holds(conditions[index])]
    parts += [exp.Not(this=holds(c)) for c in earlier]
    return exp.and_(*parts) if parts else exp.true()


class ActivityType:
    name = ""
    category = "targeting"  # targeting, flow or channel: what the canvas draws it as
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    inputs_key: str | None = "input"  # "input", "inputs", or None for activities that start a flow
    inputs_required = True

    @property
    def keys(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(required, optional) keys of the activity mapping, its input key included."""
        if self.inputs_key is None:
            return self.required, self.optional
        if self.inputs_required:
            return (self.inputs_key, *self.required), self.optional
        return self.required, (self.inputs_key, *self.optional)

    def output_names(self, activity: Activity, r: Reader) -> list[str]:
        return ["out"]

    def after(self, activity: Activity) -> list[InputRef]:
        """Activities this one must be resolved after without reading their tables (a reaction reads
        what its channel activity sent, from the delivery log): they are not dbt refs."""
        return []

    def resolve(self, activity: Activity, inputs: list[WorkingTable], ctx: Context) -> None:
        raise NotImplementedError

    @staticmethod
    def named_outputs(activity: Activity, r: Reader, names: list[tuple[Path_, Any]], *, with_out: bool) -> list[str]:
        """Check output names (valid, distinct, not `out`) and return them, `out` first if any."""
        outputs = ["out"] if with_out else []
        for path, name in names:
            if r.name_part(path, name, "output name") is None:
                continue
            if name == "out" or name in outputs:
                r.error(
                    path,
                    f'output name "{name}" is already used by this activity'
                    if name != "out"
                    else '"out" is the name of the main output; choose another name',
                )
                continue
            outputs.append(name)
        return outputs


def same_dimension(activity: Activity, inputs: list[WorkingTable], ctx: Context) -> bool:
    ok = True
    for ref_, table in zip(activity.inputs[1:], inputs[1:]):
        if table.dimension.name != inputs[0].dimension.name:
            ctx.error(
                ref_.path,
                f'"{ref_}" is made of {table.dimension.name} but "{activity.inputs[0]}" of '
                f"{inputs[0].dimension.name}: inputs must share a dimension",
            )
            ok = False
    return ok
