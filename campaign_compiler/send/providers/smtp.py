"""Email through an SMTP server: several reused connections, STARTTLS or SSL, retries, bounces.

Each message is one transaction, MAIL, RCPT, DATA, driven command by command so that a lost
connection is known to be lost before or after the message could have been accepted:

* before the end of the data was sent (connection refused, lost during MAIL or RCPT, a 4xx
  reply to one of them or to DATA), the message was not sent: retried with exponential backoff;
* once the end of the data was sent, a connection lost before the server's reply leaves the
  outcome unknown, as a crash would: the message stays `pending`, is reported unknown and is not
  sent again without --resend-unknown (the server may well have accepted it);
* a reply to the end of the data is an answer: 250 sent, 4xx retried, 5xx failed.

A 5xx reply to a recipient is a hard bounce (failed, and the address is suppressed); another 5xx
is a failure. A 421 reply means the server closes the connection: it is never used again, and
the message is retried on a new one. An internationalised address (RFC 6531) is sent with
SMTPUTF8; to a server that does not offer it, that message fails (the address is not suppressed:
it is valid). A server that cannot be reached after the retries stops the run: nothing more is
attempted.
"""

from __future__ import annotations

import os
import queue
import re
import smtplib
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parseaddr

from .base import Outcome, OutgoingMessage, Provider, ProviderUnavailable, RateLimiter, backoff_delay
from .mime import Email

# A connection lost or not made (a server refusing it with its greeting: SMTPConnectError). Every
# smtplib exception is an OSError: the replies of a live server are read as codes, not exceptions.
_LOST = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError, OSError)
_CLOSING = 421  # the server's reply before it closes the connection


