"""A warm process for `campaign count`: dbt imported and warmed once, each command run in a fork of it.

Importing dbt and its first parse and build in a process cost about three seconds before any
SQL runs; a `count` of a small campaign then takes half a second. The first `count` in a terminal
starts, once it is done, a background process (the warm process) that imports dbt and the
compiler, parses the project once in a folder of its own, and waits on a Unix socket. The next
`count` hands it the command line, the working directory, the environment and its own stdin,
stdout and stderr; the warm process forks, and the fork runs the command exactly as `campaign`
would have, writing to the caller's terminal, and reports its exit status. Nothing of one command
survives into the next: each runs in a fresh fork; the warm process holds no warehouse connection.

It serves the Python environment that started it (its interpreter, its import path and the files
of this package and of its dependencies: an upgrade or an edit starts another one) and exits after
15 idle minutes. `CAMPAIGN_WARM=0` turns it off, `CAMPAIGN_WARM=1` uses it even away from a terminal; by
default it is used when stderr is a terminal (someone is at it: scripts and schedulers start no
background process), and never under CI (`CI=true`).
`CAMPAIGN_WARM_DIR` is where its socket and log live (default: $XDG_RUNTIME_DIR, else the
temporary folder, in a folder `campaign-<uid>` only the user can read).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib
import io
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

COMMANDS = ("count",)  # the commands a warm process runs: those that build with dbt and send nothing
IDLE_SECONDS = 15 * 60
_HEADER = struct.Struct("!I")  # the length of the request that follows


def wanted(environ=os.environ) -> bool:
    """Whether this command should use (and start) a warm process."""
    setting = environ.get("CAMPAIGN_WARM", "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    ci = environ.get("CI", "").strip().lower() not in ("", "0", "false")
    return not ci and sys.stderr.isatty()  # someone at a terminal, `count --json | jq` included


def forward(argv: list[str]) -> int | None:
    """The exit status of `argv` run by the warm process; None when there is none to run it."""
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(str(_paths().socket))  # refused when its process is gone: run here
    except OSError:
        return None
    with connection:
        request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        try:
            socket.send_fds(connection, [_HEADER.pack(len(request)) + request], [0, 1, 2])
        except OSError:
            return None
        return _wait(connection)


def _wait(connection: socket.socket) -> int:
    """Relay Ctrl-C and termination to the fork running the command; its exit status."""
    reader = connection.makefile("r", encoding="utf-8")
    child: list[int] = []

    def relay(signum, _frame):
        if child:
            with contextlib.suppress(OSError):
                os.kill(child[0], signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, relay)
    for line in reader:
        message = json.loads(line)
        if "pid" in message:
            child.append(message["pid"])
        elif "exit" in message:
            return int(message["exit"])
    print("error: the warm campaign process ended before the command did; run it again", file=sys.stderr)
    return 1


_SERVE = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from campaign_compiler.cli import main; from campaign_compiler.warm import serve; "
    "serve(sys.argv[2], sys.argv[3], main)"
)


def start(project_dir: str) -> None:
    """Start a warm process in the background, warmed on `project_dir`, unless one serves this
    environment already."""
    try:
        paths = _paths()
    except OSError:
        return
    if _answers(paths.socket):
        return
    with contextlib.suppress(OSError):
        subprocess.Popen(  # the same interpreter and import path as this command: the same code
            [sys.executable, "-c", _SERVE, json.dumps(sys.path), paths.key, os.path.abspath(project_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )


def _answers(path: Path) -> bool:
    """Whether a warm process listens on `path` (a socket left by one that was killed does not)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class _Paths:
    def __init__(self, folder: Path, key: str):
        self.folder, self.key = folder, key
        self.socket = folder / f"warm-{key}.sock"
        self.lock = folder / f"warm-{key}.lock"
        self.log = folder / f"warm-{key}.log"


def _paths(key: str | None = None) -> _Paths:
    base = os.environ.get("CAMPAIGN_WARM_DIR") or os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = Path(base) / f"campaign-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stat = folder.stat()
    if stat.st_uid != os.getuid() or stat.st_mode & 0o077:
        raise PermissionError(f"{folder} must belong to you and be private (chmod 700)")
    return _Paths(folder, key or _fingerprint())


