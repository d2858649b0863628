"""A welcome series over seven simulated days, on DuckDB and PostgreSQL: new guests arrive every day,
a daily tick welcomes those who signed up since the last run, and three days later texts those who
did not open the email, whose opens are loaded between ticks. The expected messages of each day and
branch are computed here, from the rows the test inserted and the events it loaded.

Also: a second tick at the same time runs nothing; a missed slot is skipped and its guests welcomed
by the next occurrence; a tick killed in the middle of its send is resumed by the next one, and no
message is ever sent twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path

import pytest
from conftest import Project
from welcome_project import WELCOME, name, write_welcome

pytestmark = pytest.mark.slow

SLOT = [datetime(2026, 3, 1 + day, 7, tzinfo=UTC) for day in range(0, 9)]  # SLOT[i]: day i's 08:00 in Paris


def make(root: Path) -> Project:
    project = Project(root)
    # three guests who signed up before the schedule starts: the first occurrence has no watermark
    write_welcome(
        project,
        "1,Ada,ada@example.com,+33600000001,true,2026-02-20 10:00:00\n"
        "2,Bob,bob@example.com,,true,2026-02-25 10:00:00\n"
        "3,Cy,,+33600000003,true,2026-02-27 10:00:00\n",
    )
    return project


class Guests:
    """The guests the test knows of, and the oracle of who gets what."""

    def __init__(self):
        self.rows = {
            1: ("Ada", "ada@example.com", "+33600000001", True, datetime(2026, 2, 20, 10, tzinfo=UTC)),
            2: ("Bob", "bob@example.com", None, True, datetime(2026, 2, 25, 10, tzinfo=UTC)),
            3: ("Cy", None, "+33600000003", True, datetime(2026, 2, 27, 10, tzinfo=UTC)),
        }
        self.opened: set[int] = set()

    def arrive(self, day: int) -> list[tuple]:
        """Day `day`'s sign-ups, between the slot before and this one (one exactly at the slot: it is
        this occurrence's; one just after the slot before), some without consent, email or phone."""
        start, end = SLOT[day - 1], SLOT[day]
        new = {
            100 * day + 1: (
                f"G{day}a",
                f"g{day}a@example.com",
                f"+3361000{day:04d}",
                True,
                start + timedelta(seconds=1),
            ),
            100 * day + 2: (f"G{day}b", f"g{day}b@example.com", None, True, start + timedelta(hours=5)),
            100 * day + 3: (
                f"G{day}c",
                f"g{day}c@example.com",
                f"+3362000{day:04d}",
                False,
                start + timedelta(hours=9),
            ),
            100 * day + 4: (f"G{day}d", f"g{day}d@example.com", f"+3363000{day:04d}", True, end),
        }
        self.rows.update(new)
        return [(key, *values) for key, values in new.items()]

    def welcomed(self, after: datetime | None, until: datetime) -> set[int]:
        return {
            key
            for key, (_, email, _, opt_in, signed) in self.rows.items()
            if (after is None or signed > after) and signed <= until and email and opt_in
        }

    def nudged(self, welcomed: set[int]) -> set[int]:
        return {key for key in welcomed - self.opened if self.rows[key][2]}


def insert(project: Project, target: str, rows: list[tuple]) -> None:
    values = ", ".join(
        f"({key}, '{first}', {sql(email)}, {sql(phone)}, {str(opt_in).lower()}, "
        f"cast('{signed.strftime('%Y-%m-%d %H:%M:%S')}' as timestamp))"
        for key, first, email, phone, opt_in, signed in rows
    )
    table = f'"{project.schema}".guests' if target == "postgres" else "guests"  # Spark: its current schema
    project.query_write(target, f"insert into {table} values {values}")


def sql(value) -> str:
    return "null" if value is None else f"'{value}'"


def outbox(project: Project, target: str, occurrence: str, activity: str) -> Path:
    return project.root / "target" / "outbox" / target / "welcome" / occurrence / activity


def emails(project: Project, target: str, occurrence: str) -> dict[str, str]:
    """The welcome emails of an occurrence: address -> the id its events carry (Message-ID without <>)."""
    found = {}
    for path in sorted(outbox(project, target, occurrence, "welcome").glob("*.eml")):
        message = message_from_bytes(path.read_bytes())
        found[message["To"]] = message["Message-ID"].strip("<>")
    return found


def texts(project: Project, target: str, occurrence: str) -> list[str]:
    path = outbox(project, target, occurrence, "nudge") / "messages.jsonl"
    return [json.loads(line)["to"] for line in path.read_text().splitlines()] if path.exists() else []


def tick(project: Project, target: str, now: datetime) -> str:
    result = project.run("tick", "--yes", "--target", target, "--now", name(now))
    assert result.code == 0, result.stderr
    return result.stderr


