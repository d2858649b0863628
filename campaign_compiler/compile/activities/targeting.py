"""Activities that shape an audience: `combine`, `split`, `deduplication`, `enrichment`,
`change_dimension` and `save_audience`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlglot import exp

from ...errors import did_you_mean
from ...project.datamodel import DataModel, Link
from ...reader import MAX_SQL_INTEGER, Reader, quoted
from ...yamlsrc import Path_
from ..conditions import DIMENSION_ALIAS, Query, Scope
from ..plan import Jinja, ModelPlan, WorkingTable
from .base import (
    ActivityType,
    Context,
    dimension_arg,
    entity_dimension,
    first_holding,
    holds,
    same_dimension,
    working_scope,
)

# A split's percent is applied exactly, as rows * numerator // (100 * denominator) in 64-bit integers:
# six decimals keep that product in range up to tens of billions of rows.
MAX_PERCENT_DECIMALS = 6


class Combine(ActivityType):
    name = "combine"
    required = ("mode",)
    optional = ("complement",)
    inputs_key = "inputs"

    def output_names(self, activity, r):
        names = (
            [(activity.path + ("complement",), activity.spec["complement"])] if "complement" in activity.spec else []
        )
        return self.named_outputs(activity, r, names, with_out=True)

    def resolve(self, activity, inputs, ctx):
        mode = ctx.reader.choice(
            activity.path + ("mode",), activity.spec.get("mode"), "mode", ("union", "intersection", "exclusion")
        )
        shared = same_dimension(activity, inputs, ctx)
        if mode is None or not shared:
            return  # which columns the result has depends on both
        first = inputs[0]
        if mode == "union":
            columns = {c: t for c, t in first.columns.items() if all(c in i.columns for i in inputs)}
        else:
            columns = dict(first.columns)
        out = ctx.output(activity, "out", first.dimension, columns)
        if mode == "union" and "complement" in activity.spec:
            ctx.error(
                activity.path + ("complement",), "a union has no complement (every input row is in it)", at_key=True
            )
            return
        args = dict(mode=mode, inputs=[i.ref() for i in inputs], key=first.key, columns=list(columns))
        activity.models.append(ModelPlan(out, "combine", args))
        if len(activity.outputs) > 1:
            complement = ctx.output(activity, activity.outputs[1], first.dimension, dict(first.columns))
            activity.models.append(
                ModelPlan(
                    complement,
                    "combine",
                    dict(
                        mode=mode,
                        inputs=[first.ref()],
                        key=first.key,
                        columns=list(first.columns),
                        output="complement",
                        result=out.ref(),
                    ),
                )
            )


class Split(ActivityType):
    name = "split"
    required = ("subsets",)
    optional = ("complement", "overlap")

    def output_names(self, activity, r):
        subsets = activity.spec.get("subsets")
        names = []
        if isinstance(subsets, list):
            for i, subset in enumerate(subsets):
                if isinstance(subset, dict) and "name" in subset:
                    names.append((activity.path + ("subsets", i, "name"), subset["name"]))
        if "complement" in activity.spec:
            names.append((activity.path + ("complement",), activity.spec["complement"]))
        return self.named_outputs(activity, r, names, with_out=False)

    def resolve(self, activity, inputs, ctx):
        spec, path, r = activity.spec, activity.path, ctx.reader
        errors = len(ctx.diagnostics)
        table = inputs[0]
        # every output has the input's columns, whatever else is wrong
        outputs = {name: ctx.output(activity, name, table.dimension, dict(table.columns)) for name in activity.outputs}
        subsets = r.list_of(path + ("subsets",), spec.get("subsets"), "subsets", min_items=1)
        overlap = r.boolean(path + ("overlap",), spec.get("overlap", False), "overlap")
        if subsets is None or overlap is None:
            return
        parsed = self._subsets(path, subsets, r)
        if len(parsed) != len(subsets) or len(activity.outputs) != len(parsed) + ("complement" in spec):
            return  # an output name was invalid and reported
        scope = working_scope(table)
        models = [
            self._subset_model(activity, ctx, table, outputs, parsed, index, overlap, scope)
            for index in range(len(parsed))
        ]
        if len(ctx.diagnostics) > errors:
            return
        activity.models += models
        if "complement" in spec:
            out = outputs[spec["complement"]]
            activity.models.append(
                ModelPlan(
                    out,
                    "split",
                    dict(
                        input=table.ref(),
                        key=table.key,
                        columns=list(table.columns),
                        output="complement",
                        subsets=[m.table.ref() for m in models],
                    ),
                )
            )

    def _subsets(self, path: Path_, subsets: list, r: Reader) -> list[tuple[Path_, dict, dict | None]]:
        """Each valid subset: its path, its keys and its limit (checked); those with errors are left out."""
        parsed = []
        for i, subset in enumerate(subsets):
            spath = path + ("subsets", i)
            subset = r.mapping(spath, subset, "a subset", required=("name",), optional=("where", "limit"))
            limit = self._limit(spath + ("limit",), subset["limit"], r) if subset and "limit" in subset else None
            if subset is not None and ("limit" not in subset or limit is not None):
                parsed.append((spath, subset, limit))
        return parsed

    @staticmethod
    def _subset_where(activity, query: Query, parsed: list, index: int, overlap: bool, scope: Scope):
        """The condition of subset `index`: its own, and unless subsets overlap, none of those before it.

        A subset excludes the rows of those before it: their conditions are compiled again, into its
        own query (an error in one is reported once)."""
        considered = [index] if overlap else list(range(index + 1))
        conditions: list[exp.Expression | None] = [None] * (index + 1)
        for j in considered:
            jpath, jsubset, _ = parsed[j]
            if "where" in jsubset:
                conditions[j] = query.condition(activity.source, jpath + ("where",), jsubset["where"], scope)
        return holds(conditions[index]) if overlap else first_holding(conditions, index)

    def _subset_model(
        self,
        activity,
        ctx: Context,
        table: WorkingTable,
        outputs: dict[str, WorkingTable],
        parsed: list,
        index: int,
        overlap: bool,
        scope: Scope,
    ) -> ModelPlan:
        """The model of subset `index`: the rows of `table` it selects, in its output."""
        spath, subset, limit = parsed[index]
        query = ctx.query()
        where = self._subset_where(activity, query, parsed, index, overlap, scope)
        order, seed = [], None
        if limit is not None and "order_by" in limit:
            order = query.order_by(activity.source, spath + ("limit", "order_by"), limit["order_by"], scope)
        if limit is not None and limit.get("random"):
            seed = limit.get("seed", 0)
        size = (
            None
            if limit is None
            else ({"count": limit["count"]} if "count" in limit else {"percent": list(limit["percent"])})
        )
        return ModelPlan(
            outputs[subset["name"]],
            "split",
            dict(
                input=table.ref(),
                key=table.key,
                columns=list(table.columns),
                where=where,
                dimension=dimension_arg(query, table),
                links=query.links,
                limit=size,
                order=order,
                random_seed=seed,
            ),
        )

    @staticmethod
    def _limit(path: Path_, value: Any, r: Reader) -> dict | None:
        limit = r.mapping(path, value, "limit", optional=("count", "percent", "order_by", "random", "seed"))
        if limit is None:
            return None
        result: dict[str, Any] = {}
        if ("count" in limit) == ("percent" in limit):
            r.error(path, 'limit needs exactly one of "count" (rows) or "percent" (of the subset\'s rows)')
            return None
        if "count" in limit:
            count = r.integer(path + ("count",), limit["count"], "count", minimum=0, maximum=MAX_SQL_INTEGER)
            if count is None:
                return None
            result["count"] = count
        else:
            percent = limit["percent"]
            if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
                r.error(
                    path + ("percent",),
                    f"percent must be a number from 0 to 100, not {percent if isinstance(percent, (int, float)) else quoted(percent)}",
                )
                return None
            exact = Decimal(str(percent))
            if exact.as_tuple().exponent < -MAX_PERCENT_DECIMALS:
                r.error(path + ("percent",), f"percent may have at most {MAX_PERCENT_DECIMALS} decimals, not {percent}")
                return None
            result["percent"] = exact.as_integer_ratio()
        if "order_by" in limit and limit.get("random"):
            r.error(path, 'limit takes "order_by" or "random: true", not both')
            return None
        if "random" in limit:
            if r.boolean(path + ("random",), limit["random"], "random") is None:
                return None
            result["random"] = limit["random"]
        if "seed" in limit:
            if not limit.get("random"):
                r.error(path + ("seed",), 'seed only applies with "random: true"', at_key=True)
                return None
            seed = r.integer(path + ("seed",), limit["seed"], "seed", minimum=-MAX_SQL_INTEGER, maximum=MAX_SQL_INTEGER)
            if seed is None:
                return None
            result["seed"] = seed
        if "order_by" in limit:
            result["order_by"] = limit["order_by"]
        return result


class Deduplication(ActivityType):
    name = "deduplication"
    required = ("keys",)
    optional = ("keep", "count", "duplicates")

    def output_names(self, activity, r):
        names = (
            [(activity.path + ("duplicates",), activity.spec["duplicates"])] if "duplicates" in activity.spec else []
        )
        return self.named_outputs(activity, r, names, with_out=True)

    def resolve(self, activity, inputs, ctx):
        spec, path, r = activity.spec, activity.path, ctx.reader
        errors = len(ctx.diagnostics)
        table = inputs[0]
        # both outputs have the input's columns, whatever else is wrong
        outputs = [ctx.output(activity, name, table.dimension, dict(table.columns)) for name in activity.outputs]
        scope = working_scope(table)
        query = ctx.query()
        keys = r.list_of(path + ("keys",), spec.get("keys"), "keys", min_items=1) or []
        count = r.integer(path + ("count",), spec.get("count", 1), "count", minimum=1, maximum=MAX_SQL_INTEGER)
        partition = [
            query.expression(activity.source, path + ("keys", i), key, scope, what="a deduplication key")
            for i, key in enumerate(keys)
        ]
        order: list[exp.Expression] | None = []
        if "keep" in spec:
            keep = r.mapping(path + ("keep",), spec["keep"], "keep", required=("order_by",))
            if keep is not None:
                order = query.order_by(activity.source, path + ("keep", "order_by"), keep["order_by"], scope)
        if len(ctx.diagnostics) > errors:
            return
        out = outputs[0]
        args = dict(
            input=table.ref(),
            key=table.key,
            columns=list(table.columns),
            partition=partition,
            order=order,
            count=count,
            dimension=dimension_arg(query, table),
            links=query.links,
        )
        activity.models.append(ModelPlan(out, "deduplication", args))
        if len(activity.outputs) > 1:
            activity.models.append(
                ModelPlan(
                    outputs[1],
                    "deduplication",
                    {**args, "dimension": None, "links": [], "output": "duplicates", "kept": out.ref()},
                )
            )


class Enrichment(ActivityType):
    name = "enrichment"
    required = ("add",)

    def resolve(self, activity, inputs, ctx):
        spec, path, r = activity.spec, activity.path, ctx.reader
        errors = len(ctx.diagnostics)
        table = inputs[0]
        add = r.mapping(path + ("add",), spec.get("add"), "add")
        if add is None:
            return
        if not add:
            ctx.error(path + ("add",), "add needs at least one column")
            return
        entity = table.dimension.entity
        scope = working_scope(table)
        query = ctx.query()
        added: list[list[Any]] = []
        columns = dict(table.columns)
        for name, item in add.items():
            ipath = path + ("add", name)
            if r.identifier(ipath, name, "column name", at_key=True) is None:
                continue
            if name.lower() in (c.lower() for c in columns) or (entity and entity.column(name)):
                ctx.error(
                    ipath,
                    f'column "{name}" already exists in the working table or in '
                    f'"{table.dimension.name}"; choose another name',
                    at_key=True,
                )
                continue
            value = self._column(activity, ipath, item, scope, query, ctx)
            if value is not None:
                added.append([name, value])
            # a wrong value leaves the column, its type unknown
            columns[name] = _type_of(value, table, ctx.model) if value is not None else ""
        if len(columns) != len(table.columns) + len(add):
            return  # a wrong name: which columns the output has is not known
        out = ctx.output(activity, "out", table.dimension, columns)
        if len(ctx.diagnostics) > errors:
            return
        activity.models.append(
            ModelPlan(
                out,
                "enrichment",
                dict(
                    input=table.ref(),
                    key=table.key,
                    columns=list(table.columns),
                    add=added,
                    dimension=dimension_arg(query, table),
                    links=query.links,
                ),
            )
        )

    @staticmethod
    def _column(activity, path, item, scope, query: Query, ctx: Context) -> exp.Expression | None:
        source, r = activity.source, ctx.reader
        if isinstance(item, str):
            return query.expression(source, path, item, scope, what="an enrichment expression")
        if not isinstance(item, dict) or "link" not in item:
            r.error(path, 'an enrichment is a SQL expression or a mapping with "link"')
            return None
        if "aggregate" in item:
            if r.mapping(path, item, "a link aggregate", required=("link", "aggregate"), optional=("where",)) is None:
                return None
            join = query.link_join(source, path, item["link"], item.get("where"), scope, kind="aggregate")
            if join is None:
                return None
            target = ctx.model.entities[join.entity]
            value = query.expression(
                source,
                path + ("aggregate",),
                item["aggregate"],
                Scope.of(target, join.row),
                what="aggregate",
                aggregates=True,
            )
            return join.value(join.add_column(value)) if value is not None else None
        if (
            r.mapping(path, item, "a link column", required=("link", "column"), optional=("where", "order_by", "rank"))
            is None
        ):
            return None
        link = scope.entity.links.get(item["link"]) if scope.entity and isinstance(item["link"], str) else None
        if link is not None and link.cardinality == "many" and "order_by" not in item:
            r.error(
                path,
                f'"{item["link"]}" links to many {link.entity}: add "order_by" to choose which one '
                f'(and "rank", 1 by default), or use "aggregate"',
            )
            return None
        rank = r.integer(path + ("rank",), item.get("rank", 1), "rank", minimum=1, maximum=MAX_SQL_INTEGER)
        if rank is None:
            return None
        join = query.link_join(
            source,
            path,
            item["link"],
            item.get("where"),
            scope,
            kind="rank",
            order_text=item.get("order_by"),
            rank=rank,
        )
        if join is None:
            return None
        target = ctx.model.entities[join.entity]
        value = query.expression(source, path + ("column",), item["column"], Scope.of(target, join.row), what="column")
        return join.value(join.add_column(value)) if value is not None else None


def _type_of(expression: exp.Expression, table: WorkingTable, model: DataModel) -> str:
    """The declared type when an added column is a plain column of an entity, else unknown ("")."""
    if isinstance(expression, exp.Column):
        entity = table.dimension.entity
        if expression.table == "wt":
            return table.columns.get(expression.name, "")
        if entity is not None and expression.table == DIMENSION_ALIAS:
            return entity.columns.get(expression.name, "")
    return ""


class ChangeDimension(ActivityType):
    name = "change_dimension"
    required = ("link",)
    optional = ("where",)

    def resolve(self, activity, inputs, ctx):
        spec, path = activity.spec, activity.path
        table = inputs[0]
        link = self._link(activity, table, ctx)
        if link is None:
            return
        target = ctx.model.entities[link.entity]
        columns = {target.key: target.columns[target.key]}
        carry: list[str] = []
        if link.cardinality == "many":
            carry = [c for c in table.columns if c != table.key]
            for column in carry:
                if target.column(column):
                    ctx.error(
                        path,
                        f'column "{column}" of the working table has the name of a column of '
                        f'"{target.name}"; rename it before changing dimension',
                        at_key=True,
                    )
                    return
                columns[column] = table.columns[column]
        # keys of the target, whatever its condition: the activities reading them are checked too
        out = ctx.output(activity, "out", entity_dimension(target), columns)
        query = ctx.query()
        where = None
        if "where" in spec:
            where = query.condition(activity.source, path + ("where",), spec["where"], Scope.of(target, "dst"))
            if where is None:
                return
        outer = working_scope(table)
        on = [[query.column_of(outer, local), remote] for local, remote in link.on]
        activity.models.append(
            ModelPlan(
                out,
                "change_dimension",
                dict(
                    input=table.ref(),
                    key=table.key,
                    target=Jinja(target.relation.jinja()),
                    target_key=target.key,
                    on=on,
                    cardinality=link.cardinality,
                    where=where,
                    carry=carry,
                    dimension=dimension_arg(query, table),
                    links=query.links,
                ),
            )
        )

    @staticmethod
    def _link(activity, table: WorkingTable, ctx: Context) -> Link | None:
        """The link of the input's entity that the activity follows; None when there is none (reported)."""
        spec, path = activity.spec, activity.path
        entity = table.dimension.entity
        if entity is None:
            ctx.error(
                path,
                f'"{activity.inputs[0]}" is made of {table.dimension.name}, which has no links; '
                "use reconciliation to match loaded rows to an entity",
            )
            return None
        link = entity.links.get(spec["link"]) if isinstance(spec.get("link"), str) else None
        if link is None:
            ctx.error(
                path + ("link",),
                f'"{entity.name}" has no link {quoted(spec.get("link"))}'
                f"{did_you_mean(str(spec.get('link')), entity.links)}",
            )
            return None
        return link


class SaveAudience(ActivityType):
    name = "save_audience"
    required = ("name",)

    def resolve(self, activity, inputs, ctx):
        table = inputs[0]
        out = ctx.output(activity, "out", table.dimension, dict(table.columns))  # whatever the audience's name
        name = ctx.reader.name_part(activity.path + ("name",), activity.spec.get("name"), "audience name")
        if name is None:
            return
        activity.models.append(
            ModelPlan(
                out,
                "save_audience",
                dict(input=table.ref(), columns=list(table.columns)),
                alias=audience_relation(name),
            )
        )


def audience_relation(name: str) -> str:
    return f"audience__{name}"
