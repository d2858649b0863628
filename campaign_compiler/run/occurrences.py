"""Occurrences and their steps, as the warehouse records them, and what is due at a given time.

`campaign_occurrences` holds one row per (campaign, occurrence, step): `start` when an occurrence
runs, one per wait when its population entered it. A row's status goes `waiting` (a wait's
population, until `due_at`, its release) → `running` → `succeeded` or `failed`; a scheduled slot
missed for longer than the schedule's catch-up is recorded `skipped`. `watermark` is the time of
the step's last success: an incremental query reads the rows later than the latest watermark of
its campaign's `start` steps before its own time.

What is due at `now`, oldest first (`agenda`): the scheduled slots not run yet (or `missed`), the
waits whose release has come, and the steps that failed or were interrupted (tried again before
anything later of their campaign: a later occurrence's watermark depends on it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..compile.plan import START, Campaign
from ..engines.warehouse import Warehouse, journal_seq
from ..timing import from_warehouse, occurrence_instant, occurrence_name

TABLE = "campaign_occurrences"
COLUMNS = (
    "campaign",
    "occurrence",
    "step",
    "due_at",
    "status",
    "entered",
    "started_at",
    "finished_at",
    "watermark",
    "run_id",
    "detail",
    "counts",
)
UNFINISHED = ("running", "failed")


@dataclass
class StepRecord:
    """One row of campaign_occurrences (times aware, UTC)."""

    campaign: str
    occurrence: str
    step: str
    due_at: datetime
    status: str
    entered: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    watermark: datetime | None = None
    run_id: str | None = None
    detail: str | None = None
    counts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DueStep:
    """A step of an occurrence to run (or, in Agenda.missed, a slot to record as skipped)."""

    campaign: str
    occurrence: str
    step: str
    at: datetime  # its time: the slot's, or the wait's release
    why: str  # "slot", "release", or "retry" (it failed, or was interrupted)


@dataclass(frozen=True)
class Waiting:
    """The populations the occurrences put in one wait that are still waiting for their release."""

    rows: int  # over every waiting occurrence
    occurrences: int
    next_release: datetime | None  # the earliest; None when nothing waits


@dataclass
class Agenda:
    due: list[DueStep] = field(default_factory=list)
    missed: list[DueStep] = field(default_factory=list)


class OccurrenceLog:
    """campaign_occurrences on `warehouse`; writes prove `lock` still held when one is given (see
    send.log.DeliveryLog: the same rule, the same lock)."""

    def __init__(self, warehouse: Warehouse, lock=None):
        self.warehouse, self.lock = warehouse, lock
        self.table = warehouse.table(TABLE)

    def exists(self) -> bool:
        return self.warehouse.table_exists(TABLE)

    @contextmanager
    def _write(self) -> Iterator[None]:
        with self.lock.guarding(self.warehouse) if self.lock is not None else self.warehouse.transaction():
            yield

    def records(self, campaign: str) -> list[StepRecord]:
        """The campaign's rows, by time."""
        return self._read("campaign = %s", (campaign,)) if self.exists() else []

    def find(self, campaign: str, occurrence: str, step: str) -> StepRecord | None:
        """The row of one step of one occurrence, if any."""
        found = self._read("campaign = %s and occurrence = %s and step = %s", (campaign, occurrence, step))
        return found[0] if found else None

    def _read(self, condition: str, params: tuple) -> list[StepRecord]:
        latest = self.warehouse.latest(TABLE, ("campaign", "occurrence", "step"), condition)
        rows = self.warehouse.query(
            f"select {', '.join(COLUMNS)} from {latest} as o order by due_at, occurrence, step", params
        )
        records = []
        for row in rows:
            values = dict(zip(COLUMNS, row, strict=True))
            for name in ("due_at", "started_at", "finished_at", "watermark"):
                if values[name] is not None:
                    values[name] = from_warehouse(values[name])
            values["counts"] = json.loads(values["counts"]) if values["counts"] else {}
            records.append(StepRecord(**values))
        return records

    def _put(self, record: StepRecord) -> None:
        """The row of `record`'s (campaign, occurrence, step), replaced (where tables take appends only,
        a row appended: the latest is the step's)."""
        values = [getattr(record, name) for name in COLUMNS]
        values = [v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v for v in values]
        values[COLUMNS.index("counts")] = json.dumps(record.counts, sort_keys=True) if record.counts else None
        if self.warehouse.engine.appends_only:
            with self._write():
                self.warehouse.insert(self.table, (*COLUMNS, "journal_seq"), [(*values, journal_seq())])
            return
        with self._write():
            self.warehouse.execute(
                f"delete from {self.table} where campaign = %s and occurrence = %s and step = %s",
                (record.campaign, record.occurrence, record.step),
            )
            self.warehouse.execute(
                f"insert into {self.table} ({', '.join(COLUMNS)}) values ({', '.join(['%s'] * len(COLUMNS))})",
                tuple(values),
            )

    def begin(self, campaign: str, occurrence: str, step: str, due_at: datetime, run_id: str, now: datetime) -> None:
        """The step is running (again): its row keeps what an earlier try recorded of the population
        and the watermark."""
        record = self.find(campaign, occurrence, step) or StepRecord(campaign, occurrence, step, due_at, "running")
        record.status, record.due_at, record.run_id = "running", due_at, run_id
        record.started_at, record.finished_at, record.detail = now, None, None
        self._put(record)

    def finish(
        self, campaign: str, occurrence: str, step: str, status: str, now: datetime, detail=None, counts=None
    ) -> None:
        record = self.find(campaign, occurrence, step)
        if record is None:
            return
        record.status, record.finished_at, record.detail = status, now, detail
        if counts is not None:
            record.counts = counts
        if status == "succeeded":
            record.watermark = record.due_at
        self._put(record)

    def waiting(
        self, campaign: str, occurrence: str, step: str, release: datetime, entered: int, now: datetime
    ) -> bool:
        """Record the population an occurrence put in a wait, unless recorded already (a population,
        once recorded, is the one released); whether this call recorded it. An empty population has
        nothing to release: its step is done at once (no build at the release, nothing to send)."""
        if self.find(campaign, occurrence, step) is not None:
            return False
        record = StepRecord(campaign, occurrence, step, release, "waiting", entered=entered)
        if entered == 0:
            record.status, record.finished_at, record.detail = "succeeded", now, "no one entered the wait"
            record.watermark = release
        self._put(record)
        return True

    def skip(self, missed: DueStep, now: datetime, why: str) -> None:
        self._put(
            StepRecord(missed.campaign, missed.occurrence, START, missed.at, "skipped", finished_at=now, detail=why)
        )


