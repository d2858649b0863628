"""Every benchmark under bench/ runs, at a size that takes seconds, and prints its figure.

The figures themselves are measured by hand on a quiet machine (bench/results.md): here only that
each command still works end to end, its counts checked as it checks them (bench_reference exits
non-zero when a count differs from the hand-written table's, bench_smtp when a message arrived
twice or not at all), so that a change of the product or of a shared helper cannot leave a
benchmark broken until someone next measures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PG

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "bench"

# (script and arguments, a line its output must have)
COMMANDS = {
    "send_sms": (
        ["bench_send.py", "--messages", "300", "--channel", "sms", "--runs", "1"],
        r"300 sms messages to outbox",
    ),
    "send_email_smtp": (
        ["bench_send.py", "--messages", "200", "--channel", "email", "--provider", "smtp", "--runs", "1"],
        r"200 email messages to smtp on duckdb",
    ),
    "smtp": (
        ["bench_smtp.py", "--messages", "200", "--connections", "2", "--runs", "1"],
        r"greylisting / failure-free",
    ),
    "reference": (["bench_reference.py", "--profiles", "3000", "--runs", "1"], r"every count equal"),
    "segments": (["bench_segments.py", "--profiles", "3000", "--runs", "1"], r"bench__history\s+3,000"),
    "scale": (["bench_scale.py", "--profiles", "1000", "--runs", "1"], r"\| 1,000 \|"),
    "count": (["bench_count.py", "--runs", "1"], r"campaign count summer_promo"),
    "compile": (["bench_compile.py", "--activities", "20", "--runs", "1"], r"20 activities"),
}
# some of them on PostgreSQL too, in a database of the test's own (the benchmarks use fixed schema
# names): name -> the line its output must have there
ON_POSTGRES = {
    "send_sms": r"300 sms messages to outbox on postgres",
    "reference": r"every count equal",
    "segments": r"bench__history\s+3,000",
}


@pytest.mark.duckdb
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_benchmark_runs(name: str, tmp_path: Path):
    if name == "smtp" and not Path("/usr/sbin/smtp-sink").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("postfix's smtp-sink is missing: .ci/run installs it (Debian package postfix)")
        pytest.skip("postfix's smtp-sink is not installed (Debian package postfix)")
    _run(*COMMANDS[name], tmp_path, {})


@pytest.fixture(scope="module")
def bench_database(postgres):
    """A database of this module's own, dropped afterwards."""
    import psycopg2

    name = f"campaign_bench_{os.getpid()}"
    connection = psycopg2.connect(**PG)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"drop database if exists {name}")
        cursor.execute(f"create database {name}")
    try:
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"drop database if exists {name} with (force)")
        connection.close()


@pytest.mark.postgres
@pytest.mark.parametrize("name", sorted(ON_POSTGRES))
def test_benchmark_runs_on_postgres(name: str, tmp_path: Path, bench_database: str):
    arguments = [*COMMANDS[name][0], "--target", "postgres"]
    _run(arguments, ON_POSTGRES[name], tmp_path, {"PGDATABASE": bench_database})


def _run(arguments: list[str], expected: str, tmp_path: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / arguments[0]), *arguments[1:]],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TMPDIR": str(tmp_path), "CAMPAIGN_WARM": "0", **env},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(expected, done.stdout), done.stdout
