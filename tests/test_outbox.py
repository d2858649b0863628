"""The outbox and file providers alone: what a write cut anywhere leaves, and what they then know."""

from __future__ import annotations

import csv
import json

import pytest

from campaign_compiler.project.channels import ChannelSettings
from campaign_compiler.send.providers.base import OutgoingMessage, ProviderUnavailable
from campaign_compiler.send.providers.mime import build_email
from campaign_compiler.send.providers.outbox import ExtractFile, Outbox


def messages(channel: str, count: int, start: int = 0) -> list[OutgoingMessage]:
    content = {
        "direct_mail": lambda i: {"name": f"Zoë {i}", "street": f'{i} "Rue"\nBât. B,\r\n2e étage'},
        "sms": lambda i: {"body": f"Hi Zoë {i}\n"},
    }[channel]
    return [
        OutgoingMessage(f"key{i:03}", f"address {i}", channel, "c", "a", "once", content(i))
        for i in range(start, start + count)
    ]


def provider(channel: str, tmp_path):
    if channel == "direct_mail":
        return ExtractFile(ChannelSettings(channel, "file"), path=tmp_path / "extract.csv")
    return Outbox(ChannelSettings(channel, "outbox"), directory=tmp_path / "outbox")


@pytest.mark.parametrize("channel", ["direct_mail", "sms"])
def test_a_write_cut_anywhere_leaves_exactly_the_messages_whose_record_is_whole(tmp_path, channel):
    first = provider(channel, tmp_path)
    first.open()
    assert [o.status for o in first.deliver(messages(channel, 3))] == ["sent"] * 3
    path = getattr(first, "path", None) or first.directory / "messages.jsonl"
    whole = path.read_bytes()
    ends = [i + 1 for i, byte in enumerate(whole) if byte == ord("\n")]
    for cut in range(len(whole) + 1):
        path.write_bytes(whole[:cut])
        again = provider(channel, tmp_path)
        again.open()  # what the crash left is repaired
        keys = [m.message_key for m in messages(channel, 3)]
        found = again.delivered(keys)
        if channel == "direct_mail":  # the rows end at the header's and the 3 rows' last line breaks
            row_ends = [ends[0], *ends[3::3]]
            assert found == set(keys[: sum(end <= cut for end in row_ends[1:])]), cut
        else:
            assert found == set(keys[: sum(end <= cut for end in ends)]), cut
        again.deliver([m for m in messages(channel, 3) if m.message_key not in found])
        if channel == "direct_mail":
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
            assert rows[0] == ["message_key", "address", "name", "street"]
            assert sorted(row[0] for row in rows[1:]) == keys and {row[3][-8:] for row in rows[1:]} == {"2e étage"}
        else:
            assert sorted(json.loads(line)["message_key"] for line in path.read_text().splitlines()) == keys


def emails(start: int, count: int) -> list[OutgoingMessage]:
    built = []
    for i in range(start, start + count):
        message = OutgoingMessage(
            f"key{i:03}", f"guest{i}@example.com", "email", "c", "a", "once", {"subject": "Hi", "text": "Hello"}
        )
        message.email = build_email(message, "news@hotel.example", None)
        built.append(message)
    return built


def test_a_chunk_is_answered_once_written_and_a_failed_write_stops_the_chunks_behind_it(tmp_path):
    """The outbox writes a chunk while the next is prepared: `submit` answers the chunk before it,
    once its files are durable; when that one's write failed, it raises with the emails written,
    and the chunk it was given is not written at all (not delivered: the next run sends it)."""
    outbox = Outbox(ChannelSettings("email", "outbox"), directory=tmp_path / "outbox")
    outbox.open()
    assert outbox.submit(emails(0, 3)) == []
    (outbox.directory / "key004.eml.tmp").mkdir()  # the second chunk's second email cannot be written
    assert [(o.message_key, o.status) for o in outbox.submit(emails(3, 3))] == [(f"key00{i}", "sent") for i in range(3)]
    with pytest.raises(ProviderUnavailable) as raised:
        outbox.submit(emails(6, 3))
    assert [(o.message_key, o.status) for o in raised.value.done] == [("key003", "sent")]
    assert "cannot be written: [Errno 21] Is a directory" in str(raised.value)
    outbox.close()
    assert sorted(path.name for path in outbox.directory.iterdir()) == [
        "key000.eml",
        "key001.eml",
        "key002.eml",
        "key003.eml",
        "key004.eml.tmp",
    ]
    assert (outbox.directory / "key003.eml").read_bytes().startswith(b"Content-Type: text/plain")


def test_the_chunk_being_written_is_finished_by_close(tmp_path):
    outbox = Outbox(ChannelSettings("email", "outbox"), directory=tmp_path / "outbox")
    outbox.open()
    outbox.submit(emails(0, 500))
    outbox.close()  # a run that stops (its log lost, say) leaves whole files: the next run settles them
    assert outbox.written([f"key{i:03}" for i in range(500)]) == {f"key{i:03}" for i in range(500)}
    assert outbox.drain() == []
