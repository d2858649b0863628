"""Send throughput and memory, as a user runs `campaign send`.

    python bench/bench_send.py --messages 1000000 --channel sms                  # to the outbox
    python bench/bench_send.py --messages 100000 --channel email --runs 3        # medians of 3 sends
    python bench/bench_send.py --messages 20000 --channel email --provider smtp --connections 4
    python bench/bench_send.py --messages 1000000 --channel sms --target postgres      # PG* variables
    python bench/bench_send.py --messages 100000 --channel push --target spark
    python bench/bench_send.py --messages 100000 --channel email --profile send.prof   # cProfile of one send

Creates a warehouse (DuckDB, a schema of PostgreSQL, or a local Spark warehouse) with exactly
--messages deliverable recipients (raw table `people`, declared as a dbt source), builds a
one-activity campaign with `campaign count`, then times `campaign send --yes` --runs times, each in a
child process, on an empty delivery log and outbox. It prints the median of the runs: messages per
second while delivering (from the run's own log), the whole command's time and CPU seconds, the peak resident
memory of the send process (ru_maxrss, which the process reports as it exits) and, on Spark, apart,
of its JVM (the peak VmHWM of the process's children, read from /proc while it runs). Emails to
the outbox are one file each: the disk's own rate for such files, measured right after, says how
near the send comes to what the disk allows (it varies tenfold with what else writes to it). With
--provider smtp, an aiosmtpd server on loopback (in this process) receives the messages.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
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
PEOPLE = """select {i} as person_id, 'Guest ' || {i} as first_name, 'guest' || {i} || '@example.com' as email,
                   concat('+336', lpad(cast({i} as {text}), 8, '0')) as phone, 'device-' || {i} as device"""
TEMPLATES = {
    "email": 'subject: "Hello {{ first_name }}"\ntext: "Dear {{ first_name }}, this is your offer."\n',
    "sms": 'body: "Hi {{ first_name }}, this is your offer."\n',
    "push": 'title: "Hello {{ first_name }}"\nbody: "Hi {{ first_name }}, this is your offer."\n'
    'data: {screen: offers, guest: "{{ person_id }}"}\n',
}
SPARK = {
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "2",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
}


def spark_parameters(root: Path) -> dict[str, str]:
    """A local Spark whose warehouse and metastore are in the project's folder."""
    return {
        **SPARK,
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root}/metastore;create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={root}",
    }


