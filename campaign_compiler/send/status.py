"""What `campaign status` shows of a campaign on a target, read from the tables its runs write there.

* its occurrences, latest first: each step (`start`, then one per wait its population entered),
  when it is due, where it stands, the population that entered a wait, why a step failed;
* the populations waiting in its waits, with their release;
* the events loaded for its messages, by kind;
* the funnel of each channel activity, totals over every occurrence: the candidates it targeted
  (its messages and the candidates excluded, by reason — as each step recorded them when it ran,
  else as the models built on the target hold them), the messages sent, failed and of unknown
  outcome (the delivery log), and the messages with each kind of event;
* its runs and its deliveries by occurrence.

Each table is read only when it exists: on a target where nothing ran, the status is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..compile.contract import EXCLUSION_ORDER
from ..compile.plan import START, Campaign
from ..engines.warehouse import Warehouse
from ..run.counts import channel_counts
from ..run.occurrences import OccurrenceLog, StepRecord, Waiting, waiting_in
from ..run.state import recorded
from ..timing import from_warehouse, occurrence_name
from .log import DeliveryLog

EVENT_KINDS = ("delivered", "open", "click", "bounce", "complaint", "unsubscribe")
OCCURRENCES_SHOWN = 10


@dataclass
class Funnel:
    """One channel activity's messages over every occurrence, from targeting to reactions."""

    activity: str
    channel: str
    targeted: int | None = None  # messages + excluded candidates; None when never counted
    excluded: dict[str, int] = field(default_factory=dict)
    deliveries: dict[str, int] = field(default_factory=dict)  # messages by status in the delivery log
    events: dict[str, int] = field(default_factory=dict)  # messages with each kind of event

    def as_json(self) -> dict:
        return {
            "channel": self.channel,
            "targeted": self.targeted,
            "excluded": self.excluded,
            "sent": self.deliveries.get("sent", 0),
            "failed": self.deliveries.get("failed", 0),
            "unknown": self.deliveries.get("pending", 0),
            "simulated": self.deliveries.get("simulated", 0),
            "events": self.events,
        }


@dataclass
class CampaignStatus:
    campaign: str
    target: str
    steps: list[StepRecord]  # of the latest occurrences, latest first
    occurrences: int  # how many the campaign has recorded
    waits: dict[str, Waiting]  # of each wait
    waiting: list[StepRecord]  # the populations waiting, next release first
    events: dict[str, tuple[int, int]]  # kind -> (events, messages with it)
    funnels: list[Funnel]
    targeted_from: str | None  # "occurrences" (what each step recorded), "build" (the models), or None
    built: bool  # whether any of its models is built on the target
    runs: list[tuple]  # latest first, as DeliveryLog.runs
    deliveries: list[tuple]  # of the latest occurrences, as DeliveryLog.totals

    @property
    def empty(self) -> bool:
        """Whether nothing of the campaign is on the target: not built, never run."""
        return not (self.steps or self.runs or self.deliveries or self.events or self.built)

    def as_json(self) -> dict:
        return {
            "campaign": self.campaign,
            "target": self.target,
            "occurrences": [_step_json(r) for r in self.steps],
            "occurrences_recorded": self.occurrences,
            "waits": {
                wait: {
                    "population": w.rows,
                    "occurrences": w.occurrences,
                    "next_release": occurrence_name(w.next_release) if w.next_release else None,
                }
                for wait, w in self.waits.items()
            },
            "waiting": [
                {
                    "wait": r.step,
                    "occurrence": r.occurrence,
                    "release": occurrence_name(r.due_at),
                    "population": r.entered,
                }
                for r in self.waiting
            ],
            "events": {kind: {"events": n, "messages": m} for kind, (n, m) in self.events.items()},
            "funnel": {f.activity: f.as_json() for f in self.funnels},
            "targeted_from": self.targeted_from,
            "runs": [_run_json(run) for run in self.runs],
            "deliveries": [
                {"occurrence": o, "activity": a, "channel": c, "status": s, "messages": n}
                for o, a, c, s, n in self.deliveries
            ],
        }


def read_status(campaign: Campaign, warehouse: Warehouse, shown: int = OCCURRENCES_SHOWN) -> CampaignStatus:
    """The status of `campaign` on the warehouse's target, with the steps of its `shown` latest occurrences."""
    records = OccurrenceLog(warehouse).records(campaign.name)
    log = DeliveryLog(warehouse)
    logged = log.exists()
    runs, totals = (log.runs(campaign.name), log.totals(campaign.name)) if logged else ([], [])
    events = log.events(campaign.name) if logged else []
    latest = _latest_occurrences(records, shown)
    built = {name: node.relation for name, node in recorded(warehouse, campaign.name).items()}
    funnels, targeted_from = _funnels(campaign, warehouse, records, totals, events, built)
    return CampaignStatus(
        campaign.name,
        warehouse.target_name,
        _steps(campaign, records, latest),
        len({r.occurrence for r in records}),
        waiting_in(campaign, records),
        [r for r in sorted(records, key=lambda r: (r.due_at, r.occurrence)) if r.status == "waiting"],
        _events_by_kind(events),
        funnels,
        targeted_from,
        bool(built),
        runs,
        _latest_deliveries(totals, shown),
    )


