"""Typed access to a YAML `Source` that reports what is wrong, and where.

Each accessor returns the value when it has the expected shape, or reports a located error and
returns None; callers continue with None so that one pass finds every error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .errors import Diagnostics, Location, did_you_mean
from .timing import DURATION_RULE, parse_duration
from .yamlsrc import Path_, Source

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
IDENTIFIER_RULE = "lowercase letters, digits and _, starting with a letter, at most 40 characters"
# Integers written into SQL (counts, ranks, seeds) stay within the integer type of every warehouse,
# so that a campaign that builds on one builds on all.
MAX_SQL_INTEGER = 2_147_483_647
NAME_PART_RULE = (
    'may not contain "__" nor end with "_": generated model names join campaign, activity and output names with "__"'
)

_KIND_NAMES = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", bool: "true or false"}


def quoted(value: Any) -> str:
    """A value as error messages show it: "text" in double quotes, anything else by its kind.

    >>> quoted("fr_gold"), quoted(3), quoted(None)
    ('"fr_gold"', 'a number', 'nothing')
    """
    return f'"{value}"' if isinstance(value, str) else describe(value)


def describe(value: Any) -> str:
    """What a value is, as "must be ..., not <this>" says it: its kind, never its content.

    A boolean is not called a number, though Python's bool is an int:

    >>> describe(True), describe(2.5), describe(["a"]), describe({})
    ('a boolean', 'a number', 'a list', 'a mapping')
    """
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return _KIND_NAMES.get(type(value), type(value).__name__)


@dataclass
class Reader:
    source: Source
    diagnostics: Diagnostics

    def at(self, path: Path_) -> Location:
        return self.source.at(path)

    def error(self, path: Path_, message: str, *, at_key: bool = False) -> None:
        location = self.source.key_at(path) if at_key else self.source.at(path)
        self.diagnostics.error(location, message)

    def mapping(
        self, path: Path_, value: Any, what: str, *, required: Iterable[str] = (), optional: Iterable[str] = ()
    ) -> dict | None:
        """A mapping; when keys are listed, exactly those (unknown ones get a "did you mean").

        Returns None when it is not a mapping or lacks a required key: there is nothing to check further.
        """
        if not isinstance(value, dict):
            self.error(path, f"{what} must be a mapping, not {describe(value)}")
            return None
        required, optional = tuple(required), tuple(optional)
        allowed = required + optional
        for key in value if allowed else ():
            if key not in allowed:
                self.error(path + (key,), f'unknown key "{key}" in {what}{did_you_mean(key, allowed)}', at_key=True)
        missing = [key for key in required if key not in value]
        for key in missing:
            self.error(path, f'{what} needs "{key}"')
        return None if missing else value

    def string(self, path: Path_, value: Any, what: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.error(path, f"{what} must be a non-empty string, not {describe(value)}")
            return None
        return value

    def identifier(self, path: Path_, value: Any, what: str, *, at_key: bool = False) -> str | None:
        if not isinstance(value, str) or not IDENTIFIER.match(value):
            self.error(path, f"{what} {quoted(value)} is not a valid name ({IDENTIFIER_RULE})", at_key=at_key)
            return None
        return value

    def name_part(self, path: Path_, value: Any, what: str, *, at_key: bool = False) -> str | None:
        """An identifier that generated model names are made of (campaign name, activity id, output or
        saved audience name): without "__" and not ending in "_", joining the parts with "__" gives
        every working table a name of its own."""
        name = self.identifier(path, value, what, at_key=at_key)
        if name is not None and ("__" in name or name.endswith("_")):
            self.error(path, f'{what} "{name}" {NAME_PART_RULE}', at_key=at_key)
            return None
        return name

    def integer(
        self, path: Path_, value: Any, what: str, *, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"{what} must be an integer, not {describe(value)}")
            return None
        if minimum is not None and value < minimum:
            self.error(path, f"{what} must be at least {minimum}, not {value}")
            return None
        if maximum is not None and value > maximum:
            self.error(path, f"{what} must be at most {maximum}, not {value}")
            return None
        return value

    def boolean(self, path: Path_, value: Any, what: str) -> bool | None:
        if not isinstance(value, bool):
            self.error(path, f"{what} must be true or false, not {describe(value)}")
            return None
        return value

    def choice(self, path: Path_, value: Any, what: str, choices: Iterable[str]) -> str | None:
        choices = tuple(choices)
        if value not in choices:
            self.error(
                path,
                f"{what} must be one of {', '.join(choices)}, not {quoted(value)}"
                f"{did_you_mean(value, choices) if isinstance(value, str) else ''}",
            )
            return None
        return value

    def duration(self, path: Path_, value: Any, what: str) -> timedelta | None:
        """A duration written `30m`, `12h`, `3d`, `2w`."""
        found = parse_duration(value)
        if found is None:
            self.error(path, f"{what} must be a duration, {DURATION_RULE}; not {quoted(value)}")
        return found

    def list_of(self, path: Path_, value: Any, what: str, *, min_items: int = 0) -> list | None:
        if not isinstance(value, list):
            self.error(path, f"{what} must be a list, not {describe(value)}")
            return None
        if len(value) < min_items:
            self.error(path, f"{what} needs at least {min_items} item{'s' if min_items > 1 else ''}")
            return None
        return value

    def identifiers(self, path: Path_, value: Any, what: str, *, min_items: int = 1) -> list[str] | None:
        """A list of distinct names, e.g. deduplication keys."""
        items = self.list_of(path, value, what, min_items=min_items)
        if items is None:
            return None
        names, ok = [], True
        for i, item in enumerate(items):
            name = self.identifier(path + (i,), item, f"{what} item")
            if name is None:
                ok = False
            elif name in names:
                self.error(path + (i,), f'"{name}" appears twice in {what}')
                ok = False
            else:
                names.append(name)
        return names if ok else None
