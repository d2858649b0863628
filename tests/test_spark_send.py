"""Exactly once from Spark, whose shared tables are journals: a send through a real SMTP server, a
second run, events and status, the journal of one message, and a send killed then resumed (in
processes of their own, on a metastore of their own)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Project, _spark_profile, spark_session
from send_project import make, message_id, messages_of, smtp
from servers import SmtpServer
from test_send import _interrupt

from campaign_compiler.engines.spark import Spark
from campaign_compiler.engines.warehouse import Warehouse
from campaign_compiler.send.log import Delivery, DeliveryLog

pytestmark = [pytest.mark.spark, pytest.mark.slow]
TARGET = "spark"


def spark_project(root: Path, channels: str = "", profiles: int = 60) -> Project:
    """The send tests' project (its seeds' text columns are typed per target)."""
    return make(root, channels, profiles)


@pytest.fixture(scope="module")
def smtp_inbox():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sent(spark, smtp_inbox, tmp_path_factory):
    """The mail campaign counted, sent, then run again, on the test session's Spark."""
    project = spark_project(tmp_path_factory.mktemp("spark_send") / "p", smtp(smtp_inbox.port))
    counted = project.count("mail", TARGET)["counts"]["newsletter"]
    first = project.run("send", "mail", "--yes", "--target", TARGET)
    assert first.code == 0, first.stderr
    delivered = dict(smtp_inbox.inbox.message_ids())
    again = project.run("run", "mail", "--yes", "--target", TARGET)
    assert again.code == 0, again.stderr
    return project, counted, delivered, again


def latest_statuses(project: Project, campaign: str) -> dict:
    return dict(
        project.query(
            TARGET,
            "select status, count(*) from (select *, row_number() over (partition by message_key, occurrence "
            "order by journal_seq desc) as journal_rank from campaign_deliveries) "
            f"where journal_rank = 1 and campaign = '{campaign}' group by status",
        )
    )


def test_a_send_on_spark_delivers_the_announced_count_once_and_a_second_run_nothing(sent, smtp_inbox):
    project, counted, delivered, again = sent
    expected = messages_of(project, TARGET, "mail__newsletter")
    assert counted == len(expected) > 0
    assert delivered == {message_id(key): 1 for key, _ in expected}
    assert len(smtp_inbox.inbox.messages) == counted  # the second run sent nothing
    assert latest_statuses(project, "mail") == {"sent": counted}
    # one sent row per message, ever: readers of status = 'sent' alone (caps, reactions, events) count right
    assert project.query(
        TARGET, "select count(*), count(distinct message_key) from campaign_deliveries where status = 'sent'"
    ) == [(counted, counted)]
    status = json.loads(project.run("status", "mail", "--json", "--target", TARGET).stdout)
    assert (status["funnel"]["newsletter"]["sent"], status["funnel"]["newsletter"]["unknown"]) == (counted, 0)
    assert [run["status"] for run in status["runs"]] == ["succeeded", "succeeded"]


def test_events_load_once_on_spark_and_status_shows_them(sent, tmp_path):
    project, counted, _, _ = sent
    (key, address), (bounced_key, bounced) = sorted(messages_of(project, TARGET, "mail__newsletter"))[:2]
    ids = {k: message_id(k).strip("<>") for k in (key, bounced_key)}
    events = tmp_path / "events.csv"
    events.write_text(
        "message_id,event,at,url,reason\n"
        f"{ids[key]},delivered,2026-03-02T07:00:00Z,,\n"
        f"{ids[key]},open,2026-03-02T07:10:00Z,,\n"
        f"{ids[key]},open,2026-03-02T07:10:00Z,,\n"
        f"{ids[bounced_key]},bounce,2026-03-02T07:01:00Z,,550 no such user\n",
        encoding="utf-8",
    )
    for stored, duplicates in ((3, 1), (0, 4)):  # loaded twice: stored once
        loaded = project.run("events", "load", str(events), "--json", "--target", TARGET)
        assert loaded.code == 0, loaded.stderr
        report = json.loads(loaded.stdout)
        assert (sum(report["stored"].values()), report["duplicates"]) == (stored, duplicates)
    assert project.query(TARGET, "select count(*), count(distinct event_id) from campaign_events") == [(3, 3)]
    assert project.query(TARGET, "select address, channel, reason from campaign_suppressions") == [
        (bounced, "email", "hard_bounce")
    ]
    status = json.loads(project.run("status", "mail", "--json", "--target", TARGET).stdout)
    assert status["funnel"]["newsletter"]["events"] == {"bounce": 1, "delivered": 1, "open": 1}
    assert address != bounced


