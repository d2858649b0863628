"""Running a campaign's occurrences: a step at a time (build, count, send), and what is due when.

`campaign run` runs the start step of one occurrence; `campaign tick` runs everything due at its
time, oldest first: scheduled slots, waits whose release has come, steps to try again. Each step
of each occurrence runs once to success: its row in campaign_occurrences says where it stands
(run.occurrences), and the delivery log says which of its messages are sent (send.log), so a
second tick at the same time runs nothing, and a tick killed mid-send is resumed by the next one
without sending anything twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from .compile.plan import START, Campaign
from .console import Console, plural
from .errors import Diagnostic, InvalidInput, RuntimeFailure
from .project.target import DbtTarget, connect
from .run.occurrences import Agenda, DueStep, OccurrenceLog, agenda
from .timing import ONCE, format_duration, occurrence_instant, occurrence_name, sql_timestamp
from .workspace import Workspace


@dataclass
class SendOptions:
    simulate: bool = False
    yes: bool = False
    occurrence: str | None = None  # None: the campaign's current one (see resolve_occurrence)
    resend_unknown: bool = False
    retry_failed: bool = False


@dataclass
class StepRun:
    """What running one step of one occurrence did."""

    due: DueStep
    result: object = None  # run.counts.CountResult
    report: object = None  # send.sender.SendReport
    waits: list[tuple[str, datetime, int]] = field(default_factory=list)  # (wait, release, population) recorded
    error: str | None = None


def resolve_occurrence(campaign: Campaign, given: str | None, now: datetime) -> tuple[str, datetime]:
    """(occurrence, its time) for a run at `now`: a scheduled campaign's is one of its slots (by default
    the latest at or before `now`), at the slot's time; an unscheduled one's is `given` or `once`, at `now`."""
    schedule = campaign.schedule
    if schedule is None:
        return given or ONCE, now
    if given is None:
        slot = schedule.latest(now)
        if slot is None:
            raise InvalidInput(
                [Diagnostic(None, f"{campaign.name} has no scheduled slot at or before {occurrence_name(now)} yet")]
            )
        return occurrence_name(slot), slot
    slot = occurrence_instant(given)
    if slot is None or not schedule.is_slot(slot):
        raise InvalidInput(
            [
                Diagnostic(
                    None,
                    f'occurrence "{given}" is not a slot of {campaign.name}\'s schedule ({schedule.describe()}): '
                    f"its occurrences are named by their UTC time, as {occurrence_name(schedule.latest(now) or now)}",
                )
            ]
        )
    return given, slot


@contextmanager
def occurrence_log(where: DbtTarget, lock) -> Iterator[OccurrenceLog]:
    """The occurrence log, written under the campaign's `lock` (through its session when it has one)."""
    if lock.session is not None:
        yield OccurrenceLog(lock.session, lock)
        return
    with connect(where) as warehouse:
        yield OccurrenceLog(warehouse, lock)


def run_step(
    workspace: Workspace,
    where: DbtTarget,
    campaign: Campaign,
    lock,
    due: DueStep,
    sending: SendOptions,
    console: Console,
    now: datetime,
) -> StepRun:
    """Build, count and send one step of one occurrence under the campaign's `lock`; its row in the
    occurrence log says `running` meanwhile, then `succeeded` or `failed`. A simulation records nothing
    there. RuntimeFailure (recorded) when the step did not succeed."""
    done = StepRun(due)
    record = not sending.simulate
    run_id = uuid.uuid4().hex
    begun = record and _begin(where, lock, due, run_id, now)
    try:
        done.result = build_step(workspace, where, campaign, due, console, sending.simulate)
        if record:
            if not begun:  # the first build on this target has just created the log
                _begin(where, lock, due, run_id, now)
            done.waits = _enter_waits(where, lock, campaign, due, now)
        console.counts(done.result)
        for wait, release, entered in done.waits:
            rows = "1 row waits" if entered == 1 else f"{entered:,} rows wait"
            console.say(f"{rows} in {wait} until {occurrence_name(release)}.")
        done.report = send_step(workspace, where, lock, campaign, due, sending, done.result.channels, console)
    except (RuntimeFailure, KeyboardInterrupt) as failure:
        done.error = str(failure) or type(failure).__name__
        if record:
            _finish(where, lock, due, "failed", now, done.error, None)
        raise
    if record:
        _finish(where, lock, due, "succeeded", now, None, _step_counts(done))
    return done


