"""PostgreSQL: a server session, in autocommit unless a transaction is begun explicitly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RuntimeFailure
from .base import Engine, EngineLock, first_line

if TYPE_CHECKING:
    from .warehouse import Warehouse

# whether this session holds the advisory lock of a key (a bigint key shows as its two halves)
_HOLDS_LOCK = (
    "select exists (select 1 from pg_locks where locktype = 'advisory' and granted "
    "and pid = pg_backend_pid() and database = (select oid from pg_database where datname = "
    "current_database()) and objsubid = 1 and classid::bigint = (hashtext(%s)::bigint >> 32) & 4294967295 "
    "and objid::bigint = hashtext(%s)::bigint & 4294967295)"
)


@dataclass(frozen=True)
class PostgresCredentials:
    """The fields of dbt-postgres's credentials that Engine.read_credentials reads."""

    host: str
    user: str
    port: int
    password: str
    database: str
    schema: str
    connect_timeout: int = 10
    type: str = "postgres"


class Postgres(Engine):
    name = "postgres"
    control_characters = r"\x01-\x1f\x7f-\x9f\u2028\u2029"  # its text never holds NUL

    def __init__(self, connection, reconnect: Callable):
        self.connection = connection
        self._reconnect = reconnect  # a second connection, for server-side cursors

    @classmethod
    def connect(cls, credentials, root: Path) -> Postgres:
        import psycopg2

        def reconnect():
            connection = psycopg2.connect(
                host=credentials.host,
                port=credentials.port,
                user=credentials.user,
                password=credentials.password,
                dbname=credentials.database,
                connect_timeout=credentials.connect_timeout or 10,
                application_name="campaign",
            )
            _keep_open(connection)
            return connection

        connection = reconnect()
        connection.autocommit = True
        return cls(connection, reconnect)

    @classmethod
    def read_credentials(cls, fields: dict) -> PostgresCredentials | None:
        """The connection's fields (dbname and pass as aliases) as dbt-postgres reads and checks them."""
        fields = dict(fields)
        for alias, name in (("dbname", "database"), ("pass", "password")):
            if alias in fields:
                if name in fields:
                    return None  # dbt refuses a field given twice
                fields[name] = fields.pop(alias)
        texts = {"host", "user", "password", "database", "schema"}
        if not texts | {"port"} <= set(fields) <= texts | {"port", "connect_timeout"}:
            return None  # a field missing (dbt refuses it), or one this does not read (sslmode...)
        port, timeout = fields["port"], fields.get("connect_timeout", 10)
        if any(type(fields[name]) is not str for name in texts) or type(timeout) is not int:
            return None
        if type(port) is not int or not 0 <= port <= 65535:
            return None
        return PostgresCredentials(**{**fields, "port": port, "connect_timeout": timeout})

    @classmethod
    def campaign_lock(cls, credentials, root: Path, campaign: str, connect: Callable[[], Warehouse]) -> AdvisoryLock:
        return AdvisoryLock(connect, campaign)

    def cursor(self):
        return self.connection.cursor()

    def insert_rows(self, cursor, head: str, columns: tuple[str, ...], rows: list[tuple], suffix: str) -> None:
        from psycopg2.extras import execute_values

        execute_values(cursor, f"{head} values %s {suffix}", rows, page_size=len(rows))

    def stream(self, warehouse: Warehouse, relation: str, columns: list[str], page: int) -> Iterator[list[dict]]:
        import psycopg2

        select = ", ".join(f'"{c}"' for c in columns)
        try:
            connection = self._reconnect()
        except psycopg2.Error as exc:
            raise RuntimeFailure(f"cannot connect to the {self.name} warehouse: {first_line(exc)}") from None
        try:
            with connection.cursor(name="campaign_stream") as cursor:  # server-side: rows come as read
                cursor.itersize = page
                cursor.execute(f"select {select} from {relation}")
                while rows := cursor.fetchmany(page):
                    yield [dict(zip(columns, row)) for row in rows]
        except psycopg2.Error as exc:  # the connection lost, say
            raise RuntimeFailure(f"reading {relation} failed: {first_line(exc)}") from None
        finally:
            connection.close()

    @property
    def closed(self) -> bool:
        """PostgreSQL notices a connection gone at its next statement."""
        return bool(self.connection.closed)

    def close(self) -> None:
        self.connection.close()


class AdvisoryLock(EngineLock):
    """An advisory lock of a session of its own, which ends with the session (the session then
    releases it): the writes it guards go through that session."""

    outlives_holder = True  # a killed holder's session ends a moment after its process

    def __init__(self, connect: Callable[[], Warehouse], campaign: str):
        self._connect, self.campaign = connect, campaign
        self._key = ""

    def acquire(self) -> bool:
        if self.session is None:
            self.session = self._connect()
            # advisory locks belong to a database: the key names the schema the campaign is built in
            self._key = f"campaign_orchestration:{self.session.schema}:{self.campaign}"
        return bool(self.session.query("select pg_try_advisory_lock(hashtext(%s))", (self._key,))[0][0])

    def lost(self) -> str | None:
        if self.session is not None and not self.session.query(_HOLDS_LOCK, (self._key, self._key))[0][0]:
            return "its PostgreSQL session no longer holds it"
        return None

    def lost_in(self, failure: Exception) -> str | None:
        if self.session is not None and self.session.closed:  # the session, and the lock with it
            return f"its PostgreSQL session ended: {failure}"
        return None

    def release(self) -> None:
        if self.session is not None:
            self.session.close()  # ending the session releases its advisory locks


def _keep_open(connection) -> None:
    """A send holds its PostgreSQL sessions open on purpose, idle while a provider works: a timeout
    the server sets for forgotten sessions must not end them (with them a campaign's lock)."""
    if connection.server_version >= 140000:
        with connection.cursor() as cursor:
            cursor.execute("set idle_session_timeout = 0; set idle_in_transaction_session_timeout = 0")
            if not connection.autocommit:
                connection.commit()
