"""One message made from one row, without a warehouse: its email's headers."""

from __future__ import annotations

import email
import email.policy

import pytest

from campaign_compiler.providers.base import OutgoingMessage
from campaign_compiler.providers.mime import InvalidEmail, build_email

HEADERS = {"Content-Type", "MIME-Version", "From", "To", "Subject", "Message-ID", "Date", "X-Campaign", "Reply-To"}


def built(subject: str, address: str = "anna@example.com", sender: str = "News <news@hotel.example>") -> bytes:
    message = OutgoingMessage("k1", address, "email", "mail", "newsletter", "once",
                              {"subject": subject, "text": "Hello", "html": "<p>Hello</p>"})
    return build_email(message, sender, "care@hotel.example").as_bytes()


@pytest.mark.parametrize("address", ["anna@example.com", "zoë@example.com"])
@pytest.mark.parametrize("subject", ["Eve\r\nBcc: bcc@evil.example", "Évé\r\nBcc: bcc@evil.example",
                                     "Eve\nBcc: bcc@evil.example", "Eve\rBcc: bcc@evil.example",
                                     "Eve\x85Bcc: bcc@evil.example", "Eve\u2028Bcc: bcc@evil.example",
                                     "Eve\x00\x0bBcc: bcc@evil.example"])
def test_a_line_break_in_a_header_value_becomes_a_space_and_adds_no_header(subject, address):
    raw = built(subject, address)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert set(message.keys()) == HEADERS
    assert message["Subject"] == subject[:3] + " Bcc: bcc@evil.example"
    assert message["To"] == address


@pytest.mark.parametrize("address", ["anna@example.com", "zoë@example.com"])
@pytest.mark.parametrize("subject", ["x" * 5000, "é" * 5000, "News for " + "word " * 1000, "a" * 70 + " b"])
def test_a_long_subject_is_folded_to_lines_of_78_characters(subject, address):
    raw = built(subject, address)
    head = raw.partition(b"\n\n")[0]
    assert max(len(line) for line in head.split(b"\n")) <= 78
    # unfolded, the value may start with the space of a fold right after "Subject:"
    assert email.message_from_bytes(raw, policy=email.policy.default)["Subject"].strip() == subject.strip()


@pytest.mark.parametrize("address", ["victim@example.com\x85X-Injected: yes", "victim@example.com\r\nX-Injected: yes",
                                     "victim@example.com\u2029X-Injected: yes", "victim@example.com\x00"])
def test_an_address_with_a_control_character_or_a_line_break_cannot_be_built(address):
    with pytest.raises(InvalidEmail, match="it holds a control character or a line break"):
        built("Hello", address)
