"""`campaign events load`: a provider's events, checked row by row, then stored once each against
the messages they name; bounces, complaints and unsubscribes suppress the address."""

from __future__ import annotations

import email
import json
from datetime import datetime
from pathlib import Path

import pytest
from conftest import Project
from send_project import make, messages_of, outbox

from campaign_compiler.errors import InvalidInput
from campaign_compiler.send.events import Event, read_events


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(InvalidInput) as raised:
        read_events(path)
    return [str(d).removeprefix(f"{path}:").removeprefix(str(path.name) + ":") for d in raised.value.diagnostics]


# -- reading ----------------------------------------------------------------------------------------
def test_csv_and_jsonl_read_the_same_events_with_times_in_utc(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    csv_file = write(
        tmp_path,
        "events.csv",
        "\ufeffmessage_id,event,at,url,reason\n"
        "a.once@hotel.example,open,2026-03-02T08:00:00+01:00,,\n"
        '\n"b.2026-03-02T07=00=00Z",click,2026-03-02 07:05:00,"https://x.example/?a=1,2",\n'
        'a.once@hotel.example,bounce,2026-03-02,,"550 5.1.1 ""no such user""\nthere"\n',
    )
    jsonl_file = write(
        tmp_path,
        "events.jsonl",
        '{"message_id": "a.once@hotel.example", "event": "open", "at": "2026-03-02T07:00:00Z"}\n'
        "\n"
        '{"at": "2026-03-02T07:05:00", "event": "click", "message_id": "b.2026-03-02T07=00=00Z",'
        ' "url": "https://x.example/?a=1,2", "reason": null}\r\n'
        '{"message_id": "a.once@hotel.example", "event": "bounce", "at": "2026-03-02",'
        ' "reason": "550 5.1.1 \\"no such user\\"\\nthere"}\n',
    )
    expected = [
        Event("a.once@hotel.example", "open", datetime(2026, 3, 2, 7)),
        Event("b.2026-03-02T07=00=00Z", "click", datetime(2026, 3, 2, 7, 5), "https://x.example/?a=1,2"),
        Event("a.once@hotel.example", "bounce", datetime(2026, 3, 2), None, '550 5.1.1 "no such user"\nthere'),
    ]
    assert read_events(csv_file) == read_events(jsonl_file) == expected


def test_every_problem_of_a_csv_file_is_reported_where_it_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(
        tmp_path,
        "bad.csv",
        "message_id,event,at,colour\n"
        "a.once,open,2026-03-02T07:00:00Z,red\n"  # fine but for its header's colour
        "a.once,clik,yesterday,red\n"
        ',open,2026-03-02,"multi\nline"\n'
        '"<a.once@x>",open,2026-03-02,\n'
        "a.once,open\n"
        "a.once,open,2026-03-02,red,extra\n",
    )
    assert errors(path) == [
        '1:21: error: unknown field "colour" (fields: message_id, event, at, url, reason)',
        '3:8: error: unknown event "clik" (did you mean "click"?) (events: delivered, open, click, bounce, '
        "complaint, unsubscribe)",
        '3:13: error: at "yesterday" is not an ISO 8601 time (2026-03-02T08:00:00Z)',
        "4:1: error: message_id is missing",
        "6:1: error: message_id <a.once@x> is written without its angle brackets: a.once@x",
        "7:8: error: 2 values where the header names 4 columns",
        "8:28: error: 5 values where the header names 4 columns",
    ]


def test_every_problem_of_a_jsonl_file_is_reported_where_it_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(
        tmp_path,
        "bad.jsonl",
        '{"message_id": "a.once", "event": "open", "at": "2026-03-02T07:00:00Z"}\n'
        '{"message_id": 3, "evnt": "open", "at": "2026-03-02T07:00:00Z"}\n'
        '  ["a.once", "open"]\n'
        '{"message_id": "a.once", "event": "open", "at": "2026-13-02"\n'
        '{"message_id": "a.once", "event": "bounced", "at": "2026-03-02", "url": ""}\n',
    )
    assert errors(path) == [
        "2:1: error: event is missing",
        "2:2: error: message_id must be text, not 3",
        '2:19: error: unknown field "evnt" (did you mean "event"?) (fields: message_id, event, at, url, reason)',
        '3:3: error: a line must be one JSON object, {"message_id": ...}',
        "4:61: error: not JSON: Expecting ',' delimiter",
        '5:26: error: unknown event "bounced" (did you mean "bounce"?) (events: delivered, open, click, bounce, '
        "complaint, unsubscribe)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["1:1: error: no header row: the columns are message_id, event, at, url, reason"]),
        (
            "message_id,at,message_id\n",
            ["1:1: error: the header has no column event", '1:15: error: column "message_id" appears twice'],
        ),
    ],
)
def test_a_csv_header_without_the_columns_is_an_error(tmp_path, monkeypatch, text, expected):
    monkeypatch.chdir(tmp_path)
    assert errors(write(tmp_path, "events.csv", text)) == expected


