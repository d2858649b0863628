"""Schedules: the slots of a cron expression in a time zone, and every mistake in one located."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from validation_helpers import errors_of, run_in_process, with_data_model

from campaign_compiler.compile.schedule import Schedule
from campaign_compiler.errors import Diagnostics
from campaign_compiler.workspace import Workspace

C = "campaigns/c.yml"
PARIS_8AM = Schedule("0 8 * * *", "Europe/Paris")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_daily_time_in_paris_keeps_its_wall_clock_time_across_the_march_change():
    # clocks go forward on 2026-03-29: 08:00 in Paris is 07:00Z before, 06:00Z after
    slots = list(PARIS_8AM.slots(utc(2026, 3, 27), utc(2026, 3, 31)))
    assert slots == [utc(2026, 3, 27, 7), utc(2026, 3, 28, 7), utc(2026, 3, 29, 6), utc(2026, 3, 30, 6)]


def test_a_daily_time_in_paris_keeps_its_wall_clock_time_across_the_october_change():
    # clocks go back on 2026-10-25
    slots = list(PARIS_8AM.slots(utc(2026, 10, 24), utc(2026, 10, 26, 12)))
    assert slots == [utc(2026, 10, 24, 6), utc(2026, 10, 25, 7), utc(2026, 10, 26, 7)]


def test_a_time_skipped_when_clocks_go_forward_runs_at_the_end_of_the_gap_and_one_repeated_runs_once():
    at_half_past_two = Schedule("30 2 * * *", "Europe/Paris")
    spring = list(at_half_past_two.slots(utc(2026, 3, 28), utc(2026, 3, 30, 12)))
    assert spring == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)]  # 03:00 on the 29th
    autumn = list(at_half_past_two.slots(utc(2026, 10, 24), utc(2026, 10, 26, 12)))
    assert autumn == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # 01:15Z on the 25th is 02:15 the second time round: the slot of that day, 02:30 the first time, is behind
    assert at_half_past_two.latest(utc(2026, 10, 25, 1, 15)) == utc(2026, 10, 25, 0, 30)
    assert at_half_past_two.next_after(utc(2026, 10, 25, 1, 15)) == utc(2026, 10, 26, 1, 30)


def test_slots_are_strictly_after_after_and_at_or_before_until():
    slots = list(PARIS_8AM.slots(utc(2026, 3, 2, 7), utc(2026, 3, 4, 7)))
    assert slots == [utc(2026, 3, 3, 7), utc(2026, 3, 4, 7)]
    assert list(PARIS_8AM.slots(utc(2026, 3, 2, 7), utc(2026, 3, 3, 6, 59, 59))) == []


def test_slots_stay_within_start_and_end():
    bounded = Schedule("0 8 * * *", "Europe/Paris", start=utc(2026, 3, 3, 7), end=utc(2026, 3, 5, 7))
    assert list(bounded.slots(None, utc(2026, 3, 10))) == [utc(2026, 3, 3, 7), utc(2026, 3, 4, 7), utc(2026, 3, 5, 7)]
    assert list(bounded.slots(utc(2026, 1, 1), utc(2026, 3, 10))) == list(bounded.slots(None, utc(2026, 3, 10)))
    assert list(bounded.slots(utc(2026, 3, 4, 7), utc(2026, 3, 10))) == [utc(2026, 3, 5, 7)]
    assert list(bounded.slots(None, utc(2026, 3, 1))) == []


def test_without_start_nor_after_the_slots_begin_with_the_latest():
    assert list(PARIS_8AM.slots(None, utc(2026, 3, 4, 12))) == [utc(2026, 3, 4, 7)]


def test_latest_next_and_is_slot():
    bounded = Schedule("0 8 * * *", "Europe/Paris", start=utc(2026, 3, 3, 7), end=utc(2026, 3, 5, 7))
    assert PARIS_8AM.latest(utc(2026, 3, 4, 7)) == utc(2026, 3, 4, 7)  # at: included
    assert PARIS_8AM.latest(utc(2026, 3, 4, 6, 59, 59)) == utc(2026, 3, 3, 7)
    assert PARIS_8AM.latest(utc(2026, 3, 4, 7, 0, 0, 500_000)) == utc(2026, 3, 4, 7)
    assert bounded.latest(utc(2026, 3, 3, 6)) is None  # before start
    assert bounded.latest(utc(2026, 12, 1)) == utc(2026, 3, 5, 7)  # after end: the last one
    assert PARIS_8AM.next_after(utc(2026, 3, 4, 7)) == utc(2026, 3, 5, 7)  # strictly after
    assert bounded.next_after(utc(2026, 1, 1)) == utc(2026, 3, 3, 7)
    assert bounded.next_after(utc(2026, 3, 5, 7)) is None  # ended
    assert PARIS_8AM.is_slot(utc(2026, 3, 4, 7)) and PARIS_8AM.is_slot(utc(2026, 3, 30, 6))
    assert not PARIS_8AM.is_slot(utc(2026, 3, 4, 8)) and not PARIS_8AM.is_slot(utc(2026, 3, 30, 7))
    assert not bounded.is_slot(utc(2026, 3, 6, 7))  # a time of the cron expression, after end


def test_missed_without_catch_up_is_once_the_next_slot_has_come():
    slot = utc(2026, 3, 2, 7)
    assert not PARIS_8AM.missed(slot, utc(2026, 3, 3, 6, 59))
    assert PARIS_8AM.missed(slot, utc(2026, 3, 3, 7))
    # the last slot before end is missed when the cron expression's next time comes, though it is no slot
    last = Schedule("0 8 * * *", "Europe/Paris", end=utc(2026, 3, 2, 7))
    assert not last.missed(slot, utc(2026, 3, 3, 6, 59)) and last.missed(slot, utc(2026, 3, 3, 7))


def test_missed_with_catch_up_is_once_that_long_has_passed():
    weekly = Schedule("0 8 * * 1", "Europe/Paris", catch_up=timedelta(hours=6))
    slot = utc(2026, 3, 2, 7)
    assert not weekly.missed(slot, utc(2026, 3, 2, 12, 59, 59))
    assert weekly.missed(slot, utc(2026, 3, 2, 13))
    long_catch_up = Schedule("0 8 * * *", "Europe/Paris", catch_up=timedelta(days=3))
    assert not long_catch_up.missed(slot, utc(2026, 3, 4, 7))  # beyond the next slot, still in time


def test_an_expression_that_comes_true_once_in_decades_does_not_loop():
    fifth_monday_of_february = Schedule("0 0 * 2 MON#5")  # only in a leap year whose February starts on a Monday
    assert list(fifth_monday_of_february.slots(utc(2026, 1, 1), utc(2040, 1, 1))) == []
    assert fifth_monday_of_february.latest(utc(2040, 1, 1)) == utc(2016, 2, 29)
    assert fifth_monday_of_february.next_after(utc(2026, 1, 1)) == utc(2044, 2, 29)


def test_describe():
    assert PARIS_8AM.describe() == "0 8 * * * Europe/Paris"


CAMPAIGN = """\
campaign: c
schedule: {schedule}
activities:
  a: {{type: build_audience}}
