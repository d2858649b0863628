"""The `campaign` command; the README's "The commands" is its user guide.

Exit status: 0 success, 2 invalid input (every error printed as file:line:col: error: ...,
nothing built), 1 a runtime failure (warehouse, dbt) with a one-line cause.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import __version__, timing, warm
from .console import Console, JsonConsole, TerminalConsole, plural
from .errors import Diagnostic, Diagnostics, InvalidInput, RuntimeFailure, display_path
from .timing import NOW_VARIABLE

if TYPE_CHECKING:
    from .occurrence import SendOptions

STEP_START = "start"  # compile.plan.START, the first step of a campaign (imported lazily: dbt and sqlglot are slow)


@dataclass
class Options:
    project_dir: str | None = None
    profiles_dir: str | None = None
    target: str | None = None
    now: str | None = None


_OPTIONS = (
    ("--project-dir", "project_dir", "PATH", "The dbt project (default: the working directory)."),
    ("--profiles-dir", "profiles_dir", "PATH", "Where profiles.yml is (default: as dbt, or the project directory)."),
    ("--target", "target", "NAME", "The dbt target (default: the profile's)."),
    ("--now", "now", "ISO", f"The current time, for rehearsals and tests (default: ${NOW_VARIABLE}, else the clock)."),
)


def project_options(command):
    """Accept --project-dir, --profiles-dir, --target and --now after the command as well as before it.

    --now is set as $CAMPAIGN_NOW for the whole command: whatever depends on time (occurrences, waits,
    incremental queries, frequency caps, the times the logs record) reads the same clock."""

    @functools.wraps(command)
    def wrapper(*args, project_dir=None, profiles_dir=None, target=None, now=None, **kwargs):
        group: Options = click.get_current_context().find_object(Options) or Options()
        options = Options(
            project_dir or group.project_dir,
            profiles_dir or group.profiles_dir,
            target or group.target,
            now or group.now,
        )
        if options.now:
            timing.now(options.now)  # an error unless it is an ISO time
            os.environ[NOW_VARIABLE] = options.now
        return command(options, *args, **kwargs)

    for flag, name, metavar, help_text in reversed(_OPTIONS):
        wrapper = click.option(flag, name, default=None, metavar=metavar, help=help_text)(wrapper)
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="campaign")
@click.option("--project-dir", "project_dir", default=None, metavar="PATH", help=_OPTIONS[0][3])
@click.option("--profiles-dir", "profiles_dir", default=None, metavar="PATH", help=_OPTIONS[1][3])
@click.option("--target", "target", default=None, metavar="NAME", help=_OPTIONS[2][3])
@click.option("--now", "now", default=None, metavar="ISO", help=_OPTIONS[3][3])
@click.pass_context
def cli(ctx: click.Context, project_dir, profiles_dir, target, now) -> None:
    """Orchestrated marketing campaigns as code, compiled into dbt models."""
    ctx.obj = Options(project_dir, profiles_dir, target, now)


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

    def campaigns(self, names, builds: bool = True) -> list:
        """The named campaigns (every campaign of the project when none is named), all valid, or
        InvalidInput with all their errors.

        A command that `builds` nothing (status, send) skips the check that no two campaigns of the
        project give dbt one name, which loads every campaign: that matters to dbt's builds only."""
        diagnostics = Diagnostics()
        loaded = [self.workspace.load(name, diagnostics) for name in names or self.workspace.files()]
        if not loaded:
            raise InvalidInput([Diagnostic(None, f"no campaign file in {display_path(self.workspace.campaigns_dir)}/")])
        if builds:
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
    from .occurrence import DueStep, build_step, resolve_occurrence
    from .run.lock import CampaignLock

    console = JsonConsole() if as_json else TerminalConsole()
    session = Session(options)
    (loaded,) = session.campaigns([campaign])
    now = timing.now()
    schedule = loaded.schedule
    occurrence, at = resolve_occurrence(
        loaded, timing.occurrence_name(schedule.next_after(now)) if schedule and not schedule.latest(now) else None, now
    )
    started = time.monotonic()
    with CampaignLock(session.where, loaded.name):
        due = DueStep(loaded.name, occurrence, STEP_START, at, "count")
        result = build_step(session.workspace, session.where, loaded, due, console, simulate=True)
    _write_canvas(session, result, console)
    console.counts(result)
    console.built(result, time.monotonic() - started)


