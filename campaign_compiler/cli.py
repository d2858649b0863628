"""The `campaign` command; the README's "The commands" is its user guide.

Exit status: 0 success, 2 invalid input (every error printed as file:line:col: error: ...,
nothing built), 1 a runtime failure (warehouse, dbt) with a one-line cause.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from . import __version__
from .console import Console, JsonConsole, TerminalConsole
from .errors import Diagnostic, Diagnostics, InvalidInput, RuntimeFailure, display_path


@dataclass
class Options:
    project_dir: str | None = None
    profiles_dir: str | None = None
    target: str | None = None


_OPTIONS = (
    ("--project-dir", "project_dir", "The dbt project (default: the working directory)."),
    ("--profiles-dir", "profiles_dir", "Where profiles.yml is (default: as dbt, or the project directory)."),
    ("--target", "target", "The dbt target (default: the profile's)."),
)


def project_options(command):
    """Accept --project-dir, --profiles-dir and --target after the command as well as before it."""

    @functools.wraps(command)
    def wrapper(*args, project_dir=None, profiles_dir=None, target=None, **kwargs):
        group: Options = click.get_current_context().find_object(Options) or Options()
        options = Options(project_dir or group.project_dir, profiles_dir or group.profiles_dir, target or group.target)
        return command(options, *args, **kwargs)

    for flag, name, help_text in reversed(_OPTIONS):
        wrapper = click.option(flag, name, default=None, metavar="PATH" if "dir" in flag else "NAME", help=help_text)(
            wrapper
        )
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="campaign")
@click.option("--project-dir", "project_dir", default=None, metavar="PATH", help=_OPTIONS[0][2])
@click.option("--profiles-dir", "profiles_dir", default=None, metavar="PATH", help=_OPTIONS[1][2])
@click.option("--target", "target", default=None, metavar="NAME", help=_OPTIONS[2][2])
@click.pass_context
def cli(ctx: click.Context, project_dir, profiles_dir, target) -> None:
    """Orchestrated marketing campaigns as code, compiled into dbt models."""
    ctx.obj = Options(project_dir, profiles_dir, target)


class Session:
    """One command's view of the project: workspace, dbt target, campaigns."""

    def __init__(self, options: Options):
        from .project.dbt import default_profiles_dir
        from .project.target import DbtTarget
        from .workspace import Workspace

        self.workspace = Workspace(Path(options.project_dir or ".").resolve())
        profiles = (
            Path(options.profiles_dir).resolve()
            if options.profiles_dir
            else default_profiles_dir(self.workspace.dbt.root)
        )
        self.where = DbtTarget(self.workspace.dbt, profiles, options.target)

    def campaigns(self, names) -> list:
        """The named campaigns (every campaign of the project when none is named), all valid, or
        InvalidInput with all their errors."""
        diagnostics = Diagnostics()
        loaded = [self.workspace.load(name, diagnostics) for name in names or self.workspace.files()]
        if not loaded:
            raise InvalidInput([Diagnostic(None, f"no campaign file in {display_path(self.workspace.campaigns_dir)}/")])
        self.workspace.check_names([c for c in loaded if c is not None], diagnostics)
        diagnostics.raise_if_any()
        return loaded


@cli.command()
@click.argument("campaigns", nargs=-1)
@project_options
def validate(options: Options, campaigns) -> None:
    """Parse and check campaigns (all of the project's when none is named); report every error."""
    console = TerminalConsole()
    for campaign in Session(options).campaigns(campaigns):
        tables = campaign.tables()
        console.data(
            f"{campaign.name}: ok ({plural(len(campaign.activities), 'activity', 'activities')}, "
            f"{plural(len(tables), 'working table')})"
        )


@cli.command()
@click.argument("campaigns", nargs=-1)
@project_options
def compile(options: Options, campaigns) -> None:  # noqa: A001 - the command is called compile
    """Write the campaigns' dbt models, with their docs and tests (all of the project's when none is
    named; with each the campaigns whose saved audiences it reads)."""
    session = Session(options)
    _write_models(session, session.campaigns(campaigns), TerminalConsole())


