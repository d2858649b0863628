"""A direct connection to the warehouse dbt builds into, from the same profile and target.

The credentials come from dbt's own profile reader, so `env_var()` defaults and target selection
behave exactly as in `dbt build`. Used after dbt has finished (counts, and later the send step).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import RuntimeFailure
from . import engine_for
from .base import Engine, EngineLock, first_line


class Warehouse:
    """A connection to a target's warehouse, whatever its engine: SQL parameters are written %s, and
    the driver's errors come out as RuntimeFailure."""

    def __init__(self, engine: Engine, target_name: str, schema: str):
        self.engine = engine
        self.target_name = target_name
        self.schema = schema

    @property
    def kind(self) -> str:
        """dbt's adapter type of the warehouse."""
        return self.engine.name

    @classmethod
    def connect(cls, credentials, target_name: str, root: Path) -> Warehouse:
        """A connection from dbt's credentials of a target; relative paths are read from `root`."""
        kind = credentials.type
        try:
            engine = engine_for(kind).connect(credentials, root)
        except RuntimeFailure:
            raise
        except Exception as exc:  # the driver's own error types
            cause = first_line(exc)
            raise RuntimeFailure(f'cannot connect to the {kind} warehouse of target "{target_name}": {cause}') from None
        return cls(engine, target_name, credentials.schema)

    @classmethod
    def campaign_lock(cls, credentials, target_name: str, root: Path, campaign: str) -> EngineLock:
        """The lock of `campaign` on a target's warehouse, not yet taken."""
        return engine_for(credentials.type).campaign_lock(
            credentials, root, campaign, lambda: cls.connect(credentials, target_name, root)
        )

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of `sql`, whose parameters are written %s whatever the driver."""
        sql = self.engine.prepare(sql)
        try:
            cursor = self.engine.cursor()
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            self.engine.done(cursor)
            return rows
        except Exception as exc:
            raise RuntimeFailure(f"{self.kind} query failed: {first_line(exc)}") from None

    def execute(self, sql: str, params: tuple = ()) -> None:
        sql = self.engine.prepare(sql)
        try:
            cursor = self.engine.cursor()
            cursor.execute(sql, params)
            self.engine.done(cursor)
        except Exception as exc:
            raise RuntimeFailure(f"{self.kind} statement failed: {first_line(exc)}") from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The statements of the block, committed together or not at all; where tables take appends
        only, each statement on its own (their writers never need more: see `Engine.appends_only`)."""
        if self.engine.appends_only:
            yield
            return
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
            cursor = self.engine.cursor()
            self.engine.insert_rows(cursor, head, columns, rows, suffix)
            self.engine.done(cursor)
        except Exception as exc:
            raise RuntimeFailure(f"{self.kind} insert failed: {first_line(exc)}") from None

    def update(
        self, table: str, columns: tuple[str, ...], rows: list[tuple], keys: tuple[str, ...], where: str = ""
    ) -> None:
        """Set the other `columns` of the rows of `table` whose `keys` match one of `rows`, in one
        statement (only where the engine `updates_rows`); `where` adds a condition."""
        assert self.engine.updates_rows
        if not rows:
            return
        try:
            cursor = self.engine.cursor()
            self.engine.update_rows(cursor, table, columns, rows, keys, where)
            self.engine.done(cursor)
        except Exception as exc:
            raise RuntimeFailure(f"{self.kind} update failed: {first_line(exc)}") from None

    # -- journals (engines whose tables take appends only) -------------------------------------------
    def latest(self, name: str, keys: tuple[str, ...], where: str, order: str = "journal_seq") -> str:
        """A relation of the rows of table `name` matching `where` (which must hold of all the rows of a
        key or of none): where tables take appends only, the latest row of each of `keys` (by `order`,
        `journal_seq` unless the table has its own), else the table's own rows, one a key."""
        table = self.table(name)
        if not self.engine.appends_only:
            return f"(select * from {table} where {where})"
        return (
            f"(select * from (select j.*, row_number() over (partition by {', '.join(keys)} "
            f"order by j.{order} desc) as journal_rank from {table} as j where {where}) as r "
            "where r.journal_rank = 1)"
        )

    def insert_absent(self, table: str, columns: tuple[str, ...], rows: list[tuple], exists: str) -> None:
        """Insert those of `rows` (`v`) for which no row `t` of `table` satisfies `exists`, in one statement
        (an anti-join: a journal's writes that must not repeat a fact)."""
        if not rows:
            return
        names = ", ".join(columns)
        row = f"({', '.join(['%s'] * len(columns))})"
        self.execute(
            f"insert into {table} ({names}) select * from values {', '.join([row] * len(rows))} as v({names}) "
            f"where not exists (select 1 from {table} as t where {exists})",
            tuple(value for r in rows for value in r),
        )

    def stream(self, relation: str, columns: list[str], page: int) -> Iterator[list[dict]]:
        """The rows of a table, a page at a time, without holding the table in memory."""
        return self.engine.stream(self, relation, columns, page)

    def table(self, name: str) -> str:
        """A table of the target schema, quoted."""
        return f"{self.quote(self.schema)}.{self.quote(name)}"

    def quote(self, identifier: str) -> str:
        """`identifier` quoted in the warehouse's SQL."""
        mark = self.engine.quote_character
        return f"{mark}{identifier.replace(mark, mark * 2)}{mark}"

    def table_exists(self, name: str) -> bool:
        return self.engine.table_exists(self, name)

    def columns(self, name: str) -> list[str]:
        """The columns of a table of the target schema (none when it is missing), lowercase."""
        return self.engine.columns(self, name)

    @property
    def closed(self) -> bool:
        """Whether the connection is known to be gone (some engines notice it at their next statement)."""
        return self.engine.closed

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_LAST_SEQ = 0


