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
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.utils import parseaddr

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
from .mime import Email

# A connection lost or not made (a server refusing it with its greeting: SMTPConnectError). Every
# smtplib exception is an OSError: the replies of a live server are read as codes, not exceptions.
_LOST = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError, OSError)
_CLOSING = 421  # the server's reply before it closes the connection


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
    _dispatcher: Dispatcher | None = None

    def describe(self) -> str:
        return f"smtp {self.settings.get('host')}:{self.settings.get('port')}"

    def chunk(self) -> int:
        # intents are recorded `in_flight` messages per connection at a time: the more, the fewer
        # statements on the log per message, and the more unknowns a crash can leave
        return self.settings.get("in_flight") * self.settings.get("connections")

    def open(self) -> None:
        self.require_credentials()
        limiter = RateLimiter(self.settings.get("rate"))
        sender = parseaddr(self.settings.get("from"))[1]
        workers = [_Connection(self, sender, limiter) for _ in range(self.settings.get("connections"))]
        # a chunk ahead of the connections; up to ten chunks waiting for their retry
        self._dispatcher = Dispatcher(self.describe(), workers, ahead=self.chunk(), limit=10 * self.chunk())

    def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.close()

    def deliver(self, messages: list[OutgoingMessage]) -> list[Outcome]:
        return drained(self, self.submit(messages))

    def submit(self, messages: list[OutgoingMessage]) -> list[Outcome]:
        return self._dispatcher.submit([Job([message]) for message in messages])

    def drain(self) -> list[Outcome]:
        return self._dispatcher.drain()

    def connect(self) -> smtplib.SMTP:
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
        connection.ehlo_or_helo_if_needed()
        return connection


@dataclass
class _Connection:
    """A dispatcher's worker: one connection to the server, made when needed and reused."""

    provider: Smtp
    sender: str
    limiter: RateLimiter
    connection: smtplib.SMTP | None = None

    def attempt(self, job: Job) -> list[Outcome]:
        """One message's attempt; a temporary refusal or a connection lost before the end of the data
        is retried later (RetryLater), without this connection waiting for it."""
        (message,) = job.messages
        key, attempt, settings = message.message_key, job.attempts, self.provider.settings
        if job.data is None:
            try:
                job.data = _wire_bytes(message.email)
            except Exception as error:  # its headers were checked when it was built: a defence, for this message only
                return [Outcome(key, "failed", 0, f"the email cannot be written: {type(error).__name__}: {error}")]
        retries = settings.get("retries")
        self.limiter.acquire()
        if self.connection is None:
            self.connection = self._connect(attempt, retries)
        try:
            reply = _transaction(self.connection, self.sender, message.address, job.data)
        except _Lost as lost:
            self._drop()
            if lost.transmitted:
                return [
                    Outcome(
                        key,
                        "unknown",
                        attempt,
                        f"connection lost after the message was transmitted, before the server's reply: {lost}",
                    )
                ]
            if attempt > retries:
                raise Unusable(f"is unreachable: {lost}") from None
            raise RetryLater(backoff_delay(settings, attempt)) from None
        if reply.code == _CLOSING or self.connection.sock is None:  # closed by the server, or lost on RSET
            self._drop()
        outcome = _answered(key, attempt, reply, retries)
        if outcome is None:
            raise RetryLater(backoff_delay(settings, attempt))
        return [outcome]

    def _connect(self, attempt: int, retries: int) -> smtplib.SMTP:
        """A new connection. Raises Unusable when the server refuses the login, or cannot be reached
        after the retries; RetryLater when it could not be made, after this worker waited the first
        back-off (another worker may take the message meanwhile)."""
        try:
            return self.provider.connect()
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError) as error:
            raise Unusable(
                f"refused the login: {_text(getattr(error, 'smtp_code', ''))} "
                f"{_text(getattr(error, 'smtp_error', error))}".strip()
            ) from None
        except _LOST as error:
            if attempt > retries:
                raise Unusable(f"is unreachable: {type(error).__name__}: {error}") from None
            time.sleep(backoff_delay(self.provider.settings, 1))  # not a tight loop on a server that is down
            raise RetryLater(backoff_delay(self.provider.settings, attempt)) from None

    def _drop(self) -> None:
        """The connection closed without QUIT (lost, or closed by the server): a new one comes next."""
        _discard(self.connection)
        self.connection = None

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()


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
    before the data is reset, so that the connection can take the next message.

    To a server that offers PIPELINING (RFC 2920), MAIL, RCPT and DATA leave together and their
    three replies are read then: two round trips a message instead of four."""
    options = []
    try:
        if not (sender + address).isascii():
            if not connection.has_extn("smtputf8"):
                return _Reply(0, "", "mail")
            options += ["SMTPUTF8", "BODY=8BITMIME"]
        if connection.has_extn("size"):
            options.append(f"SIZE={len(content)}")
        commands = [
            ("mail", f"MAIL FROM:{_quoted(sender)}{''.join(' ' + o for o in options)}\r\n"),
            ("rcpt", f"RCPT TO:{_quoted(address)}\r\n"),
            ("data", "DATA\r\n"),
        ]
        encoding = "utf-8" if options[:1] == ["SMTPUTF8"] else "ascii"
        reply = _commands(connection, commands, encoding, connection.has_extn("pipelining"))
        if reply is not None:
            return reply
        data = re.sub(rb"(?m)^\.", b"..", content)  # dot-stuffed (RFC 5321 4.5.2), then the line "." ends it
        connection.send(data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    except _LOST as error:
        raise _Lost(error, transmitted=False) from None
    try:
        code, text = connection.getreply()
    except _LOST as error:  # the server may have accepted the message: no way to know
        raise _Lost(error, transmitted=True) from None
    return _Reply(code, _text(text), "end")


_EXPECTED = {"mail": (250,), "rcpt": (250, 251), "data": (354,)}


def _commands(connection: smtplib.SMTP, commands: list[tuple[str, str]], encoding: str, pipelining: bool):
    """Send the commands (together when pipelining, else one at a time, stopping at a refusal): None
    when each got its expected reply, else the first refusal, after RSET (unless the server closes)."""
    if pipelining:
        connection.send("".join(line for _, line in commands).encode(encoding))
    refusal = None
    for command, line in commands:
        if not pipelining:
            connection.send(line.encode(encoding))
        code, text = connection.getreply()
        if code == _CLOSING:  # the server closes the connection: no other reply comes
            if refusal is None:
                return _Reply(code, _text(text), command)
            connection.close()  # the first refusal stands; the connection is not used again
            return refusal
        if refusal is None and code not in _EXPECTED[command]:
            refusal = _Reply(code, _text(text), command)
            if not pipelining:
                break
    if refusal is None:
        return None
    if code == 354:  # a server that took DATA despite a refused recipient: an empty message ends it
        connection.send(b".\r\n")
        connection.getreply()
    _reset(connection)
    return refusal


_PLAIN = re.compile(r"^[^\s<>()\[\],;:\\\"@]+@[^\s<>()\[\],;:\\\"@]+$")


def _quoted(address: str) -> str:
    """<address>, as smtplib's quoteaddr writes it (which parses it; faster for a plain one)."""
    return f"<{address}>" if _PLAIN.match(address) else smtplib.quoteaddr(address)


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
