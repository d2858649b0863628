"""The dbt user's own workflow: `campaign compile`, plain `dbt build`, `campaign send`.

The warehouse, not files under target/, is the truth about what was built and what was sent: a
plain dbt build of an empty warehouse works and can be sent, a build that is not the campaign as
it stands is refused, simulations never mix with what was sent, and `dbt clean` forgets nothing.
"""

from __future__ import annotations

import csv
import email
import email.policy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project, demo_copy, run_cli
from send_project import CAMPAIGNS, make, messages_of, statuses

pytestmark = pytest.mark.slow

DBT = str(Path(sys.executable).with_name("dbt"))
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def dbt(project: Project, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """dbt itself, as a user runs it: no `campaign` in between."""
    paths = ["--project-dir", str(project.root), "--profiles-dir", str(project.root)]
    return subprocess.run(
        [DBT, *args, *paths],
        cwd=cwd or project.root,
        capture_output=True,
        text=True,
        timeout=600,
        env={"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PATH": "/usr/bin:/bin"},
    )


def newsletter_recipients(project: Project) -> int:
    """Hand-counted from the seed: opted-in guests with a valid email, one per address."""
    with (project.root / "seeds" / "profiles.csv").open(newline="", encoding="utf-8") as handle:
        guests = list(csv.DictReader(handle))
    return len(
        {
            g["email"].strip().lower()
            for g in guests
            if g["email_opt_in"] == "true" and EMAIL.match((g["email"] or "").strip())
        }
    )


def test_a_plain_dbt_build_of_an_empty_warehouse_is_sent_by_campaign_send(tmp_path, target):
    project = make(tmp_path / "p")
    project.write(
        "campaigns/capped.yml",
        CAMPAIGNS["mail"]
        .replace("campaign: mail", "campaign: capped")
        .replace("template: templates/news.yml}", "template: templates/news.yml, frequency_cap: {max: 1, days: 7}}"),
    )
    compiled = project.run("compile")  # every campaign of the project
    assert compiled.code == 0, compiled.stderr
    assert compiled.stdout == "" and {line.split(":")[0] for line in compiled.stderr.splitlines()} == {
        "capped",
        "letters",
        "mail",
        "stays",
        "texts",
    }
    assert dbt(project, "deps").returncode == 0
    assert dbt(project, "seed", "--target", target).returncode == 0
    # no campaign command ran: the package creates the tables the channel models read
    selected = dbt(project, "build", "--select", "tag:campaign_texts", "--target", target)
    assert selected.returncode == 0, selected.stdout[-3000:]
    built = dbt(project, "build", "--target", target)
    assert built.returncode == 0, built.stdout[-3000:]
    assert project.scalar(target, "select count(*) from campaign_deliveries") == 0
    expected = messages_of(project, target, "mail__newsletter")
    assert len(expected) == newsletter_recipients(project) > 0
    for campaign, model in (("mail", "mail__newsletter"), ("capped", "capped__newsletter")):
        sent = project.run("send", campaign, "--yes", "--target", target)
        assert sent.code == 0, sent.stderr
        assert statuses(project, target, campaign) == {"sent": len(expected)}
        outbox = project.root / "target" / "outbox" / target / campaign / "once" / "newsletter"
        assert {p.stem for p in outbox.glob("*.eml")} == {key for key, _ in messages_of(project, target, model)}


PROMO = """\
campaign: promo
activities:
  everyone: {type: build_audience}
  segments:
    type: split
    input: everyone
    subsets: [{name: first, where: "email_opt_in", limit: {count: 20, order_by: "profile_id"}}]
    complement: rest
  mail: {type: email, input: segments.first, template: templates/news.yml}
"""


def test_send_refuses_a_build_that_is_not_the_campaign_as_it_stands(tmp_path, target):
    project = make(tmp_path / "p")
    project.write("campaigns/promo.yml", PROMO)
    assert project.count("promo", target)["counts"]["segments.first"] == 20
    option = f" --target {target}"
    rebuild = f"build it with `campaign count promo{option}` or `dbt build --select tag:campaign_promo{option}`"

    def refused(expected: str) -> None:
        for command in (("send", "promo", "--simulate"), ("send", "promo", "--yes")):
            result = project.run(*command, "--target", target)
            assert result.code == 1 and result.stderr == f"error: promo {expected}; {rebuild}\n"
        assert not (project.root / "target" / "outbox").exists()
        assert not (project.root / "target" / "simulation").exists()
        assert project.scalar(target, "select count(*) from campaign_runs") == 0

    project.write("campaigns/promo.yml", PROMO.replace("count: 20", "count: 5"))
    refused(f'changed since it was built on target "{target}": campaigns/promo.yml, activity segments (line 4)')
    # the models are rewritten and only the split rebuilt: the email's tables were computed from the old one
    assert project.run("compile", "promo").code == 0
    assert dbt(project, "build", "--select", "promo__segments__first", "--target", target).returncode == 0
    refused(
        f'was built on target "{target}" out of order: promo__mail__candidates was built before its input '
        "promo__segments__first was rebuilt"
    )
    assert dbt(project, "build", "--select", "promo__segments__first+", "--target", target).returncode == 0
    sent = project.run("send", "promo", "--yes", "--target", target)
    assert sent.code == 0, sent.stderr
    messages = len(messages_of(project, target, "promo__mail"))
    assert 0 < messages <= 5 and statuses(project, target, "promo") == {"sent": messages}
    project.query_write(target, f"drop table {'' if target == 'duckdb' else project.schema + '.'}promo__mail cascade")
    result = project.run("send", "promo", "--yes", "--target", target)
    assert result.code == 1
    assert result.stderr == f'error: promo is not built on target "{target}": promo__mail is missing; {rebuild}\n'


def test_nothing_is_sent_when_the_messages_changed_since_they_were_announced(tmp_path, monkeypatch):
    from campaign_compiler.cli import Options, Session
    from campaign_compiler.errors import RuntimeFailure
    from campaign_compiler.run.lock import CampaignLock
    from campaign_compiler.send.sender import send_campaign

    project = make(tmp_path / "p")
    messages = project.count("mail")["counts"]["newsletter"]
    monkeypatch.chdir(project.root)
    session = Session(Options())
    (campaign,) = session.campaigns(["mail"])
    with pytest.raises(RuntimeFailure) as refused, CampaignLock(session.where, "mail") as lock:
        send_campaign(campaign, session.workspace, session.where, lock, announced={"newsletter": messages + 1})
    assert str(refused.value) == (
        f"the messages of newsletter changed since they were counted ({messages + 1:,} "
        f"then, {messages:,} now): nothing was sent; count them again"
    )
    assert not (project.root / "target" / "outbox").exists()
    assert statuses(project, "duckdb", "mail") == {}


def outbox_keys(folder: Path, channel: str) -> list[str]:
    """The message keys an outbox folder holds, once per message written."""
    if channel == "email":
        return [path.stem for path in folder.glob("*.eml")]
    if channel == "sms":
        return [json.loads(line)["message_key"] for line in (folder / "messages.jsonl").read_text().splitlines()]
    with (folder / "extract.csv").open(newline="", encoding="utf-8") as handle:
        return [row["message_key"] for row in csv.DictReader(handle)]


def test_simulations_have_their_own_place_and_the_outbox_holds_exactly_what_was_sent(tmp_path, target):
    project = make(tmp_path / "p")
    sends = {"mail": ("newsletter", "email"), "texts": ("alert", "sms"), "letters": ("letter", "direct_mail")}
    for campaign, (activity, channel) in sends.items():
        for _ in range(2):
            simulated = project.run("run", campaign, "--simulate", "--target", target)
            assert simulated.code == 0, simulated.stderr
        sent = project.run("send", campaign, "--yes", "--target", target)
        assert sent.code == 0, sent.stderr
        keys = sorted(key for key, _ in messages_of(project, target, f"{campaign}__{activity}"))
        assert keys and statuses(project, target, campaign) == {"sent": len(keys)}
        outbox = project.root / "target" / "outbox" / target / campaign / "once" / activity
        simulation = project.root / "target" / "simulation" / target / campaign / "once" / activity
        assert sorted(outbox_keys(outbox, channel)) == keys  # each sent message once, nothing simulated
        assert sorted(outbox_keys(simulation, channel)) == keys  # the last simulation, replacing the first
    emails = project.root / "target" / "simulation" / target / "mail" / "once" / "newsletter"
    for path in emails.glob("*.eml"):
        simulated = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert simulated["X-Campaign-Simulation"].startswith("yes")
        sent = project.root / "target" / "outbox" / target / "mail" / "once" / "newsletter" / path.name
        assert "X-Campaign-Simulation" not in email.message_from_bytes(sent.read_bytes())
    texts = project.root / "target" / "simulation" / target / "texts" / "once" / "alert" / "messages.jsonl"
    assert all(json.loads(line)["simulated"] is True for line in texts.read_text().splitlines())


@pytest.mark.duckdb
def test_the_demo_warehouse_survives_dbt_clean_and_dbt_runs_from_any_directory(tmp_path):
    project = demo_copy(tmp_path / "demo")
    demo = project.root
    first = run_cli("--project-dir", "demo", "run", "summer_promo", "--yes", cwd=tmp_path)
    assert first.code == 0, first.stderr
    database = demo / "hotel_demo.duckdb"
    assert database.is_file() and not (demo / "target" / "hotel_demo.duckdb").exists()

    def delivered() -> dict:
        import duckdb

        with duckdb.connect(str(database), read_only=True) as connection:
            return dict(
                connection.execute(
                    "select status, count(*) from campaign_deliveries where campaign = 'summer_promo' group by 1"
                ).fetchall()
            )

    sent = delivered()["sent"]
    assert sent > 0
    cleaned = dbt(project, "clean", cwd=tmp_path)
    assert cleaned.returncode == 0 and not (demo / "target").exists()
    again = run_cli("--project-dir", "demo", "run", "summer_promo", "--yes", cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert delivered() == {"sent": sent}
    outbox = demo / "target" / "outbox" / "dev" / "summer_promo" / "once"
    assert not list(outbox.rglob("*.eml")) and not list(outbox.rglob("*.jsonl"))  # nothing sent again
    # dbt from another directory, with the project's profile, builds into the same file
    assert run_cli("--project-dir", "demo", "compile", cwd=tmp_path).code == 0
    assert dbt(project, "deps", cwd=tmp_path).returncode == 0
    built = dbt(project, "build", "--select", "tag:campaign_winback", "+tag:campaign_winback", cwd=tmp_path)
    assert built.returncode == 0, built.stdout[-3000:]
    assert not list(tmp_path.glob("*.duckdb")) and not (tmp_path / "target").exists()
    sent_winback = run_cli("--project-dir", "demo", "send", "winback", "--yes", cwd=tmp_path)
    assert sent_winback.code == 0, sent_winback.stderr


SAVER = """\
campaign: saver
activities:
  opted_in: {type: build_audience, where: "email_opt_in"}
  keep: {type: save_audience, input: opted_in, name: opted_in_guests}
"""
READER = """\
campaign: reader
activities:
  guests: {type: build_audience, audience: opted_in_guests}
  newsletter: {type: email, input: guests, template: templates/news.yml}
"""


def test_a_campaign_reading_a_saved_audience_builds_it_and_dbt_orders_them(tmp_path, target):
    project = make(tmp_path / "p")
    project.write("campaigns/saver.yml", SAVER)
    project.write("campaigns/reader.yml", READER)
    counted = project.run("count", "reader", "--json", "--target", target)  # on an empty warehouse
    assert counted.code == 0, counted.stderr
    assert (
        f'Building saver too: reader reads an audience it saves, and saver is not built on target "{target}": '
        "saver__opted_in is missing (and 1 more)."
    ) in " ".join(counted.stderr.split())
    with (project.root / "seeds" / "profiles.csv").open(newline="", encoding="utf-8") as handle:
        opted_in = sum(row["email_opt_in"] == "true" for row in csv.DictReader(handle))
    assert json.loads(counted.stdout)["counts"]["guests"] == opted_in > 0
    # a plain dbt build of a new warehouse builds the saving campaign first
    if target == "duckdb":
        (project.root / "target" / "warehouse.duckdb").unlink()
    else:
        project.query_write(target, f'drop schema "{project.schema}" cascade')
    shutil.rmtree(project.root / "models" / "campaigns")
    compiled = project.run("compile", "reader")
    assert (
        compiled.code == 0
        and "saver: 2 models in models/campaigns/saver (reader reads an audience it saves)" in compiled.stderr
    )
    built = dbt(project, "build", "--target", target)
    assert built.returncode == 0, built.stdout[-3000:]
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    reads = manifest["nodes"]["model.test_project.reader__guests"]["depends_on"]["nodes"]
    assert "model.test_project.saver__keep" in reads  # the lineage dbt docs shows
    assert project.scalar(target, "select count(*) from reader__guests") == opted_in


@pytest.mark.postgres
def test_each_target_has_its_own_canvas_and_only_data_goes_to_stdout(tmp_path, postgres):
    project = make(tmp_path / "p")
    for target in ("duckdb", "postgres"):
        result = project.run("count", "texts", "--target", target)
        assert result.code == 0, result.stderr
        assert f"Canvas of texts: target/canvas/{target}/texts.html" in result.stderr
        assert "Canvas of" not in result.stdout
    project.query_write("postgres", f'delete from "{project.schema}".texts__alert')
    graph = project.run("graph", "texts", "--target", "postgres")
    assert (
        graph.code == 0
        and graph.stdout == ""
        and graph.stderr == "Canvas of texts: target/canvas/postgres/texts.html\n"
    )
    pages = {
        target: (project.root / "target" / "canvas" / target / "texts.html").read_text()
        for target in ("duckdb", "postgres")
    }
    assert "counts of the last build on target duckdb" in pages["duckdb"]
    assert "counts of the last build on target postgres" in pages["postgres"]
    assert ">0 messages<" in pages["postgres"] and ">0 messages<" not in pages["duckdb"]
    mermaid = project.run("graph", "texts", "--format", "mermaid", "--target", "duckdb")
    assert mermaid.code == 0 and mermaid.stdout.startswith("flowchart LR\n") and mermaid.stderr == ""
