"""The send step through real providers: exactly once, whatever happens around it."""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PG, CliResult, Project, run_cli
from send_project import CAMPAIGNS, DATA_MODEL, make, message_id, messages_of, outbox, smtp, statuses, written
from servers import MessagingApi, SmtpServer, free_port, self_signed_certificate

pytestmark = pytest.mark.slow


def test_a_flaky_smtp_server_gets_every_message_exactly_once(tmp_path, target, smtp_server):
    inbox = smtp_server.inbox
    project = make(tmp_path / "p", smtp(smtp_server.port))
    assert project.count("mail", target)["counts"]["newsletter"] > 0
    expected = messages_of(project, target, "mail__newsletter")
    inbox.flaky = {address for key, address in expected if int(hashlib.md5(key.encode()).hexdigest(), 16) % 3 == 0}
    assert inbox.flaky
    first = project.run("send", "mail", "--yes", "--target", target)
    assert first.code == 0, first.stderr
    assert inbox.message_ids() == {message_id(key): 1 for key, _ in expected}
    assert all(inbox.rcpt_attempts[a] == 2 for a in inbox.flaky)  # 451, then accepted
    assert statuses(project, target, "mail") == {"sent": len(expected)}
    again = project.run("run", "mail", "--yes", "--target", target)
    assert again.code == 0, again.stderr
    assert len(inbox.messages) == len(expected)  # a second run sends nothing
    assert statuses(project, target, "mail") == {"sent": len(expected)}


def test_an_unreachable_smtp_server_stops_the_run_and_nothing_is_marked_sent(tmp_path, target):
    port = free_port()
    project = make(tmp_path / "p", smtp(port, retries=2, backoff=0.01))
    result = project.run("run", "mail", "--yes", "--target", target)
    assert result.code == 1
    error = result.stderr.splitlines()[-1]  # after the line saying where the canvas is
    assert (
        error.startswith(f"error: smtp 127.0.0.1:{port} is unreachable: ConnectionRefusedError")
        and "Traceback" not in result.stderr
    )
    assert statuses(project, target, "mail") == {}
    expected = messages_of(project, target, "mail__newsletter")
    server = SmtpServer()
    server.port, server.controller.port = port, port
    server.start()
    try:
        resumed = project.run("send", "mail", "--yes", "--target", target)
        assert resumed.code == 0, resumed.stderr
        assert server.inbox.message_ids() == {message_id(key): 1 for key, _ in expected}
    finally:
        server.stop()


def test_a_hard_bounce_fails_the_message_and_suppresses_the_address(tmp_path, target, smtp_server):
    project = make(tmp_path / "p", smtp(smtp_server.port))
    before = project.count("mail", target)["channels"]["newsletter"]
    key, address = sorted(messages_of(project, target, "mail__newsletter"))[0]
    smtp_server.inbox.bounce = {address}
    assert project.run("send", "mail", "--yes", "--target", target).code == 1  # one message failed
    assert statuses(project, target, "mail") == {"sent": before["messages"] - 1, "failed": 1}
    (error,) = project.query(target, f"select error from campaign_deliveries where message_key = '{key}'")[0]
    assert error.startswith("550 ")
    assert project.query(target, "select address, channel, reason from campaign_suppressions") == [
        (address, "email", "hard_bounce")
    ]
    after = project.count("mail", target)["channels"]["newsletter"]
    assert after["excluded"].get("suppressed") == 1 and after["messages"] == before["messages"] - 1


def internationalise(project: Project, addresses: list[str]) -> None:
    """Give these addresses (RFC 6531: UTF-8 local parts) to as many opted-in profiles of the seeds."""
    path = project.root / "seeds" / "profiles.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    wanted = iter(addresses)
    for row in rows:
        if row["email_opt_in"] == "true" and re.fullmatch(r"[a-z0-9.]+@[a-z0-9.]+\.example", row["email"] or ""):
            row["email"] = next(wanted, None) or row["email"]
    assert next(wanted, None) is None
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


INTERNATIONAL = ["zoë.novak@example.com", "josé.garcía@correo.example"]


