"""`incremental_query` and `reaction` built by dbt on DuckDB and PostgreSQL.

Both read tables campaigns share rather than their inputs' models: an incremental query the
campaign's past occurrences (campaign_occurrences), a reaction the delivery log and the loaded
events. The tests write those rows themselves, build with the occurrence's time and name as dbt
variables, and compare the models with hand-written SQL over the raw tables, or with what the
rows they wrote say.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project, warehouse_params
from semantics_project import make_project

pytestmark = pytest.mark.slow

DBT = str(Path(sys.executable).with_name("dbt"))

INCREMENTAL = """\
campaign: timely
dimension: profiles
activities:
  new_guests: {type: incremental_query, since: created_at}
  new_french: {type: incremental_query, where: "country = 'FR'", since: Created_At}
  renewals: {type: incremental_query, dimension: subscriptions, since: renewal_date}
  checkins: {type: incremental_query, dimension: bookings, since: checkin_date}
"""

REACTIONS = """\
campaign: reacting
dimension: profiles
activities:
  everyone: {type: build_audience}
  mail: {type: email, input: everyone, template: templates/mail.yml}
  french: {type: build_audience, where: "country = 'FR'"}
  later: {type: wait, input: everyone, duration: 1d}
  french_later: {type: wait, input: french, duration: 1d}
  opened: {type: reaction, input: french_later, of: mail, event: open}
  clicked_soon: {type: reaction, input: later, of: mail, event: click, within: 2d}
  clicked: {type: reaction, input: later, of: mail, event: click}
