"""What the compiler and the channel macros (`macros/helpers/_message_candidates.sql`) agree on.

Defined here only: the compiler passes each of them to the macros as an argument of the models it
writes, the commands that count and describe messages read them from here.

* the exclusion reasons, in the order they apply (the first that applies is a candidate's reason);
* the columns a channel's candidates have of their own, which no other column may be named;
* the pattern an address of a channel must match, per warehouse when their regular expressions differ.
"""

from __future__ import annotations

from ..engines import ENGINES

EXCLUSION_REASONS = {
    "no_address": "no address, or one the channel cannot use",
    "no_consent": "marketing messages only: the recipient did not opt in",
    "suppressed": "the address is in campaign_suppressions for the channel",
    "frequency_cap": "the address had its most messages of the channel in the period",
    "control_group": "the recipient is held out",
    "duplicate_address": "another candidate has the address",
}
"""Reason -> what it means. `duplicate_address` comes last: it ranks the candidates no other reason excludes."""

EXCLUSION_ORDER = tuple(EXCLUSION_REASONS)

MESSAGE_COLUMNS = ("message_key", "address", "exclusion_reason")
"""The columns every candidate has besides the recipient key and the linked row's key."""

RESERVED_COLUMNS = (*MESSAGE_COLUMNS, "_campaign_consent", "_campaign_complete", "_campaign_reason")
"""The candidates' own columns: those above and the macro's working columns."""


def _email_pattern(control: str) -> str:
    """No space, control character or line break (CR, LF, U+0085, U+2028...): none of them could be
    written in a header without breaking it."""
    part = rf"[^@\s{control}]+"
    return rf"^{part}@{part}\.{part}$"


ADDRESS_PATTERNS: dict[str, str | dict[str, str]] = {
    "email": {name: _email_pattern(engine.control_characters) for name, engine in ENGINES.items()},
    "sms": r"^\+[1-9][0-9]{6,14}$",  # E.164
}
"""Channel -> the regular expression its addresses match: one, or one per warehouse type. A channel
without one (push, direct_mail) takes any address that is not blank."""


def exclusion_reason_description() -> str:
    """The description of the candidates' `exclusion_reason` column."""
    reasons = "; ".join(f"{reason} ({meaning})" for reason, meaning in EXCLUSION_REASONS.items())
    return f"Why the candidate is not sent, the first that applies of: {reasons}. NULL when it is sent."