def test_an_internationalised_address_is_written_as_utf8_in_the_outbox(tmp_path, target):
    project = make(tmp_path / "p")
    internationalise(project, INTERNATIONAL)
    result = project.run("run", "mail", "--yes", "--target", target)
    assert result.code == 0, result.stderr
    expected = messages_of(project, target, "mail__newsletter")
    assert {a for _, a in expected} >= set(INTERNATIONAL)
    assert statuses(project, target, "mail") == {"sent": len(expected)}
    outbox = project.root / "target" / "outbox" / target / "mail" / "once" / "newsletter"
    for key, address in expected:
        raw = (outbox / f"{key}.eml").read_bytes()
        assert f"\nTo: {address}\n".encode() in raw  # as it is, not an RFC 2047 encoded word
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert (message["To"], message["Message-ID"]) == (address, f"<{key}.once@localhost>")
        assert message["Subject"].startswith("News for ")


def test_an_smtp_server_without_smtputf8_fails_the_internationalised_messages_only(tmp_path, target, smtp_server):
    inbox = smtp_server.inbox
    project = make(tmp_path / "p", smtp(smtp_server.port))
    internationalise(project, INTERNATIONAL)
    result = project.run("run", "mail", "--yes", "--target", target)
    assert result.code == 1  # messages failed: a script or a scheduler is told
    assert result.stderr.splitlines()[-1] == (
        "error: 2 messages failed (the reason of each is in campaign_deliveries.error; --retry-failed sends them again)"
    )
    expected = messages_of(project, target, "mail__newsletter")
    ascii_keys = {key for key, address in expected if address.isascii()}
    assert inbox.message_ids() == {message_id(key): 1 for key in ascii_keys}
    assert not any(inbox.rcpt_attempts[a] for a in INTERNATIONAL)
    assert statuses(project, target, "mail") == {"sent": len(ascii_keys), "failed": len(INTERNATIONAL)}
    unsupported = "the server does not support SMTPUTF8, which this internationalised address needs"
    failed = project.query(target, "select address, error from campaign_deliveries where status = 'failed'")
    assert sorted(failed) == sorted((address, unsupported) for address in INTERNATIONAL)
    assert project.query(target, "select * from campaign_suppressions") == []  # the addresses are valid
    again = project.run("send", "mail", "--yes", "--target", target)
    assert again.code == 0, again.stderr
    assert len(inbox.messages) == len(ascii_keys)
    assert statuses(project, target, "mail") == {"sent": len(ascii_keys), "failed": len(INTERNATIONAL)}


def test_an_smtp_server_with_smtputf8_gets_each_internationalised_message_once(tmp_path, target):
    server = SmtpServer(smtputf8=True).start()
    try:
        project = make(tmp_path / "p", smtp(server.port))
        internationalise(project, INTERNATIONAL)
        result = project.run("run", "mail", "--yes", "--target", target)
        assert result.code == 0, result.stderr
        expected = messages_of(project, target, "mail__newsletter")
        assert server.inbox.message_ids() == {message_id(key): 1 for key, _ in expected}
        assert statuses(project, target, "mail") == {"sent": len(expected)}
        received = {}
        for raw, options in zip(server.inbox.raw, server.inbox.mail_options):
            message = email.message_from_bytes(raw, policy=email.policy.default)
            received[str(message["To"])] = "SMTPUTF8" in options
        assert received == {address: not address.isascii() for _, address in expected}
        assert all(server.inbox.rcpt_attempts[a] == 1 for a in INTERNATIONAL)
    finally:
        server.stop()


def test_an_http_provider_retries_429_and_500_and_takes_each_message_once(tmp_path, target):
    api = MessagingApi(flaky=True).start()
    try:
        settings = {
            "provider": "http",
            "url": api.url,
            "token_env": "SMS_TOKEN",
            "batch_size": 7,
            "retries": 3,
            "backoff": 0.01,
        }
        project = make(tmp_path / "p", "  sms: " + json.dumps(settings) + "\n")
        result = project.run("run", "texts", "--yes", "--target", target, env={"SMS_TOKEN": api.token})
        assert result.code == 0, result.stderr
        expected = messages_of(project, target, "texts__alert")
        assert api.failures > 0
        assert api.accepted == {f"{key}.once": 1 for key, _ in expected}
        assert api.authorizations == {f"Bearer {api.token}"}
        assert statuses(project, target, "texts") == {"sent": len(expected)}
    finally:
        api.stop()