def _latest_deliveries(totals: list[tuple], shown: int) -> list[tuple]:
    """The delivery totals of the `shown` latest occurrences that have deliveries (totals come latest first)."""
    kept: list[str] = []
    for occurrence, *_ in totals:
        if occurrence not in kept:
            kept.append(occurrence)
    return [row for row in totals if row[0] in kept[:shown]]


def _latest_occurrences(records: list[StepRecord], shown: int) -> list[str]:
    """The `shown` latest occurrences, latest first; an occurrence's time is that of its first step."""
    first: dict[str, tuple] = {}
    for r in records:
        first[r.occurrence] = min(first.get(r.occurrence, (r.due_at, r.occurrence)), (r.due_at, r.occurrence))
    return sorted(first, key=lambda o: first[o], reverse=True)[:shown]


def _steps(campaign: Campaign, records: list[StepRecord], latest: list[str]) -> list[StepRecord]:
    """The steps of the `latest` occurrences, in that order; in an occurrence, in the campaign's order."""
    order = [START, *campaign.waits]
    rank = {occurrence: i for i, occurrence in enumerate(latest)}
    chosen = [r for r in records if r.occurrence in rank]
    return sorted(
        chosen, key=lambda r: (rank[r.occurrence], order.index(r.step) if r.step in order else len(order), r.step)
    )


def _events_by_kind(events: list[tuple]) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for _, kind, count, messages in events:
        before = found.get(kind, (0, 0))
        found[kind] = (before[0] + int(count), before[1] + int(messages))
    return {kind: found[kind] for kind in sorted(found, key=_kind_rank)}


def _kind_rank(kind: str) -> tuple:
    return (EVENT_KINDS.index(kind) if kind in EVENT_KINDS else len(EVENT_KINDS), kind)


def _funnels(
    campaign: Campaign,
    warehouse: Warehouse,
    records: list[StepRecord],
    totals: list[tuple],
    events: list[tuple],
    built: dict[str, str],
) -> tuple[list[Funnel], str | None]:
    """The funnel of each channel activity, and where its targeted candidates were counted (`built`:
    the relation of each model built on the target)."""
    funnels = {a.id: Funnel(a.id, a.message.channel) for a in campaign.channel_activities()}
    counted = [r.counts["channels"] for r in records if r.counts.get("channels")]
    targeted_from = "occurrences" if counted else None
    if not counted:
        counted = [channel_counts(warehouse, built, campaign)]  # whatever occurrence they were built for
        targeted_from = "build" if counted[0] else None
    for channels in counted:
        for activity, counts in channels.items():
            if activity not in funnels:
                continue  # an activity the campaign no longer has
            funnel = funnels[activity]
            excluded = counts.get("excluded", {})
            funnel.targeted = (funnel.targeted or 0) + counts["messages"] + sum(excluded.values())
            for reason, number in excluded.items():
                funnel.excluded[reason] = funnel.excluded.get(reason, 0) + number
    for funnel in funnels.values():
        funnel.excluded = {r: funnel.excluded[r] for r in EXCLUSION_ORDER if r in funnel.excluded}
    for _, activity, _, state, number in totals:
        if activity in funnels:
            funnels[activity].deliveries[state] = funnels[activity].deliveries.get(state, 0) + int(number)
    for activity, kind, _, messages in sorted(events, key=lambda e: _kind_rank(e[1])):
        if activity in funnels:
            funnels[activity].events[kind] = int(messages)
    return list(funnels.values()), targeted_from


def _step_json(r: StepRecord) -> dict:
    return {
        "occurrence": r.occurrence,
        "step": r.step,
        "due_at": occurrence_name(r.due_at),
        "status": r.status,
        "population": r.entered,
        "detail": r.detail,
    }


def _run_json(run: tuple) -> dict:
    run_id, occurrence, started, finished, state, simulate, _ = run
    return {
        "run": run_id,
        "occurrence": occurrence,
        "started_at": occurrence_name(from_warehouse(started)),
        "finished_at": occurrence_name(from_warehouse(finished)) if finished else None,
        "status": state,
        "simulate": bool(simulate),
    }