def write_project(root: Path, channel: str, settings: dict, target: str = "duckdb") -> None:
    root.mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: bench_send\nversion: '1.0'\nconfig-version: 2\nprofile: bench_send\n")
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    if target == "duckdb":
        output = "type: duckdb\n      path: target/bench.duckdb\n      threads: 4"
    elif target == "spark":
        parameters = "".join(f'\n        {k}: "{v}"' for k, v in spark_parameters(root).items())
        output = f"type: spark\n      method: session\n      host: NA\n      schema: {BUILT}\n      threads: 1"
        output += f"\n      server_side_parameters:{parameters}"
    else:
        output = (
            f"type: postgres\n      host: {PG['host']}\n      port: {PG['port']}\n      user: {PG['user']}\n"
            f"      password: '{PG['password']}'\n      dbname: {PG['dbname']}\n      schema: {BUILT}\n      threads: 4"
        )
    (root / "profiles.yml").write_text(f"bench_send:\n  target: dev\n  outputs:\n    dev:\n      {output}\n")
    (root / "models").mkdir()
    (root / "models" / "sources.yml").write_text(
        f"version: 2\nsources:\n  - name: raw\n    schema: {RAW}\n    tables: [{{name: people}}]\n"
    )
    (root / "campaign_project.yml").write_text(
        "version: 1\nentities:\n  people:\n    source: raw.people\n    key: person_id\n"
        "    columns: {person_id: integer, first_name: text, email: text, phone: text, device: text}\n"
        "    addresses: {email: email, sms: phone, push: device}\n"
        f"channels:\n  {channel}: {json.dumps(settings)}\n"
    )
    (root / "templates").mkdir()
    (root / "templates" / "message.yml").write_text(TEMPLATES[channel])
    (root / "campaigns").mkdir()
    (root / "campaigns" / "bench.yml").write_text(
        "campaign: bench\nactivities:\n  everyone: {type: build_audience}\n"
        f"  message: {{type: {channel}, input: everyone, template: templates/message.yml, category: transactional}}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--channel", choices=("sms", "email", "push"), default="sms")
    parser.add_argument("--provider", choices=("outbox", "smtp"), default="outbox")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--target", choices=("duckdb", "postgres", "spark"), default="duckdb")
    parser.add_argument("--runs", type=int, default=3, help="sends measured (the median is printed)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of one send there (no figure printed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, _smtp_server(args) as (server, settings):
        project = Path(tmp) / "project"
        write_project(project, args.channel, settings, args.target)
        run_sql = _runner(args.target, project)
        started = time.perf_counter()
        messages = _build(args, project, run_sql)
        build_time = time.perf_counter() - started
        try:
            runs = [_send(args, project, run_sql, server) for _ in range(1 if args.profile else args.runs)]
        finally:
            if args.target == "postgres":
                run_sql([f"drop schema {RAW} cascade", f"drop schema {BUILT} cascade"])
        if args.profile:
            print(f"profile of the send written to {args.profile}")
            return
        _print(args, messages, build_time, runs)
        if args.channel == "email" and args.provider == "outbox":
            print(
                f"the same disk alone: {_disk_rate(Path(tmp)):,.0f} files/s (each email's file, as the outbox writes it)"
            )


def _print(args, messages: int, build_time: float, runs: list[dict]) -> None:
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    spread = ", ".join(f"{run['rate']:,.0f}" for run in runs)
    jvm = f"; its JVM {median['jvm_mb']:.0f} MB" if args.target == "spark" else ""
    print(
        f"{messages:,} {args.channel} messages to {args.provider} on {args.target}"
        f"{f' ({args.connections} connections)' if args.provider == 'smtp' else ''}, median of {len(runs)} "
        f"sends: {median['rate']:,.0f} messages/s delivering ({spread}); send command {median['elapsed']:.1f} s "
        f"(CPU {median['cpu']:.1f} s), "
        f"of which delivering {median['delivering']:.1f} s; peak memory of the send process "
        f"{median['peak_mb']:.0f} MB{jvm} (build {build_time:.1f} s)"
    )


def _disk_rate(folder: Path, files: int = 5000) -> float:
    """Files of an email's size written as the outbox writes them (each atomically, a sync every
    1,000), nothing else: the ceiling the disk sets to emails to the outbox on this machine."""
    from campaign_compiler.send.providers.outbox import write_files

    folder = folder / "disk"
    folder.mkdir()
    content = b"x" * 700
    started = time.perf_counter()
    for start in range(0, files, 1000):
        write_files(folder, [(f"{index:032x}.eml", content) for index in range(start, min(start + 1000, files))])
        os.sync()
    return files / (time.perf_counter() - started)


def _build(args, project: Path, run_sql) -> int:
    """The raw table and the campaign's build; the number of messages."""
    run_sql([f"drop schema if exists {RAW} cascade", f"drop schema if exists {BUILT} cascade", f"create schema {RAW}"])
    numbers = {
        "duckdb": f"from range({args.messages}) as r(i)",
        "postgres": f"from generate_series(0, {args.messages - 1}) as i",
        "spark": f"from range({args.messages})",
    }[args.target]
    i, text = ("id", "string") if args.target == "spark" else ("i", "varchar")
    using = " using parquet" if args.target == "spark" else ""
    run_sql([f"create table {RAW}.people{using} as {PEOPLE.format(i=i, text=text)} {numbers}"])
    cli = [sys.executable, "-m", "campaign_compiler", "--project-dir", str(project)]
    built = subprocess.run([*cli, "count", "bench", "--json"], capture_output=True, text=True)
    if built.returncode:
        sys.exit(built.stderr)
    return json.loads(built.stdout)["counts"]["message"]


def _send(args, project: Path, run_sql, server) -> dict:
    """One send on an empty log and outbox: its figures."""
    schema = "main" if args.target == "duckdb" else BUILT
    run_sql([f"truncate table {schema}.{table}" for table in ("campaign_deliveries", "campaign_runs")])
    # the last run's outbox is moved aside, not deleted: on an ext4 without journal (this machine's),
    # a file created in the minutes after many deletions costs several times more (the allocator skips
    # each recently freed inode), which a user's send does not pay
    outbox = project / "target" / "outbox"
    if outbox.exists():
        outbox.rename(outbox.with_name(f"outbox-{time.time_ns()}"))
    if server:
        server.inbox.messages.clear()
    elapsed, cpu, peak, jvm_kb = measured_send(project, "bench", args.profile)
    seconds = (
        "(unix_micros(cast(max(finished_at) as timestamp)) - unix_micros(cast(max(started_at) as timestamp))) / 1e6"
        if args.target == "spark"
        else "extract(epoch from max(finished_at) - max(started_at))"
    )
    ((delivering, sent_count),) = run_sql(
        [
            f"select {seconds}, (select count(*) from {schema}.campaign_deliveries where status = 'sent') "
            f"from {schema}.campaign_runs"
        ]
    )
    if server and len(server.inbox.messages) != sent_count:
        sys.exit(f"the server received {len(server.inbox.messages):,} messages, the log says {sent_count:,} sent")
    delivering = float(delivering)
    return dict(
        rate=sent_count / delivering,
        elapsed=elapsed,
        cpu=cpu,
        delivering=delivering,
        peak_mb=peak,
        jvm_mb=jvm_kb / 1024,
    )


def measured_send(project: Path, campaign: str, profile: Path | None = None) -> tuple[float, float, float, int]:
    """`campaign send <campaign> --yes` in a process of its own, as a user runs it: its wall and CPU
    seconds (user + system), its peak resident memory in MB (ru_maxrss, which it reports as it exits)
    and the peak of its children's in kB (Spark's JVM). With `profile`, a cProfile of it written there."""
    send = f"main(['--project-dir', {str(project)!r}, 'send', {campaign!r}, '--yes'])"
    if profile:
        send = f"import cProfile\ncProfile.run({send!r}, {str(profile)!r})"
    measured = (  # the send, in a process of its own that reports its peak memory when it exits
        "import atexit, resource, sys\n"
        "atexit.register(lambda: print('peak_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " file=sys.stderr))\n"
        f"from campaign_compiler.cli import main\n{send}\n"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", measured], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    jvm = _ChildrenPeak(child.pid)
    _, stderr = child.communicate()
    elapsed = time.perf_counter() - started
    jvm.stop()
    if child.returncode:
        sys.exit(stderr)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu, int(stderr.split("peak_kb")[-1].split()[0]) / 1024, jvm.peak_kb


