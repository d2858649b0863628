"""Activities that start a flow: `build_audience` (rows of an entity), `incremental_query` (those
new since the campaign last ran), `load_file` (the records of a CSV file) and `reconciliation`
(loaded rows, or a model's, matched to an entity).
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

from ...errors import Location, did_you_mean, display_path
from ...project.datamodel import COLUMN_TYPES, FILE_DIMENSION, Entity
from ...reader import IDENTIFIER, quoted
from ..conditions import Scope
from ..plan import Activity, Dimension, Jinja, ModelPlan, SeedPlan, WorkingTable, ref
from .base import ActivityType, Context, entity_dimension, package_source

FILE_ROW = "file_row"
TIME_TYPES = ("timestamp", "date")
OCCURRENCES = package_source("campaign_occurrences")


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
                    ctx.error(
                        path + ("audience",),
                        f'audience "{name}" is made of {found.table.dimension.name}, not {entity.name}',
                    )
                    return  # the audience or the dimension is wrong: what the rows are is not known
                keys_from = ref(found.model)
        elif "model" in spec:
            model = ctx.node_exists(path + ("model",), spec["model"], "model")
            keys_from = ref(model) if model else None
        window = self._window(activity, entity, ctx)
        # keys of the entity whatever else is wrong: the activities reading them are checked too
        table = ctx.output(activity, "out", entity_dimension(entity), {entity.key: entity.columns[entity.key]})
        if len(ctx.diagnostics) > errors:
            return
        activity.models.append(
            ModelPlan(
                table,
                self.name,
                dict(
                    dimension=Jinja(entity.relation.jinja()),
                    key=entity.key,
                    **window,
                    where=where,
                    links=query.links,
                    keys_from=keys_from,
                ),
            )
        )

    def _window(self, activity: Activity, entity: Entity, ctx: Context) -> dict:
        """The arguments that restrict the rows to a window of time (none: every row)."""
        return {}


class IncrementalQuery(BuildAudience):
    """The keys build_audience gives, among the rows whose `since` column is new: later than the
    start of the campaign's last successful occurrence, the watermark, and not after now. Both are
    read by the model when it is built, from campaign_occurrences and the occurrence's time."""

    name = "incremental_query"
    required = ("since",)

    def _window(self, activity, entity, ctx):
        path, value = activity.path + ("since",), activity.spec.get("since")
        since = entity.column(value) if isinstance(value, str) else None
        times = [name for name, type_ in entity.columns.items() if type_ in TIME_TYPES]
        if since is None:
            ctx.error(
                path,
                f'since names a column of "{entity.name}", not {quoted(value)}'
                f"{did_you_mean(str(value), times or entity.columns)}",
            )
            return {}
        if entity.columns[since] not in TIME_TYPES:
            which = f"its timestamp and date columns: {', '.join(times)}" if times else "it has none"
            ctx.error(
                path,
                f'since needs a timestamp or date column; "{since}" of "{entity.name}" is '
                f"{entity.columns[since]} ({which})",
            )
            return {}
        return dict(since=since, campaign=ctx.campaign, occurrences=OCCURRENCES)


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
                ctx.error(
                    cpath,
                    f'column "{name}" is not in the header of {display_path(file[0])} '
                    f"(it has: {', '.join(file[1])}){did_you_mean(name, by_name)}",
                    at_key=True,
                )
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
        activity.models.append(
            ModelPlan(
                table, "load_file", dict(seed=ref(seed), columns=[[name, type_] for name, type_ in declared.items()])
            )
        )

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
            ctx.error(path, f"file not found: {display_path(csv_path)}")
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
                line = line[len(codecs.BOM_UTF8) :]
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                column = len(line[: error.start].decode("utf-8")) + 1
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
            ctx.error(
                path + ("input",),
                f'reconciliation reads loaded rows, but "{incoming.reference}" is made of '
                f"{incoming.dimension.name}; use change_dimension to move between entities",
            )
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
        pairs, match_named = self._pairs(activity, match, incoming, entity, ctx)
        carry_named = self._carry_named(activity, carry, incoming, entity, ctx)
        if not (match_named and carry_named):
            return
        # a wrong pair changes which rows match, not the columns they have
        out = ctx.output(
            activity,
            "out",
            entity_dimension(entity),
            {entity.key: entity.columns[entity.key], **{c: (known or {}).get(c, "") for c in carry}},
        )
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
        common = dict(
            incoming=relation,
            dimension=Jinja(entity.relation.jinja()),
            key=entity.key,
            match=pairs,
            carry=carry,
            order=order,
        )
        activity.models.append(ModelPlan(out, "reconciliation", common))
        if len(activity.outputs) > 1:
            activity.models.append(ModelPlan(unmatched, "reconciliation", {**common, "output": "unmatched"}))

    @staticmethod
    def _pairs(
        activity: Activity, match: dict, incoming: WorkingTable | None, entity: Entity, ctx: Context
    ) -> tuple[list[list], bool]:
        """The [incoming column, entity column, cast or None] of each right pair of `match`, and
        whether every incoming column has a name the unmatched rows can use."""
        known = incoming.columns if incoming is not None else None
        pairs, names_known = [], True
        for incoming_col, entity_col in match.items():
            mpath = activity.path + ("match", incoming_col)
            if known is not None and incoming_col not in known:
                ctx.error(
                    mpath,
                    f'"{incoming_col}" is not a column of "{incoming.reference}"{did_you_mean(incoming_col, known)}',
                    at_key=True,
                )
            elif known is None and not IDENTIFIER.match(incoming_col):
                ctx.reader.identifier(mpath, incoming_col, "incoming column", at_key=True)
                names_known = False  # it would name a column of the unmatched rows
            target_col = entity.column(entity_col) if isinstance(entity_col, str) else None
            if target_col is None:
                ctx.error(
                    mpath,
                    f'{quoted(entity_col)} is not a column of "{entity.name}"'
                    f"{did_you_mean(str(entity_col), entity.columns)}",
                )
                continue
            incoming_type = known.get(incoming_col) if known else None
            cast = entity.columns[target_col] if incoming_type and incoming_type != entity.columns[target_col] else None
            pairs.append([incoming_col, target_col, cast])
        return pairs, names_known

    @staticmethod
    def _carry_named(
        activity: Activity, carry: list[str], incoming: WorkingTable | None, entity: Entity, ctx: Context
    ) -> bool:
        """Whether every carried column is one of the incoming rows and no column of the entity."""
        known = incoming.columns if incoming is not None else None
        names_known = True
        for i, column in enumerate(carry):
            if known is not None and column not in known:
                ctx.error(
                    activity.path + ("carry", i),
                    f'"{column}" is not a column of "{incoming.reference}"{did_you_mean(column, known)}',
                )
                names_known = False
            elif entity.column(column):
                ctx.error(
                    activity.path + ("carry", i),
                    f'carried column "{column}" has the name of a column of "{entity.name}"; rename it in the file',
                )
                names_known = False
        return names_known