"""

FIRST_RUN = "2026-11-15 12:00:00"
OCCURRENCE_COLUMNS = "campaign, occurrence, step, due_at, status, watermark"
DELIVERY_COLUMNS = """campaign, activity, channel, occurrence, recipient_key, per_key, message_key, address,
    status, attempts, sent_at"""
EVENT_COLUMNS = 'message_id, event, "at", campaign, activity, channel, occurrence, message_key, loaded_at, event_id'


@pytest.fixture(scope="module", params=warehouse_params())
def semantics(request, tmp_path_factory):
    """The semantics project with both campaigns, built once: the first occurrence, at FIRST_RUN."""
    target = request.param
    if target == "postgres":
        request.getfixturevalue("postgres")
    project = make_project(tmp_path_factory.mktemp(f"time_{target}") / "project")
    project.write("campaigns/timely.yml", INCREMENTAL)
    project.write("campaigns/reacting.yml", REACTIONS)
    compiled = project.run("compile", "timely", "reacting")
    assert compiled.code == 0, compiled.stderr
    dbt(project, "deps")
    build(project, target, "timely", "reacting", campaign_now=FIRST_RUN, campaign_occurrence="once")
    return project, target


def build(project: Project, target: str, *campaigns: str, **variables: str) -> None:
    """`dbt build` of the campaigns and what they read, as `campaign` will run it for an occurrence."""
    selected = [f"+tag:campaign_{c}" for c in campaigns]
    dbt(project, "build", "--select", *selected, "--target", target, "--vars", json.dumps(variables))


def dbt(project: Project, *args: str) -> None:
    done = subprocess.run(
        [DBT, *args, "--project-dir", str(project.root), "--profiles-dir", str(project.root)],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=600,
        env={"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout[-3000:]


def keys(project: Project, target: str, sql: str) -> set:
    return {row[0] for row in project.query(target, sql)}


def table(project: Project, target: str, name: str) -> str:
    return name if target == "duckdb" else f'"{project.schema}".{name}'


def insert(project: Project, target: str, name: str, columns: str, rows: list[tuple]) -> None:
    values = ", ".join("(" + ", ".join("null" if v is None else f"'{v}'" for v in row) + ")" for row in rows)
    project.query_write(target, f"insert into {table(project, target, name)} ({columns}) values {values}")


def test_the_first_run_of_an_incremental_query_selects_every_row_up_to_now_but_nulls(semantics):
    project, target = semantics
    up_to_now = f"select profile_id from profiles where created_at <= timestamp '{FIRST_RUN}'"
    assert keys(project, target, "select profile_id from timely__new_guests") == keys(project, target, up_to_now)
    renewing = "select subscription_id from subscriptions where renewal_date <= date '2026-11-15'"
    assert keys(project, target, "select subscription_id from timely__renewals") == keys(project, target, renewing)
    assert project.scalar(target, "select count(*) from subscriptions where renewal_date is null") > 0
    assert project.scalar(target, "select count(*) from subscriptions where renewal_date > date '2026-11-15'") > 0


def test_an_incremental_query_selects_the_rows_new_since_the_last_successful_occurrence(semantics):
    project, target = semantics
    # a succeeded start sets the watermark; a failed one, another campaign's, another step's, and
    # one at or after now do not
    insert(
        project,
        target,
        "campaign_occurrences",
        OCCURRENCE_COLUMNS,
        [
            ("timely", "2018-01-01T00:00:00Z", "start", "2018-01-01 00:00:00", "succeeded", "2018-01-01 00:00:00"),
            ("timely", "2019-01-01T00:00:00Z", "start", "2019-01-01 00:00:00", "failed", None),
            ("timely", "2019-02-01T00:00:00Z", "reminder", "2019-02-01 00:00:00", "succeeded", "2019-02-01 00:00:00"),
            ("other", "2019-03-01T00:00:00Z", "start", "2019-03-01 00:00:00", "succeeded", "2019-03-01 00:00:00"),
            ("timely", "2020-06-01T12:00:00Z", "start", "2020-06-01 12:00:00", "succeeded", "2020-06-01 12:00:00"),
            ("timely", "2021-01-01T00:00:00Z", "start", "2021-01-01 00:00:00", "succeeded", "2021-01-01 00:00:00"),
        ],
    )
    build(project, target, "timely", campaign_now="2020-06-01 12:00:00", campaign_occurrence="2020-06-01T12:00:00Z")
    window = "created_at > timestamp '2018-01-01 00:00:00' and created_at <= timestamp '2020-06-01 12:00:00'"
    expected = keys(project, target, f"select profile_id from profiles where {window}")
    assert keys(project, target, "select profile_id from timely__new_guests") == expected
    assert 0 < len(expected) < project.scalar(target, "select count(*) from profiles where created_at > '2018-01-01'")
    french = keys(project, target, f"select profile_id from profiles where {window} and country = 'FR'")
    assert keys(project, target, "select profile_id from timely__new_french") == french and french


def test_an_incremental_query_on_a_date_counts_each_day_once(semantics):
    """A date is new from its midnight: with daily occurrences at 07:00, each day's rows are
    selected by the occurrence of that day, and by no other."""
    project, target = semantics
    insert(
        project,
        target,
        "campaign_occurrences",
        OCCURRENCE_COLUMNS,
        [("timely", "2025-06-14T07:00:00Z", "start", "2025-06-14 07:00:00", "succeeded", "2025-06-14 07:00:00")],
    )
    build(project, target, "timely", campaign_now="2025-06-15 07:00:00", campaign_occurrence="2025-06-15T07:00:00Z")
    that_day = keys(project, target, "select booking_id from bookings where checkin_date = date '2025-06-15'")
    assert keys(project, target, "select booking_id from timely__checkins") == that_day and that_day


def test_a_reaction_splits_its_input_by_the_events_of_its_channel_s_messages(semantics):
    project, target = semantics
    french = keys(project, target, "select profile_id from profiles where country = 'FR'")
    everyone = keys(project, target, "select profile_id from profiles")
    # built before anything was sent: nobody reacted
    assert keys(project, target, "select profile_id from reacting__opened__yes") == set()
    assert keys(project, target, "select profile_id from reacting__opened__no") == french

    expected = write_deliveries_and_events(project, target)
    build(project, target, "reacting", campaign_occurrence="once")
    for activity, who in expected.items():
        rows = french if activity == "opened" else everyone
        assert keys(project, target, f"select profile_id from reacting__{activity}__yes") == who & rows, activity
        assert keys(project, target, f"select profile_id from reacting__{activity}__no") == rows - who, activity
    assert expected["opened"] & french


def write_deliveries_and_events(project: Project, target: str) -> dict[str, set[int]]:
    """Messages of `mail` (and others) with their events; who reacted, by reaction activity.

    Guest k's message, by k % 8: 0 opened an hour after sending and clicked after 3 days; 1
    clicked exactly 2 days after; 2 failed, yet an open event came; 3 was sent in another
    occurrence, opened and clicked there; 4 had no event; 5 was sent by another activity, opened;
    6 opened and clicked within the hour (and was delivered); 7 was simulated, opened.
    """
    deliveries, events = [], []
    sent_at = "2026-03-02 07:00:00"
    at = {"1h": "2026-03-02 08:00:00", "2d": "2026-03-04 07:00:00", "3d": "2026-03-05 07:00:00"}
    expected: dict[str, set[int]] = {"opened": set(), "clicked_soon": set(), "clicked": set()}
    for k in range(1, 201):
        kind = k % 8
        occurrence = "2026-03-02T07:00:00Z" if kind == 3 else "once"
        activity = "other" if kind == 5 else "mail"
        status = {2: "failed", 7: "simulated"}.get(kind, "sent")
        message_key = f"m{k}"
        deliveries.append(
            ("reacting", activity, "email", occurrence, str(k), None, message_key, f"g{k}@example.com", status, 1)
            + (sent_at,)
        )
        reacted = {0: [("open", "1h"), ("click", "3d")], 1: [("click", "2d")], 2: [("open", "1h")]}
        reacted |= {3: [("open", "1h"), ("click", "1h")], 5: [("open", "1h")], 7: [("open", "1h")]}
        reacted[6] = [("delivered", "1h"), ("open", "1h"), ("click", "1h")]
        for event, when in reacted.get(kind, []):
            message_id = f"{message_key}.{occurrence.replace(':', '=')}@example.com"
            events.append(
                (message_id, event, at[when], "reacting", activity, "email", occurrence, message_key, sent_at)
                + (f"{message_id}|{event}|{at[when]}",)
            )
        expected["opened"] |= {k} if kind in (0, 6) else set()
        expected["clicked"] |= {k} if kind in (0, 1, 6) else set()
        expected["clicked_soon"] |= {k} if kind in (1, 6) else set()
    insert(project, target, "campaign_deliveries", DELIVERY_COLUMNS, deliveries)
    insert(project, target, "campaign_events", EVENT_COLUMNS, events)
    return expected
