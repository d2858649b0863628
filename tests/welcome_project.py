"""The welcome series the tests over time run: guests who sign up, a daily welcome email, and three
days later a text to those who did not open it."""

from __future__ import annotations

from datetime import datetime

from conftest import DBT_PROJECT, TEXT, Project

DATA_MODEL = """\
version: 1
sql_dialect: postgres
entities:
  guests:
    model: guests
    key: guest_id
    columns: {guest_id: integer, first_name: text, email: text, phone: text, email_opt_in: boolean,
              signed_up_at: timestamp}
    addresses: {email: email, sms: phone}
    consent: {email: email_opt_in}
channels: {}
"""

# the texts are transactional, which changes nothing here (the guests' consent is for email only)
WELCOME = """\
campaign: welcome
dimension: guests
schedule: {cron: "0 8 * * *", timezone: Europe/Paris, start: "2026-03-02"}
activities:
  new_guests: {type: incremental_query, since: signed_up_at}
  welcome: {type: email, input: new_guests, template: templates/welcome.yml}
  three_days: {type: wait, input: welcome, duration: 3d}
  opened: {type: reaction, input: three_days, of: welcome, event: open}
  nudge: {type: sms, input: opened.no, template: templates/nudge.yml, category: transactional}
"""

GUESTS_HEADER = "guest_id,first_name,email,phone,email_opt_in,signed_up_at\n"


def write_welcome(project: Project, guests: str) -> None:
    """The data model, the campaign, its templates, and the seed of `guests` (CSV rows under
    GUESTS_HEADER), its phone and email read as text."""
    seeds = f"    guests:\n      +column_types: {{guest_id: integer, email: {TEXT}, phone: {TEXT}, signed_up_at: timestamp}}\n"
    project.write("dbt_project.yml", DBT_PROJECT + seeds)
    project.write("campaign_project.yml", DATA_MODEL)
    project.write("campaigns/welcome.yml", WELCOME)
    project.write("templates/welcome.yml", 'subject: "Welcome {{ first_name }}"\ntext: "Hello {{ first_name }}"\n')
    project.write("templates/nudge.yml", 'body: "{{ first_name }}, your welcome offer is in your inbox"\n')
    project.write("seeds/guests.csv", GUESTS_HEADER + guests)


def name(moment: datetime) -> str:
    """An occurrence's name: its slot's UTC time."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