def test_a_file_that_is_not_utf8_or_not_csv_or_jsonl_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "events.csv"
    path.write_bytes(b"message_id,event,at\na.once,open,2026-03-02\nb.once,op\xe9n,2026-03-02\n")
    assert errors(path) == ["3:10: error: not UTF-8 text"]
    assert errors(write(tmp_path, "events.txt", "")) == [
        "error: events.txt: an events file is .csv or .jsonl (.json, .ndjson), not .txt"
    ]


# -- loading on a warehouse ---------------------------------------------------------------------------
# campaign_deliveries as the first version of the package created it: the build adds message_id
OLD_DELIVERIES = """create table {schema}campaign_deliveries (campaign varchar not null, activity varchar not null,
    channel varchar not null, occurrence varchar not null, recipient_key varchar not null, per_key varchar,
    message_key varchar not null, address varchar, status varchar not null, attempts integer not null,
    error varchar, sent_at timestamp, run_id varchar, updated_at timestamp, primary key (message_key, occurrence))"""


def sent_ids(project: Project, target: str) -> tuple[dict, dict]:
    """Address -> message id of each email and each sms sent, as the outbox files carry them."""
    emails = {}
    for path in outbox(project, target, "mail", "newsletter").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes())
        emails[message["To"]] = message["Message-ID"].strip().removeprefix("<").removesuffix(">")
    with (outbox(project, target, "texts", "alert") / "messages.jsonl").open(encoding="utf-8") as lines:
        texts = {record["to"]: record["id"] for record in map(json.loads, lines)}
    return emails, texts


def load(project: Project, target: str, path: Path):
    result = project.run("events", "load", str(path), "--json", "--target", target)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


