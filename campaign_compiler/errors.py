"""Located diagnostics and the two kinds of failure the CLI knows.

Every problem in user input is a `Diagnostic` with a `Location`; they are collected in a
`Diagnostics` list so that one run reports all of them, then raised together as `InvalidInput`
(exit status 2). Problems of the outside world — warehouse, dbt, providers — are `RuntimeFailure`
(exit status 1) with a one-line cause.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Location:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def display_path(path: Path) -> str:
    """The path as the user would type it: relative to the working directory when below it, or up to
    two levels above it; absolute when further away.

    >>> display_path(Path.cwd() / "campaigns" / "welcome.yml")
    'campaigns/welcome.yml'
    >>> display_path(Path.cwd().parent / "shared.csv")
    '../shared.csv'
    """
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("../../..") else str(path)


@dataclass(frozen=True)
class Diagnostic:
    location: Location | None  # None for a mistake on the command line
    message: str

    def __str__(self) -> str:
        return f"{self.location}: error: {self.message}" if self.location else f"error: {self.message}"


class Diagnostics:
    """Collects every error found in one pass over the user's files."""

    def __init__(self) -> None:
        self._items: list[Diagnostic] = []

    def error(self, location: Location, message: str) -> None:
        self._items.append(Diagnostic(location, message))

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def sorted(self) -> list[Diagnostic]:
        unique = dict.fromkeys(self._items)
        return sorted(unique, key=lambda d: (d.location or Location("", 0, 0), d.message))

    def raise_if_any(self) -> None:
        if self._items:
            raise InvalidInput(self.sorted())


class InvalidInput(Exception):
    """The user's files are wrong; nothing may be built or sent (exit status 2)."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


class RuntimeFailure(Exception):
    """The warehouse, dbt or a provider failed (exit status 1)."""


def did_you_mean(word: str, candidates) -> str:
    """' (did you mean "x"?)' when a candidate is close to `word`, else ''.

    Written right after the error, so that nothing is added when no candidate is close:

    >>> "unknown dimension" + did_you_mean("custmer", ["customer", "booking"])
    'unknown dimension (did you mean "customer"?)'
    >>> "unknown dimension" + did_you_mean("hotel", ["customer", "booking"])
    'unknown dimension'
    """
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


class MessageFailure(Exception):
    """One message cannot be made from its row's data (too large, an address that cannot be written):
    that message fails with this reason, logged and counted; the run goes on."""
