"""One message made from one row, without a warehouse: its email's headers and its template's cap."""

from __future__ import annotations

import email
import email.policy
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from campaign_compiler.compile.templates import OutputTooLarge, Template, environment
from campaign_compiler.send.providers.base import OutgoingMessage
from campaign_compiler.send.providers.mime import InvalidEmail, build_email

HEADERS = {"Content-Type", "MIME-Version", "From", "To", "Subject", "Message-ID", "Date", "X-Campaign", "Reply-To"}


def built(
    subject: str,
    address: str = "anna@example.com",
    sender: str = "News <news@hotel.example>",
    occurrence: str = "once",
) -> bytes:
    message = OutgoingMessage(
        "k1",
        address,
        "email",
        "mail",
        "newsletter",
        occurrence,
        {"subject": subject, "text": "Hello", "html": "<p>Hello</p>"},
    )
    return build_email(message, sender, "care@hotel.example").as_bytes()


def test_each_occurrence_of_a_message_has_its_own_message_id():
    ids = [
        email.message_from_bytes(built("Hi", occurrence=occurrence))["Message-ID"]
        for occurrence in ("once", "2026-03-02T07:00:00Z", "2026-03-09T07:00:00Z")
    ]
    assert ids == [
        "<k1.once@hotel.example>",
        "<k1.2026-03-02T07=00=00Z@hotel.example>",
        "<k1.2026-03-09T07=00=00Z@hotel.example>",
    ]


@pytest.mark.parametrize("address", ["anna@example.com", "zoë@example.com"])
@pytest.mark.parametrize(
    "subject",
    [
        "Eve\r\nBcc: bcc@evil.example",
        "Évé\r\nBcc: bcc@evil.example",
        "Eve\nBcc: bcc@evil.example",
        "Eve\rBcc: bcc@evil.example",
        "Eve\x85Bcc: bcc@evil.example",
        "Eve\u2028Bcc: bcc@evil.example",
        "Eve\x00\x0bBcc: bcc@evil.example",
    ],
)
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


@pytest.mark.parametrize(
    "address",
    [
        "victim@example.com\x85X-Injected: yes",
        "victim@example.com\r\nX-Injected: yes",
        "victim@example.com\u2029X-Injected: yes",
        "victim@example.com\x00",
    ],
)
def test_an_address_with_a_control_character_or_a_line_break_cannot_be_built(address):
    with pytest.raises(InvalidEmail, match="it holds a control character or a line break"):
        built("Hello", address)


def render(source: str) -> dict:
    return Template(Path("t.yml"), "email", {"subject": "Hi", "text": source}).render({}, None)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ 'a' * 10**9 }}", "text: template output over 1 MB"),
        ("{{ [1, 2] * 10**9 }}", "text: template output over 1 MB"),
        ("{{ 10**9 * 'ab' }}", "text: template output over 1 MB"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}xy{% endfor %}{% endfor %}",
            "text: template output over 1 MB",
        ),
        ("{% for i in range(100000) %}{{ 'é' * 10 }}{% endfor %}", "text: template output over 1 MB"),
        ("{{ 2 ** (10**9) }}", "text: template number over 10,000 bits"),
    ],
)
def test_a_template_over_the_cap_fails_fast_without_building_its_output(source, reason):
    started = time.monotonic()
    with pytest.raises(OutputTooLarge) as raised:
        render(source)
    assert str(raised.value) == reason
    assert time.monotonic() - started < 5


def test_a_template_within_the_cap_renders_whole():
    assert render("{{ 'a' * 1000000 }}")["text"] == "a" * 1_000_000
    assert render("{{ 2 ** 100 }} {{ 3 * 4 }} {{ 'ab' * 3 }}")["text"] == f"{2**100} 12 ababab"


TEXTS = [
    "Dear {{ first_name }}, this is your offer.",
    "{{ first_name }}{{ last_name }}",
    "offers",
    "",
    "a\r\nb {{ first_name }}\r\n",
    "{# a comment #}{{ first_name }} {%- raw %}{{ x }}{% endraw %}\n",
    "  {{- first_name -}}  !",
    "{{ first_name | upper }} {% if last_name %}{{ last_name }}{% endif %}",
]
VALUES = [
    {"first_name": "Zoë", "last_name": None},
    {"first_name": 42, "last_name": 1.5},
    {"first_name": True, "last_name": "O'Hara <b>&"},
    {"first_name": Decimal("12.50"), "last_name": date(2026, 3, 2)},
    {"first_name": "\ud800 lone", "last_name": ""},
]


@pytest.mark.parametrize("source", TEXTS)
def test_a_text_part_renders_as_jinja_renders_it_whatever_the_values(source):
    """Plain templates (text and columns) are joined without Jinja: the same text as Jinja's."""
    template = Template(
        Path("t.yml"), "push", {"title": source, "body": source}, {"k": source}, ["first_name", "last_name"]
    )
    jinja = environment(autoescape=False).from_string(source)
    for values in VALUES:
        expected = jinja.render({k: "" if v is None else v for k, v in values.items()})
        assert template.render(values, None) == {"title": expected, "body": expected, "data": {"k": expected}}


def test_a_plain_template_over_the_cap_fails_as_any_other():
    template = Template(
        Path("t.yml"), "sms", {"body": "Hi {{ first_name }}{{ last_name }}"}, {}, ["first_name", "last_name"]
    )
    assert template.render({"first_name": "é" * 300_000, "last_name": "a" * 399_997}, None)["body"][-1] == "a"
    with pytest.raises(OutputTooLarge) as raised:
        template.render({"first_name": "é" * 300_000, "last_name": "a" * 399_998}, None)
    assert str(raised.value) == "body: template output over 1 MB"
