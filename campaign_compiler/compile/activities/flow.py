"""Flow control: `fork`, `and_join`, `or_join`, `test`, `wait`, `reaction` and `end` route rows without
changing them."""

from __future__ import annotations

from ...errors import did_you_mean
from ...project.channels import CHANNELS
from ...reader import quoted
from ...timing import sql_timestamp
from ..conditions import Scope
from ..plan import START, Activity, InputRef, ModelPlan, WorkingTable, ref
from .base import ActivityType, Context, first_holding, package_source, same_dimension

# what the events loaded into campaign_events say happened to a message
EVENTS = ("delivered", "open", "click", "bounce", "complaint", "unsubscribe")


class Fork(ActivityType):
    name = "fork"
    category = "flow"
    required = ("outputs",)

    def output_names(self, activity, r):
        value = activity.spec.get("outputs")
        if r.list_of(activity.path + ("outputs",), value, "outputs", min_items=1) is None:
            return []
        return self.named_outputs(
            activity, r, [(activity.path + ("outputs", i), v) for i, v in enumerate(value)], with_out=False
        )

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
            ctx.error(
                activity.path + ("main",), f"main must be one of the inputs ({', '.join(names)}), not {quoted(main)}"
            )
            return
        table = inputs[names.index(main)]
        out = ctx.output(activity, "out", table.dimension, dict(table.columns))
        activity.models.append(
            ModelPlan(out, "and_join", dict(inputs=[i.ref() for i in inputs], main=table.ref()), materialized="view")
        )


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
        activity.models.append(
            ModelPlan(out, "or_join", dict(inputs=[i.ref() for i in inputs], key=first.key, columns=list(columns)))
        )


class Test(ActivityType):
    name = "test"
    category = "flow"
    required = ("conditions",)
    optional = ("default",)

    def output_names(self, activity, r):
        conditions = activity.spec.get("conditions")
        names = []
        if isinstance(conditions, list):
            names = [
                (activity.path + ("conditions", i, "name"), c["name"])
                for i, c in enumerate(conditions)
                if isinstance(c, dict) and "name" in c
            ]
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
                whens.append(
                    query.expression(activity.source, cpath + ("when",), condition["when"], Scope.count(), what="when")
                )
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


class Wait(ActivityType):
    """Holds its input back: the population an occurrence puts in it is recorded (model
    `<campaign>__<id>__waiting`, kept across builds) and released `duration` later, or at `until`;
    the activities after it form a step of their own (compile/steps.py), built and sent then."""

    name = "wait"
    category = "flow"
    optional = ("duration", "until")

    def resolve(self, activity, inputs, ctx):
        table = inputs[0]
        out = ctx.output(activity, "out", table.dimension, dict(table.columns))
        release = ctx.releases.get(activity.id)
        if release is None:
            return  # its duration or until is wrong, reported with the steps
        waiting = WorkingTable(
            ctx.campaign,
            activity.id,
            "waiting",
            table.dimension,
            dict(table.columns),
            model_name=f"{out.model}__waiting",
        )
        ctx.check_name(activity, waiting.model)
        columns = list(table.columns)
        activity.models.append(
            ModelPlan(
                waiting,
                "wait",
                dict(
                    output="waiting",
                    columns=columns,
                    input=table.ref(),
                    offset_seconds=int(release.offset.total_seconds()),
                    floor=sql_timestamp(release.floor) if release.floor else None,
                ),
                materialized="incremental",
                counted=False,
                keyed=False,
                # rows are only ever added (each occurrence's, once), which every warehouse can do;
                # parquet: the file format Spark appends to (other adapters have none to choose)
                config={
                    "full_refresh": False,
                    "on_schema_change": "append_new_columns",
                    "incremental_strategy": "append",
                    "file_format": "parquet",
                },
                step=ctx.steps.get(table.activity, START),
            )
        )
        activity.models.append(
            ModelPlan(out, "wait", dict(output="out", columns=columns, waiting=ref(waiting.model)), step=activity.id)
        )


class Reaction(ActivityType):
    """Input rows split by what recipients did with a message of a channel activity (`of`) of the
    same occurrence: `yes` those whose message has the event (within a time of its sending, if
    given), `no` the others. The model reads the delivery log and the loaded events, not `of`'s
    models: the send step runs between them, and the lead's waits between the two steps."""

    name = "reaction"
    category = "flow"
    required = ("of", "event")
    optional = ("within",)

    def output_names(self, activity, r):
        return ["yes", "no"]

    def after(self, activity):
        of = activity.spec.get("of")
        return [InputRef(of, "out", activity.path + ("of",))] if isinstance(of, str) else []

    def resolve(self, activity, inputs, ctx):
        spec, path = activity.spec, activity.path
        errors = len(ctx.diagnostics)
        table = inputs[0]
        # both outputs have the input's columns, whatever else is wrong
        outputs = [ctx.output(activity, output, table.dimension, dict(table.columns)) for output in activity.outputs]
        of = self._channel_activity(activity, table, ctx)
        event = ctx.reader.choice(path + ("event",), spec.get("event"), "event", EVENTS)
        within = ctx.reader.duration(path + ("within",), spec["within"], "within") if "within" in spec else None
        if of is None or len(ctx.diagnostics) > errors:
            return
        args = dict(
            input=table.ref(),
            key=table.key,
            columns=list(table.columns),
            campaign=ctx.campaign,
            of=of.id,
            event=event,
            within_seconds=int(within.total_seconds()) if within else None,
            deliveries=package_source("campaign_deliveries"),
            events=package_source("campaign_events"),
        )
        for out in outputs:
            activity.models.append(ModelPlan(out, "reaction", {**args, "output": out.output}))

    @staticmethod
    def _channel_activity(activity: Activity, table: WorkingTable, ctx: Context) -> Activity | None:
        """The channel activity `of` names, when its messages go to the rows of the input's dimension;
        None otherwise (reported, unless `of` has errors of its own)."""
        path, name = activity.path + ("of",), activity.spec.get("of")
        channels = [a.id for a in ctx.activities.values() if a.type in CHANNELS]
        of = ctx.activities.get(name) if isinstance(name, str) else None
        listed = ", ".join(channels) or "it has none"
        if of is None:
            ctx.error(
                path,
                f"unknown activity {quoted(name)}{did_you_mean(str(name), channels)}: "
                f"of names a channel activity of this campaign ({listed})",
            )
            return None
        if of.type not in CHANNELS:
            ctx.error(
                path, f'"{of.id}" ({of.type}) is not a channel activity: of names one of this campaign ({listed})'
            )
            return None
        recipients = of.tables.get("out")
        if recipients is None:
            return None  # the channel activity could not be resolved, and says why
        if recipients.dimension.name != table.dimension.name:
            ctx.error(
                activity.inputs[0].path,
                f'"{activity.inputs[0]}" is made of {table.dimension.name} but "{of.id}" messages '
                f"{recipients.dimension.name}: a reaction reads the recipients of its channel activity",
            )
            return None
        return of
