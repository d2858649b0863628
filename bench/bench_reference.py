"""`campaign count` of the reference campaign against the same tables written by hand in SQL.

    python bench/bench_reference.py [--profiles 1000000] [--target duckdb|postgres] [--runs 3] [--threads 1]
                                    [--keep DIR]

Sets up a fresh dbt project in a temporary folder (outside the repository), generates the data in
SQL on the warehouse itself (generate_data.py writes CSV in Python, which takes minutes at 10M
profiles; the same formulas run on DuckDB and PostgreSQL, so both hold the same rows): profiles
with missing, invalid and shared emails, about three bookings each for 70% of them, 1% orphan
bookings. Then, interleaved, --runs times each: `campaign count ref --json` (the reference
campaign), `campaign count one --json` (a one-activity campaign on the same data: the fixed cost),
and a hand-written SQL script that materialises every working table the campaign has (exact counts
on every transition need them) and its channels' message tables with the same exclusions. Every
count of `campaign count` must equal the hand-written table's. Prints one row of medians:
profiles, count wall, fixed wall, net (count - fixed), hand SQL wall, net / hand; on DuckDB, which
runs inside the processes timed, the same in CPU seconds (user + system) too: on a machine shared
with other work, CPU time moves less than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_segments import Database, dbt_project, profiles_yml  # bench/ is the script's folder

REPO = Path(__file__).resolve().parents[1]
RAW = "ref_raw"
BUILT = "ref_built"
HAND = "ref_hand"

# {rows}: the row numbers 1..n as column `id` (DuckDB's range, PostgreSQL's generate_series).
PROFILES = """
create table {raw}.profiles as
select id as profile_id,
    'Guest' || cast(id % 997 as varchar) as first_name,
    case when id % 50 = 7 then null
         when id % 50 = 11 then 'n/a'
         when id % 50 = 13 then 'guest' || cast(id - 1 as varchar) || '@example.com'
         when id % 50 = 17 then ' Guest' || cast(id - 3 as varchar) || '@Example.com'
         else 'guest' || cast(id as varchar) || '@example.com' end as email,
    case when (id * 7919) % 10 < 6 then true when (id * 7919) % 10 < 9 then false end as email_opt_in,
    case (id * 31) % 10 when 0 then 'FR' when 1 then 'FR' when 2 then 'DE' when 3 then 'GB' when 4 then 'ES'
         when 5 then 'IT' when 6 then 'US' when 7 then 'NL' when 8 then 'BE' else 'CH' end as country,
    case when (id * 17) % 20 < 11 then 'none' when (id * 17) % 20 < 16 then 'silver'
         when (id * 17) % 20 < 19 then 'gold' else 'platinum' end as loyalty_tier,
    timestamp '2015-01-01' + (id * 3) * interval '1 second' as created_at
from {rows}
"""
BOOKINGS = """
create table {raw}.bookings as
select id as booking_id,
    case when id % 100 = 0 then {n} + id else 1 + (id * 2654435761) % ({n} * 7 / 10 + 1) end as profile_id,
    1 + (id * 13) % 40 as hotel_id,
    case when (id * 69069) % 100 < 15 then 'cancelled' when (id * 69069) % 100 < 18 then 'pending'
         when (id * 69069) % 100 < 60 then 'completed' else 'confirmed' end as status,
    case when id % 50 = 3 then null else cast(50 + (id * 48271) % 2000 as decimal(12, 2)) end as amount,
    cast(1 + id % 7 as integer) as nights,
    date '2023-01-01' + cast((id * 7) % 1600 as integer) as checkin_date
from {rows}
"""

DATA_MODEL = """\
version: 1
sql_dialect: postgres
entities:
  profiles:
    source: raw.profiles
    key: profile_id
    columns: {profile_id: integer, first_name: text, email: text, email_opt_in: boolean, country: text,
              loyalty_tier: text, created_at: timestamp}
    addresses: {email: email}
    consent: {email: email_opt_in}
    links:
      bookings: {entity: bookings, on: {profile_id: profile_id}}
  bookings:
    source: raw.bookings
    key: booking_id
    columns: {booking_id: integer, profile_id: integer, hotel_id: integer, status: text, amount: number,
              nights: integer, checkin_date: date}
