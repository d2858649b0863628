"""One class per activity type, mirroring one macro per type in `macros/`.

Each type declares its keys and outputs, then `resolve`s an activity: it checks the parameters
against the working tables it receives, compiles their SQL through `conditions.Query`, and adds
the working tables it produces and the models (macro calls) that build them.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlglot import exp

from ...errors import Diagnostics, Location, did_you_mean, display_path
from ...project.datamodel import COLUMN_TYPES, FILE_DIMENSION, DataModel, Entity
from ...project.dbt import DbtProject
from ...reader import IDENTIFIER, MAX_SQL_INTEGER, Reader, describe, quoted
from ...yamlsrc import Path_
from ..conditions import DIMENSION_ALIAS, Query, Scope
from ..plan import MAX_RELATION_NAME, Activity, Dimension, Jinja, ModelPlan, SeedPlan, WorkingTable, ref

FILE_ROW = "file_row"
# A split's percent is applied exactly, as rows * numerator // (100 * denominator) in 64-bit integers:
# six decimals keep that product in range up to tens of billions of rows.
MAX_PERCENT_DECIMALS = 6


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

    def query(self) -> Query:
        return Query(self.model, self.diagnostics)

    def error(self, path: Path_, message: str, *, at_key: bool = False) -> None:
        self.reader.error(path, message, at_key=at_key)

    def entity(self, activity: Activity, key: str = "dimension") -> Entity | None:
        name = activity.spec.get(key, self.default_dimension)
        entity = self.model.entities.get(name) if isinstance(name, str) else None
        if entity is None:
            self.error(activity.path + (key,), f"unknown dimension {quoted(name)}: not an entity of campaign_project.yml"
                                               f"{did_you_mean(str(name), self.model.entities)}")
        return entity

    def output(self, activity: Activity, output: str, dimension: Dimension, columns: dict[str, str]) -> WorkingTable:
        table = WorkingTable(self.campaign, activity.id, output, dimension, columns)
        self.check_name(activity, table.model)
        activity.tables[output] = table
        return table

    def check_name(self, activity: Activity, model: str) -> None:
        if len(model) > MAX_RELATION_NAME:
            self.error(activity.path, f'model name "{model}" is {len(model)} characters; warehouses '
                                      f"allow {MAX_RELATION_NAME}: shorten the campaign, activity or output name",
                       at_key=True)

    def node_exists(self, path: Path_, name: Any, what: str) -> str | None:
        if not isinstance(name, str) or not name:
            self.error(path, f"{what} must be the name of a dbt model, not {describe(name)}")
            return None
        if name not in self.dbt.node_names:
            self.error(path, f'no dbt model or seed named "{name}" in the project'
                             f"{did_you_mean(name, self.dbt.node_names)}")
            return None
        return name


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
    """`coalesce(condition, false)`: TRUE only where the condition is TRUE (NULL is not)."""
    if condition is None:
        return exp.true()
    return exp.Coalesce(this=exp.Paren(this=condition), expressions=[exp.false()])


def first_holding(conditions: list[exp.Expression | None], index: int | None) -> exp.Expression:
    """Rows whose first TRUE condition is `conditions[index]` (or none is TRUE, for index None)."""
    earlier = conditions if index is None else conditions[:index]
    if any(c is None for c in earlier):
        return exp.false()  # an earlier output without condition takes every row
    parts = [] if index is None or conditions[index] is None else [holds(conditions[index])]
    parts += [exp.Not(this=holds(c)) for c in earlier]
    return exp.and_(*parts) if parts else exp.true()


class ActivityType:
    name = ""
    category = "targeting"
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
                r.error(path, f'output name "{name}" is already used by this activity'
                        if name != "out" else '"out" is the name of the main output; choose another name')
                continue
            outputs.append(name)
        return outputs


# -- targeting --------------------------------------------------------------------------------------
class BuildAudience(ActivityType):
    name = "build_audience"
    optional = ("dimension", "where", "audience", "model")
    inputs_key = None

    def resolve(self, activity, inputs, ctx):
        spec, path = activity.spec, activity.path
        errors = len(ctx.diagnostics)
        entity = ctx.entity(activity)
        if entity is None:
            return
        query = ctx.query()
        where = None
        if "where" in spec:
            where = query.condition(activity.source, path + ("where",), spec["where"], Scope.of(entity))
        keys_from = None
        if "audience" in spec and "model" in spec:
            ctx.error(path, 'build_audience reads keys from "audience" or from "model", not both')
        elif "audience" in spec:
            name = ctx.reader.identifier(path + ("audience",), spec["audience"], "audience name")
            found = ctx.audiences(name) if name else None
            if isinstance(found, str):
                ctx.error(path + ("audience",), found)
            elif found is not None:
                if found.table.dimension.name != entity.name:
                    ctx.error(path + ("audience",), f'audience "{name}" is made of '
                                                    f'{found.table.dimension.name}, not {entity.name}')
                    return  # the audience or the dimension is wrong: what the rows are is not known
                keys_from = ref(found.model)
        elif "model" in spec:
            model = ctx.node_exists(path + ("model",), spec["model"], "model")
            keys_from = ref(model) if model else None
        # keys of the entity whatever else is wrong: the activities reading them are checked too
        table = ctx.output(activity, "out", entity_dimension(entity), {entity.key: entity.columns[entity.key]})
        if len(ctx.diagnostics) > errors:
            return
        activity.models.append(ModelPlan(table, "build_audience", dict(
            dimension=Jinja(entity.relation.jinja()), key=entity.key, where=where, links=query.links,
            keys_from=keys_from)))


class LoadFile(ActivityType):
    name = "load_file"
    required = ("path", "columns")
    inputs_key = None

    def resolve(self, activity, inputs, ctx):
        spec, path, r = activity.spec, activity.path, ctx.reader
        errors = len(ctx.diagnostics)
        file = self._file(activity, ctx)
        columns = r.mapping(path + ("columns",), spec.get("columns"), "columns")
        if columns is None:
            return
        if not columns:
            ctx.error(path + ("columns",), "columns must declare at least one column of the file")
            return
        by_name = {h.strip().lower(): h for h in file[1]} if file else {}
        declared: dict[str, str] = {}
        for name, type_ in columns.items():
            cpath = path + ("columns", name)
            if r.identifier(cpath, name, "column name", at_key=True) is None:
                continue
            if name == FILE_ROW:
                ctx.error(cpath, f'"{FILE_ROW}" is reserved: it numbers the records of the file', at_key=True)
                continue
            column_type = r.choice(cpath, type_, f'type of column "{name}"', COLUMN_TYPES)
            if file is not None and name not in by_name:
                ctx.error(cpath, f'column "{name}" is not in the header of {display_path(file[0])} '
                                 f"(it has: {', '.join(file[1])}){did_you_mean(name, by_name)}", at_key=True)
                continue
            declared[name] = column_type or ""  # a wrong type leaves the column, its type unknown
        if len(declared) != len(columns):
            return  # a wrong name: which columns the file has is not known
        # the declared columns, even when the file cannot be read
        dimension = Dimension(f"{FILE_DIMENSION} {activity.id}", FILE_ROW)
        table = ctx.output(activity, "out", dimension, {FILE_ROW: "integer", **declared})
        if len(ctx.diagnostics) > errors:
            return
        seed = f"{ctx.campaign}__{activity.id}__raw"
        activity.seeds.append(SeedPlan(seed, file[0], {name: by_name[name] for name in declared}))
        activity.models.append(ModelPlan(table, "load_file", dict(
            seed=ref(seed), columns=[[name, type_] for name, type_ in declared.items()])))

    @staticmethod
    def _file(activity: Activity, ctx: Context) -> tuple[Path, list[str]] | None:
        """The CSV file and its header, or None when it cannot be read (and why is reported)."""
        path = activity.path + ("path",)
        file_value = ctx.reader.string(path, activity.spec.get("path"), "path")
        if file_value is None:
            return None
        if "\0" in file_value:
            ctx.error(path, "path must not contain a NUL character")
            return None
        try:
            csv_path = (ctx.dbt.root / file_value).resolve()
            found = csv_path.is_file()
        except OSError as error:  # a name too long for the file system
            ctx.error(path, f"path cannot be read: {error.strerror or error}")
            return None
        if ctx.dbt.root not in csv_path.parents:
            ctx.error(path, f'path "{file_value}" must be a file inside the dbt project')
            return None
        if not found:
            ctx.error(path, f'file not found: {display_path(csv_path)}')
            return None
        try:
            header, problem = _read_csv(csv_path)
        except OSError as error:
            ctx.error(path, f"cannot read {display_path(csv_path)}: {error.strerror or error}")
            return None
        if problem is not None:
            line, col, message = problem
            ctx.diagnostics.error(Location(display_path(csv_path), line, col), message)
            return None
        if header is None:
            ctx.error(path, f"{display_path(csv_path)} is not a CSV file with a header row")
            return None
        return csv_path, header


class _Unloadable(Exception):
    """Where a CSV file stops being loadable: line, column and why."""


def _read_csv(path: Path) -> tuple[list[str] | None, tuple[int, int, str] | None]:
    """The header of a CSV file (None without one), and the (line, column, message) of the first
    thing in it that compile or a warehouse could not load: bytes that are not UTF-8, a NUL
    character (no warehouse stores it in text), a record the csv module refuses (such as a field
    over its 128 KB limit). The whole file is read as compile reads it, one line at a time."""
    number, header = 0, None

    def lines(handle):
        nonlocal number
        for number, line in enumerate(handle, start=1):
            if "\0" in line:
                raise _Unloadable(number, line.index("\0") + 1, "NUL character: warehouses cannot store it in text")
            yield line

    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            records = csv.reader(lines(handle))
            header = next(records, None)
            for _ in records:
                pass
    except _Unloadable as unloadable:
        return None, unloadable.args
    except csv.Error as error:
        return None, (number, 1, f"invalid CSV: {error}")
    except UnicodeDecodeError:
        return None, _undecodable(path)
    return (header if header and any(h.strip() for h in header) else None), None


def _undecodable(path: Path) -> tuple[int, int, str]:
    """Where the first byte that is not UTF-8 is (text files are decoded by blocks: which line is not known)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1 and line.startswith(codecs.BOM_UTF8):
                line = line[len(codecs.BOM_UTF8):]
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                column = len(line[:error.start].decode("utf-8")) + 1
                return number, column, f"invalid UTF-8 (byte 0x{line[error.start]:02x}): CSV files are read as UTF-8"
    return 1, 1, "invalid UTF-8: CSV files are read as UTF-8"


