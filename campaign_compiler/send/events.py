"""Events of sent messages, as their providers report them, loaded into campaign_events.

A provider's export — deliveries, opens, clicks, bounces, complaints, unsubscribes — is a CSV file
with a header row or a JSONL file (one JSON object a line), with the fields

    message_id  the id the message carried (campaign_deliveries.message_id: an email's Message-ID
                without its angle brackets, the `id` an HTTP provider was given)
    event       delivered | open | click | bounce | complaint | unsubscribe
    at          when it happened, ISO 8601 (a time without offset is UTC)
    url         optional: the link clicked
    reason      optional: the provider's reason (a bounce's diagnostic, say)

A `bounce` is a hard (permanent) bounce: the address does not exist. A soft bounce (a full mailbox)
is not an event of this file.

Every row is checked before anything is stored; the problems are reported together, located, and
nothing is stored. Then, in one transaction, each event is matched with the message it names — a
message `sent` on the target; a message id that names none is reported, and its events are not
stored — and stored once: an event is identified by its message id, kind, time and url, so a file
loaded twice, or a row repeated, stores it once. A newly stored bounce, complaint or unsubscribe
suppresses the message's address on its channel (reason hard_bounce, complaint, unsubscribe): the
channel models built next exclude it as `suppressed`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .. import timing
from ..engines.warehouse import Warehouse
from ..errors import Diagnostic, Diagnostics, InvalidInput, Location, RuntimeFailure, did_you_mean, display_path
from ..project.target import DbtTarget, connect
from .log import BATCH_ROWS, DeliveryLog

EVENTS = ("delivered", "open", "click", "bounce", "complaint", "unsubscribe")
FIELDS = ("message_id", "event", "at", "url", "reason")
REQUIRED = ("message_id", "event", "at")
# the events that suppress their message's address, with the suppression's reason
SUPPRESSING = {"bounce": "hard_bounce", "complaint": "complaint", "unsubscribe": "unsubscribe"}
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}
EVENT_COLUMNS = (
    "message_id",
    "event",
    "at",
    "url",
    "reason",
    "campaign",
    "activity",
    "channel",
    "occurrence",
    "message_key",
    "loaded_at",
    "event_id",
)
LOOKUP = 10_000  # keys looked up in one query
SHOWN = 5  # unknown message ids named in the report


@dataclass(frozen=True)
class Event:
    """One row of the file, checked: `at` is naive UTC, as the warehouse keeps it."""

    message_id: str
    event: str
    at: datetime
    url: str | None = None
    reason: str | None = None

    @property
    def event_id(self) -> str:
        """What identifies the event: sha256 of message_id|event|at|url (no message id, kind or
        time holds a '|', so two different events never share one).

        >>> event = Event("k.once", "open", datetime(2026, 3, 2, 7))
        >>> event.event_id == hashlib.sha256(b"k.once|open|2026-03-02T07:00:00|").hexdigest()
        True
        """
        text = "|".join((self.message_id, self.event, self.at.isoformat(), self.url or ""))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class LoadReport:
    file: str
    target: str
    events: int  # rows read
    stored: Counter = field(default_factory=Counter)  # by kind
    duplicates: int = 0  # stored before, or repeated in the file
    unknown_events: int = 0  # of message ids that name no sent message
    unknown_ids: list[str] = field(default_factory=list)  # those ids, in the file's order
    suppressions: int = 0

    def as_json(self) -> dict:
        return {
            "file": self.file,
            "target": self.target,
            "events": self.events,
            "stored": {kind: self.stored[kind] for kind in EVENTS},
            "duplicates": self.duplicates,
            "unknown_ids": len(self.unknown_ids),
            "unknown_events": self.unknown_events,
            "unknown": self.unknown_ids[:SHOWN],
            "suppressions": self.suppressions,
        }


def load_events(path: Path, where: DbtTarget) -> LoadReport:
    """Check every row of the file (InvalidInput with every problem: nothing stored), then store its
    events on the target's delivery log in one transaction."""
    events = read_events(path)
    with connect(where) as warehouse:
        log = DeliveryLog(warehouse)
        if not log.exists():
            raise RuntimeFailure(
                f'the delivery log does not exist on target "{warehouse.target_name}": events are of messages '
                "sent from it; build a campaign there first (campaign count, campaign run)"
            )
        report = LoadReport(display_path(path), warehouse.target_name, len(events))
        with warehouse.transaction():
            _store(log, events, report)
    return report