channels: {}
"""

CAMPAIGN = """\
campaign: ref
dimension: profiles
activities:
  fr_gold:
    type: build_audience
    where: "country = 'FR' and loyalty_tier in ('gold', 'platinum')"
  big_spenders:
    type: build_audience
    where: {link: bookings, where: "status in ('confirmed', 'completed')", having: "sum(amount) > 4000"}
  target:
    type: combine
    mode: union
    inputs: [fr_gold, big_spenders]
  with_history:
    type: enrichment
    input: target
    add:
      stays: {link: bookings, where: "status = 'completed'", aggregate: "count(*)"}
      total_spent: {link: bookings, where: "status in ('confirmed', 'completed')", aggregate: "sum(amount)"}
  one_per_email:
    type: deduplication
    input: with_history
    keys: [email]
    keep: {order_by: "created_at desc"}
  segments:
    type: split
    input: one_per_email
    subsets:
      - name: vip
        where: "total_spent >= 6000"
        limit: {count: 1000, order_by: "total_spent desc"}
      - name: regulars
        where: "stays >= 2"
    complement: others
  vip_email:
    type: email
    input: segments.vip
    template: templates/offer.yml
  stay_reminder:
    type: email
    input: segments.regulars
    per: {link: bookings, as: booking, where: "status = 'confirmed'"}
    template: templates/reminder.yml
"""

ONE = """\
campaign: one
dimension: profiles
activities:
  fr_gold:
    type: build_audience
    where: "country = 'FR' and loyalty_tier in ('gold', 'platinum')"
