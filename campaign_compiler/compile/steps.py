"""Steps: the parts of a campaign that waits hold back.

A campaign without wait is one step, `start`, run when its occurrence comes. Each `wait` begins a
step of its own: the activities after it run when the population an occurrence put in it is
released (its duration after the population entered it, or at its `until`), on exactly that population. A step reads only its own working tables (and the data
model, the delivery log): the tables of an earlier step are rebuilt by later occurrences meanwhile,
so an activity cannot join rows of two steps, and a reaction can read only the messages of an
earlier step (recipients had no time to react to those of its own).
"""

from __future__ import annotations

from datetime import timedelta

from ..reader import Reader, quoted
from ..timing import parse_instant
from .plan import START, Activity, Release

WAIT = "wait"
REACTION = "reaction"
CHANNEL_TYPES = ("email", "sms", "push", "direct_mail")


def read_steps(r: Reader, activities: dict[str, Activity], order: list[str]) -> tuple[dict[str, str], dict]:
    """(the step of each activity, the release of each wait), every mistake reported at its place."""
    steps: dict[str, str] = {}
    releases: dict[str, Release] = {}
    for activity_id in order:
        activity = activities[activity_id]
        upstream = [ref for ref in activity.inputs if ref.activity in steps]
        before = {steps[ref.activity] for ref in upstream}
        step = START if not before else sorted(before)[0]
        if len(before) > 1:
            names = ", ".join(f'"{ref}" ({_step_name(steps[ref.activity])})' for ref in upstream)
            r.error(
                activity.path + ("inputs",),
                f"{activity.type} joins rows that different waits release: {names}; join them before the waits, "
                "or after one wait",
            )
        if activity.type == WAIT:
            timing = wait_timing(r, activity)
            if timing is not None:
                duration, until = timing
                releases[activity_id] = Release(duration or timedelta(0), until)
                step = activity_id
        steps[activity_id] = step
    for activity in activities.values():
        if activity.type == REACTION and activity.id in steps:
            _check_reaction(r, activity, activities, steps)
    return steps, releases


def wait_timing(r: Reader, activity: Activity) -> tuple | None:
    """(duration, until) of a wait, one of them given; None when wrong (reported)."""
    spec, path = activity.spec, activity.path
    given = [key for key in ("duration", "until") if key in spec]
    if len(given) != 1:
        r.error(
            path,
            f'wait "{activity.id}" needs either "duration" (3d, 12h, 30m) or "until" (an ISO time), '
            + ("not both" if given else "and has neither"),
            at_key=True,
        )
        return None
    if given == ["duration"]:
        duration = r.duration(path + ("duration",), spec["duration"], "duration")
        return (duration, None) if duration is not None else None
    until = parse_instant(spec["until"])
    if until is None:
        r.error(
            path + ("until",), f"until must be an ISO 8601 time (2026-03-02T08:00:00Z), not {quoted(spec['until'])}"
        )
        return None
    return None, until


def _check_reaction(r: Reader, activity: Activity, activities: dict[str, Activity], steps: dict[str, str]) -> None:
    """The channel a reaction reads must be sent in an earlier step than the reaction's."""
    of = activity.spec.get("of")
    if not isinstance(of, str) or of not in steps or activities[of].type not in CHANNEL_TYPES:
        return  # the reaction reports a wrong `of`
    if activity.id in _upstream(activities, of):
        return  # nor can it come after the reaction, which the reaction reports too
    step, earlier = steps[activity.id], steps[of]
    chain = []
    while step != START:
        step = steps[activities[step].inputs[0].activity] if activities[step].inputs else START
        chain.append(step)
    if earlier not in chain:
        r.error(
            activity.path + ("of",),
            f'reaction "{activity.id}" reads the events of "{of}", which is not sent before a wait on the way to '
            f"it: put a wait between them, so that recipients have time to react",
        )


def _upstream(activities: dict[str, Activity], activity: str) -> set[str]:
    """The activities whose rows flow into `activity`."""
    found: set[str] = set()
    todo = [activity]
    while todo:
        for ref in activities[todo.pop()].inputs:
            if ref.activity not in found and ref.activity in activities:
                found.add(ref.activity)
                todo.append(ref.activity)
    return found


def _step_name(step: str) -> str:
    return "no wait" if step == START else f"wait {step}"