def _store(log: DeliveryLog, events: list[Event], report: LoadReport) -> None:
    warehouse = log.warehouse
    sent = _sent_messages(
        warehouse, log.table("campaign_deliveries"), list(dict.fromkeys(e.message_id for e in events))
    )
    unknown = [e for e in events if e.message_id not in sent]
    report.unknown_events = len(unknown)
    report.unknown_ids = list(dict.fromkeys(e.message_id for e in unknown))
    distinct: dict[str, Event] = {}
    for event in events:
        if event.message_id in sent:
            distinct.setdefault(event.event_id, event)
    table = log.table("campaign_events")
    before = _present(warehouse, table, "event_id", list(distinct))
    new = [e for event_id, e in distinct.items() if event_id not in before]
    report.duplicates = len(events) - len(unknown) - len(new)
    loaded_at = timing.now().astimezone(UTC).replace(tzinfo=None)
    rows = [(e.message_id, e.event, e.at, e.url, e.reason, *sent[e.message_id][:5], loaded_at, e.event_id) for e in new]
    columns = tuple(warehouse.quote(c) if c == "at" else c for c in EVENT_COLUMNS)
    for start in range(0, len(rows), BATCH_ROWS * 10):
        if warehouse.engine.appends_only:  # no primary key: an event already there is not appended again
            warehouse.insert_absent(table, columns, rows[start : start + BATCH_ROWS * 10], "t.event_id = v.event_id")
        else:
            warehouse.insert(table, columns, rows[start : start + BATCH_ROWS * 10])
    report.stored.update(e.event for e in new)
    report.suppressions = _suppress(log, new, sent)


def _sent_messages(warehouse: Warehouse, table: str, ids: list[str]) -> dict[str, tuple]:
    """Message id -> (campaign, activity, channel, occurrence, message_key, address) of each of
    `ids` that names a message sent."""
    found = {}
    for start in range(0, len(ids), LOOKUP):
        for message_id, *delivery in warehouse.query(
            "select d.message_id, d.campaign, d.activity, d.channel, d.occurrence, d.message_key, d.address "
            f"from (select {warehouse.engine.unnest}(%s) as message_id) as k join {table} as d "
            "on d.message_id = k.message_id "
            "where d.status = 'sent'",
            (ids[start : start + LOOKUP],),
        ):
            found[message_id] = tuple(delivery)
    return found


def _present(warehouse: Warehouse, table: str, column: str, values: list[str]) -> set[str]:
    """Those of `values` that `table` holds in `column`."""
    found: set[str] = set()
    for start in range(0, len(values), LOOKUP):
        found.update(
            value
            for (value,) in warehouse.query(
                f"select t.{column} from (select {warehouse.engine.unnest}(%s) as v) as k join {table} as t "
                f"on t.{column} = k.v",
                (values[start : start + LOOKUP],),
            )
        )
    return found


def _suppress(log: DeliveryLog, new: list[Event], sent: dict[str, tuple]) -> int:
    """Suppress the addresses of the new bounces, complaints and unsubscribes on their channel, each
    (address, channel, reason) once, when it happened first; the number of suppressions added."""
    wanted: dict[tuple, datetime] = {}
    for event in sorted(new, key=lambda e: e.at):
        _, _, channel, _, _, address = sent[event.message_id]
        if event.event in SUPPRESSING and address:
            wanted.setdefault((address, channel, SUPPRESSING[event.event]), event.at)
    if not wanted:
        return 0
    table = log.table("campaign_suppressions")
    addresses = list(dict.fromkeys(address for address, _, _ in wanted))
    existing = set()
    for start in range(0, len(addresses), LOOKUP):
        existing.update(
            log.warehouse.query(
                f"select s.address, s.channel, s.reason from (select {log.warehouse.engine.unnest}(%s) as address) as k "
                f"join {table} as s on s.address = k.address",
                (addresses[start : start + LOOKUP],),
            )
        )
    rows = [(*key, at) for key, at in wanted.items() if key not in existing]
    for start in range(0, len(rows), BATCH_ROWS * 10):
        log.warehouse.insert(
            table, ("address", "channel", "reason", log.warehouse.quote("at")), rows[start : start + BATCH_ROWS * 10]
        )
    return len(rows)


# -- reading ----------------------------------------------------------------------------------------
def read_events(path: Path) -> list[Event]:
    """The events of a CSV or JSONL file, every row checked; InvalidInput with every problem found."""
    shown = display_path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(
            [
                Diagnostic(
                    None,
                    f"{shown}: an events file is .csv or .jsonl (.json, .ndjson), not {path.suffix or 'without extension'}",
                )
            ]
        )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidInput([Diagnostic(None, f"{shown}: cannot be read: {error.strerror or error}")]) from None
    diagnostics = Diagnostics()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        col = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise InvalidInput([Diagnostic(Location(shown, line, col), "not UTF-8 text")]) from None
    records = _csv_records(text, shown, diagnostics) if kind == "csv" else _jsonl_records(text, shown, diagnostics)
    events = [event for record in records if (event := _event(record, shown, diagnostics)) is not None]
    diagnostics.raise_if_any()
    return events


# a record: its line, and each field's value with the line and column where the field is written
Record = tuple[int, dict[str, tuple[object, int, int]]]