"""

TEMPLATES = {
    "offer.yml": 'subject: "{{ first_name }}, an offer"\ntext: "Hello {{ first_name }}, you spent {{ total_spent }}."\n',
    "reminder.yml": 'subject: "Your stay on {{ booking.checkin_date }}"\ntext: "Hello {{ first_name }}, '
    '{{ booking.nights }} nights."\n',
}


def generate(database: Database, profiles: int) -> None:
    """The raw tables, generated in SQL (see the module's docstring)."""
    database.run(f"drop schema if exists {RAW} cascade")
    database.run(f"create schema {RAW}")
    for sql, count in ((PROFILES, profiles), (BOOKINGS, profiles * 3)):
        duckdb = database.target == "duckdb"
        rows = f"range(1, {count + 1}) as t(id)" if duckdb else f"generate_series(1::bigint, {count}) as id"
        database.run(sql.format(raw=RAW, rows=rows, n=profiles))
    if database.target == "postgres":
        database.run(f"analyze {RAW}.profiles")
        database.run(f"analyze {RAW}.bookings")


def write_project(root: Path, target: str, database_path: Path, threads: int = 1) -> None:
    """A dbt project reading the raw tables as sources, with the two campaigns; dbt runs `threads`
    models at a time."""
    profiles = profiles_yml("reference", target, database_path, BUILT, threads)
    dbt_project(root, "reference", RAW, ["profiles", "bookings"], profiles, DATA_MODEL)
    (root / "campaigns").mkdir()
    (root / "campaigns" / "ref.yml").write_text(CAMPAIGN)
    (root / "campaigns" / "one.yml").write_text(ONE)
    (root / "templates").mkdir()
    for name, text in TEMPLATES.items():
        (root / "templates" / name).write_text(text)


def count(project: Path, campaign: str) -> tuple[float, float, dict]:
    """Wall and CPU time (of the child process) and JSON output of `campaign count <campaign> --json`,
    as a user runs it."""
    command = [sys.executable, "-m", "campaign_compiler", "--project-dir", str(project), "count", campaign, "--json"]
    cpu = _cpu(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"campaign count {campaign} failed:\n{done.stderr}")
    return wall, _cpu(resource.RUSAGE_CHILDREN) - cpu, json.loads(done.stdout)


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


# The hand-written script: every working table of the reference campaign, and per email its
# candidates (with the reason of their exclusion, as the channel's counts need) and messages.
# {r} raw schema, {h} this script's schema, {b} the campaign's schema (its suppression list),
# {valid} the address check of the warehouse, {text} its text type.
HAND_SCRIPT = """
create table {h}.fr_gold as
select distinct profile_id from {r}.profiles where country = 'FR' and loyalty_tier in ('gold', 'platinum');

create table {h}.big_spenders as
select profile_id from {r}.bookings
where status in ('confirmed', 'completed') and profile_id in (select profile_id from {r}.profiles)
group by profile_id having sum(amount) > 4000;

create table {h}.target as
select profile_id from {h}.fr_gold
union all
select profile_id from {h}.big_spenders b
where not exists (select 1 from {h}.fr_gold f where f.profile_id = b.profile_id);

create table {h}.with_history as
select t.profile_id, coalesce(a.stays, 0) as stays, a.total_spent
from {h}.target t
left join (select profile_id, count(case when status = 'completed' then 1 end) as stays,
                  sum(case when status in ('confirmed', 'completed') then amount end) as total_spent
           from {r}.bookings group by profile_id) a on a.profile_id = t.profile_id;

create table {h}.one_per_email as
select profile_id, stays, total_spent from (
    select w.*, p.email, row_number() over (partition by p.email order by p.created_at desc, w.profile_id) as n
    from {h}.with_history w join {r}.profiles p on p.profile_id = w.profile_id
) ranked where email is null or n = 1;

create table {h}.vip as
select profile_id, stays, total_spent from {h}.one_per_email
where total_spent >= 6000 order by total_spent desc, profile_id limit 1000;

create table {h}.regulars as
select * from {h}.one_per_email where stays >= 2 and not coalesce(total_spent >= 6000, false);

create table {h}.others as
select * from {h}.one_per_email o
where not exists (select 1 from {h}.vip v where v.profile_id = o.profile_id)
  and not exists (select 1 from {h}.regulars g where g.profile_id = o.profile_id);

create table {h}.vip_email_candidates as
select *, case when reason is null and row_number() over (
        partition by lower(address), reason is null order by profile_id) > 1 then 'duplicate_address'
        else reason end as exclusion_reason
from (
    select v.profile_id, trim(p.email) as address, p.first_name, v.total_spent,
        md5('ref|vip_email|' || cast(v.profile_id as {text}) || '|') as message_key,
        case when p.email is null or not coalesce({valid}, false) then 'no_address'
             when not coalesce(p.email_opt_in, false) then 'no_consent'
             when exists (select 1 from {b}.campaign_suppressions s
                          where s.channel = 'email' and lower(trim(s.address)) = lower(trim(p.email)))
             then 'suppressed' end as reason
    from {h}.vip v join {r}.profiles p on p.profile_id = v.profile_id
) c;

create table {h}.vip_email as
select message_key, profile_id, address, first_name, total_spent
from {h}.vip_email_candidates where exclusion_reason is null;

create table {h}.stay_reminder_candidates as
select *, case when reason is null and row_number() over (
        partition by lower(address), booking_id, reason is null order by profile_id, booking_id) > 1
        then 'duplicate_address' else reason end as exclusion_reason
from (
    select g.profile_id, k.booking_id, trim(p.email) as address, p.first_name, k.checkin_date, k.nights,
        md5('ref|stay_reminder|' || cast(g.profile_id as {text}) || '|' || cast(k.booking_id as {text})) as message_key,
        case when p.email is null or not coalesce({valid}, false) then 'no_address'
             when not coalesce(p.email_opt_in, false) then 'no_consent'
             when exists (select 1 from {b}.campaign_suppressions s
                          where s.channel = 'email' and lower(trim(s.address)) = lower(trim(p.email)))
             then 'suppressed' end as reason
    from {h}.regulars g join {r}.profiles p on p.profile_id = g.profile_id
    join {r}.bookings k on k.profile_id = g.profile_id and k.status = 'confirmed'
) c;

create table {h}.stay_reminder as
select message_key, profile_id, booking_id, address, first_name, checkin_date, nights
from {h}.stay_reminder_candidates where exclusion_reason is null;
"""
# The channel's address check (contract.py's email pattern), per warehouse.
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]+@[^@\s\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]+\.[^@\s\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]+$"
VALID = {
    "duckdb": f"regexp_matches(trim(p.email), '{EMAIL_PATTERN}')",
    "postgres": "trim(p.email) ~ '^[^@\\s\\x01-\\x1f\\x7f-\\x9f\\u2028\\u2029]+@[^@\\s\\x01-\\x1f\\x7f-\\x9f\\u2028\\u2029]+"
    "\\.[^@\\s\\x01-\\x1f\\x7f-\\x9f\\u2028\\u2029]+$'",
}
# campaign count's name -> the hand-written table it must equal
COUNTED = {
    "fr_gold": "fr_gold",
    "big_spenders": "big_spenders",
    "target": "target",
    "with_history": "with_history",
    "one_per_email": "one_per_email",
    "segments.vip": "vip",
    "segments.regulars": "regulars",
    "segments.others": "others",
    "vip_email": "vip_email",
    "stay_reminder": "stay_reminder",
}


