"""A small data model and an in-process `campaign` runner for fast validation tests."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

from campaign_compiler.cli import main

DATA_MODEL = """\
version: 1
sql_dialect: postgres
entities:
  profiles:
    model: profiles
    key: profile_id
    columns: {profile_id: integer, first_name: text, email: text, phone: text, country: text,
              loyalty_tier: text, email_opt_in: boolean, created_at: timestamp}
    addresses: {email: email, sms: phone, direct_mail: [first_name, country]}
    consent: {email: email_opt_in}
    links:
      bookings: {entity: bookings, on: {profile_id: profile_id}}
  bookings:
    model: bookings
    key: booking_id
    columns: {booking_id: integer, profile_id: integer, hotel_id: integer, status: text,
              amount: number, checkin_date: date}
    links:
      profile: {entity: profiles, on: {profile_id: profile_id}}
      hotel: {entity: hotels, on: {hotel_id: hotel_id}}
  hotels:
    model: hotels
    key: hotel_id
    columns: {hotel_id: integer, city: text}
"""

# three guests: gold in France and in Germany, and one in France without an email
PROFILES_CSV = """\
profile_id,first_name,email,phone,country,loyalty_tier,email_opt_in,created_at
1,Anna,anna@example.com,,FR,gold,true,2020-01-01 00:00:00
2,Ben,,,FR,none,,2021-01-01 00:00:00
3,Cleo,cleo@example.com,,DE,gold,false,2022-01-01 00:00:00
"""

SEEDS = {
    "profiles": "profile_id,first_name,email,phone,country,loyalty_tier,email_opt_in,created_at\n",
    "bookings": "booking_id,profile_id,hotel_id,status,amount,checkin_date\n",
    "hotels": "hotel_id,city\n",
}


def with_data_model(project, data_model: str = DATA_MODEL):
    project.write("campaign_project.yml", data_model)
    for name, header in SEEDS.items():
        project.write(f"seeds/{name}.csv", header)
    return project


def run_in_process(project, monkeypatch, *args: str) -> tuple[int, str, str]:
    """The real CLI entry point, in this process (no dbt involved for validate/compile)."""
    monkeypatch.chdir(project.root)
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exit_:
            code = exit_.code or 0
    return code, out.getvalue(), err.getvalue()


def errors_of(project, monkeypatch, campaign_yaml: str, name: str = "c") -> list[str]:
    """The error lines `campaign validate` prints for one campaign file."""
    project.write(f"campaigns/{name}.yml", campaign_yaml)
    code, _, err = run_in_process(project, monkeypatch, "validate", f"campaigns/{name}.yml")
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert (code == 2) == bool(lines), err
    return lines
