"""Fixed cost of the commands: the wall time of `count`, `status` and `send` when there is next to nothing to do.

    python bench/bench_startup.py [--target dev|postgres|both] [--runs 5] [--repo PATH] [--before PATH]

A fresh copy of the demo project outside the repository, with two small campaigns of its own:
`one` (one build_audience: `count one` is the command's fixed cost, a dbt build of one model and
its tests) and `ping` (an audience of three profiles and an SMS to the outbox, sent once before
timing: `send ping --yes` then finds nothing left to send, so its wall is the start-up: profile,
lock, the check of the build, the delivery log; `status ping` reads the logs). The first run of
each command (dbt deps, seeds, a full dbt parse) is left out; then the runs of the three commands
are interleaved and the median and minimum of each printed, one row per command and target, with
the median CPU seconds of the command's process (user and system), which a busy machine inflates less.
`count one, warm process` is the same count with CAMPAIGN_WARM=1: the first run starts the warm
process (dbt imported and warmed once), the runs timed are forks of it (their CPU is not the
client's: only the wall compares).

PostgreSQL (`--target postgres`): the server of $PGHOST (default 127.0.0.1:5432, user postgres),
in a schema of its own that is dropped at the end. `--repo` measures another checkout of
campaign-compiler (its code and its dbt package) with this same benchmark; `--before PATH` measures a
second one (an older commit: `git worktree add /tmp/before main`) alongside, runs interleaved, and
prints the ratio of the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CAMPAIGNS = {
    "one": """\
campaign: one
description: One activity, for the fixed cost of count
dimension: profiles
activities:
  fr:
    type: build_audience
    where: "country = 'FR'"
""",
    "ping": """\
campaign: ping
description: Three profiles and an SMS, sent once, for the start-up of send and status
dimension: profiles
activities:
  few:
    type: build_audience
    where: "profile_id <= 3"
  hello:
    type: sms
    input: few
    template: templates/summer_sms.yml
""",
}

COMMANDS = {
    "count one": ["count", "one", "--json"],
    "count one, warm process": ["count", "one", "--json"],
    "status ping": ["status", "ping"],
    "send ping (nothing left)": ["send", "ping", "--yes"],
}
WARM = "count one, warm process"  # run with CAMPAIGN_WARM=1: a fork of the warm process runs it


def make_project(root: Path, repo: Path) -> Path:
    project = root / "project"
    shutil.copytree(
        repo / "dbt_project",
        project,
        ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "models", "*.duckdb*", "spark"),
    )
    (project / "packages.yml").write_text(f"packages:\n  - local: {repo}\n")
    for name, text in CAMPAIGNS.items():
        (project / "campaigns" / f"{name}.yml").write_text(text)
    return project


def campaign(project: Path, target: str, args: list[str], env: dict) -> float:
    """The wall time of one `campaign` command, which must succeed. The CPU seconds recorded are
    this command's process's: a warm process's fork is not ours, its CPU is not counted."""
    command = [sys.executable, "-m", "campaign_compiler", "--project-dir", str(project), *args, "--target", target]
    started, cpu = time.perf_counter(), _children_cpu()
    # run in the project: `python -m` puts the working directory first on sys.path, before $PYTHONPATH
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=project)
    wall = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr}")
    CPU.append(_children_cpu() - cpu)
    return wall


CPU: list[float] = []  # the CPU seconds of each command, in the order run: less sensitive than walls to a busy machine


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Checkout:
    """A checkout of campaign-compiler measured: its demo project copy and the environment its
    commands run in (its own schema on PostgreSQL)."""

    label: str
    project: Path
    env: dict


