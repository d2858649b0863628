"""Compiled segments against the SQL an analytics engineer would write by hand.

    python bench/bench_segments.py [--profiles 1000000] [--target duckdb|postgres|spark] [--runs 3]

Generates the hotel data (bench/generate_data.py), loads it as raw tables (dbt sources), builds a
campaign of representative segments with `campaign count`, then times, with the same driver, a
`create table ... as` of each model's compiled SQL (target/compiled) and of the SQL an engineer
would write for the same segment (best of --runs each). Both must give the same rows; the ratio
says how much slower (> 1) or faster the compiled query is. dbt's own time per model (which adds
its transaction and renaming overhead) is printed too.

On Spark (local mode, `pip install -e ".[spark]"`), the raw tables are parquet tables loaded from
the CSV files, and `campaign count` runs in this process, which shares its Spark session (a local
metastore admits one process).
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
RAW = "bench_raw"
BUILT = "bench_built"

TABLES = {
    "profiles": "profile_id bigint, first_name text, last_name text, email text, phone text, push_token text, "
    "email_opt_in boolean, sms_opt_in boolean, country text, city text, street text, "
    "postal_code text, loyalty_tier text, birth_date date, created_at timestamp",
    "bookings": "booking_id bigint, profile_id bigint, hotel_id bigint, status text, amount decimal(12,2), "
    "nights integer, booked_at timestamp, checkin_date date, booking_channel text",
    "hotels": "hotel_id bigint, name text, brand text, city text, country text, stars integer",
}

DATA_MODEL = """\
version: 1
sql_dialect: postgres
entities:
  profiles:
    source: raw.profiles
    key: profile_id
    columns: {profile_id: integer, first_name: text, email: text, country: text, loyalty_tier: text,
              email_opt_in: boolean, created_at: timestamp}
    links:
      bookings: {entity: bookings, on: {profile_id: profile_id}}
  bookings:
    source: raw.bookings
    key: booking_id
    columns: {booking_id: integer, profile_id: integer, hotel_id: integer, status: text, amount: number,
              booked_at: timestamp, checkin_date: date}
    links:
      hotel: {entity: hotels, on: {hotel_id: hotel_id}}
  hotels:
    source: raw.hotels
    key: hotel_id
    columns: {hotel_id: integer, city: text, country: text}
"""

CAMPAIGN = """\
campaign: bench
activities:
  fr_gold:
    type: build_audience
    where: "country = 'FR' and loyalty_tier in ('gold', 'platinum')"
  big_spenders:
    type: build_audience
    where: {link: bookings, where: "status in ('confirmed', 'completed')", having: "sum(amount) > 1500"}
  never_booked:
    type: build_audience
    where: {link: bookings, having: "count(*) = 0"}
  paris_guests:
    type: build_audience
    where: {link: bookings, where: {link: hotel, where: "city = 'Paris'"}}
  everyone: {type: build_audience}
  history:
    type: enrichment
    input: everyone
    add:
      stays: {link: bookings, where: "status = 'completed'", aggregate: "count(*)"}
      spent: {link: bookings, where: "status in ('confirmed', 'completed')", aggregate: "sum(amount)"}
      last_checkin: {link: bookings, order_by: "checkin_date desc nulls last", column: checkin_date}
  one_per_email:
    type: deduplication
    input: history
    keys: [email]
    keep: {order_by: "spent desc nulls last"}
  top:
    type: split
    input: one_per_email
    subsets: [{name: vip, limit: {count: 1000, order_by: "spent desc nulls last"}}]
