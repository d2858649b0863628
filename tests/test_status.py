"""`campaign status` and the canvas of a campaign with a wait, over two occurrences, on DuckDB and
PostgreSQL: the populations waiting, the events loaded and each channel activity's funnel, compared
with what the test inserted and with plain SQL on the warehouse."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Project
from welcome_project import name, write_welcome

FIRST, SECOND = datetime(2026, 3, 2, 7, tzinfo=UTC), datetime(2026, 3, 3, 7, tzinfo=UTC)  # 08:00 in Paris

# (guest_id, email, phone, email_opt_in, signed_up_at): before the first slot, then between the two
BEFORE = [
    (1, "ada@example.com", "+33600000001", True, "2026-02-20 10:00:00"),
    (2, "bob@example.com", None, True, "2026-02-25 10:00:00"),
    (3, None, "+33600000003", True, "2026-02-27 10:00:00"),
    (4, "dan@example.com", "+33600000004", False, "2026-02-28 10:00:00"),
]
BETWEEN = [
    (5, "eve@example.com", "+33600000005", True, "2026-03-02 09:00:00"),
    (6, "fay@example.com", None, True, "2026-03-02 18:00:00"),
    (7, "gus@example.com", None, False, "2026-03-03 06:00:00"),
]


def make(project: Project, target: str) -> Project:
    write_welcome(project, "".join(f"{k},G{k},{e or ''},{p or ''},{str(o).lower()},{s}\n" for k, e, p, o, s in BEFORE))
    return project


def table(project: Project, target: str, name: str) -> str:
    return name if target == "duckdb" else f'"{project.schema}".{name}'


def sql(value: str | None) -> str:
    return "null" if value is None else f"'{value}'"


def tick(project: Project, target: str, now: datetime) -> None:
    result = project.run("tick", "--yes", "--target", target, "--now", name(now))
    assert result.code == 0, result.stderr


def load_events(project: Project, target: str) -> None:
    """Guest 1 opens the welcome email twice and clicks in it, guest 5 opens it once."""
    deliveries = table(project, target, "campaign_deliveries")
    for guest, event, hour in (("1", "open", 9), ("1", "open", 10), ("1", "click", 10), ("5", "open", 11)):
        project.query_write(
            target,
            f"insert into {table(project, target, 'campaign_events')} select message_key || '.' || occurrence, "
            f"'{event}', cast('2026-03-03 {hour}:00:00' as timestamp), null, null, campaign, activity, channel, "
            f"occurrence, message_key, cast('2026-03-03 12:00:00' as timestamp), '{guest}{event}{hour}' "
            f"from {deliveries} where activity = 'welcome' and recipient_key = '{guest}'",
        )


@pytest.mark.slow
def test_status_and_canvas_show_what_waits_and_each_channel_funnel(project, target):
    make(project, target)
    tick(project, target, FIRST + timedelta(minutes=30))
    values = ", ".join(
        f"({k}, 'G{k}', {sql(e)}, {sql(p)}, {str(o).lower()}, cast('{s}' as timestamp))" for k, e, p, o, s in BETWEEN
    )
    project.query_write(target, f"insert into {table(project, target, 'guests')} values {values}")
    tick(project, target, SECOND + timedelta(minutes=30))
    load_events(project, target)

    result = project.run("status", "welcome", "--json", "--target", target)
    assert result.code == 0, result.stderr
    status = json.loads(result.stdout)

    # what waits: each occurrence's welcome messages, as the wait's own model holds them
    held = project.query(
        target,
        "select _campaign_occurrence, count(*), max(_campaign_release_at) from welcome__three_days__waiting "
        "group by 1 order by 1",
    )
    assert [(o, n, r.replace(tzinfo=UTC)) for o, n, r in held] == [
        (name(FIRST), 2, FIRST + timedelta(days=3)),  # Ada and Bob (Cy has no email, Dan no consent)
        (name(SECOND), 2, SECOND + timedelta(days=3)),  # Eve and Fay (Gus no consent)
    ]
    assert status["waiting"] == [
        {"wait": "three_days", "occurrence": o, "release": name(r.replace(tzinfo=UTC)), "population": n}
        for o, n, r in held
    ]
    assert status["waits"] == {
        "three_days": {"population": 4, "occurrences": 2, "next_release": name(FIRST + timedelta(days=3))}
    }
    assert [(s["occurrence"], s["step"], s["status"]) for s in status["occurrences"]] == [
        (name(SECOND), "start", "succeeded"),
        (name(SECOND), "three_days", "waiting"),
        (name(FIRST), "start", "succeeded"),
        (name(FIRST), "three_days", "waiting"),
    ]

    # the funnel: every guest new at its occurrence was a candidate, those without email or consent excluded
    sent = project.scalar(
        target, "select count(*) from campaign_deliveries where activity = 'welcome' and status = 'sent'"
    )
    assert sent == 4
    assert status["funnel"]["welcome"] == {
        "channel": "email",
        "targeted": len(BEFORE) + len(BETWEEN),
        "excluded": {"no_address": 1, "no_consent": 2},
        "sent": sent,
        "failed": 0,
        "unknown": 0,
        "simulated": 0,
        "events": {"open": 2, "click": 1},
    }
    assert status["funnel"]["nudge"]["targeted"] is None and status["funnel"]["nudge"]["sent"] == 0
    assert status["events"] == {"open": {"events": 3, "messages": 2}, "click": {"events": 1, "messages": 1}}

    text = project.run("status", "welcome", "--target", target)
    assert text.code == 0, text.stderr
    assert re.search(rf"three_days\s*│\s*{name(FIRST)}\s*│\s*2026-03-05 07:00\s*│\s*2\s*│", text.stdout)
    assert re.search(
        r"welcome\s*│\s*email\s*│\s*7\s*│\s*1\s*│\s*2\s*│\s*4\s*│\s*0\s*│\s*0\s*│\s*2\s*│\s*1\s*│", text.stdout
    )

    mermaid = project.run("graph", "welcome", "--format", "mermaid", "--target", target)
    assert mermaid.code == 0, mermaid.stderr
    assert "three_days<br/><i>wait</i><br/>4 waiting · next release 2026-03-05 07:00 UTC" in mermaid.stdout
    dot = project.run("graph", "welcome", "--format", "dot", "--target", target)
    assert "\\n4 waiting · next release 2026-03-05 07:00 UTC" in dot.stdout


@pytest.mark.duckdb
def test_status_of_a_campaign_nothing_ran_of_says_so(project):
    write_welcome(project, "")
    result = project.run("status", "welcome")
    assert result.code == 0, result.stderr
    assert result.stdout == "welcome has not run on target duckdb yet: nothing of it is built or logged there.\n"
    result = project.run("status", "welcome", "--json")
    assert json.loads(result.stdout)["occurrences"] == []
