"""A campaign's schedule: the times of a cron expression in a time zone, between a start and an end.

```yaml
schedule: {cron: "0 8 * * 1", timezone: Europe/Paris, start: 2026-03-02, end: 2026-06-30, catch_up: 6h}
```

Each time is a *slot*, an occurrence of the campaign named by its UTC time. The cron expression is
read in the schedule's time zone the way cron does (the `cronsim` library): a job at a fixed time
runs at that wall-clock time whatever the season, once when clocks go back, and at the end of the
gap when clocks go forward over it. Every instant given or returned is an aware UTC datetime.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from cronsim import CronSim, CronSimError

from ..errors import did_you_mean
from ..reader import Reader, quoted
from ..timing import parse_instant
from ..yamlsrc import Path_

SCHEDULE_KEYS = ("cron", "timezone", "start", "end", "catch_up")
CRON_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELD_VALUES = {
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31, L or LW, and a day that the months named have",
    "month": "1-12 or JAN-DEC",
    "day-of-week": "0-7 or SUN-SAT, 5L for the last Friday, MON#2 for the second Monday",
}
_INSTANT_EXAMPLES = "2026-03-02, 2026-03-02T08:00 or 2026-03-02T08:00:00+01:00"
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Schedule:
    """When a campaign runs: the times of `cron` in `timezone`, none before `start` nor after `end`.

    `catch_up` is how long after its time a slot that has not run may still run; without it, until
    the next slot comes.

    >>> schedule = Schedule("0 8 * * *", "Europe/Paris")
    >>> [str(slot) for slot in schedule.slots(datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC))]
    ['2026-03-28 07:00:00+00:00', '2026-03-29 06:00:00+00:00']
    """

    cron: str
    timezone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None  # inclusive
    catch_up: timedelta | None = None

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def describe(self) -> str:
        """The schedule as people read it.

        >>> Schedule("0 8 * * *", "Europe/Paris").describe()
        '0 8 * * * Europe/Paris'
        """
        return f"{self.cron} {self.timezone}"

    def slots(self, after: datetime | None, until: datetime) -> Iterator[datetime]:
        """The slots strictly after `after` and at or before `until`, in order. Without `after`, the
        slots from `start`; when there is no start either, the latest slot at or before `until` alone:
        a schedule with no start begins with the slot that is due, not with the whole past."""
        if after is None and self.start is None:
            latest = self.latest(until)
            if latest is not None:
                yield latest
            return
        for slot in self._within(after):
            if slot > until:
                return
            yield slot

    def latest(self, at: datetime) -> datetime | None:
        """The last slot at or before `at`; None when there is none."""
        if self.end is not None:
            at = min(at, self.end)
        candidate = self._backward(at)
        if candidate is None:
            return None
        # a wall-clock time that happens twice when clocks go back runs at its first instant, which
        # can come after the candidate found walking back in wall-clock time: walk forward from it
        for slot in self._forward(candidate):
            if slot > at:
                break
            candidate = slot
        return candidate if self.start is None or candidate >= self.start else None

    def next_after(self, at: datetime) -> datetime | None:
        """The first slot strictly after `at`; None when there is none (the schedule has ended)."""
        return next(self._within(at), None)

    def is_slot(self, instant: datetime) -> bool:
        """Whether `instant` is a slot of this schedule."""
        return self.latest(instant) == instant

    def missed(self, slot: datetime, now: datetime) -> bool:
        """Whether `slot`, not run by `now`, is too late to run: `catch_up` after it, or without
        catch_up once the next time of the cron expression has come (that of the last slot before
        `end` too, though it is no slot: else the last slot could never be missed)."""
        if self.catch_up is not None:
            return now >= slot + self.catch_up
        following = next(self._forward(slot), None)
        return following is not None and following <= now

    def _within(self, after: datetime | None) -> Iterator[datetime]:
        """The slots strictly after `after` (from `start` when it is later or `after` is None), up to
        `end`."""
        if self.start is not None and (after is None or after < self.start):
            after = self.start - _SECOND
        assert after is not None, "a schedule without start counts its slots from a given time"
        for slot in self._forward(after):
            if self.end is not None and slot > self.end:
                return
            if self.start is None or slot >= self.start:
                yield slot

    def _forward(self, after: datetime) -> Iterator[datetime]:
        """The times of the cron expression strictly after `after`, start and end aside. It ends when
        no time comes within 50 years (cronsim gives up there), so an expression with no time never
        loops forever."""
        times = CronSim(self.cron, after.astimezone(self.zone))
        while (found := next(times, None)) is not None:
            slot = found.astimezone(UTC)
            if slot > after:  # an hour that happens twice is walked twice, but runs once
                after = slot
                yield slot

    def _backward(self, at: datetime) -> datetime | None:
        """A time of the cron expression at or before `at`: the last one walking back in wall-clock
        time, which is the last one but when clocks went back in between (see `latest`)."""
        times = CronSim(self.cron, (at.replace(microsecond=0) + _SECOND).astimezone(self.zone), reverse=True)
        while (found := next(times, None)) is not None:
            if found.astimezone(UTC) <= at:
                return found.astimezone(UTC)
        return None


def read_schedule(r: Reader, path: Path_, raw: Any) -> Schedule | None:
    """The campaign's `schedule`, or None when it has an error; each error is reported at its key."""
    errors = len(r.diagnostics)
    r.mapping(path, raw, "schedule", required=("cron",), optional=SCHEDULE_KEYS[1:])
    if not isinstance(raw, dict):
        return None
    cron = _cron(r, path + ("cron",), raw["cron"]) if "cron" in raw else None
    timezone = _timezone(r, path + ("timezone",), raw["timezone"]) if "timezone" in raw else "UTC"
    zone = zoneinfo.ZoneInfo(timezone) if timezone is not None else UTC  # UTC only to check the syntax
    start = _instant(r, path, raw, "start", zone)
    end = _instant(r, path, raw, "end", zone)
    catch_up = r.duration(path + ("catch_up",), raw["catch_up"], "catch_up") if "catch_up" in raw else None
    if timezone is not None and start is not None and end is not None and end < start:
        r.error(path + ("end",), f"end {quoted(raw['end'])} is before start {quoted(raw['start'])}")
    if len(r.diagnostics) > errors or cron is None or timezone is None:
        return None
    schedule = Schedule(cron, timezone, start, end, catch_up)
    if end is not None and schedule.latest(end) is None:
        between = "between start and end" if start is not None else "at or before end"
        r.error(path + ("end",), f"{schedule.describe()} has no time {between}")
        return None
    return schedule