class Reconciliation(ActivityType):
    name = "reconciliation"
    required = ("match",)
    optional = ("model", "dimension", "carry", "unmatched")
    inputs_required = False

    def output_names(self, activity, r):
        names = [(activity.path + ("unmatched",), activity.spec["unmatched"])] if "unmatched" in activity.spec else []
        return self.named_outputs(activity, r, names, with_out=True)

    def resolve(self, activity, inputs, ctx):
        spec, path, r = activity.spec, activity.path, ctx.reader
        errors = len(ctx.diagnostics)
        if ("input" in spec) == ("model" in spec):
            ctx.error(path, 'reconciliation reads "input" (a load_file) or "model" (a dbt model): give one')
            return
        entity = ctx.entity(activity)
        incoming: WorkingTable | None = inputs[0] if inputs else None
        model = None
        if incoming is not None and incoming.dimension.entity is not None:
            ctx.error(path + ("input",), f'reconciliation reads loaded rows, but "{incoming.reference}" is made of '
                                         f"{incoming.dimension.name}; use change_dimension to move between entities")
            return
        if "model" in spec:
            model = ctx.node_exists(path + ("model",), spec["model"], "model")
        known = incoming.columns if incoming is not None else None
        match = r.mapping(path + ("match",), spec.get("match"), "match")
        carry = r.identifiers(path + ("carry",), spec.get("carry", []), "carry", min_items=0)
        if entity is None or match is None or carry is None:
            return
        if not match:
            ctx.error(path + ("match",), "match needs at least one pair <incoming column>: <entity column>")
        pairs, names_known = [], True
        for incoming_col, entity_col in match.items():
            mpath = path + ("match", incoming_col)
            if known is not None and incoming_col not in known:
                ctx.error(mpath, f'"{incoming_col}" is not a column of "{incoming.reference}"'
                                 f"{did_you_mean(incoming_col, known)}", at_key=True)
            elif known is None and not IDENTIFIER.match(incoming_col):
                r.identifier(mpath, incoming_col, "incoming column", at_key=True)
                names_known = False  # it would name a column of the unmatched rows
            target_col = entity.column(entity_col) if isinstance(entity_col, str) else None
            if target_col is None:
                ctx.error(mpath, f'{quoted(entity_col)} is not a column of "{entity.name}"'
                                 f"{did_you_mean(str(entity_col), entity.columns)}")
                continue
            incoming_type = known.get(incoming_col) if known else None
            cast = entity.columns[target_col] if incoming_type and incoming_type != entity.columns[target_col] else None
            pairs.append([incoming_col, target_col, cast])
        for i, column in enumerate(carry):
            if known is not None and column not in known:
                ctx.error(path + ("carry", i), f'"{column}" is not a column of "{incoming.reference}"'
                                               f"{did_you_mean(column, known)}")
                names_known = False
            elif entity.column(column):
                ctx.error(path + ("carry", i), f'carried column "{column}" has the name of a column of '
                                               f'"{entity.name}"; rename it in the file')
                names_known = False
        if not names_known:
            return
        # a wrong pair changes which rows match, not the columns they have
        out = ctx.output(activity, "out", entity_dimension(entity),
                         {entity.key: entity.columns[entity.key], **{c: (known or {}).get(c, "") for c in carry}})
        if len(activity.outputs) > 1:
            name = activity.outputs[1]
            if incoming is not None:
                unmatched = ctx.output(activity, name, incoming.dimension, dict(incoming.columns))
            else:
                columns = {c: "" for c in match} | {c: "" for c in carry}
                unmatched = ctx.output(activity, name, Dimension(f"model {spec['model']}", ""), columns)
        if len(ctx.diagnostics) > errors:
            return
        relation = incoming.ref() if incoming is not None else ref(model)
        order = [FILE_ROW] if known and FILE_ROW in known else [p[0] for p in pairs] + carry
        common = dict(incoming=relation, dimension=Jinja(entity.relation.jinja()), key=entity.key,
                      match=pairs, carry=carry, order=order)
        activity.models.append(ModelPlan(out, "reconciliation", common))
        if len(activity.outputs) > 1:
            activity.models.append(ModelPlan(unmatched, "reconciliation", {**common, "output": "unmatched"}))