@pytest.mark.slow
def test_events_are_stored_once_against_their_messages_and_suppress_what_they_should(tmp_path, target):
    project = make(tmp_path / "p")
    if target == "postgres":
        project.query_write(target, f'create schema "{project.schema}"')
    (project.root / "target").mkdir()
    project.query_write(target, OLD_DELIVERIES.format(schema=f'"{project.schema}".' if target == "postgres" else ""))
    for campaign in ("mail", "texts"):
        result = project.run("run", campaign, "--yes", "--target", target)
        assert result.code == 0, result.stderr
    emails, texts = sent_ids(project, target)
    (a, a_id), (b, b_id), (c, c_id) = sorted(emails.items())[:3]
    phone, phone_id = sorted(texts.items())[0]
    assert dict(project.query(target, "select message_id, address from campaign_deliveries")) == {
        **{i: address for address, i in emails.items()},
        **{i: address for address, i in texts.items()},
    }
    events_csv = write(
        tmp_path,
        "events.csv",
        "message_id,event,at,url,reason\n"
        f"{a_id},delivered,2026-03-02T07:00:00Z,,\n"
        f"{a_id},open,2026-03-02T07:10:00Z,,\n"
        f'{a_id},click,2026-03-02T07:11:00Z,"https://hotel.example/offer?a=1,2",\n'
        f"{a_id},open,2026-03-02T07:10:00Z,,\n"  # repeated in the file
        f"{b_id},bounce,2026-03-02T07:01:00Z,,550 5.1.1 no such user\n"
        f"{phone_id},unsubscribe,2026-03-02T09:00:00Z,,STOP\n"
        "nosuchmessage.once@hotel.example,open,2026-03-02T07:10:00Z,,\n",
    )
    first, stderr = load(project, target, events_csv)
    assert {k: v for k, v in first.items() if k not in ("file", "target")} == {
        "events": 7,
        "stored": {"delivered": 1, "open": 1, "click": 1, "bounce": 1, "complaint": 0, "unsubscribe": 1},
        "duplicates": 1,
        "unknown_ids": 1,
        "unknown_events": 1,
        "unknown": ["nosuchmessage.once@hotel.example"],
        "suppressions": 2,
    }
    assert "nosuchmessage.once@hotel.example" in stderr
    again, _ = load(project, target, events_csv)  # loaded twice: stored once
    assert again["stored"] == dict.fromkeys(again["stored"], 0) and again["duplicates"] == 6
    assert again["suppressions"] == 0
    events_jsonl = write(
        tmp_path,
        "events.jsonl",
        json.dumps({"message_id": a_id, "event": "open", "at": "2026-03-02T08:10:00+01:00"})  # the same instant
        + "\n"
        + json.dumps({"message_id": c_id, "event": "complaint", "at": "2026-03-03T10:00:00Z"})
        + "\n"
        + json.dumps({"message_id": b_id, "event": "bounce", "at": "2026-03-04T10:00:00Z"})  # a new one, suppressed
        + "\n",
    )
    jsonl, _ = load(project, target, events_jsonl)
    assert (jsonl["stored"]["complaint"], jsonl["stored"]["bounce"], jsonl["duplicates"]) == (1, 1, 1)
    assert jsonl["suppressions"] == 1  # the bounced address is suppressed once
    rows = project.query(
        target,
        "select e.event, e.url, e.reason, e.campaign, e.activity, e.channel, e.occurrence, "
        "e.message_key = d.message_key, e.loaded_at is not null, length(e.event_id) "
        "from campaign_events as e join campaign_deliveries as d on d.message_id = e.message_id "
        "order by e.at",
    )
    assert [row[:3] for row in rows] == [
        ("delivered", None, None),
        ("bounce", None, "550 5.1.1 no such user"),
        ("open", None, None),
        ("click", "https://hotel.example/offer?a=1,2", None),
        ("unsubscribe", None, "STOP"),
        ("complaint", None, None),
        ("bounce", None, None),
    ]
    assert {row[3:] for row in rows} == {
        ("mail", "newsletter", "email", "once", True, True, 64),
        ("texts", "alert", "sms", "once", True, True, 64),
    }
    assert sorted(project.query(target, "select address, channel, reason from campaign_suppressions")) == sorted(
        [(b, "email", "hard_bounce"), (c, "email", "complaint"), (phone, "sms", "unsubscribe")]
    )
    for campaign, model, address in (
        ("mail", "mail__newsletter", b),
        ("mail", "mail__newsletter", c),
        ("texts", "texts__alert", phone),
    ):
        counted = project.count(campaign, target)
        assert counted["channels"][model.split("__")[1]]["excluded"]["suppressed"] >= 1
        assert address not in {found for _, found in messages_of(project, target, model)}
        assert project.query(target, f"select exclusion_reason from {model}__excluded where address = '{address}'") == [
            ("suppressed",)
        ]


@pytest.mark.slow
def test_a_file_with_one_bad_row_stores_nothing(tmp_path, target):
    project = make(tmp_path / "p")
    result = project.run("run", "texts", "--yes", "--target", target)
    assert result.code == 0, result.stderr
    _, texts = sent_ids_of_texts(project, target)
    good = "".join(f'{{"message_id": "{i}", "event": "delivered", "at": "2026-03-02T07:00:00Z"}}\n' for i in texts)
    path = write(tmp_path, "events.jsonl", good + '{"message_id": "x", "event": "opened", "at": "2026-03-02"}\n')
    refused = project.run("events", "load", str(path), "--target", target)
    assert refused.code == 2
    assert refused.stderr.splitlines()[0].endswith(
        f'events.jsonl:{len(texts) + 1}:21: error: unknown event "opened" (did you mean "open"?) '
        "(events: delivered, open, click, bounce, complaint, unsubscribe)"
    )
    assert project.scalar(target, "select count(*) from campaign_events") == 0
    path.write_text(good, encoding="utf-8")
    loaded = project.run("events", "load", str(path), "--target", target)
    assert loaded.code == 0, loaded.stderr
    assert f"{len(texts)} stored ({len(texts)} delivered)" in loaded.stdout
    assert project.scalar(target, "select count(*) from campaign_events") == len(texts)


def sent_ids_of_texts(project: Project, target: str) -> tuple[None, list[str]]:
    with (outbox(project, target, "texts", "alert") / "messages.jsonl").open(encoding="utf-8") as lines:
        return None, [json.loads(line)["id"] for line in lines]


def test_events_need_the_delivery_log_of_the_target(project, tmp_path):
    path = write(tmp_path, "events.csv", "message_id,event,at\na.once,open,2026-03-02\n")
    result = project.run("events", "load", str(path))
    assert result.code == 1
    assert result.stderr.strip() == (
        'error: the delivery log does not exist on target "duckdb": events are of messages sent from it; '
        "build a campaign there first (campaign count, campaign run)"
    )