def test_two_occurrences_of_a_message_carry_two_ids_which_the_log_records(tmp_path, target, smtp_server):
    api = MessagingApi().start()
    try:
        settings = {"provider": "http", "url": api.url, "batch_size": 5, "retries": 0}
        project = make(tmp_path / "p", smtp(smtp_server.port) + "  sms: " + json.dumps(settings) + "\n")
        keys = {}
        for occurrence, written_as in (("once", "once"), ("2026-03-02T07:00:00Z", "2026-03-02T07=00=00Z")):
            batches = set(api.attempts)
            for campaign in ("mail", "texts"):
                result = project.run("run", campaign, "--yes", "--occurrence", occurrence, "--target", target)
                assert result.code == 0, result.stderr
            keys[written_as] = set(api.attempts) - batches  # the Idempotency-Keys of this occurrence's batches
            logged = dict(
                project.query(
                    target,
                    f"select message_key || ' ' || channel, message_id from campaign_deliveries "
                    f"where occurrence = '{occurrence}'",
                )
            )
            for key, _ in messages_of(project, target, "mail__newsletter"):
                assert logged[f"{key} email"] == f"{key}.{written_as}@hotel.example"
            for key, _ in messages_of(project, target, "texts__alert"):
                assert logged[f"{key} sms"] == f"{key}.{written_as}"
        emails = messages_of(project, target, "mail__newsletter")
        assert smtp_server.inbox.message_ids() == {
            f"<{key}.{occurrence}@hotel.example>": 1 for key, _ in emails for occurrence in keys
        }
        texts = messages_of(project, target, "texts__alert")
        assert api.accepted == {f"{key}.{occurrence}": 1 for key, _ in texts for occurrence in keys}
        assert keys["once"] and keys["2026-03-02T07=00=00Z"] and not keys["once"] & keys["2026-03-02T07=00=00Z"]
    finally:
        api.stop()


@pytest.mark.parametrize("status", [401, 403])
def test_an_http_provider_refusing_the_token_stops_the_run_and_a_rerun_sends_everything(tmp_path, target, status):
    api = MessagingApi(refuse=status).start()
    try:
        settings = {
            "provider": "http",
            "url": api.url,
            "token_env": "SMS_TOKEN",
            "batch_size": 7,
            "retries": 3,
            "backoff": 0.01,
        }
        project = make(tmp_path / "p", "  sms: " + json.dumps(settings) + "\n")
        refused = project.run("run", "texts", "--yes", "--target", target, env={"SMS_TOKEN": "wrong-token"})
        assert refused.code == 1
        assert (
            refused.stderr.splitlines()[-1]
            == f'error: http {api.url} refused the credentials (token_env): HTTP {status}: {{"error": "invalid token"}}; '
            "the messages it did not take are left for the next run"
        )
        assert "Traceback" not in refused.stderr
        assert api.refused == 1 and api.accepted == {}  # the first batch, not retried: nothing more is tried
        assert statuses(project, target, "texts") == {}
        resumed = project.run("send", "texts", "--yes", "--target", target, env={"SMS_TOKEN": api.token})
        assert resumed.code == 0, resumed.stderr
        expected = messages_of(project, target, "texts__alert")
        assert api.accepted == {f"{key}.once": 1 for key, _ in expected}
        assert statuses(project, target, "texts") == {"sent": len(expected)}
    finally:
        api.stop()


def test_a_missing_token_is_located_and_nothing_is_built_or_sent(tmp_path):
    settings = {"provider": "http", "url": "http://127.0.0.1:9/x", "token_env": "NO_SUCH_TOKEN_VARIABLE"}
    sms = "  sms: " + json.dumps(settings) + "\n"
    project = make(tmp_path / "p", sms)
    project.write(
        "campaigns/both.yml",
        CAMPAIGNS["mail"].replace("campaign: mail", "campaign: both")
        + "  alert: {type: sms, input: everyone, template: templates/alert.yml, category: transactional}\n",
    )
    line = len(DATA_MODEL.splitlines()) + 2
    column = sms.index('"NO_SUCH') + 1
    for command in ("run", "send"):  # the email would go first: nothing may go before the error
        result = project.run(command, "both", "--yes")
        assert result.code == 2
        assert result.errors == [
            f"campaign_project.yml:{line}:{column}: error: environment variable "
            "NO_SUCH_TOKEN_VARIABLE (token_env of the sms channel) is not set"
        ]
    assert not project.root.joinpath("target", "outbox").exists()
    assert not project.root.joinpath("target", "warehouse.duckdb").exists()
    assert project.run("run", "both", "--simulate").code == 0  # a simulation needs no credential


