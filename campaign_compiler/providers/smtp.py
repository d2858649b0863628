"""Email through an SMTP server: several reused connections, STARTTLS or SSL, retries, bounces.

4xx replies and lost connections are transient: retried with exponential backoff. A 5xx reply to
a recipient is a hard bounce (failed, and the address is suppressed); another 5xx is a failure.
An internationalised address (RFC 6531) is sent with SMTPUTF8; to a server that does not offer
it, that message fails (the address is not suppressed: it is valid). A server that cannot be
reached after the retries stops the run: nothing more is attempted.
"""

from __future__ import annotations

import os
import queue
import smtplib
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .base import Outcome, OutgoingMessage, Provider, ProviderUnavailable, RateLimiter, backoff_delay

# A connection lost or not made (a server refusing it with its greeting: SMTPConnectError). Every
# smtplib exception is an OSError: when sending, the replies of a live server (SMTPResponseException,
# SMTPRecipientsRefused, SMTPNotSupportedError) are caught before these.
_LOST = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError, OSError)


class _Unreachable(Exception):
    """The server cannot be used: `reason`, and whether this message may have been transmitted."""

    def __init__(self, reason: str, transmitted: bool):
        super().__init__(reason)
        self.reason, self.transmitted = reason, transmitted


@dataclass
class Smtp(Provider):
    name = "smtp"
    _pool: queue.LifoQueue = field(default_factory=queue.LifoQueue)
    _workers: ThreadPoolExecutor | None = None
    _limiter: RateLimiter | None = None
    _down: str | None = None  # once a worker finds the server unusable, the others stop too

    def describe(self) -> str:
        return f"smtp {self.settings.get('host')}:{self.settings.get('port')}"

    def chunk(self) -> int:
        # what a crash can leave unknown: ten messages per connection, so that recording intents and
        # outcomes costs little beside SMTP's own round trips
        return 10 * self.settings.get("connections")

    def open(self) -> None:
        self.require_credentials()
        self._limiter = RateLimiter(self.settings.get("rate"))
        self._workers = ThreadPoolExecutor(max_workers=self.settings.get("connections"),
                                           thread_name_prefix="smtp")

    def close(self) -> None:
        if self._workers is not None:
            self._workers.shutdown(wait=True)
        while not self._pool.empty():
            connection = self._pool.get_nowait()
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                pass

    def deliver(self, messages: list[OutgoingMessage]) -> list[Outcome]:
        futures = [self._workers.submit(self._send, message) for message in messages]
        outcomes = []
        for message, future in zip(messages, futures):
            try:
                outcomes.append(future.result())
            except _Unreachable as error:
                if error.transmitted:  # the connection dropped while the message was being sent
                    outcomes.append(Outcome(message.message_key, "unknown", error=error.reason))
        if self._down:
            raise ProviderUnavailable(f"{self.describe()} {self._down}", outcomes)
        return outcomes

    # -- one message, on one pooled connection ---------------------------------------------------
    def _send(self, message: OutgoingMessage) -> Outcome:
        email = message.email  # built by the send step (providers.mime)
        retries = self.settings.get("retries")
        attempt, data_started = 0, False
        while True:
            attempt += 1
            if self._down:
                raise _Unreachable(self._down, data_started)
            self._limiter.acquire()
            try:
                connection = self._pool.get_nowait() if not self._pool.empty() else self._connect()
            except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError) as error:
                self._down = f"refused the login: {_text(getattr(error, 'smtp_code', ''))} " \
                             f"{_text(getattr(error, 'smtp_error', error))}".strip()
                raise _Unreachable(self._down, False) from None
            except _LOST as error:
                if attempt > retries:
                    self._down = f"is unreachable: {type(error).__name__}: {error}"
                    raise _Unreachable(self._down, data_started) from None
                time.sleep(backoff_delay(self.settings, attempt))
                continue
            try:
                data_started = True
                connection.send_message(email, to_addrs=[message.address])
            except smtplib.SMTPRecipientsRefused as refused:
                self._pool.put(connection)
                code, reply = next(iter(refused.recipients.values()))
                if 400 <= code < 500 and attempt <= retries:
                    time.sleep(backoff_delay(self.settings, attempt))
                    continue
                return Outcome(message.message_key, "failed", attempt, f"{code} {_text(reply)}", bounce=code >= 500)
            except smtplib.SMTPResponseException as error:
                self._pool.put(connection)
                if 400 <= error.smtp_code < 500 and attempt <= retries:
                    time.sleep(backoff_delay(self.settings, attempt))
                    continue
                return Outcome(message.message_key, "failed", attempt, f"{error.smtp_code} {_text(error.smtp_error)}")
            except smtplib.SMTPNotSupportedError:  # said by smtplib before MAIL FROM: the connection is intact
                self._pool.put(connection)
                return Outcome(message.message_key, "failed", attempt,
                               "the server does not support SMTPUTF8, which this internationalised address needs")
            except _LOST as error:
                _discard(connection)
                if attempt > retries:
                    self._down = f"is unreachable: {type(error).__name__}: {error}"
                    raise _Unreachable(self._down, data_started) from None
                time.sleep(backoff_delay(self.settings, attempt))
                continue
            self._pool.put(connection)
            return Outcome(message.message_key, "sent", attempt)

    def _connect(self) -> smtplib.SMTP:
        host, port, timeout = self.settings.get("host"), self.settings.get("port"), self.settings.get("timeout")
        tls = self.settings.get("tls")
        if tls == "ssl":
            connection = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            connection = smtplib.SMTP(host, port, timeout=timeout)
            if tls == "starttls":
                connection.starttls(context=ssl.create_default_context())
        user, password = self.settings.get("username_env"), self.settings.get("password_env")
        if user and password:
            connection.login(os.environ[user], os.environ[password])
        return connection


def _discard(connection: smtplib.SMTP) -> None:
    try:
        connection.close()
    except OSError:
        pass


def _text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