class Combine(ActivityType):
    name = "combine"
    required = ("mode",)
    optional = ("complement",)
    inputs_key = "inputs"

    def output_names(self, activity, r):
        names = [(activity.path + ("complement",), activity.spec["complement"])] if "complement" in activity.spec else []
        return self.named_outputs(activity, r, names, with_out=True)

    def resolve(self, activity, inputs, ctx):
        mode = ctx.reader.choice(activity.path + ("mode",), activity.spec.get("mode"), "mode",
                                 ("union", "intersection", "exclusion"))
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
            ctx.error(activity.path + ("complement",), "a union has no complement (every input row is in it)",
                      at_key=True)
            return
        args = dict(mode=mode, inputs=[i.ref() for i in inputs], key=first.key, columns=list(columns))
        activity.models.append(ModelPlan(out, "combine", args))
        if len(activity.outputs) > 1:
            complement = ctx.output(activity, activity.outputs[1], first.dimension, dict(first.columns))
            activity.models.append(ModelPlan(complement, "combine", dict(
                mode=mode, inputs=[first.ref()], key=first.key, columns=list(first.columns),
                output="complement", result=out.ref())))


def same_dimension(activity: Activity, inputs: list[WorkingTable], ctx: Context) -> bool:
    ok = True
    for ref_, table in zip(activity.inputs[1:], inputs[1:]):
        if table.dimension.name != inputs[0].dimension.name:
            ctx.error(ref_.path, f'"{ref_}" is made of {table.dimension.name} but "{activity.inputs[0]}" of '
                                 f"{inputs[0].dimension.name}: inputs must share a dimension")
            ok = False
    return ok


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
        outputs = {name: ctx.output(activity, name, table.dimension, dict(table.columns))
                   for name in activity.outputs}
        subsets = r.list_of(path + ("subsets",), spec.get("subsets"), "subsets", min_items=1)
        overlap = r.boolean(path + ("overlap",), spec.get("overlap", False), "overlap")
        if subsets is None or overlap is None:
            return
        parsed = []
        for i, subset in enumerate(subsets):
            spath = path + ("subsets", i)
            subset = r.mapping(spath, subset, "a subset", required=("name",), optional=("where", "limit"))
            limit = self._limit(spath + ("limit",), subset["limit"], r) if subset and "limit" in subset else None
            if subset is not None and ("limit" not in subset or limit is not None):
                parsed.append((spath, subset, limit))
        if len(parsed) != len(subsets) or len(activity.outputs) != len(parsed) + ("complement" in spec):
            return  # an output name was invalid and reported
        scope = working_scope(table)
        models = []
        for index, (spath, subset, limit) in enumerate(parsed):
            # a subset excludes the rows of those before it: their conditions are compiled again, into its
            # own query (an error in one is reported once)
            query = ctx.query()
            considered = [index] if overlap else list(range(index + 1))
            conditions: list[exp.Expression | None] = [None] * (index + 1)
            for j in considered:
                jpath, jsubset, _ = parsed[j]
                if "where" in jsubset:
                    conditions[j] = query.condition(activity.source, jpath + ("where",), jsubset["where"], scope)
            where = holds(conditions[index]) if overlap else first_holding(conditions, index)
            order, seed = [], None
            if limit is not None and "order_by" in limit:
                order = query.order_by(activity.source, spath + ("limit", "order_by"), limit["order_by"], scope)
            if limit is not None and limit.get("random"):
                seed = limit.get("seed", 0)
            size = None if limit is None else (
                {"count": limit["count"]} if "count" in limit else {"percent": list(limit["percent"])})
            models.append(ModelPlan(outputs[subset["name"]], "split", dict(
                input=table.ref(), key=table.key, columns=list(table.columns), where=where,
                dimension=dimension_arg(query, table), links=query.links, limit=size, order=order,
                random_seed=seed)))
        if len(ctx.diagnostics) > errors:
            return
        activity.models += models
        if "complement" in spec:
            out = outputs[spec["complement"]]
            activity.models.append(ModelPlan(out, "split", dict(
                input=table.ref(), key=table.key, columns=list(table.columns), output="complement",
                subsets=[m.table.ref() for m in models])))

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
                r.error(path + ("percent",), f"percent must be a number from 0 to 100, not {percent if isinstance(percent, (int, float)) else quoted(percent)}")
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
        names = [(activity.path + ("duplicates",), activity.spec["duplicates"])] if "duplicates" in activity.spec else []
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
        partition = [query.expression(activity.source, path + ("keys", i), key, scope, what="a deduplication key")
                     for i, key in enumerate(keys)]
        order: list[exp.Expression] | None = []
        if "keep" in spec:
            keep = r.mapping(path + ("keep",), spec["keep"], "keep", required=("order_by",))
            if keep is not None:
                order = query.order_by(activity.source, path + ("keep", "order_by"), keep["order_by"], scope)
        if len(ctx.diagnostics) > errors:
            return
        out = outputs[0]
        args = dict(input=table.ref(), key=table.key, columns=list(table.columns), partition=partition,
                    order=order, count=count, dimension=dimension_arg(query, table), links=query.links)
        activity.models.append(ModelPlan(out, "deduplication", args))
        if len(activity.outputs) > 1:
            activity.models.append(ModelPlan(outputs[1], "deduplication", {
                **args, "dimension": None, "links": [], "output": "duplicates", "kept": out.ref()}))


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
                ctx.error(ipath, f'column "{name}" already exists in the working table or in '
                                 f'"{table.dimension.name}"; choose another name', at_key=True)
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
        activity.models.append(ModelPlan(out, "enrichment", dict(
            input=table.ref(), key=table.key, columns=list(table.columns), add=added,
            dimension=dimension_arg(query, table), links=query.links)))

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
            value = query.expression(source, path + ("aggregate",), item["aggregate"], Scope.of(target, join.row),
                                     what="aggregate", aggregates=True)
            return join.value(join.add_column(value)) if value is not None else None
        if r.mapping(path, item, "a link column", required=("link", "column"),
                     optional=("where", "order_by", "rank")) is None:
            return None
        link = scope.entity.links.get(item["link"]) if scope.entity and isinstance(item["link"], str) else None
        if link is not None and link.cardinality == "many" and "order_by" not in item:
            r.error(path, f'"{item["link"]}" links to many {link.entity}: add "order_by" to choose which one '
                          f'(and "rank", 1 by default), or use "aggregate"')
            return None
        rank = r.integer(path + ("rank",), item.get("rank", 1), "rank", minimum=1, maximum=MAX_SQL_INTEGER)
        if rank is None:
            return None
        join = query.link_join(source, path, item["link"], item.get("where"), scope, kind="rank",
                               order_text=item.get("order_by"), rank=rank)
        if join is None:
            return None
        target = ctx.model.entities[join.entity]
        value = query.expression(source, path + ("column",), item["column"], Scope.of(target, join.row),
                                 what="column")
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
        entity = table.dimension.entity
        if entity is None:
            ctx.error(path, f'"{activity.inputs[0]}" is made of {table.dimension.name}, which has no links; '
                            "use reconciliation to match loaded rows to an entity")
            return
        link = entity.links.get(spec["link"]) if isinstance(spec.get("link"), str) else None
        if link is None:
            ctx.error(path + ("link",), f'"{entity.name}" has no link {quoted(spec.get("link"))}'
                                        f"{did_you_mean(str(spec.get('link')), entity.links)}")
            return
        target = ctx.model.entities[link.entity]
        columns = {target.key: target.columns[target.key]}
        carry: list[str] = []
        if link.cardinality == "many":
            carry = [c for c in table.columns if c != table.key]
            for column in carry:
                if target.column(column):
                    ctx.error(path, f'column "{column}" of the working table has the name of a column of '
                                    f'"{target.name}"; rename it before changing dimension', at_key=True)
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
        activity.models.append(ModelPlan(out, "change_dimension", dict(
            input=table.ref(), key=table.key, target=Jinja(target.relation.jinja()), target_key=target.key,
            on=on, cardinality=link.cardinality, where=where, carry=carry,
            dimension=dimension_arg(query, table), links=query.links)))