def _write_models(session: Session, loaded: list, console: Console) -> None:
    """Write the campaigns and those whose saved audiences they read, remove the folders of campaigns
    that no longer exist, and say what was written where."""
    from .compile.emit import remove_orphans, write_campaigns

    dbt = session.workspace.dbt
    needed = {}
    for campaign in loaded:
        for saver, _ in session.workspace.audience_savers(campaign):
            needed.setdefault(saver.name, (saver, campaign))
        needed[campaign.name] = (campaign, None)
    every = write_campaigns([campaign for campaign, _ in needed.values()], dbt)
    for folder in remove_orphans(dbt, set(session.workspace.names())):  # once the new files are in place
        console.say(f"removed {display_path(folder)}: its campaign no longer exists")
    for (campaign, reader), written in zip(needed.values(), every):
        seeds = (
            f", {plural(len(written.seeds), 'seed')} in {display_path(dbt.seeds_dir(campaign.name))}"
            if written.seeds
            else ""
        )
        removed = f"; removed {plural(len(written.removed), 'stale file')}" if written.removed else ""
        why = f" ({reader.name} reads an audience it saves)" if reader is not None else ""
        console.say(
            f"{campaign.name}: {plural(len(written.models), 'model')} in "
            f"{display_path(dbt.models_dir(campaign.name))}{seeds}{removed}{why}"
        )


@cli.command()
@click.argument("campaign")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (campaign, target, counts, channels) instead of tables.",
)
@project_options
def count(options: Options, campaign: str, as_json: bool) -> None:
    """Compile, build with dbt, and print the exact row count of every working table."""
    from .run.lock import CampaignLock

    console = JsonConsole() if as_json else TerminalConsole()
    session = Session(options)
    (loaded,) = session.campaigns([campaign])
    started = time.monotonic()
    with CampaignLock(session.where, loaded.name):
        result = _build_and_count(session, loaded, console)
    _write_canvas(session, result, console)
    console.counts(result)
    console.built(result, time.monotonic() - started)


def _build_and_count(session: Session, campaign, console: Console, occurrence: str = "once"):
    from .run.counts import build_and_count

    return build_and_count(
        campaign, session.workspace, session.where, console.building, occurrence, notify=console.note
    )


def _write_canvas(session: Session, result, console: Console) -> None:
    from .canvas import write_page

    path = write_page(result.campaign, session.workspace, result.rows, result.channels, result.target)
    console.say(f"Canvas of {result.campaign.name}: {display_path(path)}")


@cli.command()
@click.argument("campaign")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write it (default: target/canvas/<target>/<campaign>.html; stdout for mermaid and dot).",
)
@click.option("--format", "fmt", type=click.Choice(["html", "mermaid", "dot"]), default="html", show_default=True)
@project_options
def graph(options: Options, campaign: str, output: Path | None, fmt: str) -> None:
    """Draw the campaign with the counts of its last build."""
    session = Session(options)
    (loaded,) = session.campaigns([campaign])
    _draw(session, loaded, fmt, output, TerminalConsole())


