"""What differs between warehouses: an `Engine` per dbt adapter, and the campaign lock it keeps.

`Warehouse` is what the rest of the compiler uses; it hands the parts that depend on the driver or
the database to its engine. An engine is one open connection (a DuckDB file, a PostgreSQL session)
with the means to use it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .warehouse import Warehouse


class Engine(ABC):
    """One connection to a warehouse, and what its driver and database need done their own way."""

    # dbt's adapter type (`type:` in profiles.yml), which is also sqlglot's name of the warehouse's
    # SQL dialect and the key the models' `_sql` macro picks a condition's text by (`target.type`);
    # the prefix of the warehouse's errors, too
    name: ClassVar[str]
    # Whether rows known to exist are better updated than upserted: `update_rows` is then
    # available, and many rows are logged as an insert of the new ones plus an update of the others.
    updates_rows: ClassVar[bool] = False
    # Whether a lookup of many keys is better made as a join with their list (one scan of the
    # table) than through the table's index, one key at a time.
    joins_key_lists: ClassVar[bool] = False
    # The C0 and C1 control characters, DEL and the Unicode line and paragraph separators, written
    # inside a bracket expression of the warehouse's regular expressions: no address may hold one.
    control_characters: ClassVar[str]
    # Whether the warehouse's tables take appends only: no row update or delete, no transaction
    # (Spark's parquet tables). The tables campaigns share are then journals, their latest row the state.
    appends_only: ClassVar[bool] = False
    # What quotes an identifier in the warehouse's SQL
    quote_character: ClassVar[str] = '"'
    # The type of a text column of a table dbt creates for a seed (a seed's `column_types`)
    text_type: ClassVar[str] = "text"
    # The function whose rows are the items of an array parameter (select unnest(%s) as x)
    unnest: ClassVar[str] = "unnest"

    @classmethod
    @abstractmethod
    def connect(cls, credentials: Any, root: Path) -> Engine:
        """A connection from dbt's credentials of a target; relative paths are read from `root`.
        The driver's own errors go through: the caller reports them."""

    @classmethod
    @abstractmethod
    def campaign_lock(cls, credentials: Any, root: Path, campaign: str, connect: Callable[[], Warehouse]) -> EngineLock:
        """The lock of `campaign` on this warehouse, not yet taken; `connect` opens a session of
        the target when the lock needs one of its own."""

    @classmethod
    def read_credentials(cls, fields: dict[str, Any]) -> Any | None:
        """dbt's credentials of a target from its rendered fields in profiles.yml (without `type` and
        `threads`), exactly as the adapter reads them, without importing dbt (a second); None when
        the fields hold anything this does not handle (project.profile then asks dbt's reader)."""
        return None

    @classmethod
    def before_dbt(cls, credentials: Any, root: Path) -> None:
        """Anything the process must do before dbt connects (Spark starts the session dbt will share)."""
        return None

    def prepare(self, sql: str) -> str:
        """`sql`, whose parameters are written %s, in the driver's parameter style."""
        return sql

    @abstractmethod
    def cursor(self) -> Any:
        """What statements are executed on; given back to `done` when finished with."""

    def done(self, cursor: Any) -> None:
        cursor.close()

    @abstractmethod
    def insert_rows(self, cursor: Any, head: str, columns: tuple[str, ...], rows: list[tuple], suffix: str) -> None:
        """Execute `head` (insert into ... (columns)) for many rows in one statement, then `suffix`."""

    def update_rows(
        self, cursor: Any, table: str, columns: tuple[str, ...], rows: list[tuple], keys: tuple[str, ...], where: str
    ) -> None:
        """Set the other `columns` of the rows of `table` whose `keys` match one of `rows`, in one
        statement; only where `updates_rows`."""
        raise NotImplementedError(f"{self.name} does not update many rows at once")

    @abstractmethod
    def stream(self, warehouse: Warehouse, relation: str, columns: list[str], page: int) -> Iterator[list[dict]]:
        """The rows of a table, a page at a time, without holding the table in memory."""

    def table_exists(self, warehouse: Warehouse, name: str, schema: str | None = None) -> bool:
        """Whether the target schema (or `schema`) has a table or view `name`."""
        return bool(
            warehouse.query(
                "select count(*) from information_schema.tables where table_schema = %s and table_name = %s",
                (schema or warehouse.schema, name),
            )[0][0]
        )

    def columns(self, warehouse: Warehouse, name: str) -> list[str]:
        """The columns of a table of the target schema (none when it is missing), lowercase."""
        rows = warehouse.query(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
            (warehouse.schema, name),
        )
        return [column.lower() for (column,) in rows]

    def for_sending(self) -> None:
        """Settle the connection for a send: many small statements, one writer, a long run."""
        return None

    @property
    def closed(self) -> bool:
        """Whether the connection is known to be gone."""
        return False

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""


class EngineLock(ABC):
    """A campaign's lock as one warehouse keeps it: taken, proved still held, released."""

    # the connection that holds the lock, when the lock belongs to a session: writes that must not
    # outlive the lock go through it
    session: Warehouse | None = None
    # whether a killed holder's lock outlives its process a moment (until its session ends)
    outlives_holder: ClassVar[bool] = False

    @abstractmethod
    def acquire(self) -> bool:
        """Take the lock if it is free; False when another process holds it."""

    @abstractmethod
    def lost(self) -> str | None:
        """Why the lock is no longer this process's; None while it is."""

    def lost_in(self, failure: Exception) -> str | None:
        """Why a write's `failure` means the lock was lost with it; None when it does not."""
        return None

    @abstractmethod
    def release(self) -> None:
        """Let the lock go (also when it was never taken)."""


def first_line(exc: Exception) -> str:
    """The first line of a driver's error, which is what it says went wrong (the rest is context).

    >>> first_line(ValueError("relation \\"x\\" does not exist\\nLINE 1: select * from x"))
    'relation "x" does not exist'
    >>> first_line(ValueError(""))
    'ValueError'
    """
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
