"""Send throughput and memory, as a user runs `campaign send`.

    python bench/bench_send.py --messages 1000000 --channel sms                  # to the outbox
    python bench/bench_send.py --messages 20000 --channel email --provider smtp --connections 4
    python bench/bench_send.py --messages 1000000 --channel sms --target postgres      # PG* variables

Creates a warehouse (DuckDB, or a schema of PostgreSQL) with exactly --messages deliverable
recipients (raw table `people`, declared as a dbt source), builds a one-activity campaign with `campaign count`, then times
`campaign send --yes` in a child process and reads that process's peak memory (ru_maxrss). With
--provider smtp, an aiosmtpd server on loopback (in this process) receives the messages.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


PG = dict(
    host=os.environ.get("PGHOST", "127.0.0.1"),
    port=int(os.environ.get("PGPORT", "5432")),
    user=os.environ.get("PGUSER", "postgres"),
    password=os.environ.get("PGPASSWORD", ""),
    dbname=os.environ.get("PGDATABASE", "postgres"),
)
RAW, BUILT = "bench_send_raw", "bench_send"
PEOPLE = """select i as person_id, 'Guest ' || i as first_name, 'guest' || i || '@example.com' as email,
                   '+336' || lpad(cast(i as varchar), 8, '0') as phone"""


def write_project(root: Path, channel: str, settings: dict, target: str = "duckdb") -> None:
    root.mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: bench_send\nversion: '1.0'\nconfig-version: 2\nprofile: bench_send\n")
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    output = (
        "type: duckdb\n      path: target/bench.duckdb"
        if target == "duckdb"
        else f"type: postgres\n      host: {PG['host']}\n      port: {PG['port']}\n      user: {PG['user']}\n"
        f"      password: '{PG['password']}'\n      dbname: {PG['dbname']}\n      schema: {BUILT}"
    )
    (root / "profiles.yml").write_text(
        f"bench_send:\n  target: dev\n  outputs:\n    dev:\n      {output}\n      threads: 4\n"
    )
    (root / "models").mkdir()
    (root / "models" / "sources.yml").write_text(
        f"version: 2\nsources:\n  - name: raw\n    schema: {RAW}\n    tables: [{{name: people}}]\n"
    )
    (root / "campaign_project.yml").write_text(
        "version: 1\nentities:\n  people:\n    source: raw.people\n    key: person_id\n"
        "    columns: {person_id: integer, first_name: text, email: text, phone: text}\n"
        "    addresses: {email: email, sms: phone}\n"
        f"channels:\n  {channel}: {json.dumps(settings)}\n"
    )
    (root / "templates").mkdir()
    template = (
        'subject: "Hello {{ first_name }}"\ntext: "Dear {{ first_name }}, this is your offer."\n'
        if channel == "email"
        else 'body: "Hi {{ first_name }}, this is your offer."\n'
    )
    (root / "templates" / "message.yml").write_text(template)
    (root / "campaigns").mkdir()
    (root / "campaigns" / "bench.yml").write_text(
        "campaign: bench\nactivities:\n  everyone: {type: build_audience}\n"
        f"  message: {{type: {channel}, input: everyone, template: templates/message.yml, category: transactional}}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--channel", choices=("sms", "email"), default="sms")
    parser.add_argument("--provider", choices=("outbox", "smtp"), default="outbox")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--target", choices=("duckdb", "postgres"), default="duckdb")
    args = parser.parse_args()

    server = None
    settings: dict = {"provider": "outbox"}
    if args.provider == "smtp":
        sys.path.insert(0, str(REPO / "tests"))
        from servers import SmtpServer

        server = SmtpServer().start()
        settings = {
            "provider": "smtp",
            "host": "127.0.0.1",
            "port": server.port,
            "from": "bench@example.com",
            "connections": args.connections,
        }
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        write_project(project, args.channel, settings, args.target)
        run_sql = _runner(args.target, project)
        run_sql(f"drop schema if exists {RAW} cascade")
        run_sql(f"drop schema if exists {BUILT} cascade")
        run_sql(f"create schema {RAW}")
        numbers = (
            f"range({args.messages}) as r(i)"
            if args.target == "duckdb"
            else f"generate_series(0, {args.messages - 1}) as i"
        )
        run_sql(f"create table {RAW}.people as {PEOPLE} from {numbers}")
        cli = [sys.executable, "-m", "campaign_compiler", "--project-dir", str(project)]
        started = time.perf_counter()
        built = subprocess.run([*cli, "count", "bench", "--json"], capture_output=True, text=True)
        if built.returncode:
            sys.exit(built.stderr)
        messages = json.loads(built.stdout)["counts"]["message"]
        build_time = time.perf_counter() - started
        started = time.perf_counter()
        # the send, in a process of its own that reports its peak memory when it exits
        measured = (
            "import atexit, resource, sys\n"
            "atexit.register(lambda: print('peak_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
            " file=sys.stderr))\n"
            "from campaign_compiler.cli import main\n"
            f"main(['--project-dir', {str(project)!r}, 'send', 'bench', '--yes'])\n"
        )
        sent = subprocess.run([sys.executable, "-c", measured], capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if sent.returncode:
            sys.exit(sent.stderr)
        peak = int(sent.stderr.split("peak_kb")[-1].split()[0]) / 1024
        schema = "main" if args.target == "duckdb" else BUILT
        ((delivering, sent_count),) = run_sql(
            f"select extract(epoch from max(finished_at) - max(started_at)), (select count(*) from "
            f"{schema}.campaign_deliveries where status = 'sent') from {schema}.campaign_runs"
        )
        if args.target == "postgres":
            run_sql(f"drop schema {RAW} cascade")
            run_sql(f"drop schema {BUILT} cascade")
        received = len(server.inbox.messages) if server else None
        if server:
            server.stop()
        delivering = float(delivering)
        print(
            f"{messages:,} {args.channel} messages to {args.provider} on {args.target}"
            f"{f' ({args.connections} connections)' if server else ''}: build {build_time:.1f} s; "
            f"send command {elapsed:.1f} s, of which delivering {delivering:.1f} s = "
            f"{sent_count / delivering:,.0f} messages/s; peak memory of the send process {peak:.0f} MB"
            f"{f'; server received {received:,}' if server else ''}"
        )


def _runner(target: str, project: Path):
    """A function running one SQL statement on the benchmark's warehouse (rows, or None)."""

    def run(sql: str):
        if target == "duckdb":
            import duckdb

            (project / "target").mkdir(exist_ok=True)
            with duckdb.connect(str(project / "target" / "bench.duckdb")) as connection:
                result = connection.execute(sql)
                return result.fetchall() if result.description else None
        import psycopg2

        connection = psycopg2.connect(**PG)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else None
        finally:
            connection.close()

    return run


if __name__ == "__main__":
    main()