def load_opens(project: Project, target: str, ids: list[str], at: datetime) -> None:
    lines = "".join(json.dumps({"message_id": i, "event": "open", "at": name(at)}) + "\n" for i in ids)
    lines += json.dumps({"message_id": "no-such-message@example.com", "event": "open", "at": name(at)}) + "\n"
    path = project.write(f"events_{at:%m%d}.jsonl", lines)
    for _ in range(2):  # loaded twice: stored once
        result = project.run("events", "load", str(path), "--target", target)
        assert result.code == 0, result.stderr


class Series:
    """The days of a welcome series run by ticks, each checked against the oracle as it ends."""

    def __init__(self, project: Project, target: str):
        self.project, self.target = project, target
        self.guests = Guests()
        self.by_email: dict[str, int] = {}
        self.watermark: datetime | None = None
        self.welcomed: dict[str, set[int]] = {}

    def arrive(self, day: int) -> None:
        """Day `day`'s sign-ups: into the seed before the first build creates the table, then inserted."""
        if day > 1:
            insert(self.project, self.target, self.guests.arrive(day))
            return
        self.guests.arrive(day)
        seed = self.project.root / "seeds/guests.csv"
        self.project.write(
            "seeds/guests.csv",
            seed.read_text()
            + "".join(
                f"{k},{f},{e or ''},{p or ''},{str(o).lower()},{s:%Y-%m-%d %H:%M:%S}\n"
                for k, (f, e, p, o, s) in self.guests.rows.items()
                if k > 100
            ),
        )

    def tick(self, day: int) -> tuple[str, dict[str, str]]:
        """Day `day`'s tick: what it said, and the welcome emails it sent (address -> message id), which
        must be the oracle's; every wait due by then released to exactly those who did not open."""
        project, target, guests = self.project, self.target, self.guests
        now = SLOT[day] + timedelta(minutes=30)
        said = tick(project, target, now)
        expected = guests.welcomed(self.watermark, SLOT[day])
        sent = emails(project, target, name(SLOT[day]))
        self.by_email.update({row[1]: key for key, row in guests.rows.items() if row[1]})
        assert sorted(self.by_email[address] for address in sent) == sorted(expected), f"day {day}"
        self.welcomed[name(SLOT[day])] = expected
        self.watermark = SLOT[day]
        # releases: three days after each occurrence, at the first tick at or after it
        for earlier, keys in self.welcomed.items():
            release = datetime.fromisoformat(earlier.replace("Z", "+00:00")) + timedelta(days=3)
            phones = sorted(texts(project, target, earlier))
            if release <= now:
                assert phones == sorted(guests.rows[k][2] for k in guests.nudged(keys)), (
                    f"day {day}, nudges of {earlier}"
                )
            else:
                assert phones == [], f"day {day}: {earlier} released early"
        return said, sent

    def open_half(self, day: int, sent: dict[str, str]) -> None:
        """Half of the day's welcome emails (guest ids even) opened an hour after the slot, loaded twice."""
        opened = [mid for address, mid in sent.items() if self.by_email[address] % 2 == 0]
        self.guests.opened |= {self.by_email[a] for a, mid in sent.items() if mid in opened}
        load_opens(self.project, self.target, opened, SLOT[day] + timedelta(hours=1))

    def nudges_released(self, by: str) -> int:
        """The texts of the occurrences released by the tick of `by`."""
        released = [occurrence for occurrence in self.welcomed if occurrence <= by]
        return sum(len(self.guests.nudged(self.welcomed[occurrence])) for occurrence in released)


def sent_once(project: Project, target: str) -> None:
    """Nothing was ever sent twice, and every guest was welcomed at most once (the `sent` rows: on Spark
    the log is a journal, where a message also has the rows of its intent)."""
    sent = "from campaign_deliveries where status = 'sent'"
    assert project.scalar(target, f"select count(*) - count(distinct message_id) {sent}") == 0
    welcomes = project.query(
        target, f"select recipient_key, count(*) {sent} and activity = 'welcome' group by 1 having count(*) > 1"
    )
    assert welcomes == []


def test_a_welcome_series_over_seven_days_sends_what_the_rows_and_events_say(tmp_path, target):
    project = make(tmp_path / "p")
    series = Series(project, target)
    for day in range(1, 8):
        series.arrive(day)
        if day == 5:
            continue  # no tick today: the slot is missed
        said, sent = series.tick(day)
        if day == 6:
            assert "skipped 1 slot" in said
        series.open_half(day, sent)
        if day == 3:
            assert "0 steps run" in tick(project, target, SLOT[day] + timedelta(minutes=30))  # a second tick
    sent_once(project, target)
    guests, welcomed = series.guests, series.welcomed
    skipped = project.query(target, "select occurrence, status from campaign_occurrences where status = 'skipped'")
    assert skipped == [(name(SLOT[5]), "skipped")]
    waiting = project.query(
        target, "select occurrence from campaign_occurrences where status = 'waiting' order by occurrence"
    )
    assert waiting == [(name(SLOT[6]),), (name(SLOT[7]),)]
    stored = project.scalar(target, "select count(*) from campaign_events")
    assert stored == len(guests.opened) > 0
    released = [occurrence for occurrence in welcomed if occurrence <= name(SLOT[4])]  # by day 7's tick
    # the reaction held someone back: a guest with a phone who opened the email got no text
    assert any(guests.rows[key][2] for o in released for key in welcomed[o] & guests.opened)
    nudges = series.nudges_released(name(SLOT[4]))
    assert (
        project.scalar(target, "select count(*) from campaign_deliveries where activity = 'nudge' and status = 'sent'")
        == nudges
        > 0
    )