def _begin(where: DbtTarget, lock, due: DueStep, run_id: str, now: datetime) -> bool:
    """Mark the step running; False when the log does not exist yet (dbt creates it with the first build)."""
    with occurrence_log(where, lock) as log:
        if not log.exists():
            return False
        log.begin(due.campaign, due.occurrence, due.step, due.at, run_id, now)
        return True


def _finish(where, lock, due: DueStep, status: str, now: datetime, detail, counts) -> None:
    try:
        with occurrence_log(where, lock) as log:
            if log.exists():
                log.finish(due.campaign, due.occurrence, due.step, status, now, detail, counts)
    except RuntimeFailure:
        if status == "succeeded":
            raise  # a failure's own record is best effort: the step's row stays running, tried again


def build_step(
    workspace: Workspace, where: DbtTarget, campaign: Campaign, due: DueStep, console: Console, simulate: bool
):
    """Build and count one step of an occurrence; a simulation (or a preview: `count`) records nobody
    in the waits."""
    from .run.counts import build_and_count

    return build_and_count(
        campaign,
        workspace,
        where,
        console.building,
        due.occurrence,
        notify=console.note,
        now=due.at,
        step=due.step,
        simulate=simulate,
    )


def _enter_waits(
    where: DbtTarget, lock, campaign: Campaign, due: DueStep, now: datetime
) -> list[tuple[str, datetime, int]]:
    """Record the populations this step put in its waits (each once per occurrence), with their release."""
    from .run.state import CampaignBuild

    entered = []
    with occurrence_log(where, lock) as log:
        warehouse = log.warehouse
        build = CampaignBuild(campaign, warehouse, where.target)
        for wait in campaign.waits:
            waiting = next(m for m in campaign.activities[wait].models if m.table.output == "waiting")
            if waiting.step != due.step:
                continue
            relation = build.require([waiting.name])[waiting.name]
            ((rows,),) = warehouse.query(
                f"select count(*) from {relation} where _campaign_occurrence = %s", (due.occurrence,)
            )
            release = campaign.releases[wait].at(due.at)
            if log.waiting(campaign.name, due.occurrence, wait, release, int(rows), now):
                entered.append((wait, release, int(rows)))
    return entered


def _step_counts(done: StepRun) -> dict:
    counts = {"counts": done.result.as_json()["counts"], "channels": done.result.channels}
    if done.report is not None:
        counts["sent"] = {a.activity: a.as_json() for a in done.report.activities}
    return counts


def send_step(workspace, where, lock, campaign: Campaign, due: DueStep, sending: SendOptions, channels, console):
    """Confirm what `channels` announces of the step's channel activities, send it, show the report;
    RuntimeFailure unless every message handled was settled. The send report, or None (no channel)."""
    from .send.sender import send_campaign

    activities = campaign.channel_activities(due.step)
    if not activities:
        console.say(f"{campaign.name}: no channel activity in this step, nothing to send.")
        return None
    announced = {a.id: channels[a.id] for a in activities}
    total = sum(c["messages"] for c in announced.values())
    what = ", ".join(f"{c['messages']:,} {c['channel']} ({activity})" for activity, c in announced.items())
    if not (sending.yes or sending.simulate):
        console.confirm(f"Send {what} for campaign {campaign.name}, occurrence {due.occurrence}?")
    progress = console.sending(sending.simulate)
    try:
        report = send_campaign(
            campaign,
            workspace,
            where,
            lock,
            occurrence=due.occurrence,
            simulate=sending.simulate,
            resend_unknown=sending.resend_unknown,
            retry_failed=sending.retry_failed,
            progress=progress,
            announced={activity: c["messages"] for activity, c in announced.items()},
            step=due.step,
        )
    finally:
        progress.stop()
    console.send_report(report)
    check_settled(report)
    if total == 0:
        console.say("No message to send.")
    return report


