"""A direct connection to the warehouse dbt builds into, from the same profile and target.

The credentials come from dbt's own profile reader, so `env_var()` defaults and target selection
behave exactly as in `dbt build`. Used after dbt has finished (counts, and later the send step).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import RuntimeFailure

SUPPORTED_TYPES = ("duckdb", "postgres")


class Warehouse:
    def __init__(self, kind: str, target_name: str, schema: str, connection: Any, reconnect=None):
        self.kind = kind
        self.target_name = target_name
        self.schema = schema
        self._connection = connection
        self._reconnect = reconnect  # a second PostgreSQL connection, for server-side cursors

    @classmethod
    def connect(cls, credentials, target_name: str, root: Path) -> Warehouse:
        """A connection from dbt's credentials of a target; relative paths are read from `root`."""
        kind = credentials.type
        try:
            if kind == "duckdb":
                import duckdb

                path = credentials.path
                if path not in (":memory:", ""):
                    path = root / path  # as dbt, run in the project directory, sees it
                    path.parent.mkdir(parents=True, exist_ok=True)
                connection = duckdb.connect(str(path))
                reconnect = None
            elif kind == "postgres":
                import psycopg2

                def reconnect():
                    connection = psycopg2.connect(
                        host=credentials.host, port=credentials.port, user=credentials.user,
                        password=credentials.password, dbname=credentials.database,
                        connect_timeout=credentials.connect_timeout or 10, application_name="campaign")
                    _keep_open(connection)
                    return connection

                connection = reconnect()
                connection.autocommit = True
            else:
                supported = ", ".join(SUPPORTED_TYPES)
                raise RuntimeFailure(f'adapter "{kind}" is not supported (supported: {supported})')
        except RuntimeFailure:
            raise
        except Exception as exc:  # the driver's own error types
            cause = str(exc).strip().splitlines()[0]
            raise RuntimeFailure(f'cannot connect to the {kind} warehouse of target "{target_name}": '
                                 f"{cause}") from None
        return cls(kind, target_name, credentials.schema, connection, reconnect)

    def _cursor(self):
        # a DuckDB cursor is a connection of its own: statements go to the connection itself, so
        # that those of a transaction share it
        return self._connection if self.kind == "duckdb" else self._connection.cursor()

    def _done(self, cursor) -> None:
        if cursor is not self._connection:
            cursor.close()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of `sql`, whose parameters are written %s whatever the driver."""
        if self.kind == "duckdb":
            sql = sql.replace("%s", "?")
        try:
            cursor = self._cursor()
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            self._done(cursor)
            return rows
        except Exception as exc:
            raise RuntimeFailure(f"{self.kind} query failed: {str(exc).strip().splitlines()[0]}") from None

    def execute(self, sql: str, params: tuple = ()) -> None:
        if self.kind == "duckdb":
            sql = sql.replace("%s", "?")
        try:
            cursor = self._cursor()
            cursor.execute(sql, params)
            self._done(cursor)
        except Exception as exc:
            raise RuntimeFailure(f"{self.kind} statement failed: {str(exc).strip().splitlines()[0]}") from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The statements of the block, committed together or not at all."""
        self.execute("begin transaction")
        try:
            yield
        except BaseException:
            try:
                self.execute("rollback")
            except RuntimeFailure:  # the connection is gone, and the transaction with it
                pass
            raise
        self.execute("commit")

    def insert(self, table: str, columns: tuple[str, ...], rows: list[tuple], suffix: str = "") -> None:
        """Insert many rows in one statement (followed by `suffix`, such as ON CONFLICT ...)."""
        if not rows:
            return
        head = f"insert into {table} ({', '.join(columns)})"
        try:
            cursor = self._cursor()
            if self.kind == "duckdb":
                derived, params = _duckdb_rows(columns, rows)
                cursor.execute(f"{head} select * from {derived} {suffix}", params)
            else:
                from psycopg2.extras import execute_values

                execute_values(cursor, f"{head} values %s {suffix}", rows, page_size=len(rows))
            self._done(cursor)
        except Exception as exc:
            raise RuntimeFailure(f"{self.kind} insert failed: {str(exc).strip().splitlines()[0]}") from None

    def update(self, table: str, columns: tuple[str, ...], rows: list[tuple], keys: tuple[str, ...],
               where: str = "") -> None:
        """Set the other `columns` of the rows of `table` whose `keys` match one of `rows`, in one
        statement (DuckDB only); `where` adds a condition."""
        assert self.kind == "duckdb"
        if not rows:
            return
        assignments = ", ".join(f"{c} = u.{c}" for c in columns if c not in keys)
        matches = " and ".join(f"{table}.{k} = u.{k}" for k in keys)
        try:
            cursor = self._cursor()
            derived, params = _duckdb_rows(columns, rows)
            cursor.execute(f"update {table} set {assignments} from {derived} as u "
                           f"where {matches}{' and ' + where if where else ''}", params)
            self._done(cursor)
        except Exception as exc:
            raise RuntimeFailure(f"{self.kind} update failed: {str(exc).strip().splitlines()[0]}") from None

    def stream(self, relation: str, columns: list[str], page: int) -> Iterator[list[dict]]:
        """The rows of a table, a page at a time, without holding the table in memory."""
        select = ", ".join(f'"{c}"' for c in columns)
        if self.kind == "duckdb":
            # a DuckDB result is held whole by the client: read ranges of the table's rowid instead
            (last,) = self.query(f"select max(rowid) from {relation}")[0]
            start = 0
            while last is not None and start <= last:
                rows = self.query(f"select {select} from {relation} where rowid >= %s and rowid < %s order by rowid",
                                  (start, start + page))
                start += page
                if rows:
                    yield [dict(zip(columns, row)) for row in rows]
            return
        import psycopg2

        try:
            connection = self._reconnect()
        except psycopg2.Error as exc:
            raise RuntimeFailure(f"cannot connect to the postgres warehouse: {_first_line(exc)}") from None
        try:
            with connection.cursor(name="campaign_stream") as cursor:  # server-side: rows come as read
                cursor.itersize = page
                cursor.execute(f"select {select} from {relation}")
                while rows := cursor.fetchmany(page):
                    yield [dict(zip(columns, row)) for row in rows]
        except psycopg2.Error as exc:  # the connection lost, say
            raise RuntimeFailure(f"reading {relation} failed: {_first_line(exc)}") from None
        finally:
            connection.close()

    def table(self, name: str) -> str:
        """A table of the target schema, quoted."""
        return f'"{self.schema}"."{name}"'

    def table_exists(self, name: str) -> bool:
        return bool(self.query("select count(*) from information_schema.tables "
                               "where table_schema = %s and table_name = %s", (self.schema, name))[0][0])

    @property
    def closed(self) -> bool:
        """Whether the connection is known to be gone (PostgreSQL notices it at its next statement)."""
        return self.kind != "duckdb" and bool(self._connection.closed)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _keep_open(connection) -> None:
    """A send holds its PostgreSQL sessions open on purpose, idle while a provider works: a timeout
    the server sets for forgotten sessions must not end them (with them a campaign's lock)."""
    if connection.server_version >= 140000:
        with connection.cursor() as cursor:
            cursor.execute("set idle_session_timeout = 0; set idle_in_transaction_session_timeout = 0")
            if not connection.autocommit:
                connection.commit()


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _duckdb_rows(columns: tuple[str, ...], rows: list[tuple]) -> tuple[str, list]:
    """`rows` as a DuckDB derived table and its parameters: one list per column, unnested side by
    side (a value shared by every row is one parameter). Binding a few flat lists is several times
    faster than a list of structs, and thousands of times faster than a parameter per value."""
    selects, params = [], []
    for name, values in zip(columns, zip(*rows)):
        first = values[0]
        if all(value == first and type(value) is type(first) for value in values):
            selects.append(f"? as {name}")
            params.append(first)
        else:
            selects.append(f"unnest(?) as {name}")
            params.append(list(values))
    if all(select.startswith("? ") for select in selects):  # one row, or identical rows: keep their number
        selects[0] = f"unnest(?) as {columns[0]}"
        params[0] = [params[0]] * len(rows)
    return f"(select {', '.join(selects)})", params


def count_rows(warehouse: Warehouse, relations: dict[str, str]) -> dict[str, int]:
    """Exact row counts of the given relations (model name -> relation), in one query."""
    if not relations:
        return {}
    parts = [f"select {index} as position, count(*) as row_count from {relation}"
             for index, relation in enumerate(relations.values())]
    rows = warehouse.query("\nunion all\n".join(parts))
    names = list(relations)
    return {names[position]: int(count) for position, count in sorted(rows)}
