"""Wall time of `campaign count` on the demo project, as a user runs it.

    python bench/bench_count.py [--campaign summer_promo] [--target dev] [--runs 3]

Runs the command in a temporary copy of dbt_project/ (the first run also installs the dbt package
with `dbt deps` and is reported apart), and prints the median and minimum of the following runs.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", default="summer_promo")
    parser.add_argument("--target", default="dev")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(
            REPO / "dbt_project",
            project,
            ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "models", "*.duckdb*", "spark"),
        )
        (project / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
        command = [
            sys.executable,
            "-m",
            "campaign_compiler",
            "--project-dir",
            str(project),
            "count",
            args.campaign,
            "--json",
            "--target",
            args.target,
        ]

        def timed() -> float:
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            return time.perf_counter() - started

        first = timed()
        walls = [timed() for _ in range(args.runs)]
        print(
            f"campaign count {args.campaign} --target {args.target}: first run (with dbt deps) {first:.1f} s; "
            f"then median {statistics.median(walls):.1f} s, min {min(walls):.1f} s ({args.runs} runs)"
        )


if __name__ == "__main__":
    main()