def _interrupt(project: Project, target: str, campaign: str, until, *extra: str) -> None:
    """Start a send, kill it (SIGKILL) once `until()` holds."""
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    process = subprocess.Popen(
        [sys.executable, "-m", "campaign_compiler", "send", campaign, "--yes", "--target", target, *extra],
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not until() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the send finished before it could be interrupted"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def test_a_send_killed_midway_resumes_and_the_outbox_holds_each_message_once(tmp_path, target):
    project = make(tmp_path / "p", profiles=6000)
    total = project.count("texts", target)["counts"]["alert"]
    outbox = project.root / "target" / "outbox" / target / "texts" / "once" / "alert" / "messages.jsonl"

    def some_written() -> bool:
        return outbox.exists() and outbox.stat().st_size > 20_000

    _interrupt(project, target, "texts", some_written)
    written = outbox.read_text().count("\n")
    assert 0 < written < total
    resumed = project.run("send", "texts", "--yes", "--target", target)
    assert resumed.code == 0, resumed.stderr
    keys = [json.loads(line)["message_key"] for line in outbox.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == total
    assert statuses(project, target, "texts") == {"sent": total}
    runs = project.query(target, "select status, finished_at is null from campaign_runs order by started_at")
    assert runs == [("interrupted", True), ("succeeded", False)]  # the killed run no longer shows as running


FILE_PROVIDER = '  direct_mail: {provider: file, path: "exports/{campaign}_{occurrence}.csv"}\n'
EVERY_FILE = """\
campaign: every_file
activities:
  everyone: {type: build_audience}
  newsletter: {type: email, input: everyone, template: templates/news.yml}
  alert: {type: sms, input: newsletter, template: templates/alert.yml, category: transactional}
  letter: {type: direct_mail, input: alert, columns: [first_name, last_name], category: transactional}
"""


def _send_on_a_full_disk(project: Project, target: str, folder: Path, room: int, then: str) -> CliResult:
    """`campaign send every_file` whose files in `folder` may take `room` bytes; then ENOSPC, or the
    process killed in the middle of the write."""
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "FULL_DISK_DIR": str(folder)}
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "full_disk.py"),
            str(room),
            then,
            "send",
            "every_file",
            "--yes",
            "--target",
            target,
        ],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("then", ["enospc", "kill"])
def test_a_disk_that_fills_up_mid_write_strands_no_message(tmp_path, target, then):
    project = make(tmp_path / "p", FILE_PROVIDER, profiles=200)
    project.write("campaigns/every_file.yml", EVERY_FILE)
    totals = project.count("every_file", target)["counts"]
    folders = {
        "newsletter": outbox(project, target, "every_file", "newsletter"),
        "alert": outbox(project, target, "every_file", "alert"),
        "letter": project.root / "exports" / "every_file_once.csv",
    }

    def statuses() -> dict:
        return {
            (activity, status): count
            for activity, status, count in project.query(
                target,
                """
            select activity, status, count(*) from campaign_deliveries group by 1, 2""",
            )
        }

    for activity, folder in folders.items():  # the disk fills up in the middle of each in turn
        full = _send_on_a_full_disk(project, target, folder.parent if folder.suffix else folder, 5000, then)
        assert 0 < len(written(folder)) < totals[activity], activity
        if then == "enospc":  # the outbox knows what it wrote: nothing is left unknown
            assert full.code == 1 and "Traceback" not in full.stderr, full.stderr
            assert full.stderr.splitlines()[-1].endswith(
                "No space left on device; the messages it did not take are left for the next run"
            ), full.stderr
            assert statuses()[activity, "sent"] == len(written(folder)) and (activity, "pending") not in statuses()
        else:
            assert full.code == -signal.SIGKILL, full.stderr
        assert "unknown outcome" not in full.stdout, full.stdout
    resumed = project.run("send", "every_file", "--yes", "--target", target)
    assert resumed.code == 0, resumed.stderr
    assert "unknown outcome" not in resumed.stdout, resumed.stdout
    for activity, folder in folders.items():
        assert sorted(written(folder)) == sorted(
            key for key, _ in messages_of(project, target, f"every_file__{activity}")
        )
    assert statuses() == {(activity, "sent"): totals[activity] for activity in folders}


