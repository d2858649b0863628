"""Throwaway dbt projects, the real `campaign` CLI, and real warehouses (DuckDB, PostgreSQL).

PostgreSQL tests use their own schemas (dropped at the end of the session). Without a reachable
server they are skipped, except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
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
# doctests import every module they find: full_disk.py is a script the send tests run, not one to import
collect_ignore = ["full_disk.py"]

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
"""


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if ": error: " in line]


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> CliResult:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "NO_COLOR": "1", **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "campaign_compiler", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


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
        self.write("profiles.yml", PROFILES.format(schema=self.schema, **PG))

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


def demo_copy(root: Path) -> Project:
    """A copy of the demo project (dbt_project/), without what its runs leave, using this package."""
    shutil.copytree(
        REPO / "dbt_project",
        root,
        ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "models", "*.duckdb*"),
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


def warehouse_params():
    """Parametrize a test over both warehouses, with their markers."""
    return [pytest.param("duckdb", marks=pytest.mark.duckdb), pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=warehouse_params())
def target(request):
    """The warehouse of the test, which runs once on each."""
    if request.param == "postgres":
        request.getfixturevalue("postgres")
    return request.param


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on loopback for the test."""
    from servers import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()
