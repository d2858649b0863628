"""The outbox (default provider) and the file provider: messages written as files, nothing sent.

target/outbox/<campaign>/<occurrence>/<activity>/ holds one .eml file per email (named by its
message key), messages.jsonl for sms and push, extract.csv for direct mail. Every write is made
durable before its outcome is recorded, and what a crash left is found again by `delivered`.
A simulation writes the same files under target/simulation/ instead, each email with the header
X-Campaign-Simulation and each sms or push record with "simulated": true.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import display_path
from .base import Outcome, OutgoingMessage, Provider, ProviderUnavailable

SIMULATION_HEADER = "X-Campaign-Simulation"


@dataclass
class Outbox(Provider):
    directory: Path = Path(".")
    simulated: bool = False  # written by --simulate: marked as never sent
    idempotent = False
    name = "outbox"

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.settings.channel in ("sms", "push"):
            _repair(self.directory / "messages.jsonl")

    def describe(self) -> str:
        return f"outbox {display_path(self.directory)}"

    def deliver(self, messages: list[OutgoingMessage]) -> list[Outcome]:
        try:
            self._write(messages)
        except OSError as error:  # a full disk, say: what was written is found again by `delivered`
            raise ProviderUnavailable(f"{self.describe()} cannot be written: {error}",
                                      [Outcome(m.message_key, "unknown") for m in messages]) from None
        return [Outcome(m.message_key, "sent") for m in messages]

    def _write(self, messages: list[OutgoingMessage]) -> None:
        channel = self.settings.channel
        if channel == "email":
            for message in messages:
                email = message.email  # built by the send step (providers.mime)
                if self.simulated:
                    email[SIMULATION_HEADER] = "yes (rendered by campaign --simulate, never sent)"
                _write_atomically(self.directory / f"{message.message_key}.eml", email.as_bytes())
            os.sync()  # every file on disk before its outcome is recorded: one sync, not one per file
        elif channel == "direct_mail":
            write_extract(self.directory / "extract.csv", messages)
        else:
            mark = {"simulated": True} if self.simulated else {}
            lines = "".join(json.dumps({"message_key": m.message_key, "to": m.address, "channel": channel,
                                        "campaign": m.campaign, "activity": m.activity, "occurrence": m.occurrence,
                                        **mark, **m.content}, ensure_ascii=False, default=str) + "\n"
                            for m in messages)
            _append(self.directory / "messages.jsonl", lines.encode())

    def delivered(self, keys: list[str]) -> set[str]:
        wanted = set(keys)
        channel = self.settings.channel
        if channel == "email":
            return {k for k in wanted if (self.directory / f"{k}.eml").exists()}
        if channel == "direct_mail":
            return extract_keys(self.directory / "extract.csv") & wanted
        path = self.directory / "messages.jsonl"
        if not path.exists():
            return set()
        with path.open(encoding="utf-8") as handle:
            return {json.loads(line)["message_key"] for line in handle if line.strip()} & wanted


@dataclass
class ExtractFile(Provider):
    """Direct mail to a CSV file of the project (`path`, with {campaign}, {occurrence}, {activity})."""

    path: Path = Path(".")
    name = "file"

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return f"file {display_path(self.path)}"

    def deliver(self, messages: list[OutgoingMessage]) -> list[Outcome]:
        try:
            write_extract(self.path, messages)
        except OSError as error:
            raise ProviderUnavailable(f"{self.describe()} cannot be written: {error}",
                                      [Outcome(m.message_key, "unknown") for m in messages]) from None
        return [Outcome(m.message_key, "sent") for m in messages]

    def delivered(self, keys: list[str]) -> set[str]:
        return extract_keys(self.path) & set(keys)


def write_extract(path: Path, messages: list[OutgoingMessage]) -> None:
    """Rows of a direct-mail extract: message_key, address, then the activity's columns."""
    if not messages:
        return
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        _repair(path)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if new:
        writer.writerow(["message_key", "address", *messages[0].content])
    for message in messages:
        writer.writerow([message.message_key, message.address,
                         *("" if v is None else v for v in message.content.values())])
    _append(path, out.getvalue().encode())


def extract_keys(path: Path) -> set[str]:
    if not path.exists():
        return set()
    with path.open(newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle)
        next(rows, None)
        return {row[0] for row in rows if row}


def _write_atomically(path: Path, content: bytes) -> None:
    """Written whole or not at all (the caller makes it durable)."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def _append(path: Path, content: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _repair(path: Path) -> None:
    """Cut a last line a crash left half written."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        data = handle.seek(0) or handle.read()
        handle.truncate(data.rfind(b"\n") + 1)