"""

# The same segments as an engineer writes them: (model, SQL of the rows). {s} is the raw schema.
HAND_WRITTEN = {
    "bench__fr_gold": "select profile_id from {s}.profiles where country = 'FR' and loyalty_tier in ('gold', 'platinum')",
    "bench__big_spenders": """select profile_id from {s}.bookings where status in ('confirmed', 'completed')
        and profile_id in (select profile_id from {s}.profiles)
        group by profile_id having sum(amount) > 1500""",
    "bench__never_booked": """select p.profile_id from {s}.profiles p
        where not exists (select 1 from {s}.bookings b where b.profile_id = p.profile_id)""",
    "bench__paris_guests": """select distinct b.profile_id from {s}.bookings b join {s}.hotels h on h.hotel_id = b.hotel_id
        join {s}.profiles p on p.profile_id = b.profile_id where h.city = 'Paris'""",
    "bench__history": """select p.profile_id, coalesce(a.stays, 0) as stays, a.spent, l.checkin_date as last_checkin
        from {s}.profiles p
        left join (select profile_id, count(case when status = 'completed' then 1 end) as stays,
                          sum(case when status in ('confirmed', 'completed') then amount end) as spent
                   from {s}.bookings group by profile_id) a on a.profile_id = p.profile_id
        left join (select profile_id, checkin_date, row_number() over (partition by profile_id
                   order by checkin_date desc nulls last, booking_id) as n from {s}.bookings) l
               on l.profile_id = p.profile_id and l.n = 1""",
}


def spark_parameters(folder: Path) -> dict[str, str]:
    """Spark in local mode on every core, its warehouse and metastore in `folder`."""
    return {
        "spark.master": "local[*]",
        "spark.driver.memory": "6g",
        "spark.sql.warehouse.dir": str(folder / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={folder}/metastore;create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={folder}",
        "spark.sql.shuffle.partitions": "8",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
    }


class SparkDatabase:
    """The benchmark's tables in the Spark session `campaign` uses in this process."""

    target = "spark"

    def __init__(self, folder: Path):
        from campaign_compiler.engines import spark

        class Credentials:
            method = "session"
            server_side_parameters = spark_parameters(folder)

        self.session = spark.session(Credentials(), folder)

    def run(self, sql: str):
        return [tuple(row) for row in self.session.sql(sql).collect()]

    def load(self, folder: Path) -> None:
        self.run(f"drop database if exists {RAW} cascade")
        self.run(f"create database {RAW}")
        for table, columns in TABLES.items():
            schema = columns.replace(" text", " string")
            frame = self.session.read.csv(str(folder / f"{table}.csv"), header=True, schema=schema)
            frame.write.format("parquet").saveAsTable(f"{RAW}.{table}")

    def time_create(self, table: str, sql: str) -> float:
        self.run(f"drop table if exists {BUILT}.{table}")
        started = time.perf_counter()
        self.run(f"create table {BUILT}.{table} using parquet as {sql}")
        return time.perf_counter() - started

    def close(self) -> None:
        pass  # the session is the process's, shared with campaign


def count_here(project: Path) -> subprocess.CompletedProcess:
    """`campaign count bench --json` in this process (on Spark, whose session it shares)."""
    import contextlib
    import io

    from campaign_compiler.cli import main as campaign

    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            campaign(["--project-dir", str(project), "count", "bench", "--json"])
        except SystemExit as exit_:
            code = exit_.code or 0
    return subprocess.CompletedProcess([], code, out.getvalue(), err.getvalue())


class Database:
    def __init__(self, target: str, path: Path):
        self.target = target
        if target == "duckdb":
            import duckdb

            self.connection = duckdb.connect(str(path))
        else:
            import psycopg2

            self.connection = psycopg2.connect(**PG)
            self.connection.autocommit = True

    def run(self, sql: str):
        cursor = self.connection.cursor()
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else None

    def load(self, folder: Path) -> None:
        self.run(f"drop schema if exists {RAW} cascade")
        self.run(f"create schema {RAW}")
        for table, columns in TABLES.items():
            self.run(f"create table {RAW}.{table} ({columns})")
            path = folder / f"{table}.csv"
            if self.target == "duckdb":
                self.run(f"copy {RAW}.{table} from '{path}' (header true)")
            else:
                with path.open() as handle:
                    self.connection.cursor().copy_expert(
                        f"copy {RAW}.{table} from stdin with (format csv, header true)", handle
                    )
        if self.target == "postgres":
            self.run("analyze")

    def time_create(self, table: str, sql: str) -> float:
        self.run(f"drop table if exists {BUILT}.{table}")
        started = time.perf_counter()
        self.run(f"create table {BUILT}.{table} as {sql}")
        return time.perf_counter() - started

    def close(self) -> None:
        self.connection.close()


def profiles_yml(name: str, target: str, database_path: Path, schema: str, threads: int = 1) -> str:
    """A profiles.yml of one output, `target`, building into `schema` with `threads` threads."""
    if target == "duckdb":
        output = f"type: duckdb\n      path: {database_path}\n      schema: {schema}\n      threads: {threads}"
    elif target == "spark":
        parameters = "".join(
            f'\n        {key}: "{value}"' for key, value in spark_parameters(database_path.parent).items()
        )
        output = (
            f"type: spark\n      method: session\n      host: NA\n      schema: {schema}\n      threads: {threads}"
            f"\n      server_side_parameters:{parameters}"
        )
    else:
        output = (
            f"type: postgres\n      host: {PG['host']}\n      port: {PG['port']}\n      user: {PG['user']}\n"
            f"      password: '{PG['password']}'\n      dbname: {PG['dbname']}\n      schema: {schema}\n      threads: {threads}"
        )
    return f"{name}:\n  target: {target}\n  outputs:\n    {target}:\n      {output}\n"


