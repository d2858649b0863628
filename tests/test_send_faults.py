"""Exactly once under the faults of real servers and dirty data: injected headers."""

from __future__ import annotations

import email
import email.policy

import pytest
from send_project import edit_profiles, make, messages_of, smtp, statuses
from servers import SmtpServer

pytestmark = pytest.mark.slow


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


DIRTY_NAMES = {"Eve\r\nBcc: bcc@evil.example": "Eve Bcc: bcc@evil.example",
               "Mallory\u2028X-Injected: yes": "Mallory X-Injected: yes",
               "x" * 5000: "x" * 5000}
DIRTY_ADDRESSES = ["victim@example.com\u0085X-Injected:yes", "tab@example.com\x0bX-Injected: yes",
                   "separator@example.com\u2028X-Injected: yes", "nul@example.com\x1cX-Injected: yes"]
HEADERS = {"Content-Type", "MIME-Version", "Content-Transfer-Encoding", "From", "To", "Subject", "Message-ID",
           "Date", "X-Campaign"}


@pytest.mark.parametrize("provider", ["outbox", "smtp"])
def test_dirty_crm_values_inject_no_header_and_stop_nothing(tmp_path, target, provider, smtp_server):
    project = make(tmp_path / "p", smtp(smtp_server.port) if provider == "smtp" else "")
    edit_profiles(project, [{"first_name": name} for name in DIRTY_NAMES]
                  + [{"email": address} for address in DIRTY_ADDRESSES])
    project.count("mail", target)
    names = {name for (name,) in project.query(target, "select first_name from profiles")}
    assert {"Eve\nBcc: bcc@evil.example", "Eve\r\nBcc: bcc@evil.example"} & names  # the seed kept the line break
    excluded = dict(project.query(target, "select address, exclusion_reason from mail__newsletter__excluded"))
    assert {address: excluded.get(address) for address in DIRTY_ADDRESSES} == \
        {address: "no_address" for address in DIRTY_ADDRESSES}
    expected = dict(messages_of(project, target, "mail__newsletter"))
    result = project.run("send", "mail", "--yes", "--target", target)
    assert result.code == 0, result.stderr
    assert statuses(project, target, "mail") == {"sent": len(expected)}
    if provider == "smtp":
        received = smtp_server.inbox.raw
    else:
        outbox = project.root / "target" / "outbox" / "mail" / "once" / "newsletter"
        received = [path.read_bytes() for path in outbox.glob("*.eml")]
    assert len(received) == len(expected)
    subjects = set()
    for raw in received:
        head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
        assert max(len(line) for line in head.split(b"\n")) <= 78
        assert max(len(line) for line in body.split(b"\n")) <= 998
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert set(message.keys()) == HEADERS, message.keys()
        assert message["To"] in expected.values()
        subjects.add(str(message["Subject"]))
    assert {f"News for {name}" for name in DIRTY_NAMES.values()} <= subjects
