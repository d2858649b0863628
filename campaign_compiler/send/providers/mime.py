"""The email of a message, built once per message by the send step for every provider (outbox, SMTP).

Nothing a value of the data holds can add a header: in the subject (and From, Reply-To), each run
of control characters and line breaks (CR, LF, NUL, U+0085, U+2028, U+2029...) becomes one space,
so a first_name "Eve\\r\\nBcc: someone@example.com" only makes an odd subject. An address with one
of them cannot be repaired: that message fails (the warehouse already excludes such addresses as
no_address). Headers are folded into lines of at most 78 characters; a word too long for a line
(a subject of 5,000 letters without a space, say) is written as RFC 2047 encoded words, which fold
anywhere.

An email is built as its bytes (`Email`), written straight from its parts: the same bytes as the
email package's generator makes of the same MIME message (tests/test_mime.py compares them on varied
messages), several times faster. A header the fast path cannot write as it is (non-ASCII, too long)
is folded by the email package's own policy; an internationalised email is built by the package whole.
"""

from __future__ import annotations

import random
import re
import sys
from binascii import b2a_base64
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.policy import default as default_policy
from email.utils import formatdate, parseaddr
from functools import lru_cache

from ...errors import MessageFailure
from .base import OutgoingMessage

LINE = 78  # the line length headers are folded to (RFC 5322 recommends it; 998 is the hard limit)

# what may not appear in a header: C0 and C1 controls, DEL, and the Unicode line and paragraph separators
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_UTF8 = default_policy.clone(utf8=True)  # the same line endings as compat32 in the outbox


class InvalidEmail(MessageFailure):
    """This message's email cannot be built from its data: that message fails, with this reason."""


# an ASCII header value the policy writes as it is: printable words, single spaces (then it must fit a line)
_PLAIN = re.compile(r"[!-~]+(?: [!-~]+)*")
_BOUNDARY_WIDTH = len(repr(sys.maxsize - 1))  # the email package's boundaries: 15 '=', a number, '=='
_MULTIPART = compat32.fold_binary(
    "Content-Type", 'multipart/alternative; boundary="' + "=" * 15 + "0" * _BOUNDARY_WIDTH + '=="'
)  # every boundary has this width: the line folds alike, whatever its number
_PART_HEAD = {
    subtype: f'Content-Type: text/{subtype}; charset="utf-8"\nMIME-Version: 1.0\n'
    "Content-Transfer-Encoding: base64\n".encode()
    for subtype in ("plain", "html")
}