def _draw(session: Session, campaign, fmt: str, output: Path | None, console: Console) -> None:
    """The canvas in `fmt`, to `output`: by default the HTML page in the project, the text formats on stdout."""
    from .canvas import draw, measure, render_dot, render_mermaid, write_page

    rows, channels, target = measure(campaign, session.workspace, session.where)
    if fmt == "html":
        path = write_page(campaign, session.workspace, rows, channels, target, output.resolve() if output else None)
        console.say(f"Canvas of {campaign.name}: {display_path(path)}")
        return
    drawn = draw(campaign, session.workspace, rows, channels, target)
    text = render_mermaid(drawn) if fmt == "mermaid" else render_dot(drawn)
    if output is None:
        console.data(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.say(f"{fmt} of {campaign.name}: {display_path(output)}")


@dataclass
class SendOptions:
    simulate: bool = False
    yes: bool = False
    occurrence: str = "once"
    resend_unknown: bool = False
    retry_failed: bool = False


def send_options(command):
    """The options of `run` and `send`, given to the command as one SendOptions, `sending`."""

    @functools.wraps(command)
    def wrapper(*args, simulate, yes, occurrence, resend_unknown, retry_failed, **kwargs):
        return command(*args, sending=SendOptions(simulate, yes, occurrence, resend_unknown, retry_failed), **kwargs)

    for decorator in reversed(
        (
            click.option("--simulate", is_flag=True, help="Render every message into the outbox, deliver nothing."),
            click.option("--yes", is_flag=True, help="Do not ask for confirmation (required without a terminal)."),
            click.option("--occurrence", default="once", show_default=True, help="The occurrence being sent."),
            click.option(
                "--resend-unknown",
                is_flag=True,
                help="Send again the messages whose outcome was left unknown (an interrupted run, a "
                "connection lost after the message was transmitted).",
            ),
            click.option("--retry-failed", is_flag=True, help="Send again the messages that failed in earlier runs."),
        )
    ):
        wrapper = decorator(wrapper)
    return wrapper


@cli.command()
@click.argument("campaign")
@send_options
@project_options
def run(options: Options, campaign: str, sending: SendOptions) -> None:
    """Compile, build, show the counts, confirm, and send."""
    console = TerminalConsole()
    with _ready_to_send(options, campaign, sending, "run", console) as (session, loaded, lock):
        result = _build_and_count(session, loaded, console, sending.occurrence)
        console.counts(result)
        _write_canvas(session, result, console)
        _send(session, lock, loaded, sending, result.channels, console)


@cli.command()
@click.argument("campaign")
@send_options
@project_options
def send(options: Options, campaign: str, sending: SendOptions) -> None:
    """Send the messages of an already built campaign."""
    console = TerminalConsole()
    with _ready_to_send(options, campaign, sending, "send", console) as (session, loaded, lock):
        _send(session, lock, loaded, sending, _built_channels(session, loaded), console)


@contextmanager
def _ready_to_send(
    options: Options, campaign: str, sending: SendOptions, command: str, console: Console
) -> Iterator[tuple]:
    """The campaign, valid; the occurrence, the means to confirm and the credentials checked before
    anything runs; then the campaign's lock, held. Gives (session, campaign, lock)."""
    from .run.lock import CampaignLock
    from .send.sender import check_occurrence

    session = Session(options)
    (loaded,) = session.campaigns([campaign])
    check_occurrence(sending.occurrence)
    if not (sending.yes or sending.simulate or console.can_confirm()):
        raise InvalidInput(
            [
                Diagnostic(
                    None,
                    f"campaign {command} cannot ask for confirmation without a terminal: "
                    "add --yes to send, or --simulate",
                )
            ]
        )
    _check_credentials(session, loaded, sending.simulate)
    with CampaignLock(session.where, loaded.name) as lock:
        yield session, loaded, lock


def _built_channels(session: Session, campaign) -> dict:
    """The messages and exclusions of each channel activity, as built on the target; RuntimeFailure
    unless that build is the campaign as it stands."""
    from .project.target import connect
    from .run.counts import channel_counts
    from .run.state import CampaignBuild

    with connect(session.where) as warehouse:
        models = [name for a in campaign.channel_activities() for name in (a.message.model, a.message.excluded_model)]
        built = CampaignBuild(campaign, warehouse, session.where.target).require(models)
        return channel_counts(warehouse, built, campaign)


def _check_credentials(session: Session, campaign, simulate: bool) -> None:
    """Every credential the campaign's providers read is in the environment, before anything runs:
    a run must not send one channel and then stop at the next."""
    if simulate:  # a simulation delivers nothing
        return
    channels = sorted({activity.message.channel for activity in campaign.channel_activities()})
    missing = [d for channel in channels for d in session.workspace.channel_settings(channel).missing_credentials()]
    if missing:
        raise InvalidInput(missing)


def _send(session: Session, lock, campaign, sending: SendOptions, channels: dict, console: Console) -> None:
    """Confirm what `channels` announces, send it, show the report; RuntimeFailure unless every message
    handled was settled."""
    from .send.sender import send_campaign

    if not campaign.channel_activities():
        console.say(f"{campaign.name} has no channel activity: nothing to send.")
        return
    total = sum(c["messages"] for c in channels.values())
    what = ", ".join(f"{c['messages']:,} {c['channel']} ({activity})" for activity, c in channels.items())
    if not (sending.yes or sending.simulate):
        console.confirm(f"Send {what} for campaign {campaign.name}, occurrence {sending.occurrence}?")
    progress = console.sending(sending.simulate)
    try:
        report = send_campaign(
            campaign,
            session.workspace,
            session.where,
            lock,
            occurrence=sending.occurrence,
            simulate=sending.simulate,
            resend_unknown=sending.resend_unknown,
            retry_failed=sending.retry_failed,
            progress=progress,
            announced={activity: c["messages"] for activity, c in channels.items()},
        )
    finally:
        progress.stop()
    console.send_report(report)
    _check_settled(report)
    if total == 0:
        console.say("No message to send.")


def _check_settled(report) -> None:
    """RuntimeFailure when the send stopped early, or left messages failed or with an unknown outcome:
    a run that did not settle all it handled is not a success for a script or a scheduler."""
    if report.stopped:
        raise RuntimeFailure(f"{report.stopped}; the messages it did not take are left for the next run")
    failed, lost = sum(a.failed for a in report.activities), sum(a.lost for a in report.activities)
    if failed or lost:
        problems = (
            [
                f"{plural(failed, 'message')} failed (the reason of each is in campaign_deliveries.error"
                + ("" if report.simulate else "; --retry-failed sends them again")
                + ")"
            ]
            if failed
            else []
        )
        if lost:
            problems.append(
                f"{plural(lost, 'message')} may have been delivered, the provider's answer lost "
                "(left unknown; --resend-unknown sends them again)"
            )
        raise RuntimeFailure("; ".join(problems))


@cli.command()
@click.argument("campaign")
@project_options
def status(options: Options, campaign: str) -> None:
    """Runs and deliveries of a campaign, from the delivery log."""
    from .project.target import connect
    from .send.log import DeliveryLog

    session = Session(options)
    (loaded,) = session.campaigns([campaign])
    with connect(session.where) as warehouse:
        log = DeliveryLog(warehouse)
        runs, totals = (log.runs(loaded.name), log.totals(loaded.name)) if log.exists() else ([], [])
    TerminalConsole().runs(loaded.name, runs, totals)


@cli.group()
def events() -> None:
    """Events of sent messages (opens, clicks, bounces...), as providers report them."""


@events.command("load")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (stored by kind, duplicates, unknown ids, suppressions) instead of a summary.",
)
@project_options
def load_events(options: Options, file: Path, as_json: bool) -> None:
    """Load a CSV or JSONL file of events (message_id, event, at, url, reason) into campaign_events.

    Every row is checked first (nothing is stored unless all are right); an event already loaded
    is stored once; bounces, complaints and unsubscribes suppress their address."""
    from .send.events import load_events

    console = JsonConsole() if as_json else TerminalConsole()
    console.events_loaded(load_events(file, Session(options).where))


def plural(count: int, singular: str, several: str | None = None) -> str:
    return f"{count} {singular if count == 1 else several or singular + 's'}"


@contextmanager
def _exit_codes():
    try:
        yield
    except InvalidInput as invalid:
        for diagnostic in invalid.diagnostics:
            click.echo(str(diagnostic), err=True)
        count = len(invalid.diagnostics)
        click.echo(f"{count} error{'s' if count != 1 else ''}; nothing was built or sent.", err=True)
        sys.exit(2)
    except RuntimeFailure as failure:
        click.echo(f"error: {failure}", err=True)
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    with _exit_codes():
        try:
            cli.main(args=argv, prog_name="campaign", standalone_mode=False)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            exc.show()
            sys.exit(2)