def waiting_in(campaign: Campaign, records: list[StepRecord]) -> dict[str, Waiting]:
    """What waits in each of the campaign's waits, from its `records`: the rows of the occurrences whose
    population entered the wait and is not released yet."""
    found = {}
    for wait in campaign.waits:
        held = [r for r in records if r.step == wait and r.status == "waiting"]
        found[wait] = Waiting(sum(r.entered or 0 for r in held), len(held), min((r.due_at for r in held), default=None))
    return found


def agenda(campaign: Campaign, records: list[StepRecord], now: datetime) -> Agenda:
    """What of `campaign` is due at `now`, oldest first, and the slots missed for too long."""
    found = Agenda()
    steps = [START, *campaign.waits]
    scheduled = campaign.schedule is not None
    for record in records:
        if record.step not in steps or record.due_at > now:
            continue  # a wait the campaign no longer has; not yet time
        if record.status == "waiting":
            found.due.append(DueStep(campaign.name, record.occurrence, record.step, record.due_at, "release"))
        elif record.status in UNFINISHED and (record.step != START or scheduled):
            found.due.append(DueStep(campaign.name, record.occurrence, record.step, record.due_at, "retry"))
    if scheduled:
        for slot in _open_slots(campaign, records, now):
            due = DueStep(campaign.name, occurrence_name(slot), START, slot, "slot")
            (found.missed if campaign.schedule.missed(slot, now) else found.due).append(due)
    found.due.sort(key=lambda d: (d.at, d.occurrence, steps.index(d.step)))
    return found


def _open_slots(campaign: Campaign, records: list[StepRecord], now: datetime) -> list[datetime]:
    """The slots at or before `now` with no record, after the last recorded one (or from the
    schedule's start; with neither, only the latest slot)."""
    schedule = campaign.schedule
    recorded = {r.occurrence for r in records if r.step == START}
    times = [t for t in (occurrence_instant(name) for name in recorded) if t is not None]
    if times:
        slots = list(schedule.slots(max(times), now))
    elif schedule.start is not None:
        slots = list(schedule.slots(None, now))
    else:
        latest = schedule.latest(now)
        slots = [latest] if latest is not None else []
    return [slot for slot in slots if occurrence_name(slot) not in recorded]
