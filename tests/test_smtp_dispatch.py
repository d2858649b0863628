"""A message waiting for its retry holds no connection: the SMTP provider against a real server on loopback."""

from __future__ import annotations

import time

import pytest
from servers import SmtpServer

from campaign_compiler.project.channels import ChannelSettings
from campaign_compiler.send.providers.base import OutgoingMessage, ProviderUnavailable, drained, message_id
from campaign_compiler.send.providers.mime import build_email
from campaign_compiler.send.providers.smtp import Smtp

SENDER = "news@hotel.example"


def emails(count: int) -> list[OutgoingMessage]:
    messages = []
    for i in range(count):
        message = OutgoingMessage(
            f"key{i:03d}", f"guest{i}@example.com", "email", "mail", "news", "once", {"subject": "Hi", "text": f"n{i}"}
        )
        message.email = build_email(message, SENDER, None)
        messages.append(message)
    return messages


def provider(port: int, **options) -> Smtp:
    settings = {"host": "127.0.0.1", "port": port, "from": SENDER, "connections": 1, **options}
    return Smtp(ChannelSettings("email", "smtp", settings))


def received(server: SmtpServer) -> list[str]:
    """The Message-IDs the server accepted, in the order it accepted them."""
    return [m["Message-ID"].strip() for m in server.inbox.messages]


def sent_id(message: OutgoingMessage) -> str:
    return f"<{message_id(message.message_key, message.occurrence)}@hotel.example>"


@pytest.fixture
def server():
    server = SmtpServer().start()
    server.running = True
    yield server
    if server.running:  # a test may have stopped it
        server.stop()


def test_messages_after_a_refused_one_go_on_the_same_connection_while_it_waits(server):
    messages = emails(30)
    refused = messages[0]
    server.inbox.flaky = {refused.address}  # 451 to its first RCPT
    smtp = provider(server.port, backoff=3.0, in_flight=5)  # a back-off far longer than 29 messages take
    smtp.open()
    try:
        outcomes = []
        for start in range(0, len(messages), 5):  # the run hands chunks over while it waits
            outcomes += smtp.submit(messages[start : start + 5])
        assert refused.message_key not in {o.message_key for o in outcomes}  # still waiting
        outcomes = drained(smtp, outcomes)
    finally:
        smtp.close()
    # the 29 others went first, on the one connection, which the refused message did not hold
    assert received(server) == [sent_id(m) for m in messages[1:]] + [sent_id(refused)]
    assert server.inbox.connections == 1
    assert server.inbox.rcpt_attempts[refused.address] == 2
    assert sorted((o.message_key, o.status, o.attempts) for o in outcomes) == sorted(
        (m.message_key, "sent", 2 if m is refused else 1) for m in messages
    )


def test_a_server_gone_while_a_message_waits_stops_the_run_without_it(server):
    messages = emails(10)
    refused = messages[3]
    server.inbox.flaky = {refused.address}
    smtp = provider(server.port, backoff=2.0, retries=1, connections=2)
    smtp.open()
    try:
        outcomes = smtp.submit(messages)
        deadline = time.monotonic() + 60
        while len(server.inbox.messages) < 9 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stop()  # before the retry is due
        server.running = False
        with pytest.raises(ProviderUnavailable, match="is unreachable") as stopped:
            drained(smtp, outcomes)
    finally:
        smtp.close()
    outcomes += stopped.value.done
    # every other message answered once; the waiting one has no outcome: it was not delivered
    assert sorted(o.message_key for o in outcomes) == sorted(m.message_key for m in messages if m is not refused)
    assert all(o.status == "sent" for o in outcomes)
    assert sorted(received(server)) == sorted(sent_id(m) for m in messages if m is not refused)


def test_a_connection_lost_before_the_data_is_retried_on_a_new_one_and_the_others_go_on(server):
    messages = emails(8)
    closing = messages[2]
    server.inbox.closing_rcpt = {closing.address}  # 421 to its first RCPT, then the server hangs up
    smtp = provider(server.port, backoff=1.0)
    smtp.open()
    try:
        outcomes = drained(smtp, smtp.submit(messages))
    finally:
        smtp.close()
    assert sorted(received(server)) == sorted(sent_id(m) for m in messages)  # each once
    assert received(server)[-1] == sent_id(closing)
    assert server.inbox.connections == 2
    assert {o.message_key: o.attempts for o in outcomes if o.attempts > 1} == {closing.message_key: 2}
