"""The emails the send step builds are byte for byte what the email package makes of the same MIME
message (compat32 classes, its generator, its header folding), on varied messages: accents, long
subjects and names, text and html, non-ASCII addresses, CRLF for SMTP, the simulation's header."""

from __future__ import annotations

import io
import random
from email.generator import BytesGenerator
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import parseaddr

import pytest

from campaign_compiler.send.providers import mime
from campaign_compiler.send.providers.base import OutgoingMessage
from campaign_compiler.send.providers.mime import build_email

BOUNDARY = "===============4711081512345678901=="


def package_email(message: OutgoingMessage, sender: str, reply_to: str | None, linesep: str = "\n") -> bytes:
    """The reference: the MIME message built and written by the email package."""
    content = message.content
    international = not (message.address + parseaddr(sender)[1]).isascii()
    policy = mime._UTF8 if international else compat32
    parts = [
        MIMEText(body, subtype, "utf-8", policy=policy)
        for body, subtype in ((content.get("text"), "plain"), (content.get("html"), "html"))
        if body is not None
    ]
    if len(parts) == 1:
        email = parts[0]
    else:
        email = MIMEMultipart("alternative", policy=policy, boundary=BOUNDARY)
        for part in parts:
            email.attach(part)
    email["From"] = mime._header("From", sender, international)
    email["To"] = message.address
    email["Subject"] = mime._header("Subject", content.get("subject", ""), international)
    if reply_to:
        email["Reply-To"] = mime._header("Reply-To", reply_to, international)
    email["Message-ID"] = f"<{message.message_id}{mime.id_domain(sender)}>"
    email["Date"] = "Tue, 01 Dec 2026 08:00:00 GMT"
    email["X-Campaign"] = f"{message.campaign}/{message.activity}"
    with io.BytesIO() as buffer:
        BytesGenerator(buffer, policy=email.policy.clone(linesep=linesep)).flatten(email)
        return buffer.getvalue()


WORDS = ["Zoë", "Anna", "hôtel", "offer", "x" * 90, "a" * 60, "=?utf-8?q?x?=", "日本", "Ünïcödé", "b;c,d", "(x)", '"q"']


def random_text(rng: random.Random, most: int) -> str:
    words = [rng.choice(WORDS) if rng.random() < 0.3 else "w" * rng.randint(1, 12) for _ in range(rng.randint(0, most))]
    return "".join(word + rng.choice([" ", " ", "  ", "\t", ", "]) for word in words).rstrip(" ")


def random_message(rng: random.Random) -> tuple[OutgoingMessage, str, str | None]:
    content: dict = {"subject": random_text(rng, rng.choice([3, 12, 40]))}
    body = random_text(rng, 200) + rng.choice(["", "\n", "\r\nend\n", "\n\n"])
    kind = rng.choice(["text", "html", "both"])
    if kind in ("text", "both"):
        content["text"] = body
    if kind in ("html", "both"):
        content["html"] = f"<p>{body}</p>" if rng.random() < 0.9 else ""
    address = rng.choice(["anna@example.com", "zoë@example.com", "x" * 70 + "@example.com"])
    sender = rng.choice(
        [
            "news@hotel.example",
            "News <news@hotel.example>",
            "Hôtel du Lac <news@hotel.example>",
            "Zoë <zoë@hôtel.example>",
        ]
    )
    reply_to = rng.choice([None, "care@hotel.example", "Service client <care@hotel.example>"])
    message = OutgoingMessage("k" * 32, address, "email", "mail", rng.choice(["nl", "n" * 60]), "once", content)
    return message, sender, reply_to


@pytest.fixture(autouse=True)
def fixed_date(monkeypatch):
    monkeypatch.setattr(mime, "formatdate", lambda usegmt: "Tue, 01 Dec 2026 08:00:00 GMT")


@pytest.mark.parametrize("seed", range(400))
def test_an_email_is_the_bytes_the_email_package_writes(seed):
    message, sender, reply_to = random_message(random.Random(seed))
    email = build_email(message, sender, reply_to, boundary=BOUNDARY)
    assert email.as_bytes() == package_email(message, sender, reply_to)
    assert email.as_bytes("\r\n") == package_email(message, sender, reply_to, "\r\n")


@pytest.mark.parametrize("length", range(55, 85))
@pytest.mark.parametrize("subject", ["a", "a b", "é"])
def test_a_subject_at_the_edge_of_a_line_folds_as_the_email_package_folds_it(subject, length):
    text = (subject * length)[:length]
    message = OutgoingMessage("k1", "anna@example.com", "email", "mail", "nl", "once", {"subject": text, "text": "Hi"})
    expected = package_email(message, "news@hotel.example", None)
    assert build_email(message, "news@hotel.example", None).as_bytes() == expected


def test_the_simulation_header_comes_after_the_others_as_the_email_package_adds_it():
    message = OutgoingMessage("k1", "anna@example.com", "email", "mail", "nl", "once", {"subject": "Hi", "text": "é"})
    email = build_email(message, "news@hotel.example", None).with_header("X-Campaign-Simulation", "yes")
    head, _, body = email.as_bytes().partition(b"\n\n")
    assert head.endswith(b"\nX-Campaign-Simulation: yes") and body == b"w6k=\n"


def test_a_random_boundary_is_the_email_package_s_kind_and_differs_between_emails():
    content = {"subject": "Hi", "text": "a", "html": "<p>a</p>"}
    message = OutgoingMessage("k1", "anna@example.com", "email", "mail", "nl", "once", content)
    first, second = (build_email(message, "news@hotel.example", None).as_bytes() for _ in range(2))
    assert first != second
    boundary = first.split(b'boundary="')[1].split(b'"')[0].decode()
    assert len(boundary) == len(BOUNDARY) and boundary.startswith("=" * 15) and boundary.endswith("==")
    assert first.replace(boundary.encode(), BOUNDARY.encode()) == package_email(message, "news@hotel.example", None)


def test_a_body_that_is_not_valid_unicode_fails_as_the_email_package_fails():
    message = OutgoingMessage(
        "k1", "anna@example.com", "email", "mail", "nl", "once", {"subject": "Hi", "text": "\ud800"}
    )
    with pytest.raises(UnicodeEncodeError) as ours:
        build_email(message, "news@hotel.example", None)
    with pytest.raises(UnicodeEncodeError) as theirs:
        package_email(message, "news@hotel.example", None)
    assert str(ours.value) == str(theirs.value)