def check_settled(report) -> None:
    """RuntimeFailure when the send stopped early, or left messages failed or with an unknown outcome:
    a run that did not settle all it handled is not a success for a script or a scheduler."""
    if report.stopped:
        raise RuntimeFailure(f"{report.stopped}; the messages it did not take are left for the next run")
    failed, lost = sum(a.failed for a in report.activities), sum(a.lost for a in report.activities)
    if failed or lost:
        problems = (
            [
                f"{plural(failed, 'message')} failed (the reason of each is in campaign_deliveries.error"
                + ("" if report.simulate else "; --retry-failed sends them again")
                + ")"
            ]
            if failed
            else []
        )
        if lost:
            problems.append(
                f"{plural(lost, 'message')} may have been delivered, the provider's answer lost "
                "(left unknown; --resend-unknown sends them again)"
            )
        raise RuntimeFailure("; ".join(problems))


# -- what is due, and the tick ------------------------------------------------------------------
def agendas(campaigns: list[Campaign], where: DbtTarget, now: datetime) -> dict[str, Agenda]:
    """What each campaign has due at `now`, as the target's occurrence log says."""
    with connect(where) as warehouse:
        log = OccurrenceLog(warehouse)
        return {campaign.name: agenda(campaign, log.records(campaign.name), now) for campaign in campaigns}


def describe_due(campaign: Campaign, due: DueStep) -> str:
    """`2026-03-02T07:00:00Z  start (slot)` as `due` lists it."""
    what = "start" if due.step == START else f"after wait {due.step}"
    if due.step != START:
        release = campaign.releases.get(due.step)
        if release is not None and release.offset:
            what += f" ({format_duration(release.offset)})"
    return f"{due.occurrence}: {what}, due {sql_timestamp(due.at)} UTC ({due.why})"


@dataclass
class TickReport:
    ran: list[StepRun] = field(default_factory=list)
    skipped: list[DueStep] = field(default_factory=list)  # slots missed for longer than their catch-up
    failed: list[tuple[str, str]] = field(default_factory=list)  # (campaign, why): its later steps wait


def tick(
    workspace: Workspace,
    where: DbtTarget,
    campaigns: list[Campaign],
    now: datetime,
    sending: SendOptions,
    console: Console,
) -> TickReport:
    """Run everything due at `now` of `campaigns` (those with something due or missed), campaign by
    campaign, oldest first; record the slots missed for too long as skipped. A step that fails stops
    its campaign's later steps (they run after it, at a later tick); the other campaigns go on."""
    from .run.lock import CampaignLock

    report = TickReport()
    for campaign in campaigns:
        try:
            with CampaignLock(where, campaign.name) as lock:
                planned = agendas([campaign], where, now)[campaign.name]  # as it stands under the lock
                _skip(where, lock, planned.missed, now, sending, report, console)
                for due in planned.due:
                    console.say(f"{campaign.name} {describe_due(campaign, due)}")
                    report.ran.append(run_step(workspace, where, campaign, lock, due, sending, console, now))
        except RuntimeFailure as failure:
            report.failed.append((campaign.name, str(failure)))
            console.say(f"{campaign.name}: {failure}; its later steps wait for the next tick")
    return report


def _skip(where, lock, missed: list[DueStep], now: datetime, sending: SendOptions, report: TickReport, console):
    if not missed:
        return
    from .run.dbt import create_tables

    report.skipped += missed
    first, last = missed[0].occurrence, missed[-1].occurrence
    span = first if first == last else f"{first} to {last}"
    console.say(
        f"{missed[0].campaign}: skipped {plural(len(missed), 'slot')} missed for longer than the schedule's "
        f"catch-up ({span}); run one by hand with `campaign run {missed[0].campaign} --occurrence <slot>`"
    )
    if sending.simulate:
        return
    with occurrence_log(where, lock) as log:
        exists = log.exists()
    if not exists:  # a first tick on this target: no build created the log yet
        create_tables(where)
    with occurrence_log(where, lock) as log:
        for slot in missed:
            log.skip(slot, now, "missed for longer than the schedule's catch-up")