class _Unreachable(Exception):
    """The server cannot be used: `reason`. The message was not transmitted."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Lost(Exception):
    """The connection was lost during a transaction; `transmitted`: after the end of the data was sent."""

    def __init__(self, error: Exception, transmitted: bool):
        super().__init__(f"{type(error).__name__}: {error}")
        self.transmitted = transmitted


@dataclass
class _Reply:
    code: int  # 0: not asked (the server cannot take this message)
    text: str
    command: str  # what it answers: mail, rcpt, data (the DATA command), end (the end of the data)


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
        self._workers = ThreadPoolExecutor(max_workers=self.settings.get("connections"), thread_name_prefix="smtp")

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
        for future in futures:
            try:
                outcomes.append(future.result())
            except _Unreachable:  # not transmitted: the next run sends it
                pass
        if self._down:
            raise ProviderUnavailable(f"{self.describe()} {self._down}", outcomes)
        return outcomes

    # -- one message, on one pooled connection ---------------------------------------------------
    def _send(self, message: OutgoingMessage) -> Outcome:
        key = message.message_key
        try:
            content = _wire_bytes(message.email)
        except Exception as error:  # its headers were checked when it was built: a defence, for this message only
            return Outcome(key, "failed", 0, f"the email cannot be written: {type(error).__name__}: {error}")
        sender = parseaddr(self.settings.get("from"))[1]
        retries = self.settings.get("retries")
        attempt = 0
        while True:
            attempt += 1
            if self._down:
                raise _Unreachable(self._down)
            self._limiter.acquire()
            connection = self._connection(attempt, retries)
            if connection is None:
                time.sleep(backoff_delay(self.settings, attempt))
                continue
            try:
                reply = _transaction(connection, sender, message.address, content)
            except _Lost as lost:
                _discard(connection)
                if lost.transmitted:
                    return Outcome(
                        key,
                        "unknown",
                        attempt,
                        f"connection lost after the message was transmitted, before the server's reply: {lost}",
                    )
                if attempt > retries:
                    self._down = f"is unreachable: {lost}"
                    raise _Unreachable(self._down) from None
                time.sleep(backoff_delay(self.settings, attempt))
                continue
            self._release(connection, reply)
            outcome = _answered(key, attempt, reply, retries)
            if outcome is None:
                time.sleep(backoff_delay(self.settings, attempt))
                continue
            return outcome

    def _connection(self, attempt: int, retries: int) -> smtplib.SMTP | None:
        """A pooled connection, or a new one; None when it could not be made and is to be tried again.
        Raises _Unreachable when the server refuses the login, or cannot be reached after the retries."""
        try:
            return self._pool.get_nowait() if not self._pool.empty() else self._connect()
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError) as error:
            self._down = (
                f"refused the login: {_text(getattr(error, 'smtp_code', ''))} "
                f"{_text(getattr(error, 'smtp_error', error))}".strip()
            )
            raise _Unreachable(self._down) from None
        except _LOST as error:
            if attempt > retries:
                self._down = f"is unreachable: {type(error).__name__}: {error}"
                raise _Unreachable(self._down) from None
            return None

    def _release(self, connection: smtplib.SMTP, reply: _Reply) -> None:
        """The connection back in the pool after a transaction, unless it is closed."""
        if reply.code == _CLOSING or connection.sock is None:  # closed by the server, or lost on RSET
            _discard(connection)
        else:
            self._pool.put(connection)

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


def _answered(key: str, attempt: int, reply: _Reply, retries: int) -> Outcome | None:
    """The message's outcome from the reply that ended its transaction; None when a temporary refusal
    (4xx) is to be retried."""
    if reply.code == 0:
        return Outcome(
            key,
            "failed",
            attempt,
            "the server does not support SMTPUTF8, which this internationalised address needs",
        )
    if reply.command == "end" and reply.code == 250:
        return Outcome(key, "sent", attempt)
    if 400 <= reply.code < 500 and attempt <= retries:
        return None
    return Outcome(
        key,
        "failed",
        attempt,
        f"{reply.code} {reply.text}",
        bounce=reply.command == "rcpt" and reply.code >= 500,
    )


def _wire_bytes(email: Email) -> bytes:
    """The email as sent: CRLF line endings (UTF-8 headers when it was built for SMTPUTF8)."""
    return email.as_bytes("\r\n")


def _transaction(connection: smtplib.SMTP, sender: str, address: str, content: bytes) -> _Reply:
    """MAIL, RCPT, DATA, the data: the reply that ends the transaction. Raises _Lost when the
    connection is lost, saying whether the end of the data had been sent. A transaction refused
    before the data is reset, so that the connection can take the next message."""
    options = []
    try:
        connection.ehlo_or_helo_if_needed()
        if not (sender + address).isascii():
            if not connection.has_extn("smtputf8"):
                return _Reply(0, "", "mail")
            options += ["SMTPUTF8", "BODY=8BITMIME"]
        if connection.has_extn("size"):
            options.append(f"SIZE={len(content)}")
        for command, send in (
            ("mail", lambda: connection.mail(sender, options)),
            ("rcpt", lambda: connection.rcpt(address)),
            ("data", lambda: connection.docmd("data")),
        ):
            code, text = send()
            if code not in {"mail": (250,), "rcpt": (250, 251), "data": (354,)}[command]:
                if code != _CLOSING:
                    _reset(connection)
                return _Reply(code, _text(text), command)
        data = re.sub(rb"(?m)^\.", b"..", content)  # dot-stuffed (RFC 5321 4.5.2), then the line "." ends it
        connection.send(data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    except _LOST as error:
        raise _Lost(error, transmitted=False) from None
    try:
        code, text = connection.getreply()
    except _LOST as error:  # the server may have accepted the message: no way to know
        raise _Lost(error, transmitted=True) from None
    return _Reply(code, _text(text), "end")


def _reset(connection: smtplib.SMTP) -> None:
    """RSET after a refused command; a connection lost meanwhile, or not reset, is closed (the reply stands)."""
    try:
        if connection.rset()[0] != 250:
            connection.close()
    except _LOST:
        connection.close()


def _discard(connection: smtplib.SMTP) -> None:
    try:
        connection.close()
    except OSError:
        pass


def _text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
