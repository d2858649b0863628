"""Throwaway dbt projects, the real `campaign` CLI, and real warehouses (DuckDB, PostgreSQL, Spark).

PostgreSQL tests use their own schemas (dropped at the end of the session). Without a reachable
server they are skipped, except in CI (CI=true), where that is a failure. The same holds for
Spark (pyspark and Java): its tests share one Spark session, in this process, whose metastore and
tables live in a temporary directory; the CLI runs in this process for them (a process of its own
would start a second Spark, which the local metastore does not admit).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PG = dict(
    host=os.environ.get("PGHOST", "127.0.0.1"),
    port=int(os.environ.get("PGPORT", "5432")),
    user=os.environ.get("PGUSER", "postgres"),
    password=os.environ.get("PGPASSWORD", ""),
    dbname=os.environ.get("PGDATABASE", "postgres"),
)
SCHEMA_PREFIX = f"campaign_test_{uuid.uuid4().hex[:8]}"
# the test session's Spark warehouse and metastore, shared by its projects (each has its schema)
SPARK_DIR = Path(tempfile.gettempdir()) / f"campaign_spark_{SCHEMA_PREFIX.rsplit('_', 1)[1]}"
# doctests import every module they find: full_disk.py is a script the send tests run, not one to import
collect_ignore = ["full_disk.py"]

# A text column of a seed, in dbt_project.yml: Spark has no type `text`
TEXT = "\"{{ 'string' if target.type == 'spark' else 'text' }}\""

DBT_PROJECT = """\
name: test_project
version: "1.0"
config-version: 2
profile: test_project
seeds:
  test_project:
    +quote_columns: false
