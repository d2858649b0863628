"""The outbox (default provider) and the file provider: messages written as files, nothing sent.

target/outbox/<target>/<campaign>/<occurrence>/<activity>/ holds one .eml file per email (named by
its message key), messages.jsonl for sms and push (each record with the message's key and its
`id`, the id events name it by), extract.csv for direct mail. Every write is
made durable before its outcome is recorded; what a crash or a full disk left is repaired, and
found again by `delivered`: the files say exactly what was written. A simulation writes the same
files under target/simulation/<target>/ instead, each email with the header X-Campaign-Simulation
and each sms or push record with "simulated": true.

A run's chunks are written by a thread of the outbox's own while the send step prepares the next
chunk: creating a file is the kernel's work, done without Python's lock, so it overlaps the
rendering of the next emails. One chunk is written at a time, and its outcomes are given only once
its files are durable.
"""

from __future__ import annotations

import csv
import io
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import RuntimeFailure, display_path
from ...project.channels import EXTRACT_COLUMNS, is_extract
from .base import Outcome, OutgoingMessage, Provider, ProviderUnavailable

SIMULATION_HEADER = "X-Campaign-Simulation"


@dataclass
class Outbox(Provider):
    directory: Path = Path(".")
    simulated: bool = False  # written by --simulate: marked as never sent
    idempotent = False
    exact = True
    name = "outbox"
    _kept: bool = field(default=False, init=False)  # the folder was there before this run, and what it holds
    _writer: ThreadPoolExecutor | None = field(default=None, init=False)
    _writing: Future | None = field(default=None, init=False)  # the chunk being written: its outcomes

    def open(self) -> None:
        self._kept = self.directory.is_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.recover()

    def submit(self, messages: list[OutgoingMessage]) -> list[Outcome]:
        """The outcomes of the chunk written before (once it is durable); these messages are then
        written by the outbox's thread. A failure of that chunk's write raises here, before these
        are written: they were not delivered."""
        done = self.drain()
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._writing = self._writer.submit(self.deliver, messages)
        return done

    def drain(self) -> list[Outcome]:
        writing, self._writing = self._writing, None
        return writing.result() if writing is not None else []

    def close(self) -> None:
        """The chunk being written is finished (its outcomes, not recorded, are settled by the next run)."""
        if self._writer is not None:
            self._writer.shutdown()
            self._writer, self._writing = None, None

    def recover(self) -> None:
        """Cut what a crash or a full disk left half written; make the rest durable."""
        if self.settings.channel == "email":
            os.sync()  # (an email is written whole or not at all)
        else:
            _repair(self._lines())

    def describe(self) -> str:
        return f"outbox {display_path(self.directory)}"

    def deliver(self, messages: list[OutgoingMessage]) -> list[Outcome]:
        try:
            self._write(messages)
        except OSError as error:  # a full disk, say
            raise ProviderUnavailable(
                f"{self.describe()} cannot be written: {error}", _after_failed_write(self, messages)
            ) from None
        return [Outcome(m.message_key, "sent") for m in messages]

    def _lines(self) -> Path:
        return self.directory / ("extract.csv" if self.settings.channel == "direct_mail" else "messages.jsonl")

    def _write(self, messages: list[OutgoingMessage]) -> None:
        channel = self.settings.channel
        if channel == "email":
            emails = [(f"{m.message_key}.eml", m.email) for m in messages]  # built by the send step (providers.mime)
            if self.simulated:
                mark = "yes (rendered by campaign --simulate, never sent)"
                emails = [(name, email.with_header(SIMULATION_HEADER, mark)) for name, email in emails]
            write_files(self.directory, [(name, email.as_bytes()) for name, email in emails])
            os.sync()  # every file on disk before its outcome is recorded: one sync, not one per file
        elif channel == "direct_mail":
            write_extract(self._lines(), messages)
        else:
            mark = {"simulated": True} if self.simulated else {}
            lines = "".join(
                json.dumps(
                    {
                        "message_key": m.message_key,
                        "id": m.message_id,
                        "to": m.address,
                        "channel": channel,
                        "campaign": m.campaign,
                        "activity": m.activity,
                        "occurrence": m.occurrence,
                        **mark,
                        **m.content,
                    },
                    ensure_ascii=False,
                    default=str,
                )
                + "\n"
                for m in messages
            )
            _append(self._lines(), lines.encode())

    def delivered(self, keys: list[str]) -> set[str] | None:
        """Those written in the outbox; None when its folder was removed since (what it held is not known)."""
        return self.written(keys) if self._kept else None

    def written(self, keys: list[str]) -> set[str]:
        wanted = set(keys)
        channel = self.settings.channel
        if channel == "email":
            return {k for k in wanted if (self.directory / f"{k}.eml").exists()}
        if channel == "direct_mail":
            return extract_keys(self._lines()) & wanted
        path = self._lines()
        if not path.exists():
            return set()
        with path.open("rb") as handle:  # a line is written when its end is
            return {json.loads(line)["message_key"] for line in handle if line.endswith(b"\n")} & wanted


