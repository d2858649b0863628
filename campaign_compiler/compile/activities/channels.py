"""Channel activities: email, sms, push, direct_mail.

A channel activity turns its input's recipients — or, with `per:`, each recipient *and* each
matching linked row (one email per confirmed booking) — into candidate messages, then excludes
candidates for the reasons of `contract.EXCLUSION_REASONS`, the first that applies winning. Its models:

* `<campaign>__<activity>__candidates`: every candidate with its `exclusion_reason` (or NULL);
* `<campaign>__<activity>`: one row per message — recipient key, linked-row key, `address`,
  `message_key` and exactly the columns its template uses — what the send step delivers;
* `<campaign>__<activity>__excluded`: the excluded candidates and why;
* `<campaign>__<activity>__recipients`: the messaged recipients, the activity's `out`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from ...errors import did_you_mean
from ...project.datamodel import Entity
from ...reader import MAX_SQL_INTEGER, quoted
from ..conditions import DIMENSION_ALIAS, WORKING_ALIAS, Query, Scope, column
from ..contract import ADDRESS_PATTERNS, EXCLUSION_ORDER, RESERVED_COLUMNS
from ..plan import Dimension, Jinja, MessageSpec, ModelPlan, WorkingTable
from ..templates import Per, load_template
from . import ActivityType, Context

PER_ALIAS = "per_row"
SYSTEM = Jinja("source('campaign_orchestration', 'campaign_suppressions')")
DELIVERIES = Jinja("source('campaign_orchestration', 'campaign_deliveries')")
# A frequency cap looks back at most a century: a longer interval overflows PostgreSQL's.
MAX_CAP_DAYS = 36_500


@dataclass
class _Settings:
    """A channel activity's settings, as read and checked."""

    table: WorkingTable  # the input
    recipient: Entity
    category: str | None  # marketing or transactional
    query: Query  # holds the link joins of per's condition
    per: dict | None  # see Channel._per
    address_columns: tuple[str, ...] | None
    used: list[str] | None  # the names the message uses
    template: Any
    cap: dict | bool | None  # False: given but wrong
    control: dict | bool | None