def test_the_journal_keeps_one_sent_row_and_reads_each_message_by_its_latest(sent):
    project = sent[0]
    log = DeliveryLog(Warehouse(Spark(spark_session()), TARGET, project.schema))
    where = ("journal", "note", "once")

    def put(key: str, status: str) -> None:
        log.record([Delivery(*where[:2], "email", "once", "r", None, key, f"{key}@x", None, status)])

    for key, steps in {"a": ["pending", "sent", "pending"], "b": ["failed", "pending", "sent", "failed"]}.items():
        for status in steps:
            put(key, status)
    for key in ("c", "d", "e"):
        put(key, "pending")
    log.found_sent(*where, ["c", "a"])  # a is sent already: not a second sent row
    log.forget(*where, ["d", "b"])  # b is sent: not forgotten
    assert log.statuses(*where, ["a", "b", "c", "d", "e", "f"]) == {
        "a": "sent",
        "b": "sent",
        "c": "sent",
        "e": "pending",
    }
    assert log.pending(*where) == ["e"]
    assert sorted(r[2:] for r in log.totals("journal")) == [("email", "pending", 1), ("email", "sent", 3)]
    put("d", "pending")  # a forgotten message is sent by the next run
    assert log.statuses(*where, ["d"]) == {"d": "pending"}
    assert project.query(
        TARGET,
        "select message_key, count(*) from campaign_deliveries where campaign = 'journal' and status = 'sent' "
        "group by 1 order by 1",
    ) == [("a", 1), ("b", 1), ("c", 1)]


def test_a_send_killed_midway_on_spark_resumes_and_sends_each_message_once(spark, tmp_path):
    """Each command in a process of its own, on a metastore of its own (target solo)."""
    project = spark_project(tmp_path / "p", profiles=1500)
    profiles = (project.root / "profiles.yml").read_text(encoding="utf-8")
    solo = f'    solo:\n      type: spark\n      method: session\n      host: NA\n      schema: "{project.schema}"\n'
    project.write(
        "profiles.yml", profiles + solo + "      server_side_parameters:\n" + _spark_profile(tmp_path / "spark") + "\n"
    )
    counted = project.run("count", "texts", "--json", "--target", "solo")
    assert counted.code == 0, counted.stderr
    total = json.loads(counted.stdout)["counts"]["alert"]
    outbox = project.root / "target" / "outbox" / "solo" / "texts" / "once" / "alert" / "messages.jsonl"
    _interrupt(project, "solo", "texts", lambda: outbox.exists() and outbox.stat().st_size > 0)
    written = outbox.read_text().count("\n")
    assert 0 < written < total
    # at once: the killed driver's JVM, which outlives it a moment, is waited for
    resumed = project.run("send", "texts", "--yes", "--target", "solo")
    assert resumed.code == 0, resumed.stderr
    keys = [json.loads(line)["message_key"] for line in outbox.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == total
    status = json.loads(project.run("status", "texts", "--json", "--target", "solo").stdout)
    assert (status["funnel"]["alert"]["sent"], status["funnel"]["alert"]["unknown"]) == (total, 0)
    assert [run["status"] for run in status["runs"]] == ["succeeded", "interrupted"]
