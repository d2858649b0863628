"""What a campaign's build on a target is, read from the warehouse, never from files under target/.

Every model and seed `campaign compile` writes records itself in the target schema's
`campaign_builds` when dbt builds it (the package's `record_build` post-hook, in the node's own
transaction): its relation, the digest of its definition, when it was built. So a plain
`dbt build`, a scheduler's or `campaign count`'s, leaves the same record, and `campaign` finds the
tables to count, draw and send there. `send` refuses a build that is not the campaign as it
stands now:

* a node the messages are computed from is missing (never built on this target, or dropped);
* its digest differs from the campaign's (an activity, a condition, the data model or the package
  changed since it was built);
* a table was built before one of its inputs was rebuilt (a `dbt build --select` of part of the
  campaign): its rows are not computed from the tables the campaign shows;
* it was built for another occurrence than the one being sent (its incremental queries and waits
  depend on the occurrence).

A campaign with waits is built a step at a time (compile/steps.py): a step's tables are checked
against each other, not against those of the step before, which later occurrences rebuild meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..compile.emit import campaign_digests, model_refs
from ..compile.plan import START, Campaign
from ..engines.warehouse import Warehouse
from ..errors import RuntimeFailure
from ..timing import ONCE

BUILDS_TABLE = "campaign_builds"


@dataclass(frozen=True)
class BuiltNode:
    relation: str
    digest: str
    built_at: datetime
    occurrence: str | None = None


def recorded(warehouse: Warehouse, campaign: str) -> dict[str, BuiltNode]:
    """The campaign's models and seeds as last built on the warehouse's target, by name: those whose
    relation still exists."""
    if not warehouse.table_exists(BUILDS_TABLE):
        return {}
    if warehouse.engine.appends_only:  # a build appends its row: a node's latest is its build
        rows = warehouse.query(
            "select b.node, b.relation, b.digest, b.built_at, b.occurrence, b.relation_schema, b.relation_name "
            f"from {warehouse.latest(BUILDS_TABLE, ('node',), 'campaign = %s', order='built_at')} as b",
            (campaign,),
        )
        return {
            node: BuiltNode(relation, digest, built_at, occurrence)
            for node, relation, digest, built_at, occurrence, schema, name in rows
            if warehouse.engine.table_exists(warehouse, name, schema)
        }
    rows = warehouse.query(
        f"select b.node, b.relation, b.digest, b.built_at, b.occurrence from {warehouse.table(BUILDS_TABLE)} as b "
        "where b.campaign = %s and exists (select 1 from information_schema.tables as t "
        "where t.table_schema = b.relation_schema and t.table_name = b.relation_name)",
        (campaign,),
    )
    return {node: BuiltNode(*rest) for node, *rest in rows}


class CampaignBuild:
    """A campaign as the campaign file says it is, and as it was built on one target."""

    def __init__(self, campaign: Campaign, warehouse: Warehouse, target_option: str | None = None):
        """`target_option`: the --target the user gave, repeated in the commands the errors suggest."""
        self.campaign = campaign
        self.target = warehouse.target_name
        self.nodes = recorded(warehouse, campaign.name)
        option = f" --target {target_option}" if target_option else ""
        self._hint = f"`campaign count {campaign.name}{option}` or `dbt build --select tag:{campaign.tag}{option}`"
        self._models = {model.name: model for model in campaign.models()}
        self._tables = {name for name, model in self._models.items() if model.materialized != "view"} | {
            seed.name for seed in campaign.seeds()
        }
        own = set(self._models) | {seed.name for seed in campaign.seeds()}
        step = {name: model.step for name, model in self._models.items()}
        self._inputs = {
            name: [ref for ref in model_refs(model) if ref in own and step.get(ref, START) == model.step]
            for name, model in self._models.items()
        }

    def require(self, names: list[str], occurrence: str | None = None) -> dict[str, str]:
        """The relations of `names`, once every node they are computed from is built on the target,
        from the campaign as it stands, each table after its inputs (and for `occurrence`, when
        given); else a RuntimeFailure."""
        problem = self.problem(names) or self.other_occurrence(names, occurrence)
        if problem:
            raise RuntimeFailure(f"{self.campaign.name} {problem}; build it with {self._hint}")
        return {name: self.nodes[name].relation for name in names}

    def problem(self, names: list[str]) -> str | None:
        """Why the build of `names` on the target is not the campaign as it stands (None: it is),
        said of the campaign: "is not built on target ..."."""
        needed = self._upstream(names)
        campaign, target = self.campaign, self.target
        missing = [name for name in needed if name not in self.nodes]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            return f'is not built on target "{target}": {missing[0]} is missing{more}'
        expected = campaign_digests(campaign)
        changed = [name for name in needed if self.nodes[name].digest != expected[name]]
        if changed:
            activities = dict.fromkeys(self._activity_of(name) for name in changed)
            what = ", ".join(f"{a} (line {campaign.activities[a].line})" for a in activities)
            return (
                f'changed since it was built on target "{target}": {campaign.source.display}, '
                f"activit{'ies' if len(activities) > 1 else 'y'} {what}"
            )
        for name in needed:
            if name not in self._tables:
                continue
            for table in sorted(self._table_inputs(name)):
                if self.nodes[name].built_at < self.nodes[table].built_at:
                    return (
                        f'was built on target "{target}" out of order: {name} was built before its input '
                        f"{table} was rebuilt"
                    )
        return None

    def other_occurrence(self, names: list[str], occurrence: str | None) -> str | None:
        """Why `names` were not built for `occurrence` (None: they were, or it does not matter)."""
        if occurrence is None:
            return None
        for name in names:
            built = self.nodes[name].occurrence or ONCE
            if built != occurrence:
                return f'was built on target "{self.target}" for occurrence {built}, not {occurrence}'
        return None

    def occurrence(self, names: list[str]) -> str:
        """The occurrence `names` were built for (the first one's)."""
        return next((self.nodes[n].occurrence or ONCE for n in names if n in self.nodes), ONCE)

    def _upstream(self, names: list[str]) -> list[str]:
        """`names` and the campaign's nodes they are computed from, inputs first."""
        ordered: dict[str, None] = {}

        def visit(name: str) -> None:
            if name in ordered:
                return
            for parent in self._inputs.get(name, []):
                visit(parent)
            ordered[name] = None

        for name in names:
            visit(name)
        return list(ordered)

    def _table_inputs(self, name: str) -> set[str]:
        """The tables a node reads, directly or through views (a view is read when its reader is built)."""
        found: set[str] = set()
        for parent in self._inputs.get(name, []):
            found |= {parent} if parent in self._tables else self._table_inputs(parent)
        return found

    def _activity_of(self, node: str) -> str:
        if node in self._models:
            return self._models[node].table.activity
        return next(a.id for a in self.campaign.ordered() if any(seed.name == node for seed in a.seeds))
