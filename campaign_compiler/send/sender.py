"""The send step: deliver each channel activity's messages exactly once.

For each page of a message model, read from the warehouse a page at a time:

1. look up the page's messages in the delivery log: a `sent` one is skipped; a `pending` one (a
   crash left its outcome unknown) only when its provider can deliver it again harmlessly or the
   user asked for it (--resend-unknown); a `failed` one only with --retry-failed;
2. render each message and build its email (a template error, an output over the cap, an address
   that cannot be written fail that message only);
3. record the intents (`pending`) in one statement, deliver, record the outcomes in one statement;
   a hard bounce also suppresses its address.

Before the first page, unknown outcomes left by an earlier run are settled where the provider can
tell (the outbox finds its files, and sends again what is not there). A provider that cannot be reached stops the run: the messages
it did not take are forgotten (sent by the next run), those it may have taken stay unknown.
`--simulate` renders everything into an outbox of its own, target/simulation/<target>/ (replaced by each
simulation, never mixed with what was sent), and logs `simulated`, which a real run ignores.

What is sent is what the warehouse holds: the channel models as the campaign's build on the target
recorded them (builds.py), refused when missing or built from another version of the campaign.
"""

from __future__ import annotations

import re
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..compile.plan import START, Activity, Campaign
from ..engines.warehouse import Warehouse
from ..errors import Diagnostic, InvalidInput, MessageFailure, RuntimeFailure
from ..project.dbt import DbtProject
from ..project.target import DbtTarget, connect
from ..run.lock import CampaignLock
from ..run.state import CampaignBuild
from ..workspace import Workspace
from .log import Delivery, DeliveryLog, utc_now
from .providers import provider_for
from .providers.base import Outcome, OutgoingMessage, ProviderUnavailable, message_id
from .providers.mime import build_email, id_domain

PAGE = 1000  # rows read from the warehouse at a time
OCCURRENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$")
FOLDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class ActivityReport:
    activity: str
    channel: str
    provider: str
    messages: int = 0
    sent: int = 0
    simulated: int = 0
    failed: int = 0
    already_sent: int = 0
    unknown: int = 0  # outcome unknown (a crash, a connection lost once the message was transmitted): not resent
    lost: int = 0  # of which this run's: handed to the provider, whose answer was lost
    failed_before: int = 0  # failed in an earlier run, not retried
    settled: int = 0  # unknown outcomes found delivered

    def as_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("activity",)}


@dataclass
class SendReport:
    run_id: str
    occurrence: str
    simulate: bool
    activities: list[ActivityReport] = field(default_factory=list)
    stopped: str | None = None  # why the run stopped early


def check_occurrence(occurrence: str) -> str:
    if not OCCURRENCE.match(occurrence):
        raise InvalidInput(
            [
                Diagnostic(
                    None,
                    f'occurrence "{occurrence}" must be letters, digits and _.:+- '
                    "(an ISO time such as 2026-12-01T08:00 fits)",
                )
            ]
        )
    return occurrence


def outbox_dir(dbt: DbtProject, target: str, campaign: str, occurrence: str, simulate: bool) -> Path:
    """Where the outbox writes an occurrence's messages, one folder per activity; simulations apart,
    and each dbt target apart: what one target's delivery log knows is what its own folder holds."""
    if not FOLDER.match(target):
        raise RuntimeFailure(
            f'target "{target}" cannot name a folder of the outbox: name it with letters, '
            "digits and _.- in profiles.yml"
        )
    return dbt.target_dir / ("simulation" if simulate else "outbox") / target / campaign / occurrence


