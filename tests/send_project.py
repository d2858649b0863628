"""A small CRM project with a campaign per channel, and how the send tests look at what it sent."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import DBT_PROJECT, REPO, TEXT, Project

DATA_MODEL = """\
version: 1
sql_dialect: postgres
entities:
  profiles:
    model: profiles
    key: profile_id
    columns: {profile_id: integer, first_name: text, last_name: text, email: text, phone: text,
              email_opt_in: boolean, sms_opt_in: boolean, loyalty_tier: text, street: text,
              postal_code: text, city: text, country: text}
    addresses: {email: email, sms: phone, direct_mail: [street, postal_code, city, country]}
    consent: {email: email_opt_in, sms: sms_opt_in}
    links:
      bookings: {entity: bookings, on: {profile_id: profile_id}}
  bookings:
    model: bookings
    key: booking_id
    columns: {booking_id: integer, profile_id: integer, status: text, amount: number, nights: integer,
              checkin_date: date}
"""
SEEDS = """\
    profiles:
      +column_types: {profile_id: integer, phone: TEXT, email_opt_in: boolean, sms_opt_in: boolean,
                      postal_code: TEXT}
    bookings:
      +column_types: {booking_id: integer, profile_id: integer, amount: "decimal(12,2)", nights: integer,
                      checkin_date: date}
""".replace(": TEXT", ": " + TEXT)
CAMPAIGNS = {
    "mail": """\
campaign: mail
activities:
  everyone: {type: build_audience}
  newsletter: {type: email, input: everyone, template: templates/news.yml}
""",
    "texts": """\
campaign: texts
activities:
  everyone: {type: build_audience}
  alert: {type: sms, input: everyone, template: templates/alert.yml, category: transactional}
""",
    "letters": """\
campaign: letters
activities:
  everyone: {type: build_audience}
  letter: {type: direct_mail, input: everyone, columns: [first_name, last_name], category: transactional}
""",
    "stays": """\
campaign: stays
activities:
  everyone: {type: build_audience}
  stay:
    type: email
    input: everyone
    per: {link: bookings, as: booking, where: "status = 'confirmed'"}
    template: templates/stay.yml
    category: transactional
""",
}
TEMPLATES = {
    "news": 'subject: "News for {{ first_name }}"\ntext: "Hello {{ first_name }} {{ last_name }}"\n',
    "alert": 'body: "Hi {{ first_name }}, your {{ loyalty_tier }} status"\n',
    "stay": 'subject: "Booking {{ booking.booking_id }} on {{ booking.checkin_date }}"\n'
    'text: "{{ first_name }}: {{ booking.nights }} nights from {{ booking.checkin_date }}, {{ booking.amount }}"\n',
}


def smtp(port: int, **extra) -> str:
    settings = {
        "provider": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "from": "news@hotel.example",
        "retries": 3,
        "backoff": 0.05,
        "connections": 2,
        **extra,
    }
    return "  email: " + json.dumps(settings) + "\n"


def make(root: Path, channels: str = "", profiles: int = 60) -> Project:
    project = Project(root)
    project.write("dbt_project.yml", DBT_PROJECT + SEEDS)
    project.write("campaign_project.yml", DATA_MODEL + ("channels:\n" + channels if channels else ""))
    for name, text in CAMPAIGNS.items():
        project.write(f"campaigns/{name}.yml", text)
    for name, text in TEMPLATES.items():
        project.write(f"templates/{name}.yml", text)
    subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "generate_data.py"),
            "--profiles",
            str(profiles),
            "--out",
            str(project.root / "seeds"),
        ],
        check=True,
        capture_output=True,
    )
    for extra in ("hotels", "contact_addresses", "subscriptions"):
        (project.root / "seeds" / f"{extra}.csv").unlink()
    return project


def edit_profiles(project: Project, changes: list[dict]) -> list[dict]:
    """Give these values (column -> value) to as many profiles of the seeds, each opted in to email
    with a plain ASCII address; the changed rows as they are now."""
    path = project.root / "seeds" / "profiles.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    wanted, changed = iter(changes), []
    for row in rows:
        if row["email_opt_in"] == "true" and re.fullmatch(r"[a-z0-9.]+@[a-z0-9.]+\.example", row["email"] or ""):
            change = next(wanted, None)
            if change is None:
                break
            row.update(change)
            changed.append(row)
    assert len(changed) == len(changes)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return changed


def statuses(project: Project, target: str, campaign: str) -> dict:
    return dict(
        project.query(
            target, f"select status, count(*) from campaign_deliveries where campaign = '{campaign}' group by status"
        )
    )


def messages_of(project: Project, target: str, model: str) -> list[tuple]:
    return project.query(target, f"select message_key, address from {model}")


def message_id(key: str) -> str:
    return f"<{key}.once@hotel.example>"


def outbox(project: Project, target: str, campaign: str, activity: str, occurrence: str = "once") -> Path:
    """The outbox folder of an activity's messages sent on a target."""
    return project.root / "target" / "outbox" / target / campaign / occurrence / activity


def written(folder: Path) -> list[str]:
    """The message keys written in an outbox folder or extract file, once per message written
    (a line a crash cut is not written)."""

    def lines(path: Path) -> list[str]:
        text = path.read_text(encoding="utf-8", errors="replace")
        return text[: text.rfind("\n") + 1].splitlines()

    if folder.suffix == ".csv":
        return [row[0] for row in list(csv.reader(lines(folder)))[1:]] if folder.exists() else []
    if (folder / "messages.jsonl").exists():
        return [json.loads(line)["message_key"] for line in lines(folder / "messages.jsonl")]
    if (folder / "extract.csv").exists():
        return written(folder / "extract.csv")
    return [path.stem for path in folder.glob("*.eml")]