def dbt_project(root: Path, name: str, raw: str, tables: list[str], profiles: str, data_model: str) -> None:
    """A new dbt project `name` in `root` using this repository's package, `tables` of schema `raw`
    as the sources `raw.<table>`, with its profiles.yml and campaign_project.yml."""
    root.mkdir(parents=True)
    (root / "dbt_project.yml").write_text(f"name: {name}\nversion: '1.0'\nconfig-version: 2\nprofile: {name}\n")
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    (root / "models").mkdir()
    listed = ", ".join(f"{{name: {table}}}" for table in tables)
    (root / "models" / "sources.yml").write_text(
        f"version: 2\nsources:\n  - name: raw\n    schema: {raw}\n    tables: [{listed}]\n"
    )
    (root / "profiles.yml").write_text(profiles)
    (root / "campaign_project.yml").write_text(data_model)


def write_project(root: Path, target: str, database_path: Path) -> None:
    profiles = profiles_yml("bench", target, database_path, BUILT)
    dbt_project(root, "bench", RAW, ["profiles", "bookings", "hotels"], profiles, DATA_MODEL)
    (root / "campaigns").mkdir()
    (root / "campaigns" / "bench.yml").write_text(CAMPAIGN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--target", choices=("duckdb", "postgres", "spark"), default="duckdb")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(
            [
                sys.executable,
                str(REPO / "bench" / "generate_data.py"),
                "--profiles",
                str(args.profiles),
                "--out",
                str(tmp / "data"),
            ],
            check=True,
            capture_output=True,
        )
        database_path = tmp / "bench.duckdb"
        database = SparkDatabase(tmp) if args.target == "spark" else Database(args.target, database_path)
        database.load(tmp / "data")
        database.close()

        project = tmp / "project"
        write_project(project, args.target, database_path)
        in_dbt: dict[str, float] = {}
        for _ in range(args.runs):
            command = [
                sys.executable,
                "-m",
                "campaign_compiler",
                "--project-dir",
                str(project),
                "count",
                "bench",
                "--json",
            ]
            spark = args.target == "spark"
            done = count_here(project) if spark else subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                sys.exit(done.stderr)
            for result in json.loads((project / "target" / "run_results.json").read_text())["results"]:
                name = result["unique_id"].split(".")[-1]
                if result["unique_id"].startswith("model."):
                    in_dbt[name] = min(in_dbt.get(name, float("inf")), result["execution_time"])
        counts = json.loads(done.stdout)["counts"]

        database = SparkDatabase(tmp) if args.target == "spark" else Database(args.target, database_path)
        print(f"{args.profiles:,} profiles on {args.target}; best of {args.runs}; seconds")
        print(f"{'model':24} {'rows':>10} {'compiled':>9} {'by hand':>8} {'ratio':>6} {'in dbt':>7}")
        compiled_dir = project / "target" / "compiled" / "bench" / "models" / "campaigns" / "bench"
        for model, sql in HAND_WRITTEN.items():
            compiled_sql = (compiled_dir / f"{model}.sql").read_text()
            compiled = min(database.time_create(f"compiled_{model}", compiled_sql) for _ in range(args.runs))
            hand = min(database.time_create(f"hand_{model}", sql.format(s=RAW)) for _ in range(args.runs))
            rows = database.run(f"select count(*) from {BUILT}.hand_{model}")[0][0]
            built = counts[model.split("__", 1)[1]]
            check = "" if rows == built else f"  ROWS DIFFER: by hand {rows:,}"
            print(
                f"{model:24} {built:>10,} {compiled:>9.3f} {hand:>8.3f} {compiled / hand:>6.2f} "
                f"{in_dbt[model]:>7.3f}{check}"
            )
        others = {m: t for m, t in in_dbt.items() if m not in HAND_WRITTEN}
        print("other models in dbt (no hand-written twin): " + ", ".join(f"{m} {t:.2f}" for m, t in others.items()))
        if args.target == "postgres":
            database.run(f"drop schema if exists {RAW} cascade")
            database.run(f"drop schema if exists {BUILT} cascade")
        database.close()


if __name__ == "__main__":
    main()
