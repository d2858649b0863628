"""What the terminal shows: dbt's progress, the counts, send reports and runs, notes, the confirmation.

stdout carries what a script reads (the tables, the one JSON object of `count --json` or of
`events load --json`, a Mermaid or DOT text), stderr everything else. The commands talk to a `Console`; `run/` and `send/` do not
know of it, they take the callables it gives (a progress, a `notify`).

`Console` shows nothing and confirms nothing (for tests and library callers); `TerminalConsole`
draws with rich; `JsonConsole` is the terminal with the counts (or what a load of events stored) as
one JSON object instead of tables.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from .run.counts import CountResult


def plural(count: int, singular: str, several: str | None = None) -> str:
    """`1 slot`, `2 slots`, `3 activities` (with `several`)."""
    return f"{count} {singular if count == 1 else several or singular + 's'}"


class Console:
    """Shows nothing: every method is a no-op, and confirmation is refused."""

    def data(self, text: str, nl: bool = True) -> None:
        """Text on stdout, as is."""

    def say(self, text: str) -> None:
        """One line on stderr, as is."""

    def note(self, text: str) -> None:
        """A note on stderr, wrapped to the terminal."""

    def can_confirm(self) -> bool:
        """Whether someone can answer `confirm`."""
        return False

    def confirm(self, question: str) -> None:
        """Return when the answer is yes; click.Abort otherwise."""
        raise click.exceptions.Abort()

    @contextmanager
    def building(self, campaign: str) -> Iterator[Callable[[str, str], None]]:
        """While dbt builds `campaign`: the callable told of each node done (name, status)."""
        yield lambda node, state: None

    def built(self, result: CountResult, seconds: float) -> None:
        """How long the build and the counts took."""

    def counts(self, result: CountResult) -> None:
        """The row count of every working table and the messages of each channel."""

    def sending(self, simulate: bool) -> SendProgress:
        """The progress of a send: start(total), advance(count), stop()."""
        return SendProgress()

    def send_report(self, report) -> None:
        """What a send did, per channel activity (a send.sender.SendReport)."""

    def status(self, status) -> None:
        """Where a campaign stands on a target (a send.status.CampaignStatus)."""

    def events_loaded(self, report) -> None:
        """What loading a file of events stored (a send.events.LoadReport)."""


class SendProgress:
    """The progress of a send (send.sender calls start and advance), shown nowhere."""

    def start(self, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass

    def stop(self) -> None:
        pass


class TerminalConsole(Console):
    """The terminal: rich tables on stdout, progress and notes on stderr."""

    @cached_property
    def stderr(self):
        from rich.console import Console as Rich

        return Rich(stderr=True, highlight=False)

    @cached_property
    def stdout(self):
        from rich.console import Console as Rich

        # piped output is not cut to 80 columns
        return Rich(highlight=False, width=None if sys.stdout.isatty() else 200)

    def data(self, text: str, nl: bool = True) -> None:
        click.echo(text, nl=nl)

    def say(self, text: str) -> None:
        click.echo(text, err=True)

    def note(self, text: str) -> None:
        self.stderr.print(text)

    def can_confirm(self) -> bool:
        return sys.stdin.isatty()

    def confirm(self, question: str) -> None:
        click.confirm(question, abort=True, err=True)

    @contextmanager
    def building(self, campaign: str) -> Iterator[Callable[[str, str], None]]:
        finished = 0
        with self.stderr.status(f"Building {campaign} with dbt…") as status:

            def progress(node: str, state: str) -> None:
                nonlocal finished
                finished += 1
                status.update(f"Building {campaign} with dbt… {finished} nodes done (last: {node}, {state})")

            yield progress

    def built(self, result: CountResult, seconds: float) -> None:
        self.stderr.print(
            f"Built and counted in {seconds:.1f} s (target {result.target}, {result.adapter}).", style="dim"
        )

    def counts(self, result: CountResult) -> None:
        self.stdout.print(_counts_table(result))
        if result.channels:
            self.stdout.print(_channels_table(result))

    def sending(self, simulate: bool) -> SendProgress:
        return _Bar(self.stderr, "Simulating" if simulate else "Sending")

    def send_report(self, report) -> None:
        self.stdout.print(_report_table(report))
        unknown = sum(a.unknown for a in report.activities)
        if unknown:
            self.stdout.print(
                f"{unknown:,} messages have an unknown outcome (a run was interrupted, or the connection "
                "was lost after a message was transmitted) and were not sent again; check with the "
                "provider, then use --resend-unknown to send them."
            )

    def status(self, status) -> None:
        if status.empty:
            self.data(
                f"{status.campaign} has not run on target {status.target} yet: nothing of it is built or logged there."
            )
            return
        for table in (
            _occurrences_table(status),
            _waiting_table(status),
            _events_table(status),
            _funnel_table(status),
            _runs_table(status),
            _deliveries_table(status),
        ):
            if table is not None:
                self.stdout.print(table)

    def events_loaded(self, report) -> None:
        stored = sum(report.stored.values())
        kinds = ", ".join(f"{number:,} {kind}" for kind, number in sorted(report.stored.items()))
        click.echo(
            f"{report.file} on target {report.target}: {report.events:,} events read, {stored:,} stored"
            + (f" ({kinds})" if kinds else "")
            + f", {report.duplicates:,} duplicates ignored (loaded before or repeated), "
            f"{report.suppressions:,} suppressions added."
        )
        self._unknown_ids(report)

    def _unknown_ids(self, report) -> None:
        if report.unknown_ids:
            shown = ", ".join(report.unknown_ids[:5]) + (", ..." if len(report.unknown_ids) > 5 else "")
            self.say(
                f"{report.unknown_events:,} events not stored: their {len(report.unknown_ids):,} message ids name "
                f"no message sent from target {report.target}: {shown}"
            )


class JsonConsole(TerminalConsole):
    """The terminal, with the counts as the one JSON object `count --json` prints, and nothing else on
    stdout."""

    def built(self, result: CountResult, seconds: float) -> None:
        pass

    def counts(self, result: CountResult) -> None:
        click.echo(json.dumps(result.as_json()))

    def events_loaded(self, report) -> None:
        click.echo(json.dumps(report.as_json()))
        self._unknown_ids(report)


class _Bar(SendProgress):
    """A progress bar on the terminal for long sends (nothing when output is not a terminal)."""

    def __init__(self, console, label: str):
        self.console, self.label, self._bar, self._task = console, label, None, None

    def start(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )
        self._task = self._bar.add_task(self.label, total=total)
        self._bar.start()

    def advance(self, count: int) -> None:
        self._bar.advance(self._task, count)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _counts_table(result: CountResult):
    from rich.table import Table

    when = "" if result.occurrence == "once" else f", occurrence {result.occurrence}"
    step = f", after wait {result.step}" if result.step != "start" else ""
    table = Table(title=f"Campaign {result.campaign.name}{when}{step}", title_justify="left")
    for header, justify in (
        ("working table", "left"),
        ("activity", "left"),
        ("dimension", "left"),
        ("model", "left"),
        ("rows", "right"),
    ):
        table.add_column(header, justify=justify)
    for model in (m for m in result.campaign.counted() if m.name in result.rows):
        activity = result.campaign.activities[model.table.activity]
        table.add_row(
            model.reference, activity.type, model.table.dimension.label, model.name, f"{result.rows[model.name]:,}"
        )
    return table


def _channels_table(result: CountResult):
    """Messages and exclusions of each channel activity."""
    from rich.table import Table

    from .compile.contract import EXCLUSION_ORDER

    table = Table(title="Messages", title_justify="left")
    for header in ("activity", "channel", "messages", "recipients", *EXCLUSION_ORDER):
        table.add_column(header.replace("_", " "), justify="left" if header in ("activity", "channel") else "right")
    for activity, counts in result.channels.items():
        table.add_row(
            activity,
            counts["channel"],
            f"{counts['messages']:,}",
            f"{counts['recipients']:,}",
            *(f"{counts['excluded'].get(reason, 0):,}" for reason in EXCLUSION_ORDER),
        )
    return table


def _report_table(report):
    from rich.table import Table

    title = f"{'Simulation' if report.simulate else 'Send'} {report.run_id[:8]}, occurrence {report.occurrence}"
    table = Table(title=title, title_justify="left")
    columns = (
        "activity",
        "channel",
        "provider",
        "messages",
        "simulated" if report.simulate else "sent",
        "failed",
        "already sent",
        "unknown",
        "failed before",
    )
    for header in columns:
        table.add_column(header, justify="left" if header in ("activity", "channel", "provider") else "right")
    for a in report.activities:
        done = a.simulated if report.simulate else a.sent
        table.add_row(
            a.activity,
            a.channel,
            a.provider,
            f"{a.messages:,}",
            f"{done:,}",
            f"{a.failed:,}",
            f"{a.already_sent:,}",
            f"{a.unknown:,}",
            f"{a.failed_before:,}",
        )
    return table


def _table(title: str, headers: tuple[str, ...], text: tuple[str, ...]):
    """A rich table whose columns named in `text` are text, the others numbers."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, justify="left" if header in text else "right")
    return table


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment is not None else "-"


