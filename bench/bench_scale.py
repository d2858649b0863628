"""How `campaign count` and `campaign send` grow with the number of profiles.

    python bench/bench_scale.py --profiles 100000 1000000 [10000000] [--target duckdb|postgres] [--runs 3]

For each size, a fresh warehouse of the reference campaign's data (bench_reference.py: profiles,
about three bookings each for 70% of them, generated in SQL), each profile but one in ten given a
phone number. Then, --runs times: `campaign count ref` (the reference campaign of issue 13) and
`campaign send` of a campaign sending an SMS to the outbox to every profile with a phone, each on
an empty delivery log and outbox (bench_send.py's measured child process). Prints one row per size
(medians: wall seconds, CPU seconds of the command's process, user + system, on DuckDB the
warehouse's work too; the send's peak resident memory) and the factor by which each figure grew
from the size before: linear growth is the factor of the sizes (10 from 100k to 1M), above it worse.
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

import bench_reference as reference  # bench/ is the script's folder
from bench_segments import Database
from bench_send import measured_send

PHONES = """
alter table {raw}.profiles add column phone varchar;
update {raw}.profiles set phone = '+336' || lpad(cast(profile_id as varchar), 8, '0') where profile_id % 10 <> 3
"""
SMS_CAMPAIGN = """\
campaign: texts
dimension: profiles
activities:
  everyone: {type: build_audience}
  text:
    type: sms
    input: everyone
    template: templates/text.yml
    category: transactional
"""
SMS_TEMPLATE = 'body: "Hi {{ first_name }}, your offer is waiting."\n'
FIGURES = ("count wall", "count CPU", "send wall", "send CPU", "send peak MB")


def prepare(folder: Path, target: str, profiles: int) -> Path:
    """The data and the project for `profiles` profiles: the reference campaign's, with phones and
    an SMS channel to the outbox."""
    database_path = folder / "reference.duckdb"
    database = Database(target, database_path)
    reference.generate(database, profiles)
    for statement in PHONES.format(raw=reference.RAW).split(";"):
        database.run(statement)
    database.close()
    project = folder / "project"
    reference.write_project(project, target, database_path)
    model = (project / "campaign_project.yml").read_text()
    model = model.replace("created_at: timestamp}", "created_at: timestamp, phone: text}")
    model = model.replace("addresses: {email: email}", "addresses: {email: email, sms: phone}")
    model = model.replace("channels: {}", "channels: {sms: {provider: outbox}}")
    (project / "campaign_project.yml").write_text(model)
    (project / "campaigns" / "texts.yml").write_text(SMS_CAMPAIGN)
    (project / "templates" / "text.yml").write_text(SMS_TEMPLATE)
    return project


def measure(folder: Path, target: str, profiles: int, runs: int) -> dict[str, float]:
    """Medians of `runs` counts and sends at one size, and the number of messages sent."""
    project = prepare(folder, target, profiles)
    reference.count(project, "one")  # installs the package (dbt deps), creates the shared tables
    messages = reference.count(project, "texts")[2]["counts"]["text"]
    figures: dict[str, list[float]] = {name: [] for name in FIGURES}
    for _ in range(runs):
        wall, cpu, _ = reference.count(project, "ref")
        figures["count wall"].append(wall)
        figures["count CPU"].append(cpu)
        database = Database(target, folder / "reference.duckdb")
        for table in ("campaign_deliveries", "campaign_runs"):
            database.run(f"truncate table {reference.BUILT}.{table}")
        database.close()
        shutil.rmtree(project / "target" / "outbox", ignore_errors=True)
        wall, cpu, peak, _ = measured_send(project, "texts")
        figures["send wall"].append(wall)
        figures["send CPU"].append(cpu)
        figures["send peak MB"].append(peak)
        _check_sent(folder, target, messages)
    return {"messages": messages} | {name: statistics.median(values) for name, values in figures.items()}


def _check_sent(folder: Path, target: str, messages: int) -> None:
    """Every message of the send logged sent, once."""
    database = Database(target, folder / "reference.duckdb")
    ((sent, keys),) = database.run(
        f"select count(*), count(distinct message_key) from {reference.BUILT}.campaign_deliveries where status = 'sent'"
    )
    database.close()
    if not sent == keys == messages:
        sys.exit(f"the send logged {sent:,} sent messages ({keys:,} keys), not {messages:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--target", choices=("duckdb", "postgres"), default="duckdb")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for profiles in sorted(args.profiles):
        folder = Path(tempfile.mkdtemp(prefix="bench_scale_"))
        started = time.perf_counter()
        try:
            rows.append((profiles, measure(folder, args.target, profiles, args.runs)))
        finally:
            _clean(folder, args.target)
        print(f"{profiles:,} profiles measured in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    _print(args, rows)


def _clean(folder: Path, target: str) -> None:
    if target == "postgres":
        database = Database(target, folder / "reference.duckdb")
        for schema in (reference.RAW, reference.BUILT, reference.HAND):
            database.run(f"drop schema if exists {schema} cascade")
        database.close()
    subprocess.run(["rm", "-rf", str(folder)], check=True)


def _print(args, rows: list[tuple[int, dict[str, float]]]) -> None:
    print(f"{args.target}, medians of {args.runs} run(s); × = factor from the row above (linear: the profiles' ×)")
    print(f"| profiles | × | messages | {' | '.join(FIGURES)} | {' | '.join('× ' + name for name in FIGURES)} |")
    print("|" + "---|" * (3 + 2 * len(FIGURES)))
    previous = None
    for profiles, figures in rows:
        values = " | ".join(f"{figures[name]:.1f}" for name in FIGURES)
        growth = " | ".join(f"{figures[name] / previous[1][name]:.2f}" if previous else "—" for name in FIGURES)
        size = f"{profiles / previous[0]:g}" if previous else "—"
        print(f"| {profiles:,} | {size} | {figures['messages']:,} | {values} | {growth} |")
        previous = (profiles, figures)


if __name__ == "__main__":
    main()
