"""SMS and push through an HTTP API: JSON batches, a bearer token, an Idempotency-Key.

Each POST to `url` carries up to `batch_size` messages:

    {"messages": [{"id": "<message id>", "to": "<address>", "channel": "sms",
                   "campaign": "...", "activity": "...", "occurrence": "...",
                   "body": "..."}]}                       # push: "title", "body", "data"

with `Authorization: Bearer <$token_env>` and `Idempotency-Key: <sha256 of the batch's message
ids, one a line>`. A message id is the message key and the occurrence (`4f2a….once`,
`4f2a….2026-03-02T07=00=00Z`): the same recipient's message of another occurrence has another id,
and its batch another key. The events the provider reports later name their message by this id
(`campaign events load`). A 2xx answer means every message was accepted, unless its JSON body says otherwise per message:
`{"results": [{"id": "...", "status": "sent" | "failed", "error": "...", "bounce": false}]}`.
429 and 5xx answers and network errors are retried with backoff (honouring Retry-After). 401 and
403 mean that the provider cannot be used (a wrong token, say): the run stops, and the batch, which
the receiver did not take, is left for the next run. Other 4xx answers fail the batch. Receivers
are expected to ignore a message id they already accepted, which makes delivering a message again
after a crash harmless.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass

from .base import (
    Dispatcher,
    Job,
    Outcome,
    OutgoingMessage,
    Provider,
    RateLimiter,
    RetryLater,
    Unusable,
    backoff_delay,
    drained,
)


@dataclass
class Http(Provider):
    name = "http"
    idempotent = True
    _limiter: RateLimiter | None = None
    _token: str | None = None
    _dispatcher: Dispatcher | None = None

    def describe(self) -> str:
        return f"http {self.settings.get('url')}"

    def chunk(self) -> int:
        return self.settings.get("batch_size") * self.settings.get("concurrency")

    def open(self) -> None:
        self.require_credentials()
        token_env = self.settings.get("token_env")
        if token_env:
            self._token = os.environ[token_env]
        self._limiter = RateLimiter(self.settings.get("rate"))
        workers = [_Requests(self) for _ in range(self.settings.get("concurrency"))]
        # a chunk ahead of the requests; up to ten chunks waiting for their retry
        self._dispatcher = Dispatcher(self.describe(), workers, ahead=self.chunk(), limit=10 * self.chunk())

    def close(self) -> None:
        if self._dispatcher is not None:
            dispatcher, self._dispatcher = self._dispatcher, None
            dispatcher.close()

    def deliver(self, messages: list[OutgoingMessage]) -> list[Outcome]:
        return drained(self, self.submit(messages))

    def submit(self, messages: list[OutgoingMessage]) -> list[Outcome]:
        size = self.settings.get("batch_size")
        return self._dispatcher.submit([Job(messages[i : i + size]) for i in range(0, len(messages), size)])

    def drain(self) -> list[Outcome]:
        return self._dispatcher.drain()

    def attempt(self, job: Job) -> list[Outcome]:
        """One POST of a batch: its outcomes; a 429, a 5xx or a network error is retried later
        (RetryLater, honouring Retry-After) without holding a request slot meanwhile."""
        batch, attempt = job.messages, job.attempts
        if job.data is None:
            job.data = self._request(batch)
        body, headers = job.data
        self._limiter.acquire(len(batch))
        request = urllib.request.Request(self.settings.get("url"), data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.get("timeout")) as response:
                return _accepted(batch, response.read(), attempt)
        except urllib.error.HTTPError as error:
            reply = " ".join(error.read().decode(errors="replace")[:200].split())
            answer = f"HTTP {error.code}: {reply}" if reply else f"HTTP {error.code}"
            if error.code in (401, 403):  # no batch will be taken: neither retried nor failed one by one
                raise Unusable(f"refused the credentials (token_env): {answer}") from None
            if error.code != 429 and error.code < 500:
                return [Outcome(m.message_key, "failed", attempt, answer) for m in batch]
            problem, wait = answer, _retry_after(error)
        except (urllib.error.URLError, OSError) as error:
            problem, wait = f"{type(error).__name__}: {getattr(error, 'reason', error)}", None
        if attempt > self.settings.get("retries"):
            raise Unusable(f"keeps failing: {problem}")
        raise RetryLater(wait if wait is not None else backoff_delay(self.settings, attempt))

    def _request(self, batch: list[OutgoingMessage]) -> tuple[bytes, dict]:
        """The body and headers of the batch's POST, the same at every attempt."""
        body = json.dumps(
            {
                "messages": [
                    {
                        "id": m.message_id,
                        "to": m.address,
                        "channel": m.channel,
                        "campaign": m.campaign,
                        "activity": m.activity,
                        "occurrence": m.occurrence,
                        **m.content,
                    }
                    for m in batch
                ]
            },
            ensure_ascii=False,
            default=str,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "campaign-compiler",
            "Idempotency-Key": hashlib.sha256(b"\n".join(m.message_id.encode() for m in batch)).hexdigest(),
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return body, headers


@dataclass
class _Requests:
    """A dispatcher's worker: it POSTs batches, and keeps nothing between them."""

    provider: Http

    def attempt(self, job: Job) -> list[Outcome]:
        return self.provider.attempt(job)

    def close(self) -> None:
        pass


def _accepted(batch: list[OutgoingMessage], body: bytes, attempts: int) -> list[Outcome]:
    try:
        results = {r["id"]: r for r in json.loads(body or b"{}").get("results", []) if isinstance(r, dict)}
    except (ValueError, AttributeError):
        results = {}
    outcomes = []
    for message in batch:
        result = results.get(message.message_id, {})
        if result.get("status", "sent") == "sent":
            outcomes.append(Outcome(message.message_key, "sent", attempts))
        else:
            outcomes.append(
                Outcome(
                    message.message_key,
                    "failed",
                    attempts,
                    str(result.get("error", "rejected")),
                    bounce=bool(result.get("bounce")),
                )
            )
    return outcomes


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    value = error.headers.get("Retry-After") if error.headers else None
    try:
        return min(float(value), 60.0) if value is not None else None
    except ValueError:
        return None
