"""What every provider shares: the message it is given, the outcome it returns, pacing and retries."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ...errors import RuntimeFailure

if TYPE_CHECKING:
    from .mime import Email


@dataclass
class OutgoingMessage:
    message_key: str
    address: str
    channel: str
    campaign: str
    activity: str
    occurrence: str
    content: dict[str, Any]  # email: subject/text/html; sms: body; push: title/body/data; direct mail: columns
    email: Email | None = None  # an email's bytes, built by the send step (providers.mime)

    @property
    def message_id(self) -> str:
        """The id this message carries to its provider (see `message_id`)."""
        return message_id(self.message_key, self.occurrence)


def message_id(message_key: str, occurrence: str) -> str:
    """The id a message carries: its key and its occurrence, so that each occurrence's message is
    told apart. An email's Message-ID is this id at the sender's domain; an HTTP provider gets it
    as `id`; the outbox writes it in each sms or push record; events name their message by it.

    ':' may not appear in a Message-ID's left part: it becomes '=', which no occurrence holds, so
    two messages never share an id.

    >>> message_id("4f2a", "once"), message_id("4f2a", "2026-03-02T07:00:00Z")
    ('4f2a.once', '4f2a.2026-03-02T07=00=00Z')
    """
    return f"{message_key}.{occurrence.replace(':', '=')}"


@dataclass
class Outcome:
    message_key: str
    status: str  # "sent", "failed", or "unknown" (the provider may have delivered it)
    attempts: int = 1
    error: str | None = None
    bounce: bool = False  # a hard bounce: the address is suppressed


class ProviderUnavailable(Exception):
    """The provider cannot be reached at all: the run stops. `done` holds the outcomes of the
    messages it handled before; the others were not delivered, except those marked unknown."""

    def __init__(self, message: str, done: list[Outcome] | None = None):
        super().__init__(message)
        self.done = done or []


@dataclass
class Provider:
    """Delivers messages of one channel. `idempotent` providers may be given a message again
    harmlessly (its outcome after a crash is then settled by delivering it again). `exact` ones
    know everything they delivered: a message `delivered` does not find was not, and is sent again."""

    settings: Any  # project.channels.ChannelSettings
    idempotent = False
    exact = False
    name = ""

    def open(self) -> None:
        self.require_credentials()

    def require_credentials(self) -> None:
        """The environment variables the settings name are set (the CLI checks them before a run
        too, with their location; this guards any other caller)."""
        missing = self.settings.missing_credentials()
        if missing:
            raise RuntimeFailure(missing[0].message)

    def deliver(self, messages: list[OutgoingMessage]) -> list[Outcome]:
        raise NotImplementedError

    def submit(self, messages: list[OutgoingMessage]) -> list[Outcome]:
        """Hand messages over (their intents recorded): the outcomes known so far, of these messages
        or of earlier ones. A provider that retries later (a Dispatcher) returns before they are all
        answered, and `drain` gives the rest; others deliver them at once."""
        return self.deliver(messages)

    def drain(self) -> list[Outcome]:
        """Outcomes `submit` did not return, as soon as there are some (so that they are recorded
        while others wait for a retry); [] once every message handed over has had its outcome."""
        return []

    def chunk(self) -> int:
        """How many messages to hand over at once (each chunk's intents are recorded before it)."""
        return 1000

    def delivered(self, keys: list[str]) -> set[str] | None:
        """Of these messages, those the provider knows it delivered; None when it cannot tell."""
        return None

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return self.name


@dataclass
class RateLimiter:
    """At most `rate` messages per second, across threads (None: unlimited)."""

    rate: float | None
    _next: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, count: int = 1) -> None:
        if not self.rate:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + count / self.rate
        if start > now:
            time.sleep(start - now)


def backoff_delay(settings, attempt: int) -> float:
    """Exponential backoff: backoff, 2×backoff, 4×backoff... seconds, capped at a minute.

    >>> [backoff_delay({"backoff": 2}, attempt) for attempt in (1, 2, 3, 6)]
    [2.0, 4.0, 8.0, 60.0]
    """
    return min(float(settings.get("backoff")) * 2 ** (attempt - 1), 60.0)


def drained(provider: Provider, outcomes: list[Outcome]) -> list[Outcome]:
    """These outcomes and all those `drain` gives: every message handed over answered."""
    while more := provider.drain():
        outcomes += more
    return outcomes


@dataclass
class Job:
    """Messages attempted together (one email; an HTTP batch), and what their attempts need."""

    messages: list[OutgoingMessage]
    attempts: int = 0
    data: Any = None  # what a provider prepares once for every attempt (an email's bytes)