def _number(value) -> str:
    return "-" if value is None else f"{value:,}"


def _occurrences_table(status):
    """Each step of the latest occurrences; None for a campaign no step of which has run."""
    if not status.steps:
        return None
    shown = len({r.occurrence for r in status.steps})
    title = f"Occurrences of {status.campaign} (latest first, {shown} of {status.occurrences})"
    headers = ("occurrence", "step", "due (UTC)", "status", "population", "detail")
    table = _table(title, headers, ("occurrence", "step", "due (UTC)", "status", "detail"))
    for r in status.steps:
        table.add_row(r.occurrence, r.step, _when(r.due_at), r.status, _number(r.entered), r.detail or "")
    return table


def _waiting_table(status):
    """The populations waiting for their release; None for a campaign without wait."""
    if not status.waits:
        return None
    if not status.waiting:
        return f"Nothing waits in {', '.join(status.waits)}."
    headers = ("wait", "occurrence", "release (UTC)", "population")
    table = _table("Waiting (next release first)", headers, headers[:3])
    for r in status.waiting:
        table.add_row(r.step, r.occurrence, _when(r.due_at), _number(r.entered))
    for wait, waiting in status.waits.items():
        if waiting.occurrences > 1:
            table.add_row(wait, f"{waiting.occurrences} occurrences", "", _number(waiting.rows), style="bold")
    return table