class Channel(ActivityType):
    category = "channel"
    channel = ""
    optional = ("template", "per", "category", "frequency_cap", "control_group")

    def resolve(self, activity, inputs, ctx):
        errors = len(ctx.diagnostics)
        settings = self._settings(activity, inputs[0], ctx)
        if settings is None or len(ctx.diagnostics) > errors:
            return
        per = settings.per
        address_alias = PER_ALIAS if per and per["use_address"] else DIMENSION_ALIAS
        per_key, columns, placed = self._columns(settings, address_alias)
        candidates, messages, excluded = self._message_tables(activity, ctx, settings.table, per_key, columns)
        args = self._candidate_args(activity, ctx, settings, address_alias, per_key, columns)
        self._add_models(activity, settings, args, per_key, columns, (candidates, messages, excluded))
        activity.message = MessageSpec(
            channel=self.channel,
            model=messages.model,
            excluded_model=excluded.model,
            key=settings.table.key,
            per_key=per_key,
            per_alias=per["alias"] if per else None,
            template=settings.template,
            columns=placed,
            category=settings.category,
        )

    # -- parts -----------------------------------------------------------------------------------
    def _settings(self, activity, table: WorkingTable, ctx: Context) -> _Settings | None:
        """The activity's settings, checked; None when the channel cannot go on (errors are reported)."""
        spec, path, r = activity.spec, activity.path, ctx.reader
        recipient = table.dimension.entity
        if recipient is None:
            ctx.error(
                activity.inputs[0].path,
                f'"{activity.inputs[0]}" is made of {table.dimension.name}: messages go to an entity of the data model',
            )
            return None
        self._recipients_output(activity, table, ctx)
        category = r.choice(
            path + ("category",), spec.get("category", "marketing"), "category", ("marketing", "transactional")
        )
        query = ctx.query()
        per = self._per(activity, recipient, query, ctx) if "per" in spec else None
        if "per" in spec and per is None:
            return None  # what the message may read depends on the linked row
        addressed = per["entity"] if per and per["use_address"] else recipient
        address_columns = addressed.addresses.get(self.channel)
        if not address_columns:
            where = path + ("per", "use_address") if per and per["use_address"] else path + ("type",)
            ctx.error(
                where,
                f'"{addressed.name}" declares no {self.channel} address in campaign_project.yml '
                f"(addresses: {{{self.channel}: <column>}})",
            )
        per_view = Per(per["alias"], per["entity"].columns) if per else None
        used, template = self._content(activity, ctx, self._names(table, recipient), per_view)
        cap = self._frequency_cap(activity, ctx) if category != "transactional" else None
        control = self._control_group(activity, ctx)
        if category == "transactional" and "frequency_cap" in spec:
            ctx.error(path + ("frequency_cap",), "transactional messages are not capped", at_key=True)
        return _Settings(table, recipient, category, query, per, address_columns, used, template, cap, control)

    def _recipients_output(self, activity, table: WorkingTable, ctx: Context) -> None:
        """The input's rows that were messaged, whatever else is wrong: the activities reading them are
        checked too. Its model is `__recipients`; output() checks the name of the messages' model."""
        base = f"{ctx.campaign}__{activity.id}"
        recipients = ctx.output(activity, "out", table.dimension, dict(table.columns))
        recipients.model_name = f"{base}__recipients"
        for model in (f"{base}__candidates", f"{base}__excluded", recipients.model):
            ctx.check_name(activity, model)

    def _columns(
        self, settings: _Settings, address_alias: str
    ) -> tuple[str | None, list[list[Any]], list[tuple[str, str]]]:
        """(the linked row's key column, the columns the message uses as [name, SQL], the model column
        of each name used)."""
        table, per = settings.table, settings.per
        own: dict[str, exp.Expression | None] = dict.fromkeys(RESERVED_COLUMNS)
        own[table.key] = column(table.key, WORKING_ALIAS)
        per_key = None
        if per:
            target = per["entity"]
            taken = {name.lower() for name in (*table.columns, *own)}
            per_key = target.key if target.key.lower() not in taken else f"{per['alias']}__{target.key}"
            own[per_key] = column(target.key, PER_ALIAS)
        values = [_value(name, table) for name in settings.used]
        if self.channel == "direct_mail":  # the extract carries the address itself
            values += [
                (None, f"{per['alias']}__{name}" if address_alias == PER_ALIAS else name, column(name, address_alias))
                for name in settings.address_columns
            ]
        columns, placed = _model_columns(values, own)
        return per_key, columns, placed

    @staticmethod
    def _message_tables(
        activity, ctx: Context, table: WorkingTable, per_key: str | None, columns: list[list[Any]]
    ) -> tuple[WorkingTable, WorkingTable, WorkingTable]:
        """The candidates, messages and excluded working tables."""
        base = f"{ctx.campaign}__{activity.id}"
        dimension = Dimension(f"messages of {activity.id}", "message_key")
        candidates = WorkingTable(
            ctx.campaign,
            activity.id,
            "candidates",
            dimension,
            _message_columns(table, per_key, columns, with_reason=True),
            model_name=f"{base}__candidates",
        )
        messages = WorkingTable(
            ctx.campaign, activity.id, "out", dimension, _message_columns(table, per_key, columns), model_name=base
        )
        excluded = WorkingTable(
            ctx.campaign,
            activity.id,
            "excluded",
            dimension,
            _message_columns(table, per_key, columns, with_reason=True),
            model_name=f"{base}__excluded",
        )
        return candidates, messages, excluded

    def _candidate_args(
        self,
        activity,
        ctx: Context,
        settings: _Settings,
        address_alias: str,
        per_key: str | None,
        columns: list[list[Any]],
    ) -> dict[str, Any]:
        """The arguments of the candidates model's macro call (see macros/macros.yml)."""
        table, recipient, per, cap = settings.table, settings.recipient, settings.per, settings.cap
        consent = recipient.consent.get(self.channel) if settings.category == "marketing" else None
        args: dict[str, Any] = dict(
            campaign=ctx.campaign,
            activity=activity.id,
            input=table.ref(),
            key=table.key,
            dimension=Jinja(recipient.relation.jinja()),
            address=self._address(settings.address_columns, address_alias),
            complete=self._complete(settings.address_columns, address_alias),
            columns=columns,
            consent=column(consent, DIMENSION_ALIAS) if consent else None,
            frequency_cap=cap,
            control_group=settings.control,
            suppressions=SYSTEM,
            deliveries=DELIVERIES if cap else None,
        )
        if per:
            args["per"] = dict(
                relation=Jinja(per["entity"].relation.jinja()),
                key=per["entity"].key,
                key_as=per_key,
                on=per["on"],
                where=per["where"],
                links=settings.query.links,
                use_address=per["use_address"],
            )
        args.update(
            exclusion_reasons=list(EXCLUSION_ORDER),
            reserved_columns=list(RESERVED_COLUMNS),
            address_pattern=ADDRESS_PATTERNS.get(self.channel),
        )
        return args

    def _add_models(
        self,
        activity,
        settings: _Settings,
        args: dict[str, Any],
        per_key: str | None,
        columns: list[list[Any]],
        tables: tuple[WorkingTable, WorkingTable, WorkingTable],
    ) -> None:
        """The four models of the channel, each one call of its macro."""
        candidates, messages, excluded = tables
        table, macro, names = settings.table, self.name, [c[0] for c in columns]
        recipients = activity.tables["out"]
        activity.models += [
            ModelPlan(candidates, macro, {**args, "output": "candidates"}, counted=False),
            ModelPlan(
                messages,
                macro,
                {
                    "output": "messages",
                    "candidates": candidates.ref(),
                    "key": table.key,
                    "per_key": per_key,
                    "columns": names,
                },
                subset_of=candidates.model,
            ),
            ModelPlan(
                excluded,
                macro,
                {
                    "output": "excluded",
                    "candidates": candidates.ref(),
                    "key": table.key,
                    "per_key": per_key,
                    "columns": names,
                },
                materialized="view",
                counted=False,
                subset_of=candidates.model,
            ),
            ModelPlan(
                recipients,
                macro,
                {
                    "output": "recipients",
                    "input": table.ref(),
                    "key": table.key,
                    "columns": list(table.columns),
                    "messages": messages.ref(),
                },
                materialized="view",
                counted=False,
                subset_of=table.model,
            ),
        ]

    def _per(self, activity, recipient: Entity, query: Query, ctx: Context) -> dict | None:
        r, path = ctx.reader, activity.path + ("per",)
        spec = r.mapping(path, activity.spec["per"], "per", required=("link", "as"), optional=("where", "use_address"))
        if spec is None:
            return None
        link = recipient.links.get(spec["link"]) if isinstance(spec["link"], str) else None
        if link is None:
            ctx.error(
                path + ("link",),
                f'"{recipient.name}" has no link {quoted(spec["link"])}'
                f"{did_you_mean(str(spec['link']), recipient.links)}",
            )
            return None
        if link.cardinality != "many":  # one message per linked row: a one-link adds nothing to the recipient
            many = [name for name, other in recipient.links.items() if other.cardinality == "many"]
            ctx.error(
                path + ("link",),
                f'"{link.name}" is a one-link (to {link.entity}): per needs a many-link'
                + (f' of "{recipient.name}" ({", ".join(many)})' if many else f', and "{recipient.name}" has none'),
            )
            return None
        alias = r.identifier(path + ("as",), spec["as"], "as")
        if alias is None:
            return None
        if recipient.column(alias):
            ctx.error(path + ("as",), f'"{alias}" is a column of "{recipient.name}": name the linked row otherwise')
            return None
        use_address = r.boolean(path + ("use_address",), spec.get("use_address", False), "use_address")
        target = ctx.model.entities[link.entity]
        where = None
        if "where" in spec:
            where = query.condition(activity.source, path + ("where",), spec["where"], Scope.of(target, PER_ALIAS))
            if where is None:
                return None
        on = [[column(local, DIMENSION_ALIAS), remote] for local, remote in link.on]
        return {"entity": target, "alias": alias, "where": where, "on": on, "use_address": use_address}

    @staticmethod
    def _names(table: WorkingTable, recipient: Entity) -> dict[str, str]:
        """What a template may read: the recipient entity's columns, then the working table's."""
        names = dict(recipient.columns)
        names.update(table.columns)
        return names

    def _content(self, activity, ctx: Context, names: dict[str, str], per: Per | None):
        """(names the message uses: `first_name`, `booking.checkin_date`; template) — direct mail lists
        its columns instead of a template."""
        spec, path = activity.spec, activity.path
        if "template" not in spec:
            ctx.error(path, f'{self.name} activity "{activity.id}" needs "template"')
            return None, None
        template = load_template(
            ctx.dbt.root,
            activity.source,
            path + ("template",),
            spec["template"],
            self.channel,
            names,
            per,
            ctx.diagnostics,
        )
        if template is None:
            return None, None
        per_names = [f"{per.alias}.{c}" for c in template.per_columns] if per else []
        return template.names + per_names, template

    def _frequency_cap(self, activity, ctx: Context):
        if "frequency_cap" not in activity.spec:
            return None
        r, path = ctx.reader, activity.path + ("frequency_cap",)
        spec = r.mapping(path, activity.spec["frequency_cap"], "frequency_cap", required=("max", "days"))
        if spec is None:
            return False
        most = r.integer(path + ("max",), spec["max"], "max", minimum=1, maximum=MAX_SQL_INTEGER)
        days = r.integer(path + ("days",), spec["days"], "days", minimum=1, maximum=MAX_CAP_DAYS)
        return {"max": most, "days": days} if most is not None and days is not None else False

    def _control_group(self, activity, ctx: Context):
        if "control_group" not in activity.spec:
            return None
        r, path = ctx.reader, activity.path + ("control_group",)
        spec = r.mapping(
            path, activity.spec["control_group"], "control_group", required=("percent",), optional=("seed",)
        )
        if spec is None:
            return False
        percent = spec["percent"]
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 < percent < 100:
            r.error(path + ("percent",), f"percent must be a number between 0 and 100, not {quoted(percent)}")
            return False
        seed = r.integer(
            path + ("seed",), spec.get("seed", 0), "seed", minimum=-MAX_SQL_INTEGER, maximum=MAX_SQL_INTEGER
        )
        if seed is None:
            return False
        # a recipient is held out when the first 8 hex digits of md5(seed:key) sort below this
        return {"seed": seed, "threshold": f"{int(percent / 100 * 16**8):08x}"}

    def _address(self, columns: tuple[str, ...], alias: str) -> exp.Expression:
        return exp.Trim(this=column(columns[0], alias))

    def _complete(self, columns: tuple[str, ...], alias: str) -> exp.Expression | None:
        """For addresses of several columns: every one of them is given."""
        return None


