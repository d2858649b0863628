"""The semantics test project (tests/projects/semantics) on generated CRM data, built on a warehouse."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import DBT_PROJECT, REPO, TEXT, Project

PROJECT = REPO / "tests" / "projects" / "semantics"
PROFILES = 600

SEED_TYPES = """\
    profiles:
      +column_types: {profile_id: integer, phone: TEXT, postal_code: TEXT, push_token: TEXT,
                      email_opt_in: boolean, sms_opt_in: boolean, birth_date: date, created_at: timestamp}
    bookings:
      +column_types: {booking_id: integer, profile_id: integer, hotel_id: integer, amount: "decimal(12,2)",
                      nights: integer, booked_at: timestamp, checkin_date: date}
    hotels:
      +column_types: {hotel_id: integer, stars: integer}
    subscriptions:
      +column_types: {subscription_id: integer, profile_id: integer, started_at: date, renewal_date: date,
                      monthly_price: "decimal(10,2)"}
    contact_addresses:
      +column_types: {contact_id: integer, profile_id: integer, phone: TEXT, is_primary: boolean,
                      verified: boolean}
""".replace(": TEXT", ": " + TEXT)


def write_platinum_list(project: Project) -> None:
    """Keys for build_audience's `model:` (a seed): platinum guests, twice, and two unknown keys."""
    with (project.root / "seeds" / "profiles.csv").open(newline="", encoding="utf-8") as handle:
        keys = [g["profile_id"] for g in csv.DictReader(handle) if g["loyalty_tier"] == "platinum"]
    rows = keys + keys[:3] + ["-1", "-2"]
    project.write("seeds/platinum_list.csv", "profile_id\n" + "".join(f"{k}\n" for k in rows))


def write_attendees(project: Project) -> None:
    """A fair's visitor list made from the generated guests: exact matches, shared emails, a name
    that differs, strangers, blank emails and the same visitor twice."""
    with (project.root / "seeds" / "profiles.csv").open(newline="", encoding="utf-8") as handle:
        guests = list(csv.DictReader(handle))
    emails = [g["email"] for g in guests]
    shared = [e for e in dict.fromkeys(emails) if e and "@" in e and emails.count(e) > 1][:3]
    known = [g for g in guests if g["email"] and emails.count(g["email"]) == 1][:30]
    rows = [[g["email"], g["first_name"] if i % 3 else "Someone", i] for i, g in enumerate(known)]
    rows += [[e, "Family", 100 + i] for i, e in enumerate(shared)]
    rows += [[f"visitor{i}@fair.example", "Visitor", 200 + i] for i in range(8)]
    rows += [["", "Nameless", 300], ["", "Nameless", 301]]
    rows += [rows[0][:2] + [400], rows[1][:2] + [401]]
    path = project.root / "data" / "attendees.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "First_Name", "badge", "visited_on"])
        for email, name, badge in rows:
            writer.writerow([email, name, badge, "2026-10-15"])


def make_project(root: Path) -> Project:
    """The project with its data: generated guests, a visitors file, a list of keys."""
    project = Project(root)
    shutil.copytree(PROJECT, project.root, dirs_exist_ok=True)
    project.write("dbt_project.yml", DBT_PROJECT + SEED_TYPES)
    subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "generate_data.py"),
            "--profiles",
            str(PROFILES),
            "--out",
            str(project.root / "seeds"),
        ],
        check=True,
        capture_output=True,
    )
    write_attendees(project)
    write_platinum_list(project)
    return project