"""

PROFILES = """\
test_project:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: target/warehouse.duckdb
      threads: 4
    postgres:
      type: postgres
      host: "{host}"
      port: {port}
      user: "{user}"
      password: "{password}"
      dbname: "{dbname}"
      schema: "{schema}"
      threads: 4
    spark:
      type: spark
      method: session
      host: NA
      schema: "{schema}"
      threads: 1
      server_side_parameters:
{spark_parameters}
"""


def spark_parameters(directory: Path) -> dict[str, str]:
    """A local Spark whose warehouse and metastore are in `directory`."""
    return {
        "spark.master": "local[2]",
        "spark.sql.warehouse.dir": str(directory / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={directory}/metastore;create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={directory}",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
    }


def _spark_profile(directory: Path) -> str:
    return "\n".join(f'        {key}: "{value}"' for key, value in spark_parameters(directory).items())


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if ": error: " in line]


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> CliResult:
    """The CLI in a process of its own; on Spark, in this one (see the module's docstring)."""
    if "spark" in args and list(args)[list(args).index("spark") - 1] == "--target":
        return run_cli_here(*args, cwd=cwd, env=env)
    env = {
        **os.environ,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "NO_COLOR": "1",
        "CAMPAIGN_WARM": "0",
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "campaign_compiler", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def run_cli_here(*args: str, cwd: Path, env: dict | None = None) -> CliResult:
    """The CLI in this process, its working directory, environment and output its own for the call."""
    from campaign_compiler.cli import main

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update({"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "NO_COLOR": "1", **(env or {})})
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main(list(args))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return CliResult(code, stdout.getvalue(), stderr.getvalue())


class Project:
    """A dbt project in a temporary directory that uses this repository's package."""

    counter = 0

    def __init__(self, root: Path):
        Project.counter += 1
        self.root = root
        self.schema = f"{SCHEMA_PREFIX}_{Project.counter}"
        root.mkdir(parents=True, exist_ok=True)
        self.write("dbt_project.yml", DBT_PROJECT)
        self.write("packages.yml", f"packages:\n  - local: {REPO}\n")
        self.write(
            "profiles.yml", PROFILES.format(schema=self.schema, spark_parameters=_spark_profile(SPARK_DIR), **PG)
        )

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def run(self, *args: str, env: dict | None = None) -> CliResult:
        return run_cli(*args, cwd=self.root, env=env)

    def count(self, campaign: str, target: str = "duckdb") -> dict:
        result = self.run("count", campaign, "--json", "--target", target)
        assert result.code == 0, result.stderr
        return json.loads(result.stdout)

    def query(self, target: str, sql: str) -> list[tuple]:
        """Plain SQL against the project's warehouse: the independent oracle of the tests."""
        if target == "spark":
            return [tuple(row) for row in spark_session(self.schema).sql(sql).collect()]
        if target == "duckdb":
            import duckdb

            with duckdb.connect(str(self.root / "target" / "warehouse.duckdb")) as connection:
                return connection.execute(sql).fetchall()
        import psycopg2

        connection = psycopg2.connect(**PG)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'set search_path to "{self.schema}"')
                cursor.execute(sql)
                return cursor.fetchall()
        finally:
            connection.close()

    def query_write(self, target: str, sql: str) -> None:
        if target in ("duckdb", "spark"):
            self.query(target, sql)
            return
        if target == "duckdb":
            import duckdb

            with duckdb.connect(str(self.root / "target" / "warehouse.duckdb")) as connection:
                connection.execute(sql)
            return
        import psycopg2

        connection = psycopg2.connect(**PG)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()

    def scalar(self, target: str, sql: str):
        return self.query(target, sql)[0][0]

    def schema_of(self, target: str) -> str:
        return "main" if target == "duckdb" else self.schema


def spark_session(schema: str | None = None):
    """The test session's Spark (started by the first CLI call on Spark, or here), `schema` current."""
    from campaign_compiler.engines import spark

    if spark._SESSION is None:
        from dataclasses import dataclass as _dataclass

        @_dataclass
        class Credentials:
            server_side_parameters: dict
            method: str = "session"

        spark.session(Credentials(spark_parameters(SPARK_DIR)), SPARK_DIR)
    session = spark._SESSION
    if schema:
        session.sql(f"create database if not exists `{schema}`")
        session.catalog.setCurrentDatabase(schema)
    return session


def demo_copy(root: Path) -> Project:
    """A copy of the demo project (dbt_project/), without what its runs leave, using this package."""
    shutil.copytree(
        REPO / "dbt_project",
        root,
        ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "models", "*.duckdb*", "spark"),
    )
    project = Project.__new__(Project)
    project.root, project.schema = root, ""
    project.write("packages.yml", f"packages:\n  - local: {REPO}\n")
    return project


def postgres_available() -> bool:
    try:
        import psycopg2

        psycopg2.connect(connect_timeout=3, **PG).close()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres():
    """Marks a test as needing PostgreSQL; drops the session's schemas afterwards."""
    if not postgres_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {PG['host']}:{PG['port']}; CI must run these tests")
        pytest.skip("PostgreSQL is not reachable")
    yield
    import psycopg2

    connection = psycopg2.connect(**PG)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("select nspname from pg_namespace where nspname like %s", (SCHEMA_PREFIX + "%",))
        for (schema,) in cursor.fetchall():
            cursor.execute(f'drop schema "{schema}" cascade')
    connection.close()


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path / "project")


def spark_available() -> str | None:
    """Why Spark cannot run here (None when it can)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return 'pyspark is not installed (pip install -e ".[spark]")'
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Java is not installed (Debian: openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="session")
def spark():
    """Marks a test as needing Spark; removes the session's warehouse afterwards."""
    missing = spark_available()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Spark cannot run: {missing}; CI must run these tests")
        pytest.skip(f"Spark cannot run: {missing}")
    yield
    shutil.rmtree(SPARK_DIR, ignore_errors=True)


def warehouse_params(spark: bool = False):
    """Parametrize a test over the warehouses (Spark too when `spark`), with their markers."""
    params = [pytest.param("duckdb", marks=pytest.mark.duckdb), pytest.param("postgres", marks=pytest.mark.postgres)]
    return params + ([pytest.param("spark", marks=[pytest.mark.spark, pytest.mark.slow])] if spark else [])


def require(request, target: str) -> str:
    """`target`, once its warehouse is known to be reachable (the postgres or spark fixture)."""
    if target in ("postgres", "spark"):
        request.getfixturevalue(target)
    return target


@pytest.fixture(params=warehouse_params())
def target(request):
    """The warehouse of the test, which runs once on each."""
    return require(request, request.param)


@pytest.fixture(params=warehouse_params(spark=True))
def any_target(request):
    """The warehouse of the test, which runs once on each, Spark included."""
    return require(request, request.param)


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on loopback for the test."""
    from servers import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()