class Email(Channel):
    name = channel = "email"


class Sms(Channel):
    name = channel = "sms"


class Push(Channel):
    name = channel = "push"


class DirectMail(Channel):
    name = channel = "direct_mail"
    optional = ("columns", "per", "category", "frequency_cap", "control_group")

    def _content(self, activity, ctx: Context, names: dict[str, str], per: Per | None):
        r, path = ctx.reader, activity.path + ("columns",)
        if "template" in activity.spec:
            ctx.error(
                activity.path + ("template",), "direct mail has no template: list the extract's columns", at_key=True
            )
            return None, None
        values = r.list_of(path, activity.spec.get("columns", []), "columns")
        if values is None:
            return None, None
        used, ok = [], True
        for i, value in enumerate(values):
            name = value if isinstance(value, str) else ""
            alias, _, attribute = name.partition(".")
            if (per is not None and alias == per.alias and attribute in per.columns) or name in names:
                used.append(name)
            else:
                known = list(names) + ([f"{per.alias}.{c}" for c in per.columns] if per else [])
                r.error(path + (i,), f"unknown column {quoted(value)}{did_you_mean(name, known)}")
                ok = False
        return (used, None) if ok else (None, None)

    def _address(self, columns: tuple[str, ...], alias: str) -> exp.Expression:
        """The address columns joined by ", " (NULL when one is: it is then incomplete anyway)."""
        address = exp.Trim(this=column(columns[0], alias))
        for name in columns[1:]:
            address = exp.DPipe(
                this=exp.DPipe(this=address, expression=exp.Literal.string(", ")),
                expression=exp.Trim(this=column(name, alias)),
            )
        return address

    def _complete(self, columns: tuple[str, ...], alias: str) -> exp.Expression | None:
        return exp.and_(
            *[
                exp.NEQ(
                    this=exp.Coalesce(this=exp.Trim(this=column(c, alias)), expressions=[exp.Literal.string("")]),
                    expression=exp.Literal.string(""),
                )
                for c in columns
            ]
        )