"""


def schedule_errors(project, monkeypatch, schedule: str) -> list[str]:
    return errors_of(project, monkeypatch, CAMPAIGN.format(schedule=schedule))


def read(project, schedule: str) -> Schedule:
    """The schedule of a campaign file, as the compiler reads it."""
    project.write(C, CAMPAIGN.format(schedule=schedule))
    diagnostics = Diagnostics()
    campaign = Workspace(project.root).load("c", diagnostics)
    assert not diagnostics, diagnostics.sorted()
    return campaign.schedule


# (id, schedule, the exact errors `campaign validate` prints)
ERROR_CASES = [
    ("not-a-mapping", '"0 8 * * *"', [f"{C}:2:11: error: schedule must be a mapping, not a string"]),
    ("no-cron", "{timezone: UTC}", [f'{C}:2:11: error: schedule needs "cron"']),
    (
        "unknown-key",
        '{cron: "0 8 * * *", time_zone: UTC}',
        [f'{C}:2:31: error: unknown key "time_zone" in schedule (did you mean "timezone"?)'],
    ),
    ("cron-not-text", "{cron: 8}", [f"{C}:2:18: error: cron must be a non-empty string, not a number"]),
    (
        "cron-fields",
        '{cron: "0 0 8 * * *"}',
        [f'{C}:2:18: error: cron "0 0 8 * * *" has 6 fields; it needs 5: minute hour day-of-month month day-of-week'],
    ),
    ("cron-hour", '{cron: "0 25 * * *"}', [f'{C}:2:18: error: cron "0 25 * * *": bad hour "25" (0-23)']),
    (
        "cron-30-february",
        '{cron: "0 8 30 2 *"}',
        [
            f'{C}:2:18: error: cron "0 8 30 2 *": bad day-of-month "30" (1-31, L or LW, and a day that the months '
            "named have)"
        ],
    ),
    (
        "cron-weekday",
        '{cron: "0 8 * * MONDAY"}',
        [
            f'{C}:2:18: error: cron "0 8 * * MONDAY": bad day-of-week "MONDAY" (0-7 or SUN-SAT, 5L for the last '
            "Friday, MON#2 for the second Monday)"
        ],
    ),
    (
        "timezone-close",
        '{cron: "0 8 * * *", timezone: Europe/Pari}',
        [f'{C}:2:41: error: unknown time zone "Europe/Pari" (did you mean "Europe/Paris"?)'],
    ),
    (
        "timezone-city",
        '{cron: "0 8 * * *", timezone: paris}',
        [f'{C}:2:41: error: unknown time zone "paris" (did you mean "Europe/Paris"?)'],
    ),
    (
        "timezone-unknown",
        '{cron: "0 8 * * *", timezone: Mars/Olympus}',
        [f'{C}:2:41: error: unknown time zone "Mars/Olympus": an IANA name, such as Europe/Paris or UTC'],
    ),
    (
        "timezone-of-the-machine",
        '{cron: "0 8 * * *", timezone: localtime}',
        [f'{C}:2:41: error: unknown time zone "localtime": an IANA name, such as Europe/Paris or UTC'],
    ),
    (
        "start-not-iso",
        '{cron: "0 8 * * *", start: next monday}',
        [
            f"{C}:2:38: error: start must be an ISO 8601 date or time (2026-03-02, 2026-03-02T08:00 or "
            '2026-03-02T08:00:00+01:00), not "next monday"'
        ],
    ),
    (
        "end-not-a-date",
        '{cron: "0 8 * * *", end: 2026-02-30}',
        [
            f"{C}:2:36: error: end must be an ISO 8601 date or time (2026-03-02, 2026-03-02T08:00 or "
            '2026-03-02T08:00:00+01:00), not "2026-02-30"'
        ],
    ),
    (
        "end-before-start",
        '{cron: "0 8 * * *", start: 2026-03-02, end: 2026-03-01}',
        [f'{C}:2:55: error: end "2026-03-01" is before start "2026-03-02"'],
    ),
    (
        "no-slot-between",
        '{cron: "0 8 * * 1", start: 2026-03-03, end: 2026-03-08}',
        [f"{C}:2:55: error: 0 8 * * 1 UTC has no time between start and end"],
    ),
    (
        "catch-up",
        '{cron: "0 8 * * *", catch_up: 3 days}',
        [
            f"{C}:2:41: error: catch_up must be a duration, a number and a unit: 30m, 12h, 3d, 2w (s, m, h, d, w); "
            'not "3 days"'
        ],
    ),
    (
        "every-error-at-once",
        '{cron: "0 8 * *", timezone: Utopia, start: soon, catch_up: 0d}',
        [
            f'{C}:2:18: error: cron "0 8 * *" has 4 fields; it needs 5: minute hour day-of-month month day-of-week',
            f'{C}:2:39: error: unknown time zone "Utopia": an IANA name, such as Europe/Paris or UTC',
            f"{C}:2:54: error: start must be an ISO 8601 date or time (2026-03-02, 2026-03-02T08:00 or "
            '2026-03-02T08:00:00+01:00), not "soon"',
            f"{C}:2:70: error: catch_up must be a duration, a number and a unit: 30m, 12h, 3d, 2w (s, m, h, d, w); "
            'not "0d"',
        ],
    ),
]


@pytest.mark.parametrize("schedule, expected", [pytest.param(s, e, id=i) for i, s, e in ERROR_CASES])
def test_a_bad_schedule_is_rejected_at_its_key(project, monkeypatch, schedule, expected):
    with_data_model(project)
    assert schedule_errors(project, monkeypatch, schedule) == expected


def test_a_valid_schedule_validates_and_compiles(project, monkeypatch):
    with_data_model(project)
    schedule = '{cron: "0 8 * * 1", timezone: Europe/Paris, start: 2026-03-02, end: 2026-06-30, catch_up: 6h}'
    assert schedule_errors(project, monkeypatch, schedule) == []
    code, _, err = run_in_process(project, monkeypatch, "compile")
    assert code == 0, err


def test_start_and_end_without_offset_are_in_the_schedule_s_time_zone(project):
    with_data_model(project)
    schedule = read(
        project,
        '{cron: "0 8 * * *", timezone: Europe/Paris, start: "2026-03-02T08:00", end: 2026-03-31, catch_up: 6h}',
    )
    assert schedule == Schedule(
        "0 8 * * *",
        "Europe/Paris",
        start=utc(2026, 3, 2, 7),
        end=utc(2026, 3, 31, 21, 59, 59),  # an end date includes its day, up to midnight in Paris (CEST)
        catch_up=timedelta(hours=6),
    )
    assert schedule.latest(utc(2026, 12, 1)) == utc(2026, 3, 31, 6)  # the end date's slot is one
    with_offset = read(project, '{cron: "0 8 * * *", timezone: Europe/Paris, start: "2026-03-02T08:00Z"}')
    assert with_offset.start == utc(2026, 3, 2, 8)
    assert read(project, '{cron: "0  8 * * *"}') == Schedule("0 8 * * *", "UTC")