def journal_seq() -> int:
    """What orders a journal's rows: the writer's clock in nanoseconds, increasing within the process.
    The writers of a campaign take turns under its lock, whose handover outlasts a nanosecond."""
    global _LAST_SEQ
    _LAST_SEQ = max(time.time_ns(), _LAST_SEQ + 1)
    return _LAST_SEQ


def count_rows(warehouse: Warehouse, relations: dict[str, str], keys: dict[str, str] | None = None) -> dict[str, int]:
    """Exact row counts of the given relations (model name -> relation), in one query.

    `keys` (model name -> key column) names the relations whose key must be unique and never NULL,
    what the models' unique and not_null tests state: the same scan that counts a relation checks
    its key, and a KeyViolation names each relation that breaks it. `campaign` builds run no test
    node (one per key and kind, each a dbt node with its own query and overhead: a third of the
    build's time on the reference campaign); this query is their check."""
    if not relations:
        return {}
    keys = keys or {}
    parts = []
    for index, (name, relation) in enumerate(relations.items()):
        key = warehouse.quote(keys[name]) if name in keys else None
        check = f"count({key}) - count(distinct {key}), count(*) - count({key})" if key else "0, 0"
        parts.append(f"select {index} as position, count(*) as row_count, {check} from {relation}")
    rows = warehouse.query("\nunion all\n".join(parts))
    names = list(relations)
    broken = {names[p]: (int(repeated), int(missing)) for p, _, repeated, missing in rows if repeated or missing}
    if broken:
        raise KeyViolation(broken, keys)
    return {names[position]: int(count) for position, count, _, _ in sorted(rows)}


class KeyViolation(Exception):
    """Relations whose key has repeated or NULL values: `broken` maps a model to (keys repeated,
    rows without a key), `keys` a model to its key column."""

    def __init__(self, broken: dict[str, tuple[int, int]], keys: dict[str, str]):
        self.broken, self.keys = broken, keys
        super().__init__(", ".join(broken))