def _value(name: str, table: WorkingTable) -> tuple[str, str, exp.Expression]:
    """A name a message uses, its model column's natural name, and where its value comes from."""
    alias, dot, attribute = name.partition(".")
    if dot:  # a column of the linked row
        return name, f"{alias}__{attribute}", column(attribute, PER_ALIAS)
    return name, name, column(name, WORKING_ALIAS if name in table.columns else DIMENSION_ALIAS)


def _model_columns(
    values: list[tuple[str | None, str, exp.Expression]], own: dict[str, exp.Expression | None]
) -> tuple[list[list[Any]], list[tuple[str, str]]]:
    """The columns to add to the models for `values` (name used or None, natural name, SQL), and the
    model column of each name used.

    A model has each column once — and DuckDB compares names without regard to case, even quoted.
    A value whose natural name is one of the model's `own` columns holding that same value (the
    recipient key, the linked row's key) is read from it; one whose name is taken by something else
    (`address` of the entity is not the message's `address`) is named `recipient__address` instead
    (`_2`, `_3`... should that be taken too).
    """
    holds = {name.lower(): (name, sql) for name, sql in own.items()}
    columns: list[list[Any]] = []
    placed: list[tuple[str, str]] = []
    for used, natural, sql in values:
        for name in _names_for(natural, sql):
            held = holds.get(name.lower())
            if held is None:
                holds[name.lower()] = (name, sql)
                columns.append([name, sql])
                break
            if held[1] == sql:
                name = held[0]
                break
        if used is not None:
            placed.append((used, name))
    return columns, placed


def _names_for(natural: str, sql: exp.Expression):
    yield natural
    base = natural if sql.table == PER_ALIAS else f"recipient__{natural}"
    yield base
    for n in itertools.count(2):
        yield f"{base}_{n}"


def _message_columns(
    table: WorkingTable, per_key: str | None, columns: list[list[Any]], *, with_reason: bool = False
) -> dict[str, str]:
    result = {"message_key": "text", table.key: table.columns[table.key]}
    if per_key:
        result[per_key] = ""
    result["address"] = "text"
    if with_reason:
        result["exclusion_reason"] = "text"
    result.update({c[0]: "" for c in columns})
    return result


TYPES = {t.name: t for t in (Email(), Sms(), Push(), DirectMail())}