class _ChildrenPeak:
    """The highest peak resident memory (VmHWM) of the children of process `pid` (Spark's JVM), read
    from /proc every 0.2 s while it runs."""

    def __init__(self, pid: int):
        self.pid, self.peak_kb, self._done = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(0.2):
            try:
                children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            except OSError:
                return
            for child in children:
                try:
                    status = Path(f"/proc/{child}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


class _smtp_server:
    """With --provider smtp, an aiosmtpd server on loopback and the channel's settings for it."""

    def __init__(self, args):
        self.args, self.server = args, None

    def __enter__(self):
        if self.args.provider != "smtp":
            return None, {"provider": "outbox"}
        sys.path.insert(0, str(REPO / "tests"))
        from servers import SmtpServer

        self.server = SmtpServer().start()
        settings = {
            "provider": "smtp",
            "host": "127.0.0.1",
            "port": self.server.port,
            "from": "bench@example.com",
            "connections": self.args.connections,
        }
        return self.server, settings

    def __exit__(self, *exc) -> None:
        if self.server:
            self.server.stop()


def _runner(target: str, project: Path):
    """A function running SQL statements on the benchmark's warehouse (the last one's rows, or None).
    Spark's, in a process of its own: its local metastore admits one process at a time."""

    def run(statements: list[str]):
        if target == "spark":
            return _spark_sql(project, statements)
        if target == "duckdb":
            import duckdb

            (project / "target").mkdir(exist_ok=True)
            with duckdb.connect(str(project / "target" / "bench.duckdb")) as connection:
                for sql in statements:
                    result = connection.execute(sql)
                return result.fetchall() if result.description else None
        import psycopg2

        connection = psycopg2.connect(**PG)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql)
                return cursor.fetchall() if cursor.description else None
        finally:
            connection.close()

    return run


def _spark_sql(project: Path, statements: list[str]):
    script = (
        "import json, sys\nfrom pathlib import Path\nfrom campaign_compiler.engines import spark\n"
        "class Credentials:\n    method = 'session'\n"
        f"    server_side_parameters = {spark_parameters(project)!r}\n"
        f"session = spark.session(Credentials(), Path({str(project)!r}))\n"
        f"for sql in {statements!r}:\n    rows = session.sql(sql).collect()\n"
        "print(json.dumps([list(row) for row in rows], default=str))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=project)
    if done.returncode:
        sys.exit(done.stderr)
    return [tuple(row) for row in json.loads(done.stdout.splitlines()[-1])] or None


if __name__ == "__main__":
    main()