def _write_canvas(session: Session, result, console: Console) -> None:
    from .canvas import waiting, write_page

    waits = waiting(result.campaign, session.where)
    path = write_page(result.campaign, session.workspace, result.rows, result.channels, result.target, waits=waits)
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

    rows, channels, target, waits = measure(campaign, session.workspace, session.where)
    if fmt == "html":
        path = write_page(
            campaign, session.workspace, rows, channels, target, output.resolve() if output else None, waits
        )
        console.say(f"Canvas of {campaign.name}: {display_path(path)}")
        return
    drawn = draw(campaign, session.workspace, rows, channels, target, waits)
    text = render_mermaid(drawn) if fmt == "mermaid" else render_dot(drawn)
    if output is None:
        console.data(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.say(f"{fmt} of {campaign.name}: {display_path(output)}")


def send_options(command):
    """The options of `run` and `send`, given to the command as one SendOptions, `sending`."""

    @functools.wraps(command)
    def wrapper(*args, simulate, yes, occurrence, resend_unknown, retry_failed, **kwargs):
        from .occurrence import SendOptions

        return command(*args, sending=SendOptions(simulate, yes, occurrence, resend_unknown, retry_failed), **kwargs)

    for decorator in reversed(
        (
            click.option("--simulate", is_flag=True, help="Render every message into the outbox, deliver nothing."),
            click.option("--yes", is_flag=True, help="Do not ask for confirmation (required without a terminal)."),
            click.option(
                "--occurrence",
                default=None,
                help="The occurrence (default: `once`; for a scheduled campaign, its latest slot, named by its "
                "UTC time; for send, the one built).",
            ),
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
    """Compile, build, show the counts, confirm, and send (one occurrence; a campaign with waits, its
    first step: `campaign tick` runs the others when their time comes)."""
    from .occurrence import DueStep, resolve_occurrence, run_step

    console = TerminalConsole()
    session = Session(options)
    (loaded,) = session.campaigns([campaign])
    now = timing.now()
    occurrence, at = resolve_occurrence(loaded, sending.occurrence, now)
    with _ready_to_send(session, loaded, occurrence, sending, "run", console) as lock:
        done = run_step(
            session.workspace,
            session.where,
            loaded,
            lock,
            DueStep(loaded.name, occurrence, STEP_START, at, "run"),
            sending,
            console,
            now,
        )
        _write_canvas(session, done.result, console)
    if done.waits:
        console.say("`campaign tick` runs the steps after the waits when their time comes.")


@cli.command()
@click.argument("campaign")
@send_options
@project_options
def send(options: Options, campaign: str, sending: SendOptions) -> None:
    """Send the messages of an already built campaign (a campaign with waits: those of its first step)."""
    from .occurrence import DueStep, resolve_occurrence, send_step

    console = TerminalConsole()
    session = Session(options)
    (loaded,) = session.campaigns([campaign], builds=False)
    with _ready_to_send(session, loaded, sending.occurrence, sending, "send", console) as lock:
        occurrence, channels = _built_channels(session, loaded, sending.occurrence)
        if loaded.schedule is not None:  # its occurrences are its slots: not `once`, as a plain dbt build records
            resolve_occurrence(loaded, occurrence, timing.now())
        due = DueStep(loaded.name, occurrence, STEP_START, timing.now(), "send")
        send_step(session.workspace, session.where, lock, loaded, due, sending, channels, console)


@contextmanager
def _ready_to_send(
    session: Session, loaded, occurrence: str | None, sending: SendOptions, command: str, console: Console
):
    """The occurrence (when known), the means to confirm and the credentials checked before anything
    runs; then the campaign's lock, held."""
    from .run.lock import CampaignLock
    from .send.sender import check_occurrence

    if occurrence is not None:
        check_occurrence(occurrence)
    _check_confirmation(sending, command, console)
    _check_credentials(session, [loaded], sending.simulate)
    with CampaignLock(session.where, loaded.name) as lock:
        yield lock


def _check_confirmation(sending: SendOptions, command: str, console: Console) -> None:
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


def _built_channels(session: Session, campaign, occurrence: str | None) -> tuple[str, dict]:
    """(the occurrence, the messages and exclusions of each channel activity of the first step), as
    built on the target; RuntimeFailure unless that build is the campaign as it stands, for
    `occurrence` when given."""
    from .project.target import connect
    from .run.counts import channel_counts
    from .run.state import CampaignBuild

    with connect(session.where) as warehouse:
        models = [
            name
            for a in campaign.channel_activities(STEP_START)
            for name in (a.message.model, a.message.excluded_model)
        ]
        build = CampaignBuild(campaign, warehouse, session.where.target)
        occurrence = occurrence or build.occurrence(models)
        built = build.require(models, occurrence)
        return occurrence, channel_counts(warehouse, built, campaign)


def _check_credentials(session: Session, campaigns: list, simulate: bool) -> None:
    """Every credential the campaigns' providers read is in the environment, before anything runs:
    a run must not send one channel and then stop at the next."""
    if simulate:  # a simulation delivers nothing
        return
    channels = sorted({a.message.channel for campaign in campaigns for a in campaign.channel_activities()})
    missing = [d for channel in channels for d in session.workspace.channel_settings(channel).missing_credentials()]
    if missing:
        raise InvalidInput(missing)


@cli.command()
@click.argument("campaigns", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: the due steps and missed slots.")
@project_options
def due(options: Options, campaigns, as_json: bool) -> None:
    """What `campaign tick` would run now: the scheduled occurrences due, the waits whose release has
    come, the steps to try again, and the slots missed for longer than their catch-up (all the
    project's campaigns when none is named)."""
    import json

    from .occurrence import agendas, describe_due

    session = Session(options)
    loaded = session.campaigns(campaigns)
    now = timing.now()
    found = agendas(loaded, session.where, now)
    if as_json:
        click.echo(json.dumps(_due_json(found, now), indent=2))
        return
    console = TerminalConsole()
    by_name = {c.name: c for c in loaded}
    for name, planned in found.items():
        for item in planned.due:
            console.data(f"{name} {describe_due(by_name[name], item)}")
        for item in planned.missed:
            console.data(f"{name} {item.occurrence}: missed for longer than its catch-up (a tick skips it)")
    if not any(p.due or p.missed for p in found.values()):
        console.say(f"Nothing due at {timing.occurrence_name(now)}.")


def _due_json(found: dict, now) -> dict:
    def item(d) -> dict:
        return {
            "campaign": d.campaign,
            "occurrence": d.occurrence,
            "step": d.step,
            "at": timing.occurrence_name(d.at),
            "why": d.why,
        }

    return {
        "now": timing.occurrence_name(now),
        "due": [item(d) for planned in found.values() for d in planned.due],
        "missed": [item(d) for planned in found.values() for d in planned.missed],
    }


@cli.command()
@click.argument("campaigns", nargs=-1)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (required without a terminal: cron).")
@click.option("--simulate", is_flag=True, help="Render what is due into the simulation outbox, record nothing.")
@project_options
def tick(options: Options, campaigns, yes: bool, simulate: bool) -> None:
    """Run everything due now, each once, oldest first: build, count, send (meant for cron or an
    orchestrator; all the project's campaigns when none is named). A second tick at the same time
    runs nothing."""
    from .occurrence import SendOptions, agendas
    from .occurrence import tick as run_tick

    console = TerminalConsole()
    session = Session(options)
    loaded = session.campaigns(campaigns)
    now = timing.now()
    sending = SendOptions(simulate=simulate, yes=yes)
    _check_confirmation(sending, "tick", console)
    found = agendas(loaded, session.where, now)
    _check_credentials(session, [c for c in loaded if found[c.name].due], simulate)
    busy = [c for c in loaded if found[c.name].due or found[c.name].missed]  # a missed slot is recorded too
    report = run_tick(session.workspace, session.where, busy, now, sending, console)
    ran = len(report.ran)
    console.say(
        f"Tick at {timing.occurrence_name(now)}: {plural(ran, 'step')} run"
        + (f", {plural(len(report.skipped), 'slot')} skipped" if report.skipped else "")
        + (f", {plural(len(report.failed), 'campaign')} stopped by a failure" if report.failed else "")
        + "."
    )
    if report.failed:
        raise RuntimeFailure("; ".join(f"{name}: {why}" for name, why in report.failed))


@cli.command()
@click.argument("campaign")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option(
    "--occurrences",
    "shown",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many of the latest occurrences to show the steps and deliveries of.",
)
@project_options
def status(options: Options, campaign: str, as_json: bool, shown: int) -> None:
    """Where a campaign stands on the target: its latest occurrences step by step, the populations
    waiting, the events loaded, the funnel of each channel activity, its runs and deliveries."""
    import json

    from .project.target import connect
    from .send.status import read_status

    session = Session(options)
    (loaded,) = session.campaigns([campaign], builds=False)
    with connect(session.where) as warehouse:
        found = read_status(loaded, warehouse, shown)
    if as_json:
        click.echo(json.dumps(found.as_json()))
        return
    TerminalConsole().status(found)


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
    """The `campaign` command; `argv` given (tests, the warm process's forks) runs it here, always."""
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    args = sys.argv[1:] if argv is None else argv
    command, options = _peek(args)
    if argv is None and command in warm.COMMANDS and warm.wanted():
        status = warm.forward(args)
        if status is not None:
            sys.exit(status)
        try:
            _main(args)
        finally:
            warm.start(options.get("--project-dir", "."))
    else:
        _main(args)


def _peek(args: list[str]) -> tuple[str | None, dict[str, str]]:
    """The command `args` name (the first word that is not an option or an option's value) and the
    values they give the project options (--project-dir and the others, before or after it)."""
    valued = {flag for flag, *_ in _OPTIONS}
    command, options = None, {}
    words = iter(args)
    for word in words:
        flag, equals, value = word.partition("=")
        if flag in valued:
            options[flag] = value if equals else next(words, "")
        elif command is None and not word.startswith("-"):
            command = word
    return command, options


def _main(argv: list[str]) -> None:
    with _exit_codes():
        try:
            cli.main(args=argv, prog_name="campaign", standalone_mode=False)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            exc.show()
            sys.exit(2)
