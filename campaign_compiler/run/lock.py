"""The campaign lock: one command at a time builds or sends a campaign on a target.

The warehouse's engine keeps it: an advisory lock on PostgreSQL, a file lock next to the DuckDB
file (DuckDB itself admits one writing process), a file lock beside Spark's local metastore (which
admits one process). A lock can be lost behind the holder's back (its session ended by an
administrator or a failover, its file removed): `guarding` proves it still held inside the
transaction of every write that must not outlive it — on Spark, which has no transactions, just
before the write.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..engines.base import EngineLock
from ..engines.warehouse import Warehouse
from ..errors import RuntimeFailure
from ..project.target import DbtTarget, load_profile

LOCK_GRACE_SECONDS = 3.0


class LockLost(RuntimeFailure):
    """The campaign's lock is no longer held: the run stops before it sends anything more."""


class CampaignLock:
    """Held for the whole of a command that builds or sends a campaign; a second one exits 1.

    When the lock belongs to a session (PostgreSQL), `session` is the connection holding it: the
    send writes its log through it (`DeliveryLog(lock.session, lock)`), so that no write outlives
    the lock."""

    def __init__(self, where: DbtTarget, campaign: str):
        self.where, self.campaign = where, campaign
        self.session: Warehouse | None = None
        self._held: EngineLock | None = None

    def __enter__(self) -> CampaignLock:
        profile = load_profile(self.where)
        lock = Warehouse.campaign_lock(profile.credentials, profile.target_name, self.where.project.root, self.campaign)
        if not _acquire(lock):
            lock.release()
            raise RuntimeFailure(
                f"campaign {self.campaign} is being built or sent by another process; try again when it has finished"
            )
        self._held, self.session = lock, lock.session
        return self

    @contextmanager
    def guarding(self, warehouse: Warehouse) -> Iterator[None]:
        """A transaction on `warehouse` (for a session's lock, that session) that commits only while
        the lock is still this process's; LockLost otherwise, nothing written."""
        try:
            with warehouse.transaction():
                self._verify()
                yield
        except LockLost:
            raise
        except RuntimeFailure as failure:
            why = self._held.lost_in(failure) if self._held is not None else None
            if why is not None:
                raise self._lost(why) from None
            raise

    def _verify(self) -> None:
        why = self._held.lost() if self._held is not None else None
        if why is not None:
            raise self._lost(why)

    def _lost(self, why: str) -> LockLost:
        return LockLost(
            f"the lock of campaign {self.campaign} was lost ({why}): the run stopped, nothing more was sent"
        )

    def __exit__(self, *exc) -> None:
        if self._held is not None:
            self._held.release()


def _acquire(lock: EngineLock) -> bool:
    """Take `lock`; when a killed holder's lock outlives it a moment, that moment is waited for."""
    deadline = time.monotonic() + (LOCK_GRACE_SECONDS if lock.outlives_holder else 0.0)
    while not lock.acquire():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True
