"""What every provider shares: the message it is given, the outcome it returns, pacing and retries."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
