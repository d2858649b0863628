"""A lock held as an exclusive lock of a file (flock), released when its process ends."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import display_path
from .base import EngineLock


class FileLock(EngineLock):
    """A file lock (next to a DuckDB file, beside a local Spark metastore); lost when the file is removed
    or replaced."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None

    def acquire(self) -> bool:
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def lost(self) -> str | None:
        if self._file is None:
            return None
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return f"{display_path(self.path)} was removed"
        mine = os.fstat(self._file.fileno())
        if (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
            return f"{display_path(self.path)} was replaced"
        return None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()

    def holder(self) -> str | None:
        """The process that holds the lock, as it wrote itself in the file ("process 1234")."""
        try:
            pid = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return f"process {pid}" if pid.isdigit() else None
