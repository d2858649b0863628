"""The `campaign` command (SPEC §8).

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
from .errors import Diagnostics, InvalidInput, RuntimeFailure, display_path


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
        from .dbt_runner import DbtTarget
        from .dbtproject import default_profiles_dir
        from .workspace import Workspace

        self.workspace = Workspace(Path(options.project_dir or ".").resolve())
        profiles = Path(options.profiles_dir).resolve() if options.profiles_dir else \
            default_profiles_dir(self.workspace.dbt.root)
        self.where = DbtTarget(self.workspace.dbt, profiles, options.target)

    def campaigns(self, names) -> list:
        diagnostics = Diagnostics()
        loaded = [self.workspace.load(name, diagnostics) for name in names]
        diagnostics.raise_if_any()
        return loaded


@cli.command()
@click.argument("campaigns", nargs=-1, required=True)
@project_options
def validate(options: Options, campaigns) -> None:
    """Parse and check campaigns; report every error."""
    for campaign in Session(options).campaigns(campaigns):
        tables = campaign.tables()
        click.echo(f"{campaign.name}: ok ({plural(len(campaign.activities), 'activity', 'activities')}, "
                   f"{plural(len(tables), 'working table')})")


@cli.command()
@click.argument("campaigns", nargs=-1, required=True)
@project_options
def compile(options: Options, campaigns) -> None:  # noqa: A001 - the command is called compile
    """Write the campaigns' dbt models (and their docs and tests)."""
    from .emit import remove_orphans, write_campaign

    session = Session(options)
    loaded = session.campaigns(campaigns)
    for folder in remove_orphans(session.workspace.dbt, set(session.workspace.names())):
        click.echo(f"removed {display_path(folder)}: its campaign no longer exists")
    for campaign in loaded:
        dbt = session.workspace.dbt
        written = write_campaign(campaign, dbt)
        seeds = f", {plural(len(written.seeds), 'seed')} in {display_path(dbt.seeds_dir(campaign.name))}" \
            if written.seeds else ""
        removed = f"; removed {plural(len(written.removed), 'stale file')}" if written.removed else ""
        click.echo(f"{campaign.name}: {plural(len(written.models), 'model')} in "
                   f"{display_path(dbt.models_dir(campaign.name))}{seeds}{removed}")


@cli.command()
@click.argument("campaign")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (SPEC §8) instead of a table.")
@project_options
def count(options: Options, campaign: str, as_json: bool) -> None:
    """Compile, build with dbt, and print the exact row count of every working table."""
    from .counts import build_and_count, render_table

    session = Session(options)
    (loaded,) = session.campaigns([campaign])
    started = time.monotonic()
    result = build_and_count(loaded, session.workspace, session.where, stderr_console())
    if as_json:
        click.echo(json.dumps(result.as_json()))
    else:
        render_table(result, stdout_console())
        stderr_console().print(f"Built and counted in {time.monotonic() - started:.1f} s "
                               f"(target {result.target}, {result.adapter}).", style="dim")


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
