"""The email of a message, built once per message by the send step for every provider (outbox, SMTP).

Nothing a value of the data holds can add a header: in the subject (and From, Reply-To), each run
of control characters and line breaks (CR, LF, NUL, U+0085, U+2028, U+2029...) becomes one space,
so a first_name "Eve\\r\\nBcc: someone@example.com" only makes an odd subject. An address with one
of them cannot be repaired: that message fails (the warehouse already excludes such addresses as
no_address). Headers are folded into lines of at most 78 characters; a word too long for a line
(a subject of 5,000 letters without a space, say) is written as RFC 2047 encoded words, which fold
anywhere.
"""

from __future__ import annotations

import re
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.policy import default as default_policy
from email.utils import formatdate, parseaddr

from ...errors import MessageFailure
from .base import OutgoingMessage

LINE = 78  # the line length headers are folded to (RFC 5322 recommends it; 998 is the hard limit)

# what may not appear in a header: C0 and C1 controls, DEL, and the Unicode line and paragraph separators
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_UTF8 = default_policy.clone(utf8=True)  # the same line endings as compat32 in the outbox


class InvalidEmail(MessageFailure):
    """This message's email cannot be built from its data: that message fails, with this reason."""


def build_email(message: OutgoingMessage, sender: str, reply_to: str | None) -> Message:
    """The email of a message; its Message-ID is the message's id at the sender's domain.

    Built with the compat32 MIME classes: several times faster than EmailMessage, which parses
    and refolds every header, and the bytes are the same standard MIME. An internationalised
    address (RFC 6531: zoë@example.com, to or from) cannot be an RFC 2047 encoded word: its
    message is written with UTF-8 headers (RFC 6532), which the SMTP provider sends with SMTPUTF8."""
    if _BREAKS.search(message.address):
        raise InvalidEmail(f"invalid address {message.address!r}: it holds a control character or a line break")
    content = message.content
    sender_address = parseaddr(sender)[1]
    international = not (message.address + sender_address).isascii()
    policy = _UTF8 if international else compat32
    text, html = content.get("text"), content.get("html")
    parts = [
        MIMEText(body, subtype, "utf-8", policy=policy)
        for body, subtype in ((text, "plain"), (html, "html"))
        if body is not None
    ]
    if len(parts) == 1:
        email = parts[0]
    else:
        email = MIMEMultipart("alternative", policy=policy)
        for part in parts:
            email.attach(part)
    email["From"] = _header("From", sender, international)
    email["To"] = message.address
    email["Subject"] = _header("Subject", content.get("subject", ""), international)
    if reply_to:
        email["Reply-To"] = _header("Reply-To", reply_to, international)
    email["Message-ID"] = f"<{message.message_id}{id_domain(sender)}>"
    email["Date"] = formatdate(usegmt=True)
    email["X-Campaign"] = f"{message.campaign}/{message.activity}"
    return email


def id_domain(sender: str) -> str:
    """What follows a message's id in its Message-ID: `@` and the domain of the `from` address.

    >>> id_domain("News <news@hotel.example>"), id_domain("")
    ('@hotel.example', '@localhost')
    """
    return "@" + (parseaddr(sender)[1].rpartition("@")[2] or "localhost")


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
