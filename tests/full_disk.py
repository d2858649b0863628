"""The `campaign` CLI on a disk that fills up: `python full_disk.py BYTES enospc|kill ARGS...`.

Files opened for writing under FULL_DISK_DIR (by `Path.open`, or `os.open` and `os.write`) take
BYTES bytes in all; the write that goes past them is cut where the space ends, then fails with
ENOSPC (`enospc`, a full disk) or the process is killed at once (`kill`, a crash in the middle of a
write). Everything else is the real CLI.
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


def _fill(write, data, flush=lambda: None) -> int:
    """`data` written by `write` as far as the room goes; then ENOSPC, or the process killed."""
    global room
    data = bytes(data)
    taken = data[: max(room, 0)]
    write(taken)
    room -= len(taken)
    if len(taken) < len(data):
        flush()
        if then == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return len(data)


class _Filling:
    """A file being written on the filling disk."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, data) -> int:
        return _fill(self._handle.write, data, self._handle.flush)

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


_os_open, _os_write, _os_close = os.open, os.write, os.close
_filling: set[int] = set()  # descriptors of files open for writing on the filling disk


def _open_descriptor(path, flags, mode=0o777, *, dir_fd=None):
    descriptor = _os_open(path, flags, mode, dir_fd=dir_fd)
    folder = os.readlink(f"/proc/self/fd/{dir_fd}") if dir_fd is not None else ""
    if flags & (os.O_WRONLY | os.O_RDWR) and os.path.realpath(os.path.join(folder, path)).startswith(ROOT + os.sep):
        _filling.add(descriptor)
    return descriptor


def _write_descriptor(descriptor, data) -> int:
    if descriptor not in _filling:
        return _os_write(descriptor, data)
    return _fill(lambda taken: _os_write(descriptor, taken), data)


def _close_descriptor(descriptor) -> None:
    _filling.discard(descriptor)
    _os_close(descriptor)


pathlib.Path.open = _path_open
os.open, os.write, os.close = _open_descriptor, _write_descriptor, _close_descriptor
sys.argv = ["campaign", *sys.argv[3:]]

from campaign_compiler.cli import main  # noqa: E402  (after the disk is in place)

main()
