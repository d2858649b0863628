"""The warm process of `campaign count`: the same output, exit status and errors as a command run
on its own, in the caller's folder and environment; a killed warm process costs nothing but time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import demo_copy

from campaign_compiler.cli import _peek

pytestmark = pytest.mark.slow

ONE = """\
campaign: one
description: One activity
dimension: profiles
activities:
  fr:
    type: build_audience
    where: "country = 'FR'"
"""


def campaign(project: Path, folder: Path, *args: str, cwd: Path | None = None, **env: str):
    """`campaign args` as a user's shell runs it (the installed command: with `python -m`, the
    working directory is first on the import path, and each folder has a warm process of its own),
    the warm process asked for."""
    environ = {**os.environ, "CAMPAIGN_WARM": "1", "CAMPAIGN_WARM_DIR": str(folder), "NO_COLOR": "1", **env}
    return subprocess.run(
        [str(Path(sys.executable).with_name("campaign")), *args],
        cwd=cwd or project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def served(folder: Path) -> list[str]:
    """The commands the warm process ran, from its log."""
    return [
        line.split(": ", 1)[1]
        for log in folder.glob("*/warm-*.log")
        for line in log.read_text().splitlines()
        if ": campaign " in line
    ]


def server_pid(folder: Path) -> int:
    logs = list(folder.glob("*/warm-*.log"))
    starts = [line for log in logs for line in log.read_text().splitlines() if "warming up (pid" in line]
    return int(starts[-1].split("(pid ")[1].split(",")[0])


def wait_ready(folder: Path, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in folder.glob("*/warm-*.sock"):
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(path))
                    return path
                except OSError:
                    pass
        time.sleep(0.2)
    raise AssertionError(f"no warm process answered in {timeout} s: {[p.read_text() for p in folder.glob('*/*.log')]}")


@pytest.fixture
def warm(tmp_path):
    project = demo_copy(tmp_path / "demo")
    project.write("campaigns/one.yml", ONE)
    folder = Path(tempfile.mkdtemp(prefix="cw", dir="/tmp"))  # a socket's path has at most 107 bytes
    yield project.root, folder
    for log in folder.glob("*/warm-*.log"):
        for line in log.read_text().splitlines():
            if "warming up (pid" in line:
                pid = int(line.split("(pid ")[1].split(",")[0])
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
    shutil.rmtree(folder, ignore_errors=True)


def test_a_count_in_the_warm_process_is_the_count_run_on_its_own(warm):
    project, folder = warm
    cold = campaign(project, folder, "count", "one", "--json")
    assert cold.returncode == 0, cold.stderr
    assert served(folder) == []
    wait_ready(folder)
    elsewhere = project.parent  # the caller's folder and --project-dir reach the command
    hot = campaign(project, folder, "count", "one", "--json", "--project-dir", str(project), cwd=elsewhere)
    assert hot.returncode == 0, hot.stderr
    assert json.loads(hot.stdout) == json.loads(cold.stdout)
    assert served(folder) == [f"campaign count one --json --project-dir {project} (in {elsewhere})"]
    # The caller's environment: a target of its own through $DBT_TARGET, unknown to the profile.
    other = campaign(project, folder, "count", "one", "--json", DBT_TARGET="nowhere")
    assert other.returncode == 2, other.stderr
    assert 'profiles.yml:3:3: error: profile "hotel_demo" has no target "nowhere"' in other.stderr
    assert len(served(folder)) == 2


def test_errors_and_exit_status_come_back_from_the_warm_process(warm):
    project, folder = warm
    assert campaign(project, folder, "count", "one", "--json").returncode == 0
    wait_ready(folder)
    (project / "campaigns" / "broken.yml").write_text(ONE.replace("one", "broken").replace("country", "nation"))
    broken = campaign(project, folder, "count", "broken")
    assert broken.returncode == 2
    assert broken.stderr.startswith('campaigns/broken.yml:7:13: error: unknown column "nation"'), broken.stderr
    assert broken.stdout == ""
    assert served(folder) == [f"campaign count broken (in {project})"]


def test_a_killed_warm_process_leaves_the_next_count_to_run_on_its_own_and_start_another(warm):
    project, folder = warm
    first = campaign(project, folder, "count", "one", "--json")
    wait_ready(folder)
    os.kill(server_pid(folder), signal.SIGKILL)  # its socket stays behind
    time.sleep(0.5)
    again = campaign(project, folder, "count", "one", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)
    assert served(folder) == []  # run on its own
    wait_ready(folder)
    assert campaign(project, folder, "count", "one", "--json").returncode == 0
    assert len(served(folder)) == 1


def test_commands_other_than_count_and_calls_with_arguments_never_use_it(warm):
    project, folder = warm
    assert campaign(project, folder, "validate", "one").returncode == 0
    assert not folder.exists() or not list(folder.glob("*/*.log"))


def test_the_command_is_found_among_the_options():
    assert _peek(["count", "one"]) == ("count", {})
    assert _peek(["--target", "count", "run", "count"])[0] == "run"
    assert _peek(["--project-dir", "x", "--now", "2026-01-01", "count"]) == (
        "count",
        {"--project-dir": "x", "--now": "2026-01-01"},
    )
    assert _peek(["--help"]) == (None, {})


def test_the_project_the_warm_process_parses_is_found_before_or_after_the_command():
    assert _peek(["count", "one", "--project-dir", "p"])[1] == {"--project-dir": "p"}
    assert _peek(["--project-dir=p", "count", "one"]) == ("count", {"--project-dir": "p"})


def test_ctrl_c_at_the_caller_reaches_the_fork_and_its_exit_status_comes_back(tmp_path):
    """The caller relays SIGINT to the process running its command (here a stand-in: `sleep`), and
    exits with the status the warm process reports."""
    folder = Path(tempfile.mkdtemp(prefix="cw", dir="/tmp"))
    try:
        environ = {**os.environ, "CAMPAIGN_WARM": "1", "CAMPAIGN_WARM_DIR": str(folder)}
        key = subprocess.run(
            [sys.executable, "-c", "from campaign_compiler import warm; print(warm._paths().socket)"],
            env=environ,
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        ).stdout.strip()
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(key)
            listener.listen(1)
            caller = subprocess.Popen(  # started as the key was computed: `python -c`, the same import path
                [
                    sys.executable,
                    "-c",
                    "import sys; from campaign_compiler.cli import main; sys.argv[1:] = ['count', 'x']; main()",
                ],
                env=environ,
                cwd=tmp_path,
            )
            listener.settimeout(60)
            connection, _ = listener.accept()
            socket.recv_fds(connection, 65536, 3)
            stand_in = subprocess.Popen(["sleep", "60"])
            connection.sendall(json.dumps({"pid": stand_in.pid}).encode() + b"\n")
            time.sleep(0.5)
            caller.send_signal(signal.SIGINT)
            assert stand_in.wait(timeout=10) == -signal.SIGINT
            connection.sendall(json.dumps({"exit": 130}).encode() + b"\n")
            assert caller.wait(timeout=10) == 130
            connection.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