def send_campaign(
    campaign: Campaign,
    workspace: Workspace,
    where: DbtTarget,
    lock: CampaignLock,
    *,
    occurrence: str = "once",
    simulate: bool = False,
    resend_unknown: bool = False,
    retry_failed: bool = False,
    progress=None,
    announced: dict[str, int] | None = None,
    step: str = START,
) -> SendReport:
    """Deliver the campaign's built messages under the campaign's `lock`, which the caller holds:
    the log is written only while it is held (a lock lost stops the run, LockLost).

    `announced` is the number of messages of each channel activity the user was shown: if the
    models hold others now (rebuilt meanwhile), nothing is sent. A campaign with waits is sent a
    `step` at a time: the channel activities of that step, built for `occurrence`."""
    check_occurrence(occurrence)  # it names a folder of the outbox, and is put in the file provider's path
    activities = campaign.channel_activities(step)
    report = SendReport(run_id=uuid.uuid4().hex, occurrence=occurrence, simulate=simulate)
    with connect(where) as warehouse:
        warehouse.engine.for_sending()
        relation = CampaignBuild(campaign, warehouse, where.target).require(
            [a.message.model for a in activities], occurrence
        )
        log = _delivery_log(warehouse, lock)
        totals = _message_totals(warehouse, activities, relation, announced)
        # every provider before anything is sent: one whose settings are wrong stops nothing midway
        senders = [
            _ActivitySender(
                campaign,
                activity,
                workspace,
                warehouse,
                log,
                report,
                occurrence,
                simulate,
                resend_unknown,
                retry_failed,
                progress,
            )
            for activity in activities
        ]
        if simulate:
            shutil.rmtree(
                outbox_dir(workspace.dbt, warehouse.target_name, campaign.name, occurrence, True), ignore_errors=True
            )
        if progress is not None:
            progress.start(sum(totals.values()))
        log.start_run(report.run_id, campaign.name, occurrence, simulate)
        finished = False
        try:
            for activity, sender in zip(activities, senders, strict=True):
                sender.report.messages = totals[activity.id]
                report.activities.append(sender.report)
                sender.send(relation[activity.message.model])
            finished = True
        except ProviderUnavailable as unavailable:
            report.stopped = str(unavailable)
        finally:  # also when interrupted (Ctrl-C): the run is not reported as succeeded
            status = "simulated" if simulate and finished else "succeeded" if finished else "failed"
            try:
                log.finish_run(report.run_id, status, {r.activity: r.as_json() for r in report.activities})
            except RuntimeFailure:  # the lock or the warehouse lost: the next run marks this one interrupted
                if finished or report.stopped:
                    raise
    return report


def _delivery_log(warehouse: Warehouse, lock: CampaignLock) -> DeliveryLog:
    """The target's delivery log, written under the campaign's lock; refused when it is missing."""
    log = DeliveryLog(lock.session or warehouse, lock)
    if not log.exists():
        raise RuntimeFailure(
            f'the delivery log is missing on target "{warehouse.target_name}" (it was dropped?): '
            "dbt creates it again, empty, at the next build"
        )
    return log


def _message_totals(
    warehouse: Warehouse, activities: list[Activity], relation: dict[str, str], announced: dict[str, int] | None
) -> dict[str, int]:
    """The number of messages of each channel activity; refused when it is not the number `announced`."""
    totals = {a.id: int(warehouse.query(f"select count(*) from {relation[a.message.model]}")[0][0]) for a in activities}
    changed = [a for a in totals if announced is not None and announced.get(a) != totals[a]]
    if changed:
        raise RuntimeFailure(
            f"the messages of {changed[0]} changed since they were counted ({announced[changed[0]]:,} "
            f"then, {totals[changed[0]]:,} now): nothing was sent; count them again"
        )
    return totals