def _events_table(status):
    if not status.events:
        return f"No event loaded for {status.campaign}."
    table = _table(f"Events of {status.campaign}", ("event", "events", "messages"), ("event",))
    for kind, (events, messages) in status.events.items():
        table.add_row(kind, f"{events:,}", f"{messages:,}")
    return table


def _funnel_table(status):
    """Each channel activity from targeting to reactions, totals over every occurrence."""
    if not status.funnels:
        return None
    from .compile.contract import EXCLUSION_ORDER

    reasons = [r for r in EXCLUSION_ORDER if any(r in f.excluded for f in status.funnels)]
    kinds = [kind for kind in status.events if any(kind in f.events for f in status.funnels)]
    source = {
        "occurrences": "targeted as each step counted it",
        "build": "targeted as the models built hold it",
        None: "not counted yet",
    }[status.targeted_from]
    title = f"Funnel of each channel activity, totals over every occurrence ({source})"
    headers = ("activity", "channel", "targeted", *(f"excluded: {r.replace('_', ' ')}" for r in reasons))
    table = _table(
        title, (*headers, "sent", "failed", "unknown", *(f"with {k}" for k in kinds)), ("activity", "channel")
    )
    for f in status.funnels:
        table.add_row(
            f.activity,
            f.channel,
            _number(f.targeted),
            *(f"{f.excluded.get(r, 0):,}" for r in reasons),
            *(f"{f.deliveries.get(s, 0):,}" for s in ("sent", "failed", "pending")),
            *(f"{f.events.get(kind, 0):,}" for kind in kinds),
        )
    return table


def _runs_table(status):
    if not status.runs:
        return f"No run of {status.campaign} on target {status.target} yet."
    headers = ("run", "occurrence", "started (UTC)", "finished (UTC)", "status")
    table = _table(f"Runs of {status.campaign} (latest first)", headers, headers)
    for run_id, occurrence, started, finished, state, _, _ in status.runs:
        table.add_row(
            run_id[:8],
            occurrence,
            f"{started:%Y-%m-%d %H:%M:%S}",
            f"{finished:%Y-%m-%d %H:%M:%S}" if finished else "-",
            state,
        )
    return table


def _deliveries_table(status):
    if not status.deliveries:
        return None
    headers = ("occurrence", "activity", "channel", "status", "messages")
    table = _table("Deliveries (latest occurrences first)", headers, headers[:4])
    for occurrence, activity, channel, state, number in status.deliveries:
        table.add_row(occurrence, activity, channel, state, f"{number:,}")
    return table