def checkout(label: str, repo: Path, root: Path) -> Checkout:
    env = {
        **os.environ,
        "CAMPAIGN_SCHEMA": f"bench_startup_{uuid.uuid4().hex[:8]}",
        "PYTHONPATH": str(repo),
        "CAMPAIGN_WARM": "0",
        "CAMPAIGN_WARM_DIR": tempfile.mkdtemp(prefix="cw", dir="/tmp"),  # short: a socket's path
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run it: the package's bytecode cached, not compiled each time
    return Checkout(label, make_project(root / label, repo), env)


def measure(checkouts: list[Checkout], target: str, runs: int) -> dict[tuple[str, str], list[float]]:
    """(checkout, command) -> walls; the runs of every command of every checkout interleaved."""
    for each in checkouts:
        campaign(each.project, target, ["run", "ping", "--yes"], each.env)  # later sends find nothing left
        for name, args in COMMANDS.items():
            campaign(each.project, target, args, environment(each, name))  # the first run: dbt's full parse
        wait_warm(Path(each.env["CAMPAIGN_WARM_DIR"]))
    walls: dict[tuple[str, str], list[float]] = {(c.label, name): [] for c in checkouts for name in COMMANDS}
    for _ in range(runs):
        for name, args in COMMANDS.items():
            for each in checkouts:
                walls[each.label, name].append(campaign(each.project, target, args, environment(each, name)))
                CPUS.setdefault((target, each.label, name), []).append(CPU[-1])
    return walls


def environment(each: Checkout, command: str) -> dict:
    return {**each.env, "CAMPAIGN_WARM": "1"} if command == WARM else each.env


def wait_warm(folder: Path, timeout: float = 60) -> None:
    """Until the warm process the first warm run started answers (a checkout without one: timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in folder.glob("*/warm-*.sock"):
            with socket.socket(socket.AF_UNIX) as probe, contextlib.suppress(OSError):
                probe.connect(str(path))
                return
        time.sleep(0.2)


def stop_warm(folder: Path) -> None:
    for log in folder.glob("*/warm-*.log"):
        for line in log.read_text().splitlines():
            if "warming up (pid" in line:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(line.split("(pid ")[1].split(",")[0]), signal.SIGTERM)
    shutil.rmtree(folder, ignore_errors=True)


CPUS: dict[tuple[str, str, str], list[float]] = {}  # (target, checkout, command) -> CPU seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=["dev", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repo", type=Path, default=REPO, help="The checkout to measure (default: this one).")
    parser.add_argument("--before", type=Path, help="Another checkout (an older commit) measured alongside.")
    args = parser.parse_args()
    targets = ["dev", "postgres"] if args.target == "both" else [args.target]

    header = f"{'command':26} {'target':9} {'median':>7} {'min':>6}"
    if args.before:
        header += f" {'before':>7} {'min':>6} {'after/before':>12}"
    print(f"{header}  ({args.runs} runs each, interleaved; seconds)")
    with tempfile.TemporaryDirectory() as tmp:
        checkouts = [checkout("after", args.repo.resolve(), Path(tmp))]
        if args.before:
            checkouts.append(checkout("before", args.before.resolve(), Path(tmp)))
        try:
            for target in targets:
                walls = measure(checkouts, target, args.runs)
                for name in COMMANDS:
                    after = walls["after", name]
                    row = f"{name:26} {target:9} {statistics.median(after):7.2f} {min(after):6.2f}"
                    if args.before:
                        before = walls["before", name]
                        ratio = statistics.median(after) / statistics.median(before)
                        row += f" {statistics.median(before):7.2f} {min(before):6.2f} {ratio:12.2f}"
                    row += f"  cpu {statistics.median(CPUS[target, 'after', name]):.2f}"
                    row += " (client only)" if name == WARM else ""
                    if args.before:
                        row += f" (before {statistics.median(CPUS[target, 'before', name]):.2f})"
                    print(row, flush=True)
        finally:
            for each in checkouts:
                stop_warm(Path(each.env["CAMPAIGN_WARM_DIR"]))
            if "postgres" in targets:
                for each in checkouts:
                    drop_schema(each.env["CAMPAIGN_SCHEMA"])


def drop_schema(schema: str) -> None:
    import psycopg2

    connection = psycopg2.connect(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "5432"),
        user=os.environ.get("PGUSER", "postgres"),
        password=os.environ.get("PGPASSWORD", ""),
        dbname=os.environ.get("PGDATABASE", "postgres"),
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'drop schema if exists "{schema}" cascade')
    connection.close()


if __name__ == "__main__":
    main()