@functools.cache  # once a process: a cold count asks for it to look for a warm process, then to start one
def _fingerprint() -> str:
    """What the warm process's imported code depends on: the interpreter, the import path, when
    each folder on it last changed (installing or removing a package changes its folder), and this
    package's own files. The first folder on the path is the script's (or, with `python -m`, the
    working directory, whose files change as dbt writes): named, not dated."""
    parts = [sys.executable, *sys.path]
    package = Path(__file__).resolve().parent
    for folder in sys.path[1:]:
        with contextlib.suppress(OSError):
            parts.append(f"{folder}:{os.stat(folder).st_mtime_ns}")
    for source in sorted(package.rglob("*.py")):
        stat = source.stat()
        parts.append(f"{source}:{stat.st_mtime_ns}:{stat.st_size}")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def serve(key: str, project_dir: str, run: Callable[[list[str]], None]) -> None:
    """The warm process for the environment `key` names: warm up, then fork once per request until
    idle for IDLE_SECONDS. `run(argv)` is the `campaign` command."""
    paths = _paths(key)
    lock = open(paths.lock, "w")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another one serves (or is warming up)
    log = open(paths.log, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - the process's log
    _note(log, f"warming up (pid {os.getpid()}, project {project_dir})")
    _warm_up(project_dir, log)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forks are reaped by the kernel
    signal.signal(signal.SIGTERM, _stop)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = paths.folder / f".{paths.socket.name}.{os.getpid()}"
    try:
        listener.bind(str(staging))
        listener.listen(16)
        os.replace(staging, paths.socket)  # clients find the socket once it is ready
    except OSError as problem:
        _note(log, f"cannot listen on {paths.socket}: {problem}")
        return
    _note(log, "ready")
    try:
        _loop(listener, run, log, lock)
    except SystemExit:
        _note(log, "stopped")
    finally:
        with contextlib.suppress(OSError):
            paths.socket.unlink()
        _note(log, "exiting")


def _stop(_signum, _frame) -> None:
    raise SystemExit(0)


def _loop(listener: socket.socket, run, log, lock) -> None:
    while True:
        ready, _, _ = select.select([listener], [], [], IDLE_SECONDS)
        if not ready:
            return
        connection, _ = listener.accept()
        connection.settimeout(5)  # a caller that connects and says nothing does not hold the others
        try:
            request, fds = _receive(connection)
        except (OSError, ValueError) as problem:
            _note(log, f"bad request: {problem}")
            connection.close()
            continue
        if request is None:  # a client asking whether it is there
            connection.close()
            continue
        pid = os.fork()
        if pid == 0:
            for own in (listener, lock, log):  # the warm process's, not the command's: a fork that
                own.close()  # outlives it must not keep its lock
            _child(connection, request, fds, run)  # never returns
        for fd in fds:
            os.close(fd)
        connection.close()
        _note(log, f"pid {pid}: campaign {' '.join(request['argv'])} (in {request['cwd']})")


def _receive(connection: socket.socket) -> tuple[dict | None, list[int]]:
    """The command sent on `connection` and the caller's stdin, stdout and stderr; None when the
    caller only connected (asking whether a warm process is there) and closed."""
    data, fds, _flags, _address = socket.recv_fds(connection, 65536, 3)
    if not data and not fds:
        return None, []
    if len(fds) != 3 or len(data) < _HEADER.size:
        for fd in fds:
            os.close(fd)
        raise ValueError("expected the command and three file descriptors")
    (length,) = _HEADER.unpack_from(data)
    body = data[_HEADER.size :]
    while len(body) < length:
        more = connection.recv(length - len(body))
        if not more:
            raise ValueError("the request ended early")
        body += more
    return json.loads(body), fds


def _child(connection: socket.socket, request: dict, fds: list[int], run) -> None:
    """Become the caller's command, run it, report its exit status, and end: never returns (the
    warm process's own clean-up must not run in its forks)."""
    status = 1
    try:
        _become(request, fds)
        connection.settimeout(None)
        connection.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        status = _run(run, request["argv"])
    except BaseException:  # noqa: BLE001 - reported on the caller's stderr, as it would be in-process
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(OSError):
            connection.sendall(json.dumps({"exit": status}).encode() + b"\n")
        os._exit(status)


def _become(request: dict, fds: list[int]) -> None:
    """The caller's stdin, stdout, stderr, working directory, environment and command line."""
    for signum in (signal.SIGCHLD, signal.SIGTERM):  # as in a new process: the command waits for its
        signal.signal(signum, signal.SIG_DFL)  # own subprocesses, and stops when told to
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    os.chdir(request["cwd"])
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", line_buffering=os.isatty(1))
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", line_buffering=True)
    sys.argv = ["campaign", *request["argv"]]


def _run(run, argv: list[str]) -> int:
    """The exit status of `run(argv)`, as the interpreter would have exited with it."""
    try:
        run(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except KeyboardInterrupt:
        return 130
    return 0


_WARM_MODULES = (  # what a fork would otherwise import on its first count
    "dbt.cli.main",
    "dbt.compilation",
    "dbt.task.build",
    "dbt_common.clients.agate_helper",
    "rich.live",
    "rich.spinner",
    "rich.table",
    "campaign_compiler.console",
    "campaign_compiler.occurrence",
    "campaign_compiler.canvas.html",
    "campaign_compiler.project.profile",
    "campaign_compiler.run.build",
    "campaign_compiler.run.counts",
    "campaign_compiler.run.lock",
)


def _warm_up(project_dir: str, log) -> None:
    """Import what `count` uses, parse a condition in each dialect, and parse the project twice
    (in full, then partially, as a command does), in a folder of the warm process's own (the
    project's target/ is left alone): dbt's Jinja, its serialisers and sqlglot's tables stay warm in
    every fork. Nothing of the project is kept: each fork reads it again."""
    for name in _WARM_MODULES:
        importlib.import_module(name)
    import sqlglot
    from dbt.cli.main import dbtRunner

    from .engines import DIALECTS

    for dialect in DIALECTS:
        sqlglot.parse_one(_WARM_SQL, read=dialect).sql(dialect=dialect)
    scratch = tempfile.mkdtemp(prefix="campaign-warm-")
    previous = os.getcwd()
    try:
        os.chdir(project_dir)
        for _ in range(2):
            parsed = dbtRunner().invoke(
                ["parse", "--no-write-json", "--target-path", scratch, "--log-path", scratch, "--log-level", "none"]
            )
        _note(log, "warm" if parsed.success else f"parse failed while warming up: {parsed.exception}")
    except Exception as problem:  # noqa: BLE001 - warming is best effort; the forks parse anyway
        _note(log, f"warming up: {problem}")
    finally:
        os.chdir(previous)
        shutil.rmtree(scratch, ignore_errors=True)


_WARM_SQL = "select a, count(*) from t where b = 'x' and c in (1, 2) or d is null group by a having sum(e) > 4000"


def _note(log, text: str) -> None:
    log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
