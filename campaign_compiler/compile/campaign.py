"""Campaign files: parsed, their transitions checked as a DAG, each activity resolved.

Resolution walks the activities in topological order; each activity type (activities/) checks
its parameters against the working tables it receives and produces its own working tables and
the dbt models that build them. An activity with errors still produces the working tables whose
columns it knows for certain (a split with a wrong condition: its input's columns), so the
activities reading them are checked in the same run; one that cannot know them (an unknown
dimension) produces none, and the activities reading it are skipped. Either way one mistake gives
one error, not a cascade.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import Diagnostics, did_you_mean
from ..project.datamodel import DataModel
from ..project.dbt import DbtProject
from ..reader import Reader, quoted
from ..yamlsrc import Path_, Source
from . import activities
from .activities import PLANNED_TYPES, Context, channels
from .plan import Activity, Campaign, InputRef, WorkingTable
from .schedule import read_schedule
from .steps import WAIT, read_steps

TYPES = {**activities.TYPES, **channels.TYPES}
CAMPAIGN_KEYS = ("campaign", "description", "dimension", "owner", "schedule", "activities")
COMMON_ACTIVITY_KEYS = ("type", "description")
_REFERENCE = re.compile(r"^([a-z][a-z0-9_]{0,39})(?:\.([a-z][a-z0-9_]{0,39}))?$")


@dataclass
class AudienceSource:
    """Where a saved audience comes from: the campaign and model that persist it, and its table."""

    campaign: Campaign
    model: str
    table: WorkingTable


def load_campaign(
    source: Source,
    model: DataModel | None,
    dbt: DbtProject,
    diagnostics: Diagnostics,
    audiences: Callable[[str], AudienceSource | str],
) -> Campaign | None:
    """The campaign, its activities resolved; with no data model (it has errors) only its structure is
    checked: names, keys, activity types and transitions."""
    r = Reader(source, diagnostics)
    raw = r.mapping((), source.data, "a campaign file", required=("campaign", "activities"), optional=CAMPAIGN_KEYS[1:])
    if raw is None:
        return None
    name = r.name_part(("campaign",), raw["campaign"], "campaign name") if "campaign" in raw else None
    description = raw.get("description") or ""
    if not isinstance(description, str):
        r.error(("description",), "description must be text")
        description = ""
    dimension = _dimension(r, raw.get("dimension"), model) if model is not None else None
    owner = {}
    if "owner" in raw:
        owner = r.mapping(("owner",), raw["owner"], "owner", optional=("name", "email")) or {}
        for key, value in owner.items():
            r.string(("owner", key), value, f"owner {key}")
    schedule = read_schedule(r, ("schedule",), raw["schedule"]) if "schedule" in raw else None
    activities = _activities(r, raw.get("activities"))
    if name is None or activities is None:
        return None
    order = _topological_order(r, activities)
    steps, releases = read_steps(r, activities, order)
    campaign = Campaign(
        name=name,
        description=description,
        dimension=dimension or "",
        source=source,
        activities=activities,
        order=order,
        owner={k: v for k, v in owner.items() if isinstance(v, str)},
        steps=steps,
        releases=releases,
        schedule=schedule,
    )
    if model is None or dimension is None:
        return campaign  # resolving against a broken data model or no dimension would report follow-on errors

    def audience(name: str) -> AudienceSource | str:
        found = audiences(name)
        if isinstance(found, AudienceSource):
            campaign.audiences[name] = found
        return found

    ctx = Context(
        campaign=name,
        default_dimension=dimension,
        model=model,
        dbt=dbt,
        diagnostics=diagnostics,
        reader=r,
        audiences=audience,
        steps=steps,
        releases=releases,
        activities=activities,
    )
    _resolve(r, activities, order, ctx)
    _place_models(campaign)
    return campaign


def _place_models(campaign: Campaign) -> None:
    """Each model in the step of its activity; a wait places its own (it records in its input's
    step, releases in its own)."""
    for activity in campaign.ordered():
        if activity.type != WAIT:
            for plan in activity.models:
                plan.step = campaign.steps[activity.id]


def _resolve(r: Reader, activities: dict[str, Activity], order: list[str], ctx: Context) -> None:
    """Each activity resolved, in `order`; one that is broken, or reads a table that could not be made or
    has no key, is skipped."""
    for activity_id in order:
        activity = activities[activity_id]
        inputs = [activities[ref.activity].tables.get(ref.output) for ref in activity.inputs]
        if activity.broken or any(table is None for table in inputs):
            continue  # an input could not be made and has said why
        keyless = [ref for ref, table in zip(activity.inputs, inputs) if not table.key]
        for ref in keyless:
            r.error(ref.path, f'"{ref}" holds rows of a model without a key; no activity can read it')
        if keyless:
            continue
        TYPES[activity.type].resolve(activity, inputs, ctx)


def _dimension(r: Reader, dimension, model: DataModel) -> str | None:
    if dimension is None:
        return next(iter(model.entities), None)  # the data model's first entity
    if dimension not in model.entities:
        r.error(
            ("dimension",),
            f"unknown dimension {quoted(dimension)}: not an entity of campaign_project.yml"
            f"{did_you_mean(str(dimension), model.entities)}",
        )
        return None
    return dimension


def _activities(r: Reader, raw) -> dict[str, Activity] | None:
    raw = r.mapping(("activities",), raw, "activities")
    if raw is None:
        return None
    if not raw:
        r.error(("activities",), "a campaign needs at least one activity")
        return None
    activities: dict[str, Activity] = {}
    for activity_id, spec in raw.items():
        path = ("activities", activity_id)
        if r.identifier(path, activity_id, "activity id", at_key=True) is None:
            continue
        # an id that would make ambiguous model names is kept, as a broken activity (below)
        named = r.name_part(path, activity_id, "activity id", at_key=True) is not None
        if not isinstance(spec, dict):
            r.error(path, f'activity "{activity_id}" must be a mapping with a "type"')
            continue
        type_name = _type_name(r, path, activity_id, spec)
        if type_name is None:
            continue
        kind = TYPES[type_name]
        required, optional = kind.keys
        complete = (
            r.mapping(
                path,
                spec,
                f'{type_name} activity "{activity_id}"',
                required=required,
                optional=COMMON_ACTIVITY_KEYS + optional,
            )
            is not None
        )
        description = spec.get("description") or ""
        activity = Activity(
            id=activity_id,
            type=type_name,
            spec=spec,
            path=path,
            source=r.source,
            description=description if isinstance(description, str) else "",
        )
        activity.outputs = kind.output_names(activity, r)
        activity.inputs = _input_refs(r, activity, kind.inputs_key)
        activity.after = kind.after(activity)
        # kept, so that transitions to it are not reported as unknown, but never resolved
        activity.broken |= not complete or not named
        activities[activity_id] = activity
    _check_references(r, activities)
    _check_after(r, activities)
    return activities


def _type_name(r: Reader, path: Path_, activity_id: str, spec: dict) -> str | None:
    """The activity's type, one this version resolves; None when it is missing, unknown or planned (reported)."""
    type_name = spec.get("type")
    if type_name in PLANNED_TYPES:
        r.error(
            path + ("type",),
            f'activity type "{type_name}" is not supported yet by this version of campaign-compiler',
        )
        return None
    if type_name not in TYPES:
        shown = f'"{type_name}"' if isinstance(type_name, str) else "missing"
        r.error(
            path + ("type",) if "type" in spec else path,
            f"unknown activity type {shown}"
            f"{did_you_mean(type_name, [*TYPES, *PLANNED_TYPES]) if isinstance(type_name, str) else ''}"
            if "type" in spec
            else f'activity "{activity_id}" needs a "type"',
        )
        return None
    return type_name


