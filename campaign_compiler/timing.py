"""Time as campaigns see it: durations (`3d`), instants (ISO 8601), occurrences, and the clock.

Every instant is handled as an aware UTC datetime, and written into SQL and the warehouse as a
naive UTC timestamp (`2026-03-02 07:00:00`). The clock can be set: `--now ISO` on the commands
that depend on time, or the environment variable CAMPAIGN_NOW, so that tests, demos and a user's
rehearsal of a month of daily sends are deterministic.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta, tzinfo

from .errors import Diagnostic, InvalidInput

NOW_VARIABLE = "CAMPAIGN_NOW"
ONCE = "once"  # the occurrence of a campaign without schedule
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION_RULE = "a number and a unit: 30m, 12h, 3d, 2w (s, m, h, d, w)"
MAX_DURATION = timedelta(days=3660)


def parse_duration(text: object) -> timedelta | None:
    """`3d` as a timedelta; None when `text` is not a duration (zero is not one either).

    >>> parse_duration("3d"), parse_duration("90m"), parse_duration("3 days")
    (datetime.timedelta(days=3), datetime.timedelta(seconds=5400), None)
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    value = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return value if timedelta(0) < value <= MAX_DURATION else None


def format_duration(value: timedelta) -> str:
    """The shortest exact way to write `value`.

    >>> format_duration(timedelta(days=3)), format_duration(timedelta(minutes=90))
    ('3d', '90m')
    """
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_instant(text: object, zone: tzinfo = UTC) -> datetime | None:
    """An ISO 8601 date or date-time as an aware UTC datetime; a time without offset is in `zone`
    (UTC unless said). None when `text` is not one.

    >>> parse_instant("2026-03-02T08:00:00+01:00")
    datetime.datetime(2026, 3, 2, 7, 0, tzinfo=datetime.timezone.utc)
    >>> parse_instant("2026-03-02"), parse_instant("tomorrow")
    (datetime.datetime(2026, 3, 2, 0, 0, tzinfo=datetime.timezone.utc), None)
    """
    if isinstance(text, datetime):
        value = text
    elif isinstance(text, str):
        try:
            value = datetime.fromisoformat(text.strip().replace("z", "Z"))
        except ValueError:
            return None
    else:
        try:  # YAML reads 2026-03-02 as a date
            value = datetime(text.year, text.month, text.day)  # type: ignore[union-attr]
        except AttributeError:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def occurrence_name(instant: datetime) -> str:
    """A scheduled slot's occurrence: its UTC time, ISO 8601, to the second.

    >>> occurrence_name(datetime(2026, 3, 2, 7, tzinfo=UTC))
    '2026-03-02T07:00:00Z'
    """
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def occurrence_instant(occurrence: str) -> datetime | None:
    """The slot time an occurrence is named by; None for a named one (`once`).

    >>> occurrence_instant("2026-03-02T07:00:00Z"), occurrence_instant("once")
    (datetime.datetime(2026, 3, 2, 7, 0, tzinfo=datetime.timezone.utc), None)
    """
    if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", occurrence):
        return None
    return parse_instant(occurrence)


def sql_timestamp(instant: datetime) -> str:
    """How an instant is written into SQL and the warehouse: naive UTC, to the second.

    >>> sql_timestamp(datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
    '2026-03-02 08:30:00'
    """
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def from_warehouse(value: datetime) -> datetime:
    """A naive UTC timestamp read from the warehouse, as an aware datetime."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now(given: str | None = None) -> datetime:
    """The current time: `given` (a --now option), else $CAMPAIGN_NOW, else the clock; InvalidInput
    when the one given is not an ISO time."""
    for text, where in ((given, "--now"), (os.environ.get(NOW_VARIABLE), f"${NOW_VARIABLE}")):
        if text:
            instant = parse_instant(text)
            if instant is None:
                raise InvalidInput(
                    [Diagnostic(None, f'{where} "{text}" is not an ISO 8601 time (2026-03-02T08:00:00Z)')]
                )
            return instant
    return datetime.now(UTC)
