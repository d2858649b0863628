"""The delivery log: runs, deliveries, suppressions and events, in the warehouse.

The tables are the dbt package's (`create_campaign_tables`, run before any dbt command builds
models): whatever built the channel models created them on that target.

A message is identified by (campaign, activity, occurrence, message_key), and carries the id
recorded as message_id (providers.base.message_id; an email's at its sender's domain), which the
events loaded later name it by (events.py). As the message key is
a hash of campaign, activity and recipient, the table's key is (message_key, occurrence), which
its lookups use first (a narrower index, too, where DuckDB keeps it in memory). Its row goes from
`pending` (intent recorded before delivery) to `sent` or `failed` (outcome recorded after), in
batches; `simulated` for simulations. A `sent` row is never written again — every write of a
row requires its status not to be `sent` — so whatever happens around it, a sent message is not
sent twice. A `pending` row left by a crash, or by a provider whose answer was lost, is an unknown outcome.

One run per campaign at a time, under the campaign's lock (run/lock.py). A lock can be lost behind
the run's back: every write to the log is made in a transaction that first proves the lock still
held — when the lock belongs to a session (PostgreSQL) the log is written by that very session —
so a run that lost its lock records no intent, hence sends nothing more, and the run that took the
lock over finds the intents of the first one's last chunk `pending`: unknown, not sent again.

Where tables take appends only (`Engine.appends_only`: no update, delete, upsert or transaction),
runs, deliveries and occurrences are journals: every write appends a row, and the state of a key is
its latest row, by `journal_seq` (the writer's clock in nanoseconds, increasing within a process;
`updated_at` follows --now and cannot order rows). Every reader of statuses takes the latest row;
`forget` appends a `forgotten` row, which readers take for no row. A `sent` row is appended only for
a message that has none — in the same statement, an anti-join — and only from a `pending` latest row
by `found_sent`: a message has at most one `sent` row, ever, so readers of `status = 'sent'` alone
(frequency caps, reactions, events) are right reading every row. A write is one statement, with no
transaction to hold it with the proof of the lock: the lock is proved just before it, and the
writers are kept apart by the one-process rule of the local metastore (see README, *Sending from
Spark*).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from .. import timing
from ..engines.warehouse import Warehouse, journal_seq
from ..run.lock import CampaignLock

DELIVERY_COLUMNS = (
    "campaign",
    "activity",
    "channel",
    "occurrence",
    "recipient_key",
    "per_key",
    "message_key",
    "message_id",
    "address",
    "status",
    "attempts",
    "error",
    "sent_at",
    "run_id",
    "updated_at",
)

_DELIVERY_VALUES = operator.attrgetter(*DELIVERY_COLUMNS)
DELIVERY_KEY = ("message_key", "occurrence")
OUTCOME_COLUMNS = (*DELIVERY_KEY, "status", "attempts", "error", "sent_at", "updated_at")  # what an outcome sets
_OUTCOME_VALUES = operator.attrgetter(*OUTCOME_COLUMNS)
RUN_COLUMNS = ("run_id", "campaign", "occurrence", "started_at", "finished_at", "status", "simulate", "counts")
FORGOTTEN = "forgotten"  # a journal's row saying the message has no row any more
BATCH_ROWS = 500  # rows per multi-row statement


def utc_now() -> datetime:
    """The time the log records, naive UTC: the clock, or the one --now or $CAMPAIGN_NOW set (a rehearsal
    of a month of sends records its sends, and their frequency caps and reactions read them, in its time)."""
    return timing.now().replace(tzinfo=None)


@dataclass
class Delivery:
    """One row of campaign_deliveries."""

    campaign: str
    activity: str
    channel: str
    occurrence: str
    recipient_key: str
    per_key: str | None
    message_key: str
    message_id: str  # the id the message carried (an email's Message-ID without <>): events name it so
    address: str | None
    status: str
    attempts: int = 0
    error: str | None = None
    sent_at: datetime | None = None
    run_id: str | None = None
    updated_at: datetime | None = None

    def values(self) -> tuple:
        return _DELIVERY_VALUES(self)


class DeliveryLog:
    """The log's tables on `warehouse`; with `lock`, every write first proves the lock still held
    (when the lock belongs to a session, `warehouse` must then be that session)."""

    def __init__(self, warehouse: Warehouse, lock: CampaignLock | None = None):
        self.warehouse, self.lock = warehouse, lock
        self.journal = warehouse.engine.appends_only  # every write an appended row, the latest the state

    def table(self, name: str) -> str:
        return self.warehouse.table(name)

    def exists(self) -> bool:
        """Whether dbt has created the log on this target (it does before building any model)."""
        return self.warehouse.table_exists("campaign_runs")

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One transaction of writes, made only while the lock is still held."""
        if self.lock is None:
            yield
            return
        with self.lock.guarding(self.warehouse):
            yield

    # -- runs -------------------------------------------------------------------------------------
    def start_run(self, run_id: str, campaign: str, occurrence: str, simulate: bool) -> None:
        """Log a new run; the caller holds the campaign's lock, so a run of the campaign still marked
        running is one that can no longer write the log (its process died, or it lost the lock and
        stopped at its next write): it is marked interrupted."""
        table = self.table("campaign_runs")
        with self._write():
            if self.journal:
                self._append_runs("status", "'interrupted'", "campaign = %s", "status = 'running'", (campaign,))
            else:
                self.warehouse.execute(
                    f"update {table} set status = 'interrupted' where campaign = %s and status = 'running'",
                    (campaign,),
                )
            row = (run_id, campaign, occurrence, utc_now(), None, "running", simulate, None)
            columns = RUN_COLUMNS + (("journal_seq",) if self.journal else ())
            self.warehouse.insert(table, columns, [row + ((journal_seq(),) if self.journal else ())])

    def finish_run(self, run_id: str, status: str, counts: dict) -> None:
        values = (utc_now(), status, json.dumps(counts, sort_keys=True))
        with self._write():
            if self.journal:
                self._append_runs("finished_at, status, counts", "%s, %s, %s", "run_id = %s", "true", (*values, run_id))
                return
            self.warehouse.execute(
                f"update {self.table('campaign_runs')} set finished_at = %s, status = %s, counts = %s "
                "where run_id = %s",
                (*values, run_id),
            )

    def _append_runs(self, columns: str, values: str, where: str, condition: str, params: tuple) -> None:
        """Append to the runs' journal a copy of the latest row of the runs matching `where` (and then
        `condition`), whose `columns` (comma-separated) take `values` (SQL, before `params`)."""
        changed = [c.strip() for c in columns.split(",")]
        kept = ", ".join(c for c in RUN_COLUMNS if c not in changed)
        latest = self.warehouse.latest("campaign_runs", ("run_id",), where)
        self.warehouse.execute(
            f"insert into {self.table('campaign_runs')} ({kept}, {columns}, journal_seq) "
            f"select {kept}, {values}, %s from {latest} as r where {condition}",
            (*params[: values.count("%s")], journal_seq(), *params[values.count("%s") :]),
        )

    # -- deliveries -------------------------------------------------------------------------------
    def _deliveries(self, where: str) -> str:
        """The deliveries matching `where`, one row a message (a journal's latest, unless forgotten)."""
        latest = self.warehouse.latest("campaign_deliveries", DELIVERY_KEY, where)
        return f"(select * from {latest} as l where l.status <> '{FORGOTTEN}')" if self.journal else latest

    def statuses(self, campaign: str, activity: str, occurrence: str, keys: list[str]) -> dict[str, str]:
        """The logged status of each of `keys` that has one, in one query."""
        if not keys:
            return {}
        if self.journal:
            listed = ", ".join(["%s"] * len(keys))
            where = f"message_key in ({listed}) and occurrence = %s and campaign = %s and activity = %s"
            return dict(
                self.warehouse.query(
                    f"select d.message_key, d.status from {self._deliveries(where)} as d",
                    (*keys, occurrence, campaign, activity),
                )
            )
        table = self.table("campaign_deliveries")
        if self.warehouse.engine.joins_key_lists:  # a join: one scan of the log for the whole list
            sql = (
                f"select d.message_key, d.status from (select unnest(%s) as message_key) as k "
                f"join {table} as d on d.message_key = k.message_key "
            )
        else:  # the primary key's index, one lookup per key
            sql = f"select d.message_key, d.status from {table} as d where d.message_key = any(%s) "
        return dict(
            self.warehouse.query(
                sql + "and d.occurrence = %s and d.campaign = %s and d.activity = %s",
                (list(keys), occurrence, campaign, activity),
            )
        )

    def any_recorded(self, campaign: str, activity: str, occurrence: str) -> bool:
        """Whether the log has any row of this activity's occurrence (a journal's forgotten ones too)."""
        return bool(
            self.warehouse.query(
                f"select exists (select 1 from {self.table('campaign_deliveries')} where campaign = %s "
                "and activity = %s and occurrence = %s)",
                (campaign, activity, occurrence),
            )[0][0]
        )

    def pending(self, campaign: str, activity: str, occurrence: str) -> list[str]:
        """Messages whose outcome is unknown: a run recorded the intent, then stopped."""
        where = "campaign = %s and activity = %s and occurrence = %s"
        return [
            row[0]
            for row in self.warehouse.query(
                f"select d.message_key from {self._deliveries(where)} as d where d.status = 'pending'",
                (campaign, activity, occurrence),
            )
        ]

    def record(self, deliveries: list[Delivery], logged: set[str] | None = None, *, outcomes: bool = False) -> None:
        """Insert or update deliveries in one statement per batch; a `sent` row is never changed.

        `logged`, when given, holds the message keys that already have a row for this occurrence:
        an engine that `updates_rows` (DuckDB) then inserts the others and updates those, several
        times faster than its upsert; with `outcomes` (the outcomes of messages whose intent this
        run recorded, with the same address and ids) it sets only what an outcome changes. A journal
        appends the rows of the messages that have no `sent` row, in one statement (an anti-join):
        a message has one `sent` row at most, ever.
        """
        now = utc_now()
        for delivery in deliveries:
            delivery.updated_at = now
        if not deliveries:
            return
        table = self.table("campaign_deliveries")
        with self._write():
            if self.journal:
                seq = journal_seq()
                for start in range(0, len(deliveries), BATCH_ROWS):
                    self.warehouse.insert_absent(
                        table,
                        (*DELIVERY_COLUMNS, "journal_seq"),
                        [(*d.values(), seq) for d in deliveries[start : start + BATCH_ROWS]],
                        "t.message_key = v.message_key and t.occurrence = v.occurrence and t.status = 'sent'",
                    )
                return
            if self.warehouse.engine.updates_rows and logged is not None:
                self._insert_or_update(table, deliveries, logged, outcomes)
                return
            updates = ", ".join(
                f"{c} = excluded.{c}"
                for c in DELIVERY_COLUMNS
                if c not in ("campaign", "activity", "occurrence", "message_key")
            )
            self.warehouse.insert(
                table,
                DELIVERY_COLUMNS,
                [d.values() for d in deliveries],
                "on conflict (message_key, occurrence) do update set "
                f"{updates} where campaign_deliveries.status <> 'sent'",
            )

    def _insert_or_update(self, table: str, deliveries: list[Delivery], logged: set[str], outcomes: bool) -> None:
        """The rows of the messages not `logged` inserted, the others updated. Every value the update
        binds costs (DuckDB converts each value of a list): an outcome binds its keys and what it
        changes, most of them the same for the whole batch and bound once."""
        fresh = [d.values() for d in deliveries if d.message_key not in logged]
        self.warehouse.insert(table, DELIVERY_COLUMNS, fresh)
        columns = OUTCOME_COLUMNS if outcomes else DELIVERY_COLUMNS
        values = _OUTCOME_VALUES if outcomes else _DELIVERY_VALUES
        known = [values(d) for d in deliveries if d.message_key in logged]
        self.warehouse.update(table, columns, known, DELIVERY_KEY, f"{table}.status <> 'sent'")

    def found_sent(self, campaign: str, activity: str, occurrence: str, keys: list[str]) -> None:
        """Unknown outcomes the provider found delivered after all."""
        now = utc_now()
        error = "found delivered after an interrupted run"
        for start in range(0, len(keys), BATCH_ROWS):
            chunk = keys[start : start + BATCH_ROWS]
            with self._write():
                if self.journal:
                    self._append_pending(
                        campaign,
                        activity,
                        occurrence,
                        chunk,
                        "status, sent_at, updated_at, error",
                        ("sent", now, now, error),
                    )
                    continue
                self.warehouse.execute(
                    f"update {self.table('campaign_deliveries')} set status = 'sent', sent_at = %s, "
                    "updated_at = %s, error = %s where campaign = %s and "
                    f"activity = %s and occurrence = %s and status = 'pending' and message_key in "
                    f"({', '.join(['%s'] * len(chunk))})",
                    (now, now, error, campaign, activity, occurrence, *chunk),
                )

    def forget(self, campaign: str, activity: str, occurrence: str, keys: list[str]) -> None:
        """Drop intents of messages known not to have been delivered (their provider was unreachable);
        a journal appends a `forgotten` row, which its readers take for no row."""
        for start in range(0, len(keys), BATCH_ROWS):
            chunk = keys[start : start + BATCH_ROWS]
            with self._write():
                if self.journal:
                    self._append_pending(
                        campaign, activity, occurrence, chunk, "status, updated_at", (FORGOTTEN, utc_now())
                    )
                    continue
                self.warehouse.execute(
                    f"delete from {self.table('campaign_deliveries')} where campaign = %s and activity = %s and "
                    f"occurrence = %s and status = 'pending' and message_key in ({', '.join(['%s'] * len(chunk))})",
                    (campaign, activity, occurrence, *chunk),
                )

    def _append_pending(
        self, campaign: str, activity: str, occurrence: str, keys: list[str], columns: str, values: tuple
    ) -> None:
        """Append to the journal a copy of the latest row of each of `keys` that is `pending`, whose
        `columns` (comma-separated) take `values`: the only rows a `pending` one becomes `sent` by."""
        changed = [c.strip() for c in columns.split(",")]
        kept = ", ".join(c for c in DELIVERY_COLUMNS if c not in changed)
        where = (
            f"campaign = %s and activity = %s and occurrence = %s and message_key in ({', '.join(['%s'] * len(keys))})"
        )
        self.warehouse.execute(
            f"insert into {self.table('campaign_deliveries')} ({kept}, {columns}, journal_seq) "
            f"select {kept}, {', '.join(['%s'] * len(values))}, %s "
            f"from {self.warehouse.latest('campaign_deliveries', DELIVERY_KEY, where)} as d where d.status = 'pending'",
            (*values, journal_seq(), campaign, activity, occurrence, *keys),
        )

    def suppress(self, address: str, channel: str, reason: str) -> None:
        with self._write():
            self.warehouse.execute(
                f"insert into {self.table('campaign_suppressions')} (address, channel, reason, {self.warehouse.quote('at')}) "
                "values (%s, %s, %s, %s)",
                (address, channel, reason, utc_now()),
            )

    # -- status -----------------------------------------------------------------------------------
    def runs(self, campaign: str, limit: int = 10) -> list[tuple]:
        return self.warehouse.query(
            f"select run_id, occurrence, started_at, finished_at, status, simulate, counts from "
            f"{self.warehouse.latest('campaign_runs', ('run_id',), 'campaign = %s')} as r "
            f"order by started_at desc limit {int(limit)}",
            (campaign,),
        )

    def totals(self, campaign: str) -> list[tuple]:
        """(occurrence, activity, channel, status, messages), latest occurrence first."""
        return self.warehouse.query(
            f"select occurrence, activity, channel, status, count(*) from {self._deliveries('campaign = %s')} as d "
            "group by 1, 2, 3, 4 order by 1 desc, 2, 4",
            (campaign,),
        )

    def events(self, campaign: str) -> list[tuple]:
        """(activity, event, events, messages with it) of the events loaded for the campaign."""
        if "campaign" not in self.warehouse.columns("campaign_events"):
            return []  # none loaded yet: the table is missing, or older than the loader (dbt adds its columns)
        return self.warehouse.query(
            f"select activity, event, count(*), count(distinct message_id) from {self.table('campaign_events')} "
            "where campaign = %s group by 1, 2 order by 1, 2",
            (campaign,),
        )