def _cron(r: Reader, path: Path_, value: Any) -> str | None:
    """The cron expression, its fields separated by one space; None when it is not one (reported)."""
    text = r.string(path, value, "cron")
    if text is None:
        return None
    fields = text.split()
    if len(fields) != len(CRON_FIELDS):
        r.error(
            path,
            f'cron "{text}" has {len(fields)} field{"s" if len(fields) != 1 else ""}; '
            f"it needs {len(CRON_FIELDS)}: {' '.join(CRON_FIELDS)}",
        )
        return None
    try:
        CronSim(text, datetime(2000, 1, 1))
    except CronSimError as error:
        field = str(error).removeprefix("Bad ")
        if field in CRON_FIELDS:
            given = fields[CRON_FIELDS.index(field)]
            r.error(path, f'cron "{text}": bad {field} "{given}" ({_FIELD_VALUES[field]})')
        else:
            r.error(path, f'cron "{text}" is not valid: {error}')
        return None
    return " ".join(fields)


def _timezone(r: Reader, path: Path_, value: Any) -> str | None:
    """The name of a time zone of the IANA database; None when it is not one (reported)."""
    name = r.string(path, value, "timezone")
    if name is None:
        return None
    if name not in _zones():
        r.error(
            path, f'unknown time zone "{name}"{_zone_suggestion(name) or ": an IANA name, such as Europe/Paris or UTC"}'
        )
        return None
    return name


@functools.cache
def _zones() -> frozenset[str]:
    # "localtime" is whatever the machine is set to: a campaign's times do not depend on the machine
    return frozenset(zoneinfo.available_timezones() - {"localtime"})


def _zone_suggestion(name: str) -> str:
    """' (did you mean "Europe/Paris"?)' for "europe/paris", "Paris" or "Europe/Pari"; else ''.

    >>> _zone_suggestion("paris"), _zone_suggestion("new york"), _zone_suggestion("Mars/Base")
    (' (did you mean "Europe/Paris"?)', ' (did you mean "America/New_York"?)', '')
    """
    wanted = name.strip().lower().replace(" ", "_")
    same = sorted(z for z in _zones() if z.lower() == wanted or z.lower().endswith("/" + wanted))
    if len(same) == 1:
        return f' (did you mean "{same[0]}"?)'
    return did_you_mean(name, sorted(_zones()))


def _instant(r: Reader, path: Path_, raw: dict, key: str, zone: tzinfo) -> datetime | None:
    """`start` or `end` as an aware UTC datetime: a time without offset is in the schedule's time zone,
    and a date is its first second for `start` and its last for `end` (so that `end` is that day's
    slots included); None when absent or not a time (reported)."""
    if key not in raw:
        return None
    value = raw[key]
    day = _date(value)
    if day is not None and key == "end":
        return parse_instant((day + timedelta(days=1)).isoformat(), zone) - _SECOND
    instant = parse_instant(value, zone)
    if instant is None:
        r.error(path + (key,), f"{key} must be an ISO 8601 date or time ({_INSTANT_EXAMPLES}), not {quoted(value)}")
    return instant


def _date(value: Any) -> date | None:
    """The date `value` is when it is a date alone (not a date and time)."""
    try:
        return date.fromisoformat(value.strip()) if isinstance(value, str) else None
    except ValueError:
        return None