def test_the_file_provider_writes_no_file_of_the_project_whatever_its_placeholders_become(tmp_path, target):
    project = make(tmp_path / "p", FILE_PROVIDER)
    project.write("campaigns/every_file.yml", EVERY_FILE)
    project.count("every_file", target)
    seeds = (project.root / "seeds" / "profiles.csv").read_bytes()
    (project.root / "exports").mkdir()
    extract = project.root / "exports" / "every_file_once.csv"
    line = len(DATA_MODEL.splitlines()) + 2
    column = FILE_PROVIDER.index('"exports') + 1
    for made, expected in (
        (
            lambda: extract.symlink_to(project.root / "seeds" / "profiles.csv"),
            "is inside seeds/, which the dbt project owns",
        ),
        (lambda: extract.write_text("id,name\n1,Zoë\n"), "names a file that is not a direct-mail extract"),
    ):
        made()
        refused = project.run("send", "every_file", "--yes", "--target", target)
        assert refused.code == 2 and refused.errors == [
            f'campaign_project.yml:{line}:{column}: error: path of the file provider "exports/every_file_once.csv" '
            f"{expected}" + refused.errors[0].partition(expected)[2]
        ], refused.stderr
        extract.unlink()
    for occurrence in ("../../x", "/tmp/x", ".hidden"):
        refused = project.run("send", "every_file", "--yes", "--occurrence", occurrence, "--target", target)
        assert refused.code == 2 and refused.stderr.startswith(f'error: occurrence "{occurrence}" must be')
    assert (project.root / "seeds" / "profiles.csv").read_bytes() == seeds
    assert not (project.root / "target" / "outbox").exists() and not list((project.root / "exports").iterdir())
    assert statuses(project, target, "every_file") == {}
    assert project.query(target, "select count(*) from campaign_runs") == [(0,)]


def test_smtp_outcomes_left_unknown_by_a_crash_are_reported_and_resent_only_on_request(tmp_path, target, smtp_server):
    inbox = smtp_server.inbox
    project = make(tmp_path / "p", smtp(smtp_server.port, connections=1, in_flight=10))
    total = project.count("mail", target)["counts"]["newsletter"]
    inbox.delay = 0.3
    _interrupt(project, target, "mail", lambda: len(inbox.messages) >= 2)
    inbox.delay = 0
    time.sleep(0.5)  # the server finishes the transaction the killed client left open
    resumed = project.run("send", "mail", "--yes", "--target", target)
    assert resumed.code == 0, resumed.stderr
    unknown = statuses(project, target, "mail").get("pending", 0)
    # one connection: at most the chunk of ten being handed over, the chunk queued ahead, and one in transaction
    assert unknown <= 2 * 10 + 1
    assert max(inbox.message_ids().values()) == 1  # nothing was sent twice
    assert len(inbox.messages) + (unknown if len(inbox.messages) < total else 0) >= total
    if unknown:
        assert "unknown outcome" in resumed.stdout
        again = project.run("send", "mail", "--yes", "--target", target, "--resend-unknown")
        assert again.code == 0, again.stderr
    assert set(inbox.message_ids()) == {message_id(key) for key, _ in messages_of(project, target, "mail__newsletter")}
    assert statuses(project, target, "mail") == {"sent": total}


def test_a_crash_while_a_message_waits_for_its_retry_leaves_it_unknown_and_sends_nothing_twice(
    tmp_path, target, smtp_server
):
    inbox = smtp_server.inbox
    project = make(tmp_path / "p", smtp(smtp_server.port, connections=1, backoff=60))
    total = project.count("mail", target)["counts"]["newsletter"]
    expected = messages_of(project, target, "mail__newsletter")
    key, address = expected[0]
    inbox.flaky = {address}  # 451 to its first attempt: it waits a minute, the others go meanwhile
    delivered = []

    def all_others_delivered() -> bool:  # and, most likely, their outcomes recorded a moment later
        if len(inbox.messages) == total - 1 and not delivered:
            delivered.append(time.monotonic())
        return bool(delivered) and time.monotonic() - delivered[0] > 1

    _interrupt(project, target, "mail", all_others_delivered)
    assert len(inbox.messages) == total - 1 and message_id(key) not in inbox.message_ids()
    resumed = project.run("send", "mail", "--yes", "--target", target)
    assert resumed.code == 0, resumed.stderr
    assert len(inbox.messages) == total - 1  # nothing resent: the waiting one, and any other unknown
    pending = {
        k for (k,) in project.query(target, "select message_key from campaign_deliveries where status = 'pending'")
    }
    assert key in pending
    assert statuses(project, target, "mail") == {"sent": total - len(pending), "pending": len(pending)}
    again = project.run("send", "mail", "--yes", "--target", target, "--resend-unknown")
    assert again.code == 0, again.stderr
    # the waiting message once; another is sent again only if a crash left its outcome unknown
    assert inbox.message_ids() == {message_id(k): 2 if k in pending and k != key else 1 for k, _ in expected}
    assert statuses(project, target, "mail") == {"sent": total}