class Email:
    """An email's bytes, with LF line endings: the outbox writes them as they are; SMTP sends them
    with CRLF (`as_bytes("\\r\\n")`: no header value and no base64 line holds a line break)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def as_bytes(self, linesep: str = "\n") -> bytes:
        return self.data if linesep == "\n" else self.data.replace(b"\n", linesep.encode())

    def with_header(self, name: str, value: str) -> Email:
        """The same email with one more header, after the others."""
        end = self.data.index(b"\n\n") + 1
        return Email(self.data[:end] + compat32.fold_binary(name, value) + self.data[end:])


def build_email(message: OutgoingMessage, sender: str, reply_to: str | None, boundary: str | None = None) -> Email:
    """The email of a message; its Message-ID is the message's id at the sender's domain.

    An internationalised address (RFC 6531: zoë@example.com, to or from) cannot be an RFC 2047
    encoded word: its message is written with UTF-8 headers (RFC 6532), which the SMTP provider
    sends with SMTPUTF8. `boundary` (of a multipart email) is random unless given."""
    if _BREAKS.search(message.address):
        raise InvalidEmail(f"invalid address {message.address!r}: it holds a control character or a line break")
    content = message.content
    parts = [(body, subtype) for body, subtype in ((content.get("text"), "plain"), (content.get("html"), "html"))]
    parts = [(body, subtype) for body, subtype in parts if body is not None]
    ending = [
        ("Message-ID", f"<{message.message_id}{id_domain(sender)}>"),
        ("Date", formatdate(usegmt=True)),
        ("X-Campaign", f"{message.campaign}/{message.activity}"),
    ]
    if not (message.address + _address(sender)).isascii():
        headers = [("From", sender), ("To", message.address), ("Subject", content.get("subject", ""))]
        headers += [("Reply-To", reply_to)] if reply_to else []
        return _package_email(parts, [(n, _header(n, v, True)) for n, v in headers] + ending, boundary)
    head = b"".join(
        (
            _sender_line("From", sender),
            _fold("To", message.address),
            _fold("Subject", _header("Subject", content.get("subject", ""), False)),
            _sender_line("Reply-To", reply_to) if reply_to else b"",
            *(_fold(name, value) for name, value in ending),
        )
    )
    bodies = [(_PART_HEAD[subtype], _base64(body)) for body, subtype in parts]
    if len(bodies) == 1:
        ((part_head, body),) = bodies
        return Email(part_head + head + b"\n" + body)
    boundary = (boundary or _boundary()).encode()
    between = b"\n--" + boundary + b"\n"
    return Email(
        _MULTIPART.replace(b"=" * 15 + b"0" * _BOUNDARY_WIDTH + b"==", boundary)
        + b"MIME-Version: 1.0\n"
        + head
        + between
        + between.join(part_head + b"\n" + body for part_head, body in bodies)
        + b"\n--"
        + boundary
        + b"--\n"
    )


@lru_cache(maxsize=64)
def _address(sender: str) -> str:
    """The address of a From or Reply-To value (the same for every message of a run: parsed once)."""
    return parseaddr(sender)[1]


@lru_cache(maxsize=64)
def _sender_line(name: str, value: str) -> bytes:
    """The From or Reply-To header of an ASCII email, folded once for every message of a run."""
    return _fold(name, _header(name, value, False))


def _package_email(
    parts: list[tuple[str, str]], headers: list[tuple[str, str | Header]], boundary: str | None
) -> Email:
    """An internationalised email, by the email package with UTF-8 headers."""
    mime = [MIMEText(body, subtype, "utf-8", policy=_UTF8) for body, subtype in parts]
    if len(mime) == 1:
        email = mime[0]
    else:
        email = MIMEMultipart("alternative", policy=_UTF8, boundary=boundary)
        for part in mime:
            email.attach(part)
    for name, value in headers:
        email[name] = value
    return Email(email.as_bytes())


def _fold(name: str, value: str | Header) -> bytes:
    """A header's line(s), as the compat32 policy folds it; a short plain value is written as it is."""
    if type(value) is str and len(value) <= LINE - len(name) - 2 and _PLAIN.fullmatch(value):
        return f"{name}: {value}\n".encode()
    return compat32.fold_binary(name, value)


def _base64(body: str) -> bytes:
    """A text part's body, as the email package encodes it: base64 lines of 76 characters, each ended."""
    data = body.encode("utf-8")
    return b"".join(b2a_base64(data[start : start + 57]) for start in range(0, len(data), 57))


def _boundary() -> str:
    """A random boundary, as the email package makes one (base64 bodies cannot hold a run of '=')."""
    return "=" * 15 + f"{random.randrange(sys.maxsize):0{_BOUNDARY_WIDTH}d}" + "=="


def id_domain(sender: str) -> str:
    """What follows a message's id in its Message-ID: `@` and the domain of the `from` address.

    >>> id_domain("News <news@hotel.example>"), id_domain("")
    ('@hotel.example', '@localhost')
    """
    return "@" + (_address(sender).rpartition("@")[2] or "localhost")


def _header(name: str, value: str, international: bool) -> str | Header:
    """A header's value on one logical line, foldable within LINE characters."""
    value = _BREAKS.sub(" ", value)
    try:  # a lone surrogate fails this message here, not the writing of its batch later
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEmail(f"the {name} header is not valid Unicode text (a lone surrogate)") from None
    if international:  # EmailMessage's policy folds any value, long words as encoded words
        return value
    if value.isascii() and max(map(len, value.split(" ")), default=0) <= LINE - len(name) - 2:
        return value  # compat32 folds it at its spaces
    return Header(value, "utf-8", maxlinelen=LINE, header_name=name)
