"""Compile time of a generated 200-activity campaign over the demo's data model.

    python bench/bench_compile.py [--activities 200] [--runs 5]

Writes the campaign into a temporary copy of dbt_project/, then measures, in-process, loading +
validating + writing the models (what `campaign compile` does after Python has started), and the
wall time of the `campaign compile` command itself. Prints one line per measure.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BLOCK = """\
  b{n}_gold:
    type: build_audience
    where: "loyalty_tier in ('gold', 'platinum') and country = '{country}'"
  b{n}_spenders:
    type: build_audience
    where: {{link: bookings, where: "status in ('confirmed', 'completed')", having: "sum(amount) > {amount}"}}
  b{n}_target: {{type: combine, mode: union, inputs: [b{n}_gold, b{n}_spenders]}}
  b{n}_history:
    type: enrichment
    input: b{n}_target
    add:
      stays: {{link: bookings, where: "status = 'completed'", aggregate: "count(*)"}}
      domain: "lower(split_part(email, '@', 2))"
  b{n}_unique:
    type: deduplication
    input: b{n}_history
    keys: [email]
    keep: {{order_by: "stays desc"}}
    duplicates: dupes
  b{n}_segments:
    type: split
    input: b{n}_unique
    subsets:
      - {{name: loyal, where: "stays >= 2", limit: {{count: 50, order_by: "stays desc"}}}}
      - {{name: sample, limit: {{percent: 10, random: true, seed: {seed}}}}}
    complement: rest
  b{n}_done: {{type: end, input: b{n}_segments.loyal}}
"""
BLOCK_SIZE = 7
COUNTRIES = ["FR", "DE", "GB", "ES", "IT", "US", "NL", "BE", "CH", "JP"]


def campaign_text(activities: int) -> str:
    blocks, extra = divmod(activities, BLOCK_SIZE)
    body = "".join(
        BLOCK.format(n=f"{n:03d}", seed=n, country=COUNTRIES[n % len(COUNTRIES)], amount=500 + 10 * n)
        for n in range(blocks)
    )
    body += "".join(
        f"  extra{i}: {{type: build_audience, where: \"created_at > date '202{i}-01-01'\"}}\n" for i in range(extra)
    )
    return f"campaign: bench{activities}\ndimension: profiles\nactivities:\n{body}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from campaign_compiler.compile.emit import write_campaign
    from campaign_compiler.errors import Diagnostics
    from campaign_compiler.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(REPO / "dbt_project", project, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs"))
        name = f"bench{args.activities}"
        (project / "campaigns" / f"{name}.yml").write_text(campaign_text(args.activities))

        timings, models = [], 0
        for _ in range(args.runs):
            started = time.perf_counter()
            diagnostics = Diagnostics()
            campaign = Workspace(project).load(name, diagnostics)
            diagnostics.raise_if_any()
            written = write_campaign(campaign, Workspace(project).dbt)
            timings.append(time.perf_counter() - started)
            models = len(written.models)
        print(
            f"in-process validate + compile, {len(campaign.activities)} activities, {models} models: "
            f"median {statistics.median(timings) * 1000:.0f} ms, min {min(timings) * 1000:.0f} ms "
            f"({args.runs} runs)"
        )

        walls = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "campaign_compiler", "--project-dir", str(project), "compile", name],
                check=True,
                capture_output=True,
            )
            walls.append(time.perf_counter() - started)
        print(
            f"`campaign compile {name}` wall time: median {statistics.median(walls) * 1000:.0f} ms, "
            f"min {min(walls) * 1000:.0f} ms ({args.runs} runs)"
        )


if __name__ == "__main__":
    main()