def test_a_second_run_of_the_same_campaign_exits_1_while_the_first_sends(tmp_path, target, smtp_server):
    inbox = smtp_server.inbox
    project = make(tmp_path / "p", smtp(smtp_server.port, connections=1))
    total = project.count("mail", target)["counts"]["newsletter"]
    inbox.delay = 0.3  # the first send takes seconds: the second starts meanwhile
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    first = subprocess.Popen(
        [sys.executable, "-m", "campaign_compiler", "send", "mail", "--yes", "--target", target],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not inbox.messages and time.monotonic() < deadline:
        time.sleep(0.02)
    second = project.run("send", "mail", "--yes", "--target", target)
    assert second.code == 1
    assert "being built or sent by another process" in second.stderr
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert len(inbox.message_ids()) == len(inbox.messages) == total


def test_one_email_per_confirmed_booking_carries_that_booking(tmp_path, target):
    project = make(tmp_path / "p")
    counts = project.count("stays", target)
    assert project.run("send", "stays", "--yes", "--target", target).code == 0
    rows = {
        key: (booking_id, str(checkin), nights)
        for key, booking_id, checkin, nights in project.query(
            target,
            """
        select message_key, booking_id, booking__checkin_date, booking__nights from stays__stay""",
        )
    }
    assert len(rows) == counts["counts"]["stay"] > 0
    assert len(rows) > counts["channels"]["stay"]["recipients"]  # some guests have several bookings
    outbox = project.root / "target" / "outbox" / target / "stays" / "once" / "stay"
    for path in outbox.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        booking_id, checkin, nights = rows[path.stem]
        assert message["Subject"] == f"Booking {booking_id} on {checkin}"
        assert f"{nights} nights from {checkin}" in message.get_content()
    assert len(list(outbox.glob("*.eml"))) == len(rows)


def test_a_template_that_reads_no_column_is_sent_and_breaks_no_other_campaign(tmp_path, target):
    """A static email (no column of the data) has messages of their own columns only; the project's
    other campaigns still build."""
    project = make(tmp_path / "p")
    project.write("templates/news.yml", 'subject: "Our news"\ntext: "The same for everyone"\n')
    counts = project.count("mail", target)
    assert project.count("texts", target)["counts"]["alert"] > 0
    expected = messages_of(project, target, "mail__newsletter")
    assert counts["counts"]["newsletter"] == len(expected) > 0
    assert project.run("send", "mail", "--yes", "--target", target).code == 0
    outbox = project.root / "target" / "outbox" / target / "mail" / "once" / "newsletter"
    for path in outbox.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert (message["Subject"], message.get_content().strip()) == ("Our news", "The same for everyone")
    assert {path.stem for path in outbox.glob("*.eml")} == {key for key, _ in expected}


def test_a_simulation_renders_everything_and_does_not_block_the_real_send(tmp_path, target, smtp_server):
    project = make(tmp_path / "p", smtp(smtp_server.port))
    simulated = project.run("run", "mail", "--simulate", "--target", target)
    assert simulated.code == 0, simulated.stderr
    expected = messages_of(project, target, "mail__newsletter")
    simulation = project.root / "target" / "simulation" / target / "mail" / "once" / "newsletter"
    assert {p.stem for p in simulation.glob("*.eml")} == {key for key, _ in expected}
    assert smtp_server.inbox.messages == []
    assert statuses(project, target, "mail") == {"simulated": len(expected)}
    sent = project.run("send", "mail", "--yes", "--target", target)
    assert sent.code == 0, sent.stderr
    assert len(smtp_server.inbox.message_ids()) == len(expected)
    assert statuses(project, target, "mail") == {"sent": len(expected)}


def test_without_a_terminal_a_real_run_needs_yes(tmp_path):
    project = make(tmp_path / "p")
    result = run_cli("run", "mail", cwd=project.root)
    assert result.code == 2
    assert result.stderr.startswith("error: campaign run cannot ask for confirmation without a terminal")


@pytest.mark.duckdb
@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_smtp_over_tls_with_login_from_the_environment(tmp_path, tls):
    certificate = self_signed_certificate(tmp_path)
    server = SmtpServer(tls=tls, certificate=certificate, login=("mailer", "s3cret")).start()
    try:
        project = make(
            tmp_path / "p",
            "  email: "
            + json.dumps(
                {
                    "provider": "smtp",
                    "host": "localhost",
                    "port": server.port,
                    "tls": tls,
                    "from": "news@hotel.example",
                    "username_env": "SMTP_USER",
                    "password_env": "SMTP_PASSWORD",
                    "retries": 1,
                    "backoff": 0.01,
                }
            )
            + "\n",
        )
        env = {"SMTP_USER": "mailer", "SMTP_PASSWORD": "wrong", "SSL_CERT_FILE": certificate[0]}
        refused = project.run("run", "mail", "--yes", env=env)
        assert refused.code == 1
        assert refused.stderr.splitlines()[-1].startswith(f"error: smtp localhost:{server.port} refused the login: 535")
        assert statuses(project, "duckdb", "mail") == {} and server.inbox.messages == []
        result = project.run("send", "mail", "--yes", env={**env, "SMTP_PASSWORD": "s3cret"})
        assert result.code == 0, result.stderr
        expected = messages_of(project, "duckdb", "mail__newsletter")
        assert server.inbox.message_ids() == {message_id(key): 1 for key, _ in expected}
        assert set(server.logins) == {"mailer"}
    finally:
        server.stop()


@pytest.mark.duckdb
def test_a_simulation_leaves_the_traces_of_real_runs_alone(tmp_path):
    project = make(tmp_path / "p")
    project.count("mail", "duckdb")
    (first, _), (second, _) = sorted(messages_of(project, "duckdb", "mail__newsletter"))[:2]
    for key, status in ((first, "pending"), (second, "failed")):
        project.query_write(
            "duckdb",
            f"""insert into campaign_deliveries (campaign, activity, channel, occurrence, recipient_key, per_key,
            message_key, address, status, attempts, error, sent_at, run_id, updated_at) values ('mail', 'newsletter',
            'email', 'once', '1', null, '{key}', 'x@example.com', '{status}', 1, null, null, 'r', null)""",
        )
    assert project.run("send", "mail", "--simulate").code == 0
    assert dict(
        project.query(
            "duckdb",
            f"""select message_key, status from campaign_deliveries
        where message_key in ('{first}', '{second}')""",
        )
    ) == {first: "pending", second: "failed"}
    total = len(messages_of(project, "duckdb", "mail__newsletter"))
    assert statuses(project, "duckdb", "mail") == {"simulated": total - 2, "pending": 1, "failed": 1}
    (finished,) = project.query("duckdb", "select status from campaign_runs")[0]
    assert finished == "simulated"


@pytest.mark.postgres
def test_send_and_canvas_read_the_tables_of_their_own_target(tmp_path, postgres):
    project = make(tmp_path / "p")
    built = project.count("texts", "postgres")["counts"]["alert"]
    assert built > 0
    # the last dbt run built PostgreSQL's tables: DuckDB has no such messages
    refused = project.run("send", "texts", "--yes", "--target", "duckdb")
    assert refused.code == 1
    assert refused.stderr.strip() == (
        'error: texts is not built on target "duckdb": texts__everyone is missing '
        "(and 3 more); build it with `campaign count texts --target duckdb` or "
        "`dbt build --select tag:campaign_texts --target duckdb`"
    )
    assert not project.root.joinpath("target", "outbox").exists()
    # after a DuckDB build (the last dbt run now), each target's canvas shows its own tables
    alert = f'"{project.schema}".texts__alert'
    project.query_write(
        "postgres",
        f"delete from {alert} where message_key in (select message_key from {alert} order by message_key limit 3)",
    )
    assert project.count("texts", "duckdb")["counts"]["alert"] == built
    page = project.run("graph", "texts", "--format", "mermaid", "--target", "postgres")
    assert page.code == 0, page.stderr
    assert f"{built - 3:,} messages" in page.stdout and f"{built:,} messages" not in page.stdout
    sent = project.run("send", "texts", "--yes", "--target", "postgres")
    assert sent.code == 0, sent.stderr
    assert statuses(project, "postgres", "texts") == {"sent": built - 3}


@pytest.mark.duckdb
@pytest.mark.postgres
def test_two_targets_sending_the_same_campaign_each_have_their_own_outbox(tmp_path, postgres):
    project = make(tmp_path / "p")
    for target in ("duckdb", "postgres"):
        assert project.count("texts", target)["counts"]["alert"] > 3
    alert = f'"{project.schema}".texts__alert'  # PostgreSQL has 3 messages fewer, the last to be sent on DuckDB
    project.query_write(
        "postgres",
        f"delete from {alert} where message_key in (select message_key from {alert} order by message_key limit 3)",
    )
    for target in ("postgres", "duckdb", "postgres"):  # the second on PostgreSQL sends nothing
        result = project.run("send", "texts", "--yes", "--target", target)
        assert result.code == 0, result.stderr
    for target in ("duckdb", "postgres"):
        keys = sorted(key for key, _ in messages_of(project, target, "texts__alert"))
        assert sorted(written(outbox(project, target, "texts", "alert"))) == keys
        assert statuses(project, target, "texts") == {"sent": len(keys)}


def test_a_frequency_cap_does_not_count_an_occurrence_against_itself(tmp_path, target):
    project = make(tmp_path / "p")
    project.write(
        "campaigns/capped.yml",
        CAMPAIGNS["mail"]
        .replace("campaign: mail", "campaign: capped")
        .replace("template: templates/news.yml}", "template: templates/news.yml, frequency_cap: {max: 1, days: 7}}"),
    )
    first = project.run("run", "capped", "--yes", "--target", target)
    assert first.code == 0, first.stderr
    sent = statuses(project, target, "capped")["sent"]
    again = project.count("capped", target)  # the messages of occurrence "once" are not capped by themselves
    assert again["counts"]["newsletter"] == sent
    assert "frequency_cap" not in again["channels"]["newsletter"]["excluded"]
    second = project.run("run", "capped", "--yes", "--occurrence", "2026-12-01", "--target", target)
    assert second.code == 0, second.stderr
    assert "No message to send." in second.stderr  # another occurrence within the week is capped
    assert project.scalar(target, "select count(*) from capped__newsletter") == 0
    reasons = dict(
        project.query(
            target,
            """
        select exclusion_reason = 'frequency_cap', count(*) from capped__newsletter__excluded
        where lower(trim(address)) in (select lower(trim(address)) from campaign_deliveries where status = 'sent')
        group by 1""",
        )
    )
    assert reasons[True] >= sent and False not in reasons  # every address messaged once is capped
    assert statuses(project, target, "capped") == {"sent": sent}


@pytest.mark.postgres
def test_the_campaign_lock_of_another_schema_does_not_block(tmp_path, postgres):
    import psycopg2

    project = make(tmp_path / "p")
    project.count("texts", "postgres")
    holder = psycopg2.connect(**PG)
    try:
        with holder.cursor() as cursor:  # the same campaign, sent in another schema of the database
            cursor.execute("select pg_advisory_lock(hashtext('campaign_orchestration:elsewhere:texts'))")
        assert project.run("send", "texts", "--yes", "--target", "postgres").code == 0
        with holder.cursor() as cursor:  # and this schema's own campaign lock
            cursor.execute(f"select pg_advisory_lock(hashtext('campaign_orchestration:{project.schema}:texts'))")
        busy = project.run("send", "texts", "--yes", "--target", "postgres")
        assert busy.code == 1 and "is being built or sent by another process" in busy.stderr
    finally:
        holder.close()


def test_a_duckdb_send_runs_its_warehouse_on_one_thread(tmp_path, monkeypatch):
    """Each of a send's statements touches a page of rows: more threads only keep more memory."""
    from conftest import run_cli_here

    from campaign_compiler.engines.duckdb import DuckDB

    project = make(tmp_path / "p")
    assert project.count("texts", "duckdb")["counts"]["alert"] > 0
    threads = []
    close = DuckDB.close

    def closing(engine):
        threads.append(engine.connection.execute("select current_setting('threads')").fetchone()[0])
        close(engine)

    monkeypatch.setattr(DuckDB, "close", closing)
    sent = run_cli_here("send", "texts", "--yes", "--target", "duckdb", cwd=project.root)
    assert sent.code == 0, sent.stderr
    assert 1 in threads
