"""The `campaign` CLI on a disk that fills up: `python full_disk.py BYTES enospc|kill ARGS...`.

Files opened for writing under FULL_DISK_DIR take BYTES bytes in all; the write that goes past them
is cut where the space ends, then fails with ENOSPC (`enospc`, a full disk) or the process is
killed at once (`kill`, a crash in the middle of a write). Everything else is the real CLI.
"""

from __future__ import annotations

import errno
import io
import os
import pathlib
import signal
import sys

ROOT = os.path.realpath(os.environ["FULL_DISK_DIR"])
room, then = int(sys.argv[1]), sys.argv[2]


class _Filling:
    """A file being written on the filling disk."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, data) -> int:
        global room
        data = bytes(data)
        taken = data[: max(room, 0)]
        self._handle.write(taken)
        room -= len(taken)
        if len(taken) < len(data):
            self._handle.flush()
            if then == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return len(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()

    def __getattr__(self, name):
        return getattr(self._handle, name)


_open = io.open


def _path_open(self, mode="r", buffering=-1, encoding=None, errors=None, newline=None):
    if "b" not in mode:
        encoding = io.text_encoding(encoding)
    handle = _open(self, mode, buffering, encoding, errors, newline)
    writing = any(c in mode for c in "wax+")
    return _Filling(handle) if writing and os.path.realpath(self).startswith(ROOT + os.sep) else handle


pathlib.Path.open = _path_open
sys.argv = ["campaign", *sys.argv[3:]]

from campaign_compiler.cli import main  # noqa: E402  (after the disk is in place)

main()