class SaveAudience(ActivityType):
    name = "save_audience"
    required = ("name",)

    def resolve(self, activity, inputs, ctx):
        table = inputs[0]
        out = ctx.output(activity, "out", table.dimension, dict(table.columns))  # whatever the audience's name
        name = ctx.reader.name_part(activity.path + ("name",), activity.spec.get("name"), "audience name")
        if name is None:
            return
        activity.models.append(ModelPlan(out, "save_audience", dict(input=table.ref(), columns=list(table.columns)),
                                         alias=audience_relation(name)))


def audience_relation(name: str) -> str:
    return f"audience__{name}"


# -- flow control -----------------------------------------------------------------------------------
class Fork(ActivityType):
    name = "fork"
    category = "flow"
    required = ("outputs",)

    def output_names(self, activity, r):
        value = activity.spec.get("outputs")
        if r.list_of(activity.path + ("outputs",), value, "outputs", min_items=1) is None:
            return []
        return self.named_outputs(activity, r, [(activity.path + ("outputs", i), v) for i, v in enumerate(value)],
                                  with_out=False)

    def resolve(self, activity, inputs, ctx):
        table = inputs[0]
        # each output whose name is right, even if another's is wrong
        outputs = [ctx.output(activity, output, table.dimension, dict(table.columns)) for output in activity.outputs]
        if not activity.outputs or len(activity.outputs) != len(activity.spec["outputs"]):
            return  # an output name is wrong, reported when the file was read
        for out in outputs:
            activity.models.append(ModelPlan(out, "fork", dict(input=table.ref()), materialized="view"))


