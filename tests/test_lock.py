"""One send of a campaign at a time, even when the lock is lost behind the run's back.

The lock of a send is the warehouse's: a PostgreSQL session's advisory lock, a file lock next to
the DuckDB file. A session killed (by an administrator, an idle timeout, a failover) or a lock file
removed must stop the run that held it before it sends anything more, and the run that takes the
lock over must not send what the first had in flight.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg2
import pytest
from conftest import PG
from send_project import make, message_id, messages_of, smtp, statuses

pytestmark = pytest.mark.slow


def _start_send(project, target: str, env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "NO_COLOR": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "campaign_compiler", "send", "mail", "--yes", "--target", target],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _lose_lock(project, target: str) -> None:
    """What an administrator, an idle timeout or a failover does to the lock of a running send."""
    if target == "duckdb":
        (project.root / "target" / "warehouse.duckdb.campaign-mail.lock").unlink()
        return
    key = f"campaign_orchestration:{project.schema}:mail"
    connection = psycopg2.connect(**PG)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and granted "
                "and objsubid = 1 and classid::bigint = (hashtext(%s)::bigint >> 32) & 4294967295 "
                "and objid::bigint = hashtext(%s)::bigint & 4294967295",
                (key, key),
            )
            assert cursor.fetchall() == [(True,)]
    finally:
        connection.close()


def test_a_run_that_loses_its_lock_stops_and_no_message_is_sent_twice(tmp_path, target, smtp_server):
    inbox = smtp_server.inbox
    project = make(tmp_path / "p", smtp(smtp_server.port, connections=1, in_flight=10), profiles=200)
    total = project.count("mail", target)["counts"]["newsletter"]
    inbox.delay = 0.05  # seconds of sending: the lock is lost midway, and a second send starts
    first = _start_send(project, target)
    _wait_for(lambda: len(inbox.messages) >= 5, first)
    _lose_lock(project, target)
    second = project.run("send", "mail", "--yes", "--target", target)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 1, err
    assert "lock" in err.splitlines()[-1] and "Traceback" not in err
    assert "Traceback" not in second.stderr
    assert max(inbox.message_ids().values()) == 1  # nothing was sent twice
    inbox.delay = 0
    last = project.run("send", "mail", "--yes", "--target", target)
    assert last.code == 0, last.stderr
    assert max(inbox.message_ids().values()) == 1
    logged = statuses(project, target, "mail")
    assert set(logged) <= {"sent", "pending"} and sum(logged.values()) == total
    # at most what was handed over without an outcome when the lock was lost is unknown: the chunk
    # in flight and the one queued behind it (in_flight messages each), and a retry waiting
    assert logged.get("pending", 0) <= 2 * 10 + 1
    expected = {message_id(key) for key, _ in messages_of(project, target, "mail__newsletter")}
    assert set(inbox.message_ids()) <= expected and len(inbox.messages) >= logged["sent"]
    runs = project.query(target, "select status from campaign_runs order by started_at")
    assert "running" not in {status for (status,) in runs}


@pytest.mark.postgres
def test_an_idle_session_timeout_does_not_take_the_lock_of_a_slow_send(tmp_path, postgres, smtp_server):
    """An idle timeout set on the server ends idle sessions: not the ones a send holds on purpose."""
    inbox = smtp_server.inbox
    project = make(tmp_path / "p", smtp(smtp_server.port, connections=1), profiles=200)
    total = project.count("mail", "postgres")["counts"]["newsletter"]
    inbox.delay = 0.5  # a slow server: the log is written every five seconds, the lock's session idle between
    first = _start_send(project, "postgres", {"PGOPTIONS": "-c idle_session_timeout=1000"})
    _wait_for(lambda: len(inbox.messages) >= 3, first)
    time.sleep(1.5)  # longer than the timeout: the lock's session would have been ended by now
    second = project.run("send", "mail", "--yes", "--target", "postgres")
    assert second.code == 1 and "being built or sent by another process" in second.stderr
    inbox.delay = 0
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert inbox.message_ids() == {
        message_id(key): 1 for key, _ in messages_of(project, "postgres", "mail__newsletter")
    }
    assert statuses(project, "postgres", "mail") == {"sent": total}


def test_a_spark_metastore_still_held_by_a_killed_process_is_waited_for(tmp_path):
    """A killed `campaign`'s Spark (a JVM of its own) holds Derby's lock of the metastore a moment
    longer: the next process waits for it, and says so if it never goes."""
    from campaign_compiler.engines.spark import _wait_for_derby
    from campaign_compiler.errors import RuntimeFailure

    lock = tmp_path / "dbex.lck"
    lock.write_text("")
    hold = "import fcntl, sys, time; h = open(sys.argv[1], 'a'); fcntl.lockf(h, fcntl.LOCK_EX); print('held', flush=True); time.sleep(2)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(lock)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RuntimeFailure, match="is still held by another process after 0 s"):
        _wait_for_derby(lock, 0.2)
    started = time.monotonic()
    _wait_for_derby(lock, 30)  # returns once the holder let the lock go, as it ended
    assert holder.wait(timeout=10) == 0 and time.monotonic() - started < 10
    holder.stdout.close()