def _input_refs(r: Reader, activity: Activity, inputs_key: str | None) -> list[InputRef]:
    if inputs_key is None or inputs_key not in activity.spec:
        return []
    path = activity.path + (inputs_key,)
    value = activity.spec[inputs_key]
    if inputs_key == "input":
        items = [(path, value)]
    else:
        if r.list_of(path, value, '"inputs"', min_items=2) is None:
            activity.broken = True
            return []
        items = [(path + (i,), item) for i, item in enumerate(value)]
    refs = []
    for item_path, item in items:
        match = _REFERENCE.match(item) if isinstance(item, str) else None
        if match is None:
            r.error(item_path, f"an input is written <activity> or <activity>.<output>, not {quoted(item)}")
            activity.broken = True
            continue
        refs.append(InputRef(match.group(1), match.group(2) or "out", item_path))
    return refs


def _check_references(r: Reader, activities: dict[str, Activity]) -> None:
    for activity in activities.values():
        valid = []
        for ref in activity.inputs:
            upstream = activities.get(ref.activity)
            if upstream is None:
                r.error(ref.path, f'unknown activity "{ref.activity}"{did_you_mean(ref.activity, activities)}')
            elif ref.activity == activity.id:
                r.error(ref.path, f'activity "{activity.id}" cannot be its own input')
            elif upstream.broken:
                valid.append(ref)  # its own errors are reported; this one waits for them
            elif ref.output not in upstream.outputs:
                if upstream.outputs == []:
                    r.error(ref.path, f'"{ref.activity}" ({upstream.type}) has no output to read')
                elif ref.output == "out":
                    names = ", ".join(f"{ref.activity}.{o}" for o in upstream.outputs)
                    r.error(ref.path, f'"{ref.activity}" ({upstream.type}) has several outputs; read one of {names}')
                else:
                    r.error(
                        ref.path,
                        f'"{ref.activity}" has no output "{ref.output}"{did_you_mean(ref.output, upstream.outputs)}',
                    )
            else:
                valid.append(ref)
        if len(valid) != len(activity.inputs):
            activity.inputs = valid
            activity.broken = True