def hand_written(database: Database) -> tuple[float, float]:
    """Wall and CPU time (of this process: DuckDB's, not PostgreSQL's server) of the hand-written
    script, run from scratch in its own schema."""
    database.run(f"drop schema if exists {HAND} cascade")
    database.run(f"create schema {HAND}")
    script = HAND_SCRIPT.format(
        r=RAW, h=HAND, b=BUILT, valid=VALID[database.target], text="varchar" if database.target == "duckdb" else "text"
    )
    cpu = _cpu(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for statement in script.split(";"):
        if statement.strip():
            database.run(statement)
    return time.perf_counter() - started, _cpu(resource.RUSAGE_SELF) - cpu


def differences(database: Database, output: dict) -> list[str]:
    """Where `campaign count --json` and the hand-written tables disagree."""
    problems = []
    for name, table in COUNTED.items():
        ((rows,),) = database.run(f"select count(*) from {HAND}.{table}")
        if output["counts"].get(name) != rows:
            problems.append(f"{name}: campaign {output['counts'].get(name)}, by hand {rows}")
    for activity in ("vip_email", "stay_reminder"):
        reasons = dict(
            database.run(
                f"select exclusion_reason, count(*) from {HAND}.{activity}_candidates "
                "where exclusion_reason is not null group by 1"
            )
        )
        if output["channels"][activity]["excluded"] != reasons:
            problems.append(
                f"{activity} exclusions: campaign {output['channels'][activity]['excluded']}, by hand {reasons}"
            )
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--target", choices=("duckdb", "postgres"), default="duckdb")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="dbt's threads in the project's profile")
    parser.add_argument(
        "--keep", type=Path, help="set the project up in this folder and leave it there (and PostgreSQL's schemas)"
    )
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_reference_"))
    folder.mkdir(parents=True, exist_ok=True)
    database_path = folder / "reference.duckdb"
    try:
        database = Database(args.target, database_path)
        generate(database, args.profiles)
        database.close()
        write_project(folder / "project", args.target, database_path, args.threads)
        count(folder / "project", "one")  # installs the package (dbt deps), creates the shared tables
        times: dict[str, list[tuple[float, float]]] = {"count": [], "fixed": [], "hand": []}
        for _ in range(args.runs):
            *spent, output = count(folder / "project", "ref")
            times["count"].append(tuple(spent))
            times["fixed"].append(count(folder / "project", "one")[:2])
            database = Database(args.target, database_path)
            times["hand"].append(hand_written(database))
            problems = differences(database, output)
            database.close()
            if problems:
                sys.exit("COUNTS DIFFER: " + "; ".join(problems))
        print("| profiles | target | | count | fixed (1 activity) | net | hand-written SQL | net / SQL |")
        for index, what in enumerate(("wall", "CPU") if args.target == "duckdb" else ("wall",)):
            median = {name: statistics.median(t[index] for t in values) for name, values in times.items()}
            net = median["count"] - median["fixed"]
            print(
                f"| {args.profiles:,} | {args.target} | {what} | {median['count']:.2f} s | {median['fixed']:.2f} s "
                f"| {net:.2f} s | {median['hand']:.2f} s | {net / median['hand']:.2f}x |"
            )
        print(f"medians of {args.runs} interleaved runs; every count equal to the hand-written table's")
    finally:
        if args.target == "postgres" and not args.keep:
            database = Database(args.target, database_path)
            for schema in (RAW, BUILT, HAND):
                database.run(f"drop schema if exists {schema} cascade")
            database.close()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
