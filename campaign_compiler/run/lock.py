"""The campaign lock: one command at a time builds or sends a campaign on a target.

An advisory lock on PostgreSQL, a file lock next to the DuckDB file (DuckDB itself admits one
writing process). A lock can be lost behind the holder's back (its session ended by an
administrator or a failover, its file removed): `guarding` proves it still held inside the
transaction of every write that must not outlive it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..engines.warehouse import Warehouse
from ..errors import RuntimeFailure, display_path
from ..project.target import DbtTarget, connect, load_profile

LOCK_GRACE_SECONDS = 3.0


class LockLost(RuntimeFailure):
    """The campaign's lock is no longer held: the run stops before it sends anything more."""


# whether this session holds the advisory lock of a key (a bigint key shows as its two halves)
_HOLDS_LOCK = ("select exists (select 1 from pg_locks where locktype = 'advisory' and granted "
               "and pid = pg_backend_pid() and database = (select oid from pg_database where datname = "
               "current_database()) and objsubid = 1 and classid::bigint = (hashtext(%s)::bigint >> 32) & 4294967295 "
               "and objid::bigint = hashtext(%s)::bigint & 4294967295)")


class CampaignLock:
    """Held for the whole of a command that builds or sends a campaign; a second one exits 1.

    On PostgreSQL, `session` is the connection holding the advisory lock: the send writes its
    log through it (`DeliveryLog(lock.session, lock)`), so that no write outlives the lock."""

    def __init__(self, where: DbtTarget, campaign: str):
        self.where, self.campaign = where, campaign
        self.session: Warehouse | None = None
        self._key = ""
        self._file = None
        self._path: Path | None = None

    def __enter__(self) -> CampaignLock:
        credentials = load_profile(self.where).credentials
        busy = RuntimeFailure(f"campaign {self.campaign} is being built or sent by another process; "
                              "try again when it has finished")
        if credentials.type == "duckdb":
            database = Path(credentials.path)
            database = database if database.is_absolute() else self.where.project.root / database
            database.parent.mkdir(parents=True, exist_ok=True)
            self._path = Path(f"{database}.campaign-{self.campaign}.lock")
            handle = open(self._path, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise busy from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._file = handle
        else:
            session = connect(self.where)
            # a killed holder's session ends a moment after its process: that moment is waited for
            deadline = time.monotonic() + LOCK_GRACE_SECONDS
            # advisory locks belong to a database: the key names the schema the campaign is built in
            self._key = f"campaign_orchestration:{session.schema}:{self.campaign}"
            while not (held := session.query("select pg_try_advisory_lock(hashtext(%s))", (self._key,))[0][0]):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if not held:
                session.close()
                raise busy
            self.session = session  # ending the session releases its advisory locks
        return self

    @contextmanager
    def guarding(self, warehouse: Warehouse) -> Iterator[None]:
        """A transaction on `warehouse` (on PostgreSQL, the lock's session) that commits only while
        the lock is still this process's; LockLost otherwise, nothing written."""
        try:
            with warehouse.transaction():
                self._verify()
                yield
        except LockLost:
            raise
        except RuntimeFailure as failure:
            if self.session is not None and self.session.closed:  # the session, and the lock with it
                raise self._lost(f"its PostgreSQL session ended: {failure}") from None
            raise

    def _verify(self) -> None:
        if self.session is not None:
            if not self.session.query(_HOLDS_LOCK, (self._key, self._key))[0][0]:
                raise self._lost("its PostgreSQL session no longer holds it")
        elif self._file is not None:
            try:
                current = os.stat(self._path)
            except FileNotFoundError:
                raise self._lost(f"{display_path(self._path)} was removed") from None
            mine = os.fstat(self._file.fileno())
            if (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
                raise self._lost(f"{display_path(self._path)} was replaced")

    def _lost(self, why: str) -> LockLost:
        return LockLost(f"the lock of campaign {self.campaign} was lost ({why}): the run stopped, "
                        "nothing more was sent")

    def __exit__(self, *exc) -> None:
        if self.session is not None:
            self.session.close()
        if self._file is not None:
            self._file.close()