def _csv_records(text: str, shown: str, diagnostics: Diagnostics) -> Iterator[Record]:
    rows = _csv_rows(text, shown, diagnostics)
    header = next(rows, None)
    if header is None:
        diagnostics.error(Location(shown, 1, 1), f"no header row: the columns are {', '.join(FIELDS)}")
        return
    names, starts, line = header
    columns = []
    for name, (at_line, col) in zip(names, starts, strict=True):
        name = name.strip()
        if name not in FIELDS:
            diagnostics.error(Location(shown, at_line, col), _unknown_field(name))
        elif name in columns:
            diagnostics.error(Location(shown, at_line, col), f'column "{name}" appears twice')
        columns.append(name)
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        diagnostics.error(Location(shown, line, 1), f"the header has no column {', '.join(missing)}")
        return
    for values, starts, line in rows:
        if len(values) != len(columns):
            at_line, col = starts[len(columns)] if len(values) > len(columns) else starts[-1]
            diagnostics.error(
                Location(shown, at_line, col), f"{len(values)} values where the header names {len(columns)} columns"
            )
            continue
        yield (
            line,
            {
                name: (value or None, at_line, col)  # an empty value is none
                for name, value, (at_line, col) in zip(columns, values, starts, strict=True)
                if name in FIELDS
            },
        )


def _csv_rows(
    text: str, shown: str, diagnostics: Diagnostics
) -> Iterator[tuple[list[str], list[tuple[int, int]], int]]:
    """Each non-empty CSV row: its values, where each starts (line, column), and its first line."""
    lines = [line for line in re.split(r"(?<=\n)", text) if line]  # (a U+2028 in a value ends no line)
    consumed = 0

    def feed():
        nonlocal consumed
        while consumed < len(lines):
            consumed += 1
            yield lines[consumed - 1]

    start = 0
    reader = csv.reader(feed())
    try:
        for values in reader:
            raw, line, start = "".join(lines[start:consumed]), start + 1, consumed
            if values:
                yield values, _field_starts(raw, line), line
    except csv.Error as error:
        diagnostics.error(Location(shown, start + 1, 1), f"not a CSV row: {error}")


def _field_starts(raw: str, line: int) -> list[tuple[int, int]]:
    """Where each value of a CSV row (written `raw` from `line` on) starts: (line, column)."""
    starts, col, quoted, fresh = [(line, 1)], 1, False, True
    index = 0
    while index < len(raw):
        char = raw[index]
        if quoted and char == '"' and raw[index + 1 : index + 2] == '"':  # an escaped quote
            index, col = index + 1, col + 1
        elif char == '"' and (quoted or fresh):
            quoted = not quoted
        elif char == "," and not quoted:
            starts.append((line, col + 1))
            index, col, fresh = index + 1, col + 1, True
            continue
        fresh = False
        if char == "\n":
            line, col = line + 1, 1
        else:
            col += 1
        index += 1
    return starts


def _jsonl_records(text: str, shown: str, diagnostics: Diagnostics) -> Iterator[Record]:
    for line, content in enumerate(text.split("\n"), start=1):  # (a U+2028 in a value ends no line)
        content = content.removesuffix("\r")
        if not content.strip():
            continue
        try:
            record = json.loads(content)
        except json.JSONDecodeError as error:
            diagnostics.error(Location(shown, line, error.colno), f"not JSON: {error.msg}")
            continue
        if not isinstance(record, dict):
            col = len(content) - len(content.lstrip()) + 1
            diagnostics.error(Location(shown, line, col), 'a line must be one JSON object, {"message_id": ...}')
            continue
        values = {}
        for name, value in record.items():
            match = re.search(re.escape(json.dumps(name, ensure_ascii=False)) + r"\s*:", content)
            col = match.start() + 1 if match else 1
            if name not in FIELDS:
                diagnostics.error(Location(shown, line, col), _unknown_field(name))
            else:
                values[name] = (value, line, col)
        yield line, values


def _unknown_field(name: str) -> str:
    return f'unknown field "{name}"{did_you_mean(name, FIELDS)} (fields: {", ".join(FIELDS)})'


def _event(record: Record, shown: str, diagnostics: Diagnostics) -> Event | None:
    """The record's event, or None after reporting what is wrong with it."""
    line, values = record
    before = len(diagnostics)
    checked = {}
    for name in FIELDS:
        value, at_line, col = values.get(name, (None, line, 1))
        where = Location(shown, at_line, col)
        if value is None or (isinstance(value, str) and not value.strip()):
            if name in REQUIRED:
                diagnostics.error(where, f"{name} is missing")
            continue
        if not isinstance(value, str):
            diagnostics.error(where, f"{name} must be text, not {json.dumps(value)}")
            continue
        problem = _problem(name, value.strip())
        if problem:
            diagnostics.error(where, problem)
        checked[name] = value.strip()
    if len(diagnostics) > before:
        return None
    at = timing.parse_instant(checked["at"]).astimezone(UTC).replace(tzinfo=None)
    return Event(checked["message_id"], checked["event"], at, checked.get("url"), checked.get("reason"))


def _problem(name: str, value: str) -> str | None:
    """What is wrong with a field's value, if anything."""
    if name == "event" and value not in EVENTS:
        return f'unknown event "{value}"{did_you_mean(value, EVENTS)} (events: {", ".join(EVENTS)})'
    if name == "at" and timing.parse_instant(value) is None:
        return f'at "{value}" is not an ISO 8601 time (2026-03-02T08:00:00Z)'
    if name == "message_id" and value.startswith("<") and value.endswith(">"):
        return f"message_id {value} is written without its angle brackets: {value[1:-1]}"
    return None
