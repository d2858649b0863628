"""Apache Spark, through dbt-spark's `session` method: Spark in local mode inside this process.

The session is the one dbt builds with (`SparkSession.builder.getOrCreate()` returns it to both),
started in the project directory with the profile's `server_side_parameters`, so that relative
paths (the warehouse directory, the metastore) mean the same as in a plain `dbt build`.

Spark's tables (parquet files, described in a Hive metastore) take appends and whole rewrites, not
row updates, deletes or transactions: the tables campaigns share are written as journals here
(`appends_only`), each row a new fact, the latest one the state.

A local metastore (Derby, embedded) admits one process at a time: the first process to start a
session holds it until it ends. `campaign` takes a file lock beside it first, so that a second
process is told who holds the warehouse instead of failing inside Spark.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RuntimeFailure, display_path
from .base import Engine, first_line
from .files import FileLock

if TYPE_CHECKING:
    from .warehouse import Warehouse

# Spark's own chatter (log4j's banner, the errors it logs before raising them to us) stays out of the
# terminal: what goes wrong reaches the user as our one-line failure.
_LOG4J = Path(__file__).with_name("spark-log4j2.properties")
_WAREHOUSE_DIR = "spark.sql.warehouse.dir"
_METASTORE_URL = "spark.hadoop.javax.jdo.option.ConnectionURL"


class Spark(Engine):
    name = "spark"
    # Java's regular expressions, which Spark's rlike uses
    control_characters = r"\x00-\x1f\x7f-\x9f\x{2028}\x{2029}"
    appends_only = True
    quote_character = "`"
    text_type = "string"
    unnest = "explode"

    def __init__(self, session):
        self.session = session

    @classmethod
    def connect(cls, credentials, root: Path) -> Spark:
        return cls(session(credentials, root))

    @classmethod
    def campaign_lock(cls, credentials, root: Path, campaign: str, connect: Callable[[], Warehouse]) -> FileLock:
        # one process at a time uses a local metastore; the lock tells campaigns of that process apart
        directory = _state_dir(credentials, root)
        directory.mkdir(parents=True, exist_ok=True)
        return FileLock(directory / f"campaign-{campaign}.lock")

    @classmethod
    def before_dbt(cls, credentials, root: Path) -> None:
        session(credentials, root)
        _write_seed_values_as_literals()

    def prepare(self, sql: str) -> str:
        return sql.replace("%s", "?")

    def cursor(self) -> _Cursor:
        return _Cursor(self.session)

    def done(self, cursor) -> None:
        pass

    def insert_rows(self, cursor, head: str, columns: tuple[str, ...], rows: list[tuple], suffix: str) -> None:
        row = f"({', '.join(['?'] * len(columns))})"
        cursor.execute(f"{head} values {', '.join([row] * len(rows))} {suffix}", [v for r in rows for v in r])

    def stream(self, warehouse: Warehouse, relation: str, columns: list[str], page: int) -> Iterator[list[dict]]:
        # a partition at a time reaches this process: memory follows the page, not the table
        select = ", ".join(f"`{c}`" for c in columns)
        batch: list[dict] = []
        try:
            for row in self.session.sql(f"select {select} from {relation}").toLocalIterator(prefetchPartitions=False):
                batch.append(dict(zip(columns, row)))
                if len(batch) >= page:
                    yield batch
                    batch = []
        except Exception as exc:
            raise RuntimeFailure(f"reading {relation} failed: {first_line(exc)}") from None
        if batch:
            yield batch

    def table_exists(self, warehouse: Warehouse, name: str, schema: str | None = None) -> bool:
        return bool(self.session.catalog.tableExists(self._qualified(schema or warehouse.schema, name)))

    def columns(self, warehouse: Warehouse, name: str) -> list[str]:
        if not self.table_exists(warehouse, name):
            return []
        return [
            column.name.lower() for column in self.session.catalog.listColumns(self._qualified(warehouse.schema, name))
        ]

    @staticmethod
    def _qualified(schema: str, name: str) -> str:
        return ".".join(f"`{part.replace('`', '``')}`" for part in (schema, name))

    def close(self) -> None:
        pass  # the session lives as long as the process: dbt and later connections share it


class _Cursor:
    """A DB-API-like cursor over the session: `?` parameters are bound by Spark itself."""

    def __init__(self, session):
        self.session = session
        self._rows: list[tuple] = []

    def execute(self, sql: str, params=()) -> None:
        frame = self.session.sql(sql, args=list(params) if params else None)
        self._rows = [tuple(row) for row in frame.collect()]

    def fetchall(self) -> list[tuple]:
        return self._rows


_SESSION: Any = None


def _write_seed_values_as_literals() -> None:
    """dbt-spark's session method writes a seed's values into its insert statement in quotes, as they
    are: a quote in a value breaks the statement, a backslash is read as an escape and a missing value
    becomes the text 'None'. They are written as Spark SQL literals instead."""
    from dbt.adapters.spark.session import SessionConnectionWrapper

    SessionConnectionWrapper._fix_binding = classmethod(lambda cls, value: _literal(value))


def _literal(value: Any) -> str:
    """A seed's value (None, a bool, a number, a datetime, text) as a Spark SQL literal.

    >>> [_literal(v) for v in (None, True, Decimal("12.50"), 3, "d'A\\\\b")]
    ['NULL', 'true', '12.50', '3', "'d\\\\'A\\\\\\\\b'"]
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat(sep=' ')}'"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def session(credentials, root: Path):
    """This process's Spark session, started (once) in `root` with the profile's parameters.

    Only the `session` method runs Spark in this process; the others reach a cluster that
    campaign commands do not connect to (yet): that is said plainly, before dbt runs.

    >>> from types import SimpleNamespace
    >>> session(SimpleNamespace(method="thrift"), Path("."))
    Traceback (most recent call last):
    ...
    campaign_compiler.errors.RuntimeFailure: spark method "thrift": campaign commands run Spark inside their own process, with method: session (on a cluster, run them on its driver); dbt alone builds with "thrift"
    """
    global _SESSION
    method = str(getattr(credentials, "method", "session"))  # dbt-spark's methods are text enums
    if method != "session":
        raise RuntimeFailure(
            f'spark method "{method}": campaign commands run Spark inside their own process, with method: '
            f'session (on a cluster, run them on its driver); dbt alone builds with "{method}"'
        )
    if _SESSION is not None:
        return _SESSION
    from pyspark.sql import SparkSession

    parameters = dict(getattr(credentials, "server_side_parameters", None) or {})
    lock = _state_dir(credentials, root)
    _hold_metastore(lock)
    _wait_for_derby(_metastore(credentials, root) / "dbex.lck", DERBY_RELEASE_SECONDS)
    options = parameters.get("spark.driver.extraJavaOptions", "")
    parameters["spark.driver.extraJavaOptions"] = f"{options} -Dlog4j2.configurationFile={_LOG4J.as_uri()}".strip()
    parameters.setdefault("spark.ui.enabled", "false")
    parameters.setdefault("spark.ui.showConsoleProgress", "false")
    # timestamps as on the other warehouses: naive, in UTC
    parameters.setdefault("spark.sql.session.timeZone", "UTC")
    parameters.setdefault("spark.sql.timestampType", "TIMESTAMP_NTZ")
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in parameters.items():
        builder = builder.config(key, value)
    with _working_directory(root), _stderr_to(lock / "spark.log"):
        _SESSION = builder.getOrCreate()
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):  # pyspark logs each error it raises
        logging.getLogger(name).disabled = True
    return _SESSION