@pytest.mark.spark
def test_four_days_of_the_welcome_series_on_spark(tmp_path, spark):
    """On Spark, whose shared tables are journals: the incremental query's watermark, the wait's
    population recorded once, its release to the reaction's `no`, events loaded twice and stored once."""
    project = make(tmp_path / "p")
    series = Series(project, "spark")
    for day in range(1, 5):
        series.arrive(day)
        said, sent = series.tick(day)
        series.open_half(day, sent)
    assert "0 steps run" in tick(project, "spark", SLOT[4] + timedelta(minutes=30))
    sent_once(project, "spark")
    nudges = series.nudges_released(name(SLOT[1]))  # day 4's tick released day 1's wait
    assert (
        project.scalar("spark", "select count(*) from campaign_deliveries where activity = 'nudge' and status = 'sent'")
        == nudges
        > 0
    )
    assert project.scalar("spark", "select count(*) from campaign_events") == len(series.guests.opened)


def test_a_tick_killed_in_the_middle_of_its_send_is_resumed_by_the_next_one(tmp_path, target):
    project = make(tmp_path / "p")
    rows = "".join(f"{k},G{k},g{k}@example.com,+3364{k:07d},true,2026-03-01 12:00:00\n" for k in range(10, 6010))
    project.write("seeds/guests.csv", (project.root / "seeds/guests.csv").read_text() + rows)
    project.write(
        "campaigns/welcome.yml",
        WELCOME.replace("type: email", "type: sms")
        .replace("templates/welcome.yml", "templates/nudge.yml")
        .replace(", category: transactional", ""),
    )
    path = outbox(project, target, name(SLOT[1]), "welcome") / "messages.jsonl"
    now = name(SLOT[1] + timedelta(minutes=5))
    process = subprocess.Popen(
        [sys.executable, "-m", "campaign_compiler", "tick", "--yes", "--target", target, "--now", now],
        cwd=project.root,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while process.poll() is None and time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 20_000:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the tick finished before it could be interrupted"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    written = path.read_text().count("\n")
    assert 0 < written < 6003
    assert project.run("due", "--target", target, "--now", now).stdout.count("(retry)") == 1
    said = tick(project, target, SLOT[1] + timedelta(minutes=5))
    assert "1 step run" in said
    addresses = [json.loads(line)["to"] for line in path.read_text().splitlines()]
    assert len(addresses) == len(set(addresses)) == 6002  # every guest with a phone, once (Bob has none)
    assert project.query(target, "select step, status from campaign_occurrences order by step") == [
        ("start", "succeeded"),
        ("three_days", "waiting"),
    ]


@pytest.mark.duckdb
def test_a_simulation_freezes_no_population_and_an_empty_one_is_not_built_again(tmp_path):
    project = make(tmp_path / "p")
    now = name(SLOT[1] + timedelta(minutes=5))
    simulated = project.run("run", "welcome", "--simulate", "--now", now)
    assert simulated.code == 0, simulated.stderr
    assert project.scalar("duckdb", "select count(*) from welcome__three_days__waiting") == 0
    assert project.scalar("duckdb", "select count(*) from campaign_occurrences") == 0
    assert project.run("tick", "--yes", "--now", now).code == 0
    assert project.scalar("duckdb", "select count(*) from welcome__three_days__waiting") == 2  # Ada and Bob
    # the next day nobody signed up: the wait of that occurrence is done at once, with nothing to release
    said = tick(project, "duckdb", SLOT[2] + timedelta(minutes=5))
    assert "1 step run" in said
    rows = project.query(
        "duckdb",
        f"select status, entered, detail from campaign_occurrences where occurrence = '{name(SLOT[2])}' order by step",
    )
    assert rows == [("succeeded", None, None), ("succeeded", 0, "no one entered the wait")]
    assert project.run("due", "--now", name(SLOT[5] + timedelta(minutes=5))).stdout.count("three_days") == 1


@pytest.mark.duckdb
def test_a_tick_with_only_a_missed_slot_records_it_skipped(tmp_path):
    project = make(tmp_path / "p")
    project.write("campaigns/welcome.yml", WELCOME.replace('start: "2026-03-02"', 'start: "2026-03-02", catch_up: 1h'))
    said = tick(project, "duckdb", SLOT[1] + timedelta(hours=2))  # an hour too late, the next slot not yet come
    assert "0 steps run, 1 slot skipped" in said
    assert project.query("duckdb", "select occurrence, step, status from campaign_occurrences") == [
        (name(SLOT[1]), "start", "skipped")
    ]
