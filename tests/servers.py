"""Real servers on loopback for the send tests: SMTP (aiosmtpd) and an HTTP messaging endpoint."""

from __future__ import annotations

import asyncio
import email
import json
import socket
import ssl
import subprocess
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts.

    flaky: addresses refused with 451 on their first RCPT; bounce: refused with 550;
    delay: seconds before answering DATA (a slow server, to interrupt a send). The first message
    to an address of lose_reply is kept, then the connection is dropped without the 250 reply;
    closing_rcpt and closing_data: the first RCPT, or the first end of data, of these addresses is
    answered 421 (the message is not kept) and the server closes the connection. `raw` and
    `mail_options` are the bytes and MAIL FROM options of each message, as `messages`."""

    def __init__(self):
        self.messages: list[email.message.Message] = []
        self.raw: list[bytes] = []
        self.mail_options: list[list[str]] = []
        self.flaky: set[str] = set()
        self.bounce: set[str] = set()
        self.delay = 0.0
        self.lose_reply: set[str] = set()
        self.closing_rcpt: set[str] = set()
        self.closing_data: set[str] = set()
        self.rcpt_attempts: Counter = Counter()
        self.data_attempts: Counter = Counter()
        self.connections = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_attempts[address] += 1
        if address in self.bounce:
            return "550 5.1.1 No such user here"
        if address in self.flaky and self.rcpt_attempts[address] == 1:
            return "451 4.3.0 Greylisted, try again later"
        if address in self.closing_rcpt and self.rcpt_attempts[address] == 1:
            return _closing(server)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        (address,) = envelope.rcpt_tos
        self.data_attempts[address] += 1
        first = self.data_attempts[address] == 1
        if address in self.closing_data and first:
            return _closing(server)
        self.messages.append(email.message_from_bytes(envelope.content))
        self.raw.append(envelope.content)
        self.mail_options.append(list(envelope.mail_options))
        if address in self.lose_reply and first:
            server.transport.abort()  # received, and the reply never leaves
        return "250 Message accepted for delivery"

    def message_ids(self) -> Counter:
        # a Message-ID too long for its line is folded before the <...> (RFC 5322): unfolded here
        return Counter(m["Message-ID"].strip() for m in self.messages)


def _closing(server) -> str:
    """A 421 reply, after which the server closes the connection (as RFC 5321 has it)."""
    asyncio.get_running_loop().call_soon(server.transport.close)
    return "421 4.3.2 Service shutting down, closing transmission channel"


class SmtpServer:
    """aiosmtpd on loopback; with `tls`: "starttls" (required before AUTH) or "ssl" (implicit TLS),
    `login` (user, password) to require authentication, and `smtputf8` to offer SMTPUTF8 (RFC 6531)."""

    def __init__(
        self, tls: str = "none", certificate: tuple | None = None, login: tuple | None = None, smtputf8: bool = False
    ):
        self.inbox = Inbox()
        self.port = free_port()
        options: dict = {"enable_SMTPUTF8": smtputf8}
        context = None
        if certificate:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*certificate)
        if tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        if login:
            self.logins: list[str] = []

            def authenticate(server, session, envelope, mechanism, auth_data):
                ok = (auth_data.login.decode(), auth_data.password.decode()) == login
                self.logins.append(auth_data.login.decode())
                return AuthResult(success=ok, handled=False)  # aiosmtpd then answers 235 or 535

            # over implicit TLS, aiosmtpd would not offer AUTH unless told the session is safe
            options.update(authenticator=authenticate, auth_required=True, auth_require_tls=tls != "ssl")
        self.controller = Controller(
            self.inbox, hostname="127.0.0.1", port=self.port, ssl_context=context if tls == "ssl" else None, **options
        )

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class MessagingApi:
    """An HTTP endpoint like an SMS gateway's. The first attempt of every other batch fails with 429
    (Retry-After: 0) or 500 when `flaky`; with `refuse` (401, 403), a request without the right
    bearer token gets that status; each accepted message id is counted."""

    token = "test-token-123"

    def __init__(self, flaky: bool = False, refuse: int | None = None):
        self.flaky = flaky
        self.refuse = refuse
        self.refused = 0
        self.accepted: Counter = Counter()
        self.attempts: Counter = Counter()
        self.authorizations: set[str] = set()
        self.batches = 0
        self.failures = 0
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers["Idempotency-Key"]
                authorization = self.headers.get("Authorization", "")
                if api.refuse and authorization != f"Bearer {api.token}":
                    with api.lock:
                        api.refused += 1
                    self.send_response(api.refuse)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": "invalid token"}')
                    return
                with api.lock:
                    api.authorizations.add(authorization)
                    api.attempts[key] += 1
                    api.batches += 1
                    fail = api.flaky and api.attempts[key] == 1 and api.batches % 2 == 1
                    if fail:
                        api.failures += 1
                    else:
                        for message in body["messages"]:
                            api.accepted[message["id"]] += 1
                if fail:
                    code = 429 if api.failures % 2 else 500
                    self.send_response(code)
                    if code == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(b'{"error": "try again"}')
                    return
                reply = json.dumps({"results": [{"id": m["id"], "status": "sent"} for m in body["messages"]]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(reply.encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/messages"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> MessagingApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed_certificate(folder) -> tuple[str, str]:
    """A certificate for localhost and 127.0.0.1 (trusted by clients through SSL_CERT_FILE)."""
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