@dataclass
class ExtractFile(Provider):
    """Direct mail to a CSV file of the project (`path`, with {campaign}, {occurrence}, {activity}, {target})."""

    path: Path = Path(".")
    exact = True
    name = "file"
    _kept: bool = field(default=False, init=False)  # the file was there before this run, and what it holds

    def open(self) -> None:
        self._kept = self.path.is_file()
        if self._kept and not is_extract(self.path):  # (checked before too: this guards any other caller)
            raise RuntimeFailure(f"{display_path(self.path)} is not a direct-mail extract: nothing is written to it")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.recover()

    def recover(self) -> None:
        _repair(self.path)

    def describe(self) -> str:
        return f"file {display_path(self.path)}"

    def deliver(self, messages: list[OutgoingMessage]) -> list[Outcome]:
        try:
            write_extract(self.path, messages)
        except OSError as error:
            raise ProviderUnavailable(
                f"{self.describe()} cannot be written: {error}", _after_failed_write(self, messages)
            ) from None
        return [Outcome(m.message_key, "sent") for m in messages]

    def delivered(self, keys: list[str]) -> set[str] | None:
        """Those written in the extract; None when the file was removed since (moved to the printer, say)."""
        return self.written(keys) if self._kept else None

    def written(self, keys: list[str]) -> set[str]:
        return extract_keys(self.path) & set(keys)


def _after_failed_write(provider: Outbox | ExtractFile, messages: list[OutgoingMessage]) -> list[Outcome]:
    """After a failed write, what it wrote is known: those messages are sent, the others are left
    out of the outcomes (not delivered: the next run sends them). Unknown only when even that
    cannot be found out."""
    try:
        provider.recover()
        found = provider.written([m.message_key for m in messages])
    except OSError:
        return [Outcome(m.message_key, "unknown") for m in messages]
    return [Outcome(m.message_key, "sent") for m in messages if m.message_key in found]


def write_extract(path: Path, messages: list[OutgoingMessage]) -> None:
    """Rows of a direct-mail extract: message_key, address, then the activity's columns."""
    if not messages:
        return
    new = not path.exists() or path.stat().st_size == 0
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if new:
        writer.writerow([*EXTRACT_COLUMNS, *messages[0].content])
    for message in messages:
        writer.writerow(
            [message.message_key, message.address, *("" if v is None else v for v in message.content.values())]
        )
    _append(path, out.getvalue().encode())


def extract_keys(path: Path) -> set[str]:
    """The message keys of the complete rows of an extract."""
    rows = _rows(path)
    next(rows, None)  # the header
    return {row[0] for row, _ in rows if row}


def _rows(path: Path):
    """The complete rows of a CSV file, each with the offset where it ends: a row a crash cut,
    at its end or inside a quoted value of several lines, is not one."""
    if not path.exists():
        return
    consumed, ended, exhausted = 0, False, False

    def lines():
        nonlocal consumed, ended, exhausted
        with path.open("rb") as handle:
            for line in handle:
                consumed, ended = consumed + len(line), line.endswith(b"\n")
                yield line.decode("utf-8", "replace")
        exhausted = True

    try:
        for row in csv.reader(lines()):
            if exhausted or not ended:
                return
            yield row, consumed
    except csv.Error:
        return


def write_files(directory: Path, files: list[tuple[str, bytes]]) -> None:
    """Files of `directory` (name, content), each written whole or not at all (the caller makes
    them durable). The folder is opened once and named by its descriptor: a file costs its
    creation, a write and a rename, with no path to walk again."""
    folder = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name, content in files:
            _write_atomically(folder, name, content)
    finally:
        os.close(folder)


def _write_atomically(folder: int, name: str, content: bytes) -> None:
    temporary = name + ".tmp"
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666, dir_fd=folder)
        try:
            data = memoryview(content)
            while data:
                data = data[os.write(handle, data) :]
        finally:
            os.close(handle)
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError:
        with suppress(OSError):  # (the error to report is the write's)
            os.unlink(temporary, dir_fd=folder)
        raise


def _append(path: Path, content: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _repair(path: Path) -> None:
    """Cut a last line (a last CSV row) that a crash or a full disk left half written, and make
    what remains durable."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        size = end = handle.seek(0, os.SEEK_END)
        if path.suffix == ".csv":  # a value may hold line breaks: the rows tell where the last one ends
            end = max((end for _, end in _rows(path)), default=0)
        else:
            handle.seek(size - 1)
            if handle.read(1) != b"\n":
                handle.seek(0)
                end = handle.read().rfind(b"\n") + 1
        if end < size:
            handle.truncate(end)
        os.fsync(handle.fileno())