class RetryLater(Exception):  # noqa: N818 (a request, not an error)
    """The job was not delivered and is to be attempted again in `delay` seconds."""

    def __init__(self, delay: float):
        super().__init__(delay)
        self.delay = delay


class Unusable(Exception):  # noqa: N818
    """The provider cannot be used (`reason`): nothing more is attempted; the job was not delivered."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Worker(Protocol):
    """One of a Dispatcher's threads, with what it keeps between jobs (an SMTP connection)."""

    def attempt(self, job: Job) -> list[Outcome]:
        """The job's outcomes; raises RetryLater or Unusable."""

    def close(self) -> None: ...


class Dispatcher:
    """Jobs attempted by a few worker threads; a job to be retried waits for its due time in a queue
    of its own, holding no thread (nor the connection a worker keeps): the workers take the next
    jobs meanwhile, and the run keeps handing over new ones while some wait.

    What may be unanswered at once is bounded, as it is what a crash leaves unknown: `submit` waits
    while more than `ahead` messages are not yet attempted, or more than `limit` have no outcome.
    Once a worker finds the provider unusable, no job is attempted any more; `submit` and `drain`
    then wait for the jobs being attempted to end (their messages may be delivered) and raise
    ProviderUnavailable with the outcomes not returned yet: the other messages were not delivered."""

    def __init__(self, name: str, workers: list[Worker], ahead: int, limit: int):
        self.name, self.ahead, self.limit = name, ahead, limit
        self._cond = threading.Condition()
        self._ready: deque[Job] = deque()
        self._waiting: list[tuple[float, int, Job]] = []  # (due, order, job), a heap
        self._order = itertools.count()
        self._queued = 0  # messages of the ready jobs
        self._unanswered = 0  # messages handed over without an outcome yet
        self._busy = 0  # jobs being attempted
        self._done: list[Outcome] = []
        self._down: str | None = None
        self._closing = False
        self._threads = [
            threading.Thread(target=self._work, args=(worker,), name=f"{name}-{i}", daemon=True)
            for i, worker in enumerate(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, jobs: list[Job]) -> list[Outcome]:
        with self._cond:
            for job in jobs:
                self._ready.append(job)
                self._queued += len(job.messages)
                self._unanswered += len(job.messages)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._down or (self._queued <= self.ahead and self._unanswered <= self.limit))
            return self._collect()

    def drain(self) -> list[Outcome]:
        with self._cond:
            self._cond.wait_for(lambda: self._down or self._done or not self._unanswered)
            return self._collect()

    def close(self) -> None:
        """Stop: the jobs being attempted end; those not attempted are left (their intents stay pending)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    def _collect(self) -> list[Outcome]:
        if self._down:
            self._cond.wait_for(lambda: not self._busy)
        done, self._done = self._done, []
        if self._down:
            raise ProviderUnavailable(f"{self.name} {self._down}", done)
        return done

    def _work(self, worker: Worker) -> None:
        try:
            while (job := self._next()) is not None:
                job.attempts += 1
                try:
                    outcomes = worker.attempt(job)
                except RetryLater as later:
                    self._ended(job, later=later.delay)
                except Unusable as unusable:
                    self._ended(job, down=unusable.reason)
                except BaseException as error:  # a bug: the run stops as for an unusable provider
                    self._ended(job, down=f"failed: {type(error).__name__}: {error}")
                    raise
                else:
                    self._ended(job, outcomes=outcomes)
        finally:
            worker.close()

    def _next(self) -> Job | None:
        """The next job due, the retries first; None once the run is over or the provider unusable."""
        with self._cond:
            while not (self._down or self._closing):
                now = time.monotonic()
                if self._waiting and self._waiting[0][0] <= now:
                    job = heapq.heappop(self._waiting)[2]
                elif self._ready:
                    job = self._ready.popleft()
                    self._queued -= len(job.messages)
                    self._cond.notify_all()  # room for submit
                else:
                    self._cond.wait(self._waiting[0][0] - now if self._waiting else None)
                    continue
                self._busy += 1
                return job
            return None

    def _ended(self, job: Job, *, outcomes=None, later: float | None = None, down: str | None = None) -> None:
        with self._cond:
            self._busy -= 1
            if later is not None:
                heapq.heappush(self._waiting, (time.monotonic() + later, next(self._order), job))
            elif down is not None:
                self._down = self._down or down
            else:
                self._done.extend(outcomes)
                self._unanswered -= len(job.messages)
            self._cond.notify_all()
