"""The `campaign` command; the README's "The commands" is its user guide.

Exit status: 0 success, 2 invalid input (every error printed as file:line:col: error: ...,
nothing built), 1 a runtime failure (warehouse, dbt) with a one-line cause.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from . import __version__
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
        options = Options(project_dir or group.project_dir, profiles_dir or group.profiles_dir,
                          target or group.target)
        return command(options, *args, **kwargs)

    for flag, name, help_text in reversed(_OPTIONS):
        wrapper = click.option(flag, name, default=None, metavar="PATH" if "dir" in flag else "NAME",
                               help=help_text)(wrapper)
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
        profiles = Path(options.profiles_dir).resolve() if options.profiles_dir else \
            default_profiles_dir(self.workspace.dbt.root)
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
    for campaign in Session(options).campaigns(campaigns):
        tables = campaign.tables()
        click.echo(f"{campaign.name}: ok ({plural(len(campaign.activities), 'activity', 'activities')}, "
                   f"{plural(len(tables), 'working table')})")


@cli.command()
@click.argument("campaigns", nargs=-1)
@project_options
def compile(options: Options, campaigns) -> None:  # noqa: A001 - the command is called compile
    """Write the campaigns' dbt models, with their docs and tests (all of the project's when none is
    named; with each the campaigns whose saved audiences it reads)."""
    from .compile.emit import remove_orphans, write_campaigns

    session = Session(options)
    loaded = session.campaigns(campaigns)
    dbt = session.workspace.dbt
    needed = {}
    for campaign in loaded:
        for saver, _ in session.workspace.audience_savers(campaign):
            needed.setdefault(saver.name, (saver, campaign))
        needed[campaign.name] = (campaign, None)
    every = write_campaigns([campaign for campaign, _ in needed.values()], dbt)
    for folder in remove_orphans(dbt, set(session.workspace.names())):  # once the new files are in place
        click.echo(f"removed {display_path(folder)}: its campaign no longer exists", err=True)
    for (campaign, reader), written in zip(needed.values(), every):
        seeds = f", {plural(len(written.seeds), 'seed')} in {display_path(dbt.seeds_dir(campaign.name))}" \
            if written.seeds else ""
        removed = f"; removed {plural(len(written.removed), 'stale file')}" if written.removed else ""
        why = f" ({reader.name} reads an audience it saves)" if reader is not None else ""
        click.echo(f"{campaign.name}: {plural(len(written.models), 'model')} in "
                   f"{display_path(dbt.models_dir(campaign.name))}{seeds}{removed}{why}", err=True)


@cli.command()
@click.argument("campaign")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (campaign, target, counts, channels) instead of tables.")
@project_options
def count(options: Options, campaign: str, as_json: bool) -> None:
    """Compile, build with dbt, and print the exact row count of every working table."""
    from .run.counts import build_and_count, render_channels, render_table
    from .run.lock import CampaignLock

    session = Session(options)
    (loaded,) = session.campaigns([campaign])
    started = time.monotonic()
    with CampaignLock(session.where, loaded.name):
        result = build_and_count(loaded, session.workspace, session.where, stderr_console())
    _write_canvas(session, result)
    if as_json:
        click.echo(json.dumps(result.as_json()))
    else:
        render_table(result, stdout_console())
        render_channels(result, stdout_console())
        stderr_console().print(f"Built and counted in {time.monotonic() - started:.1f} s "
                               f"(target {result.target}, {result.adapter}).", style="dim")


def _write_canvas(session: Session, result) -> None:
    from .canvas import write_page

    path = write_page(result.campaign, session.workspace, result.rows, result.channels, result.target)
    click.echo(f"Canvas of {result.campaign.name}: {display_path(path)}", err=True)


@cli.command()
@click.argument("campaign")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write it (default: target/canvas/<target>/<campaign>.html; stdout for mermaid and dot).")
@click.option("--format", "fmt", type=click.Choice(["html", "mermaid", "dot"]), default="html", show_default=True)
@project_options
def graph(options: Options, campaign: str, output: Path | None, fmt: str) -> None:
    """Draw the campaign with the counts of its last build."""
    from .canvas import draw, measure, render_dot, render_mermaid, write_page

    session = Session(options)
    (loaded,) = session.campaigns([campaign])
    rows, channels, target = measure(loaded, session.workspace, session.where)
    if fmt == "html":
        path = write_page(loaded, session.workspace, rows, channels, target, output.resolve() if output else None)
        click.echo(f"Canvas of {loaded.name}: {display_path(path)}", err=True)
        return
    drawn = draw(loaded, session.workspace, rows, channels, target)
    text = render_mermaid(drawn) if fmt == "mermaid" else render_dot(drawn)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"{fmt} of {loaded.name}: {display_path(output)}", err=True)


def send_options(command):
    for decorator in reversed((
        click.option("--simulate", is_flag=True, help="Render every message into the outbox, deliver nothing."),
        click.option("--yes", is_flag=True, help="Do not ask for confirmation (required without a terminal)."),
        click.option("--occurrence", default="once", show_default=True, help="The occurrence being sent."),
        click.option("--resend-unknown", is_flag=True,
                     help="Send again the messages whose outcome was left unknown (an interrupted run, a "
                          "connection lost after the message was transmitted)."),
        click.option("--retry-failed", is_flag=True, help="Send again the messages that failed in earlier runs."),
    )):
        command = decorator(command)
    return command


@cli.command()
@click.argument("campaign")
@send_options
@project_options
def run(options: Options, campaign: str, simulate: bool, yes: bool, occurrence: str, resend_unknown: bool,
        retry_failed: bool) -> None:
    """Compile, build, show the counts, confirm, and send."""
    from .run.counts import build_and_count, render_channels, render_table
    from .run.lock import CampaignLock
    from .send.sender import check_occurrence

    session = Session(options)
    (loaded,) = session.campaigns([campaign])
    check_occurrence(occurrence)
    _need_confirmation_means(yes, simulate, "run")
    _check_credentials(session, loaded, simulate)
    with CampaignLock(session.where, loaded.name) as lock:
        result = build_and_count(loaded, session.workspace, session.where, stderr_console(), occurrence)
        render_table(result, stdout_console())
        render_channels(result, stdout_console())
        _write_canvas(session, result)
        _send(session, lock, loaded, occurrence, simulate, yes, resend_unknown, retry_failed, result.channels)


@cli.command()
@click.argument("campaign")
@send_options
@project_options
def send(options: Options, campaign: str, simulate: bool, yes: bool, occurrence: str, resend_unknown: bool,
         retry_failed: bool) -> None:
    """Send the messages of an already built campaign."""
    from .project.target import connect
    from .run.counts import channel_counts
    from .run.lock import CampaignLock
    from .run.state import CampaignBuild
    from .send.sender import check_occurrence

    session = Session(options)
    (loaded,) = session.campaigns([campaign])
    check_occurrence(occurrence)
    _need_confirmation_means(yes, simulate, "send")
    _check_credentials(session, loaded, simulate)
    with CampaignLock(session.where, loaded.name) as lock:
        with connect(session.where) as warehouse:
            models = [name for a in loaded.channel_activities() for name in (a.message.model, a.message.excluded_model)]
            built = CampaignBuild(loaded, warehouse, session.where.target).require(models)
            channels = channel_counts(warehouse, built, loaded)
        _send(session, lock, loaded, occurrence, simulate, yes, resend_unknown, retry_failed, channels)


def _check_credentials(session: Session, campaign, simulate: bool) -> None:
    """Every credential the campaign's providers read is in the environment, before anything runs:
    a run must not send one channel and then stop at the next."""
    if simulate:  # a simulation delivers nothing
        return
    channels = sorted({activity.message.channel for activity in campaign.channel_activities()})
    missing = [d for channel in channels for d in session.workspace.channel_settings(channel).missing_credentials()]
    if missing:
        raise InvalidInput(missing)


def _need_confirmation_means(yes: bool, simulate: bool, command: str) -> None:
    if not (yes or simulate or sys.stdin.isatty()):
        raise InvalidInput([Diagnostic(None, f"campaign {command} cannot ask for confirmation without a terminal: "
                                             "add --yes to send, or --simulate")])


def _send(session: Session, lock, campaign, occurrence: str, simulate: bool, yes: bool, resend_unknown: bool,
          retry_failed: bool, channels: dict) -> None:
    from .send.sender import send_campaign

    if not campaign.channel_activities():
        click.echo(f"{campaign.name} has no channel activity: nothing to send.", err=True)
        return
    total = sum(c["messages"] for c in channels.values())
    what = ", ".join(f"{c['messages']:,} {c['channel']} ({activity})" for activity, c in channels.items())
    if not (yes or simulate):
        click.confirm(f"Send {what} for campaign {campaign.name}, occurrence {occurrence}?", abort=True, err=True)
    progress = _Progress(stderr_console(), "Simulating" if simulate else "Sending")
    try:
        report = send_campaign(campaign, session.workspace, session.where, lock, occurrence=occurrence, simulate=simulate,
                               resend_unknown=resend_unknown, retry_failed=retry_failed, progress=progress,
                               announced={activity: c["messages"] for activity, c in channels.items()})
    finally:
        progress.stop()
    _render_report(report, stdout_console())
    if report.stopped:
        raise RuntimeFailure(f"{report.stopped}; the messages it did not take are left for the next run")
    failed, lost = sum(a.failed for a in report.activities), sum(a.lost for a in report.activities)
    if failed or lost:  # a run that did not settle all it handled is not a success for a script or a scheduler
        problems = [f"{plural(failed, 'message')} failed (the reason of each is in campaign_deliveries.error"
                    + ("" if simulate else "; --retry-failed sends them again") + ")"] if failed else []
        if lost:
            problems.append(f"{plural(lost, 'message')} may have been delivered, the provider's answer lost "
                            "(left unknown; --resend-unknown sends them again)")
        raise RuntimeFailure("; ".join(problems))
    if total == 0:
        click.echo("No message to send.", err=True)


class _Progress:
    """A progress bar on the terminal for long sends (nothing when output is not a terminal)."""

    def __init__(self, console, label: str):
        self.console, self.label, self._bar, self._task = console, label, None, None

    def start(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                             TimeRemainingColumn(), console=self.console, transient=True,
                             disable=not self.console.is_terminal)
        self._task = self._bar.add_task(self.label, total=total)
        self._bar.start()

    def advance(self, count: int) -> None:
        self._bar.advance(self._task, count)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _render_report(report, console) -> None:
    from rich.table import Table

    title = f"{'Simulation' if report.simulate else 'Send'} {report.run_id[:8]}, occurrence {report.occurrence}"
    table = Table(title=title, title_justify="left")
    columns = ("activity", "channel", "provider", "messages", "simulated" if report.simulate else "sent",
               "failed", "already sent", "unknown", "failed before")
    for header in columns:
        table.add_column(header, justify="left" if header in ("activity", "channel", "provider") else "right")
    for a in report.activities:
        done = a.simulated if report.simulate else a.sent
        table.add_row(a.activity, a.channel, a.provider, f"{a.messages:,}", f"{done:,}", f"{a.failed:,}",
                      f"{a.already_sent:,}", f"{a.unknown:,}", f"{a.failed_before:,}")
    console.print(table)
    unknown = sum(a.unknown for a in report.activities)
    if unknown:
        console.print(f"{unknown:,} messages have an unknown outcome (a run was interrupted, or the connection was "
                      "lost after a message was transmitted) and were not sent again; check with the provider, "
                      "then use --resend-unknown to send them.")


@cli.command()
@click.argument("campaign")
@project_options
def status(options: Options, campaign: str) -> None:
    """Runs and deliveries of a campaign, from the delivery log."""
    from rich.table import Table

    from .project.target import connect
    from .send.log import DeliveryLog

    session = Session(options)
    (loaded,) = session.campaigns([campaign])
    console = stdout_console()
    with connect(session.where) as warehouse:
        log = DeliveryLog(warehouse)
        runs, totals = (log.runs(loaded.name), log.totals(loaded.name)) if log.exists() else ([], [])
    table = Table(title=f"Runs of {loaded.name} (latest first)", title_justify="left")
    for header in ("run", "occurrence", "started (UTC)", "finished (UTC)", "status"):
        table.add_column(header)
    for run_id, occurrence, started, finished, state, _, _ in runs:
        table.add_row(run_id[:8], occurrence, f"{started:%Y-%m-%d %H:%M:%S}",
                      f"{finished:%Y-%m-%d %H:%M:%S}" if finished else "-", state)
    console.print(table)
    table = Table(title="Deliveries", title_justify="left")
    for header in ("occurrence", "activity", "channel", "status", "messages"):
        table.add_column(header, justify="right" if header == "messages" else "left")
    for occurrence, activity, channel, state, number in totals:
        table.add_row(occurrence, activity, channel, state, f"{number:,}")
    console.print(table)


def plural(count: int, singular: str, several: str | None = None) -> str:
    return f"{count} {singular if count == 1 else several or singular + 's'}"


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def stdout_console():
    from rich.console import Console

    # piped output is not cut to 80 columns
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


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