def _metastore(credentials, root: Path) -> Path:
    """The directory of the session's metastore (an embedded Derby database)."""
    parameters = dict(getattr(credentials, "server_side_parameters", None) or {})
    url = parameters.get(_METASTORE_URL, "")
    match = re.search(r"databaseName=([^;]+)", url)
    metastore = Path(match.group(1)) if match else Path("metastore_db")
    return metastore if metastore.is_absolute() else root / metastore


def _state_dir(credentials, root: Path) -> Path:
    """Where the locks sit: beside the metastore."""
    return _metastore(credentials, root).parent


def _wait_for_derby(lock: Path, seconds: float) -> None:
    """Wait until no process holds Derby's lock of the metastore. A killed `campaign`'s JVM, a process
    of its own, holds it a moment longer (about half a second, until it notices it is orphaned): a
    tick right after a crash waits for it rather than failing inside Spark."""
    if not lock.exists():
        return
    deadline = time.monotonic() + seconds
    with open(lock, "a") as handle:  # Derby locks it as Java does, with fcntl: so can we, to test it
        while True:
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                if time.monotonic() >= deadline:
                    raise RuntimeFailure(
                        f"the Spark metastore in {display_path(lock.parent)} is still held by another process "
                        f"after {seconds:.0f} s (a Spark that outlived its campaign process?)"
                    ) from None
                time.sleep(0.1)
                continue
            fcntl.lockf(handle, fcntl.LOCK_UN)
            return


_HELD: FileLock | None = None
DERBY_RELEASE_SECONDS = 30.0


def _hold_metastore(directory: Path) -> None:
    """Take the local metastore for this process, or say which process has it."""
    global _HELD
    directory.mkdir(parents=True, exist_ok=True)
    lock = FileLock(directory / "spark-session.lock")
    if not lock.acquire():
        holder = lock.holder() or "another process"
        raise RuntimeFailure(
            f"the Spark warehouse in {display_path(directory)} is in use by {holder}: Spark in local mode "
            "admits one process at a time; try again when it has finished"
        )
    _HELD = lock


@contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """The standard error of processes started in the block (Spark's JVM, which prints its banner and
    warnings there for as long as it runs) goes to `path`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)