def _check_after(r: Reader, activities: dict[str, Activity]) -> None:
    """Keep the activities each one comes after that exist and are not downstream of it (an activity
    named wrongly is the activity type's to report, when it resolves); one downstream is an error."""
    for activity in activities.values():
        kept = []
        for ref in activity.after:
            if ref.activity not in activities or ref.activity == activity.id:
                continue
            if activity.id in _upstream(ref.activity, activities):
                r.error(
                    ref.path,
                    f'"{ref.activity}" is downstream of "{activity.id}": a {activity.type} reads an activity '
                    "that comes before it",
                )
                activity.broken = True
                continue
            kept.append(ref)
        activity.after = kept


def _upstream(activity_id: str, activities: dict[str, Activity]) -> set[str]:
    """The activities whose tables `activity_id` reads, directly or not."""
    seen: set[str] = set()
    pending = [activity_id]
    while pending:
        for ref in activities[pending.pop()].inputs:
            if ref.activity in activities and ref.activity not in seen:
                seen.add(ref.activity)
                pending.append(ref.activity)
    return seen


def _topological_order(r: Reader, activities: dict[str, Activity]) -> list[str]:
    """Activities in file order as far as the transitions allow; each cycle is reported once."""
    remaining = {a: {ref.activity for ref in (*act.inputs, *act.after)} for a, act in activities.items()}
    order: list[str] = []
    placed: set[str] = set()
    progress = True
    while progress:
        progress = False
        for a, deps in list(remaining.items()):
            if deps <= placed:  # the first activity of the file whose inputs are all placed
                order.append(a)
                placed.add(a)
                del remaining[a]
                progress = True
                break
    reported: set[str] = set()
    for start in remaining:
        if start in reported:
            continue
        cycle = _find_cycle(start, activities, set(remaining))
        if cycle:
            reported.update(cycle)
            first = activities[cycle[0]]
            closing = next(ref for ref in (*first.inputs, *first.after) if ref.activity == cycle[1 % len(cycle)])
            # cycle[i] reads cycle[i + 1]: data flows the other way round
            r.error(closing.path, "transitions form a cycle: " + " -> ".join(reversed(cycle + [cycle[0]])))
    return order


def _find_cycle(start: str, activities: dict[str, Activity], candidates: set[str]) -> list[str] | None:
    path, seen = [start], {start}
    current = start
    while True:
        before = activities[current]
        nexts = [ref.activity for ref in (*before.inputs, *before.after) if ref.activity in candidates]
        if not nexts:
            return None
        current = nexts[0]
        if current in seen:
            return path[path.index(current) :]
        path.append(current)
        seen.add(current)