class _ActivitySender:
    def __init__(
        self,
        campaign: Campaign,
        activity: Activity,
        workspace: Workspace,
        warehouse: Warehouse,
        log: DeliveryLog,
        report: SendReport,
        occurrence: str,
        simulate: bool,
        resend_unknown: bool,
        retry_failed: bool,
        progress,
    ):
        self.campaign, self.activity, self.spec = campaign, activity, activity.message
        self.warehouse, self.log, self.run_id = warehouse, log, report.run_id
        self.occurrence, self.simulate = occurrence, simulate
        self.resend_unknown, self.retry_failed, self.progress = resend_unknown, retry_failed, progress
        settings = workspace.channel_settings(self.spec.channel)
        outbox = outbox_dir(workspace.dbt, warehouse.target_name, campaign.name, occurrence, simulate) / activity.id
        self.provider = provider_for(
            settings,
            outbox,
            workspace.dbt,
            {
                "campaign": campaign.name,
                "occurrence": occurrence,
                "activity": activity.id,
                "target": warehouse.target_name,
            },
            simulate,
        )
        self.report = ActivityReport(activity.id, self.spec.channel, self.provider.describe())
        # what an email's Message-ID adds to the message id, which the log records as the email carried it
        self._id_suffix = id_domain(settings.get("from")) if self.spec.channel == "email" else ""
        self._first = False  # whether the log has no row of this occurrence yet (set by send)
        self._logged: set[str] = set()  # the current page's message keys that have a row in the log
        self._handed: dict[str, dict] = {}  # the rows of the messages handed over without an outcome yet

    # -- the loop -------------------------------------------------------------------------------
    def send(self, relation: str) -> None:
        # The campaign's lock is held: only this run writes the log of this occurrence. When it has
        # no row yet (a first send) and every message key is unique, no page needs looking up.
        ((duplicates,),) = self.warehouse.query(f"select count(*) - count(distinct message_key) from {relation}")
        if duplicates:
            raise RuntimeFailure(
                f"{relation} has {duplicates} duplicate message_key values: rebuild it with "
                f"`campaign count {self.campaign.name}` (whose tests check it)"
            )
        self._first = not self.log.any_recorded(self.campaign.name, self.activity.id, self.occurrence)
        self.provider.open()
        try:
            if not self.simulate:
                self._settle_unknown()
            for page in self.warehouse.stream(relation, self._columns(), PAGE):
                self._send_page(page)
                if self.progress is not None:
                    self.progress.advance(len(page))
            self._drain()
        finally:
            self.provider.close()

    def _settle_unknown(self) -> None:
        """Messages an earlier run may have delivered: settled as sent when the provider can tell,
        and forgotten (sent by this run) when it knows it did not deliver them."""
        pending = self.log.pending(self.campaign.name, self.activity.id, self.occurrence)
        found = self.provider.delivered(pending) if pending else None
        if found:
            self.log.found_sent(self.campaign.name, self.activity.id, self.occurrence, sorted(found))
            self.report.settled += len(found)
        if found is not None and self.provider.exact:
            self.log.forget(self.campaign.name, self.activity.id, self.occurrence, sorted(set(pending) - found))

    def _send_page(self, page: list[dict]) -> None:
        statuses = (
            {}
            if self._first
            else self.log.statuses(
                self.campaign.name, self.activity.id, self.occurrence, [row["message_key"] for row in page]
            )
        )
        self._logged = set(statuses)
        rows = {}
        for row in page:
            status = statuses.get(row["message_key"])
            if status == "sent":
                self.report.already_sent += 1
            elif status == "pending" and not self.simulate and not (self.provider.idempotent or self.resend_unknown):
                self.report.unknown += 1
            elif status == "failed" and not self.retry_failed:
                self.report.failed_before += 1
            else:
                rows[row["message_key"]] = row
        messages, broken = [], []
        for key, row in rows.items():
            try:
                messages.append(self._message(row))
            except MessageFailure as error:  # too large, an address that cannot be written
                broken.append(Outcome(key, "failed", 0, str(error)))
            except Exception as error:  # a template that fails on this row's data
                broken.append(Outcome(key, "failed", 0, f"template error: {type(error).__name__}: {error}"))
        if self.simulate:
            self.provider.deliver(messages)
            # a simulation records itself only where no real run left a trace (pending, failed)
            untouched = {k for k in rows if statuses.get(k) in (None, "simulated")}
            self._record(
                [self._delivery(m.message_key, "simulated") for m in messages if m.message_key in untouched]
                + [self._from_outcome(o) for o in broken if o.message_key in untouched],
                rows,
            )
            self.report.simulated += len(messages)
            self.report.failed += len(broken)
            return
        self._record([self._from_outcome(o) for o in broken], rows)
        self.report.failed += len(broken)
        size = self.provider.chunk()  # what is handed over at once
        for start in range(0, len(messages), size):
            chunk = messages[start : start + size]
            self._record([self._delivery(m.message_key, "pending") for m in chunk], rows)
            self._handed.update((m.message_key, rows[m.message_key]) for m in chunk)
            with self._stopping():
                outcomes = self.provider.submit(chunk)
            self._answered(outcomes)

    def _drain(self) -> None:
        """The outcomes of the messages still handed over (waiting for a retry, say), recorded as they come."""
        while True:
            with self._stopping():
                outcomes = self.provider.drain()
            if not outcomes:
                return
            self._answered(outcomes)

    @contextmanager
    def _stopping(self):
        """A provider that cannot be used stops the run: the outcomes it gave are recorded, and the
        messages handed over without one are forgotten (it did not deliver them: the next run does)."""
        try:
            yield
        except ProviderUnavailable as unavailable:
            answered = {o.message_key for o in unavailable.done}
            with self._unrecorded(list(self._handed)):
                self._answered(unavailable.done)
                self.log.forget(
                    self.campaign.name,
                    self.activity.id,
                    self.occurrence,
                    [key for key in self._handed if key not in answered],
                )
            self._handed.clear()
            raise

    def _answered(self, outcomes: list[Outcome]) -> None:
        """Record outcomes of messages handed over, maybe on an earlier page: each has a row (pending)."""
        with self._unrecorded(list(self._handed)):
            self._logged.update(o.message_key for o in outcomes)
            self._settle(outcomes, self._handed)
        for outcome in outcomes:
            del self._handed[outcome.message_key]

    @contextmanager
    def _unrecorded(self, handed: list):
        """Outcomes the log could not take (the lock or the warehouse lost): they stay unknown."""
        try:
            yield
        except RuntimeFailure as failure:
            raise type(failure)(
                f"{failure}; the outcome of the {len(handed)} messages handed to "
                f"{self.provider.describe()} at that moment could not be recorded: they are left "
                "unknown (see campaign status; --resend-unknown sends them again)"
            ) from None

    def _settle(self, outcomes: list[Outcome], rows: dict) -> None:
        """Record the outcomes; an unknown one stays pending (with its reason): not sent again
        without --resend-unknown, as after a crash."""
        self._record([self._from_outcome(o) for o in outcomes], rows, outcomes=True)
        for outcome in outcomes:
            if outcome.bounce:
                self.log.suppress(rows[outcome.message_key]["address"], self.spec.channel, "hard_bounce")
        self.report.sent += sum(o.status == "sent" for o in outcomes)
        self.report.failed += sum(o.status == "failed" for o in outcomes)
        lost = sum(o.status == "unknown" for o in outcomes)
        self.report.unknown += lost
        self.report.lost += lost

    # -- rows, messages, deliveries --------------------------------------------------------------
    def _columns(self) -> list[str]:
        spec = self.spec
        base = ["message_key", spec.key] + ([spec.per_key] if spec.per_key else []) + ["address"]
        return list(dict.fromkeys(base + [column for _, column in spec.columns]))

    def _message(self, row: dict) -> OutgoingMessage:
        spec = self.spec
        values = {name: row[column] for name, column in spec.columns}
        content = spec.template.render(values, spec.per_alias) if spec.template is not None else values
        message = OutgoingMessage(
            message_key=row["message_key"],
            address=row["address"],
            channel=spec.channel,
            campaign=self.campaign.name,
            activity=self.activity.id,
            occurrence=self.occurrence,
            content=content,
        )
        if spec.channel == "email":  # built here, where an email its data cannot make fails alone
            settings = self.provider.settings
            message.email = build_email(message, settings.get("from"), settings.get("reply_to"))
        return message

    def _delivery(self, key: str, status: str, *, attempts: int = 0, error: str | None = None) -> Delivery:
        return Delivery(
            campaign=self.campaign.name,
            activity=self.activity.id,
            channel=self.spec.channel,
            occurrence=self.occurrence,
            recipient_key="",
            per_key=None,
            message_key=key,
            message_id=message_id(key, self.occurrence) + self._id_suffix,
            address=None,
            status=status,
            attempts=attempts,
            error=error,
            run_id=self.run_id,
        )

    def _from_outcome(self, outcome: Outcome) -> Delivery:
        status = "pending" if outcome.status == "unknown" else outcome.status
        return self._delivery(outcome.message_key, status, attempts=outcome.attempts, error=outcome.error)

    def _record(self, deliveries: list[Delivery], rows: dict, *, outcomes: bool = False) -> None:
        now = utc_now()  # (read once a batch: the clock costs more than the rest of a row)
        for delivery in deliveries:
            delivery.sent_at = now if delivery.status == "sent" else None
            row = rows[delivery.message_key]
            delivery.recipient_key = str(row[self.spec.key])
            delivery.per_key = str(row[self.spec.per_key]) if self.spec.per_key else None
            delivery.address = row["address"]
        self.log.record(deliveries, self._logged, outcomes=outcomes)
        self._logged.update(delivery.message_key for delivery in deliveries)