class AndJoin(ActivityType):
    name = "and_join"
    category = "flow"
    required = ("main",)
    inputs_key = "inputs"

    def resolve(self, activity, inputs, ctx):
        main = activity.spec.get("main")
        names = [str(i) for i in activity.inputs]
        if main not in names:
            ctx.error(activity.path + ("main",), f"main must be one of the inputs ({', '.join(names)}), not {quoted(main)}")
            return
        table = inputs[names.index(main)]
        out = ctx.output(activity, "out", table.dimension, dict(table.columns))
        activity.models.append(ModelPlan(out, "and_join", dict(inputs=[i.ref() for i in inputs], main=table.ref()),
                                         materialized="view"))


class OrJoin(ActivityType):
    name = "or_join"
    category = "flow"
    inputs_key = "inputs"

    def resolve(self, activity, inputs, ctx):
        if not same_dimension(activity, inputs, ctx):
            return
        first = inputs[0]
        columns = {c: t for c, t in first.columns.items() if all(c in i.columns for i in inputs)}
        out = ctx.output(activity, "out", first.dimension, columns)
        activity.models.append(ModelPlan(out, "or_join", dict(
            inputs=[i.ref() for i in inputs], key=first.key, columns=list(columns))))


class Test(ActivityType):
    name = "test"
    category = "flow"
    required = ("conditions",)
    optional = ("default",)

    def output_names(self, activity, r):
        conditions = activity.spec.get("conditions")
        names = []
        if isinstance(conditions, list):
            names = [(activity.path + ("conditions", i, "name"), c["name"])
                     for i, c in enumerate(conditions) if isinstance(c, dict) and "name" in c]
        if "default" in activity.spec:
            names.append((activity.path + ("default",), activity.spec["default"]))
        return self.named_outputs(activity, r, names, with_out=False)

    def resolve(self, activity, inputs, ctx):
        spec, path, r = activity.spec, activity.path, ctx.reader
        errors = len(ctx.diagnostics)
        table = inputs[0]
        # every output has the input's columns, whatever else is wrong
        outputs = [ctx.output(activity, output, table.dimension, dict(table.columns)) for output in activity.outputs]
        conditions = r.list_of(path + ("conditions",), spec.get("conditions"), "conditions", min_items=1)
        if conditions is None:
            return
        query = ctx.query()
        whens = []
        for i, condition in enumerate(conditions):
            cpath = path + ("conditions", i)
            if r.mapping(cpath, condition, "a test condition", required=("name", "when")) is not None:
                whens.append(query.expression(activity.source, cpath + ("when",), condition["when"], Scope.count(),
                                              what="when"))
        if len(ctx.diagnostics) > errors or len(activity.outputs) != len(conditions) + ("default" in spec):
            return  # an error above, or an output name reported wrong when the file was read
        for index, out in enumerate(outputs):
            when = first_holding(whens, index if index < len(whens) else None)
            activity.models.append(ModelPlan(out, "test", dict(input=table.ref(), when=when)))


class End(ActivityType):
    name = "end"
    category = "flow"

    def resolve(self, activity, inputs, ctx):
        table = inputs[0]
        out = ctx.output(activity, "out", table.dimension, dict(table.columns))
        activity.models.append(ModelPlan(out, "end", dict(input=table.ref()), materialized="view"))


TYPES: dict[str, ActivityType] = {t.name: t for t in (
    BuildAudience(), LoadFile(), Reconciliation(), Combine(), Split(), Deduplication(), Enrichment(),
    ChangeDimension(), SaveAudience(), Fork(), AndJoin(), OrJoin(), Test(), End(),
)}
# Types of the specification that this version does not compile yet.
PLANNED_TYPES = ("incremental_query", "wait", "reaction")
