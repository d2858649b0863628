"""YAML files that remember where every value came from.

`load_yaml` returns a `Source`: the plain Python data plus the position of every key and value,
addressed by its path (`("activities", "fr_gold", "where")`). Diagnostics point at those positions,
and at positions *inside* a string value (a column name in a condition) with `Source.inside`.

Scalars are read the way a campaign author expects, not as YAML 1.1 does: only `true`/`false` are
booleans (so `on:` in a link and `country: NO` stay strings), keys are always strings, and a key
given twice is an error instead of a silent overwrite.

Every YAML file the compiler reads is held to limits far beyond what a campaign needs, so that a
mistaken or hostile file is refused at once instead of exhausting memory, time or the stack: its
size, how deep its values nest, and how many values it holds once its aliases are expanded (a few
hundred bytes of anchors and aliases can stand for a billion values). They are checked on the
stream of parser events, before any value is built.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Diagnostics, Location, display_path

Path_ = tuple  # a path into the document: keys and list indices

# libyaml's loader and dumper when PyYAML has them: several times faster on big campaigns.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 50  # nested mappings and lists
MAX_VALUES = 100_000  # keys and values, each alias counting as what it repeats
MAX_DIGITS = 4_300  # Python reads no longer integer

_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_DIGITS = re.compile(r"^[-+]?[0-9_]+$")
_FLOAT = re.compile(r"^[-+]?([0-9][0-9_]*)?\.[0-9_]+([eE][-+]?[0-9]+)?$|^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")


class LimitExceeded(yaml.MarkedYAMLError):
    """A file beyond one of the limits, with the position where it went beyond."""

    def __init__(self, problem: str, mark: yaml.Mark):
        super().__init__(problem=problem, problem_mark=mark)


def read_text(path: Path) -> str:
    """The text of a YAML file, or LimitExceeded when it is larger than MAX_FILE_BYTES (not read then)."""
    with open(path, encoding="utf-8") as handle:
        size = os.fstat(handle.fileno()).st_size
        text = handle.read(MAX_FILE_BYTES + 1) if size <= MAX_FILE_BYTES else ""
        if size > MAX_FILE_BYTES or len(text) > MAX_FILE_BYTES:  # a special file has no size
            raise LimitExceeded(
                f"the file is {max(size, len(text)):,} bytes; the compiler reads files of at most "
                f"{MAX_FILE_BYTES:,} bytes (1 MB)",
                yaml.Mark(str(path), 0, 0, 0, None, None),
            )
    return text


def check_limits(text: str) -> None:
    """LimitExceeded when the document nests deeper than MAX_DEPTH, holds more than MAX_VALUES values
    once its aliases are expanded, has an alias inside the collection it stands for (which would
    never end) or an integer too long to read; a syntax error as the YAML error it is. Nothing is
    expanded: an alias counts the values its anchor held.

    Five short lines in which each list repeats the one above ten times hold 111,111 values:

    >>> lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    >>> lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 5)]
    >>> check_limits("\\n".join(lines[:4]))  # 11,111 values: within the limit
    >>> check_limits("\\n".join(lines))
    Traceback (most recent call last):
      ...
    campaign_compiler.yamlsrc.LimitExceeded: this file holds more than 100,000 values once its aliases are expanded
      in "<unicode string>", line 5, column 45
    """
    open_collections: list[tuple[str | None, int]] = []  # (anchor, values counted before it)
    sizes: dict[str, int] = {}
    total = 0
    for event in yaml.parse(text, Loader=SAFE_LOADER):
        if isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_collections):
                raise LimitExceeded(f"alias *{event.anchor} stands for a collection that contains it", event.start_mark)
            total += sizes.get(event.anchor, 1)  # an unknown anchor is reported by the composer
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if (
                not event.style
                and len(event.value) > MAX_DIGITS
                and _DIGITS.match(event.value)
                and len(event.value.lstrip("+-").replace("_", "")) > MAX_DIGITS
            ):
                raise LimitExceeded(f"number of more than {MAX_DIGITS:,} digits", event.start_mark)
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            open_collections.append((event.anchor, total))
            total += 1
            if len(open_collections) > MAX_DEPTH:
                raise LimitExceeded(f"values are nested more than {MAX_DEPTH} levels deep", event.start_mark)
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before = open_collections.pop()
            if anchor:
                sizes[anchor] = total - before
        if total > MAX_VALUES:
            raise LimitExceeded(
                f"this file holds more than {MAX_VALUES:,} values once its aliases are expanded", event.start_mark
            )


def load_plain(path: Path) -> Any:
    """The plain data of a YAML file, without positions, within the limits; raises OSError,
    UnicodeDecodeError or yaml.YAMLError (LimitExceeded among them)."""
    text = read_text(path)
    check_limits(text)
    try:
        return yaml.load(text, Loader=SAFE_LOADER)
    except ValueError as error:  # a value YAML's own types refuse: the date 2026-02-30
        raise yaml.YAMLError(f"a value that cannot be read: {error}") from None


@dataclass
class _Node:
    mark: yaml.Mark
    end: yaml.Mark
    key_mark: yaml.Mark | None = None


@dataclass
class Source:
    """One YAML file: its data and the position of everything in it."""

    path: Path
    text: str
    data: Any = None
    nodes: dict[Path_, _Node] = field(default_factory=dict)

    @property
    def display(self) -> str:
        return display_path(self.path)

    def _location(self, mark: yaml.Mark) -> Location:
        return Location(self.display, mark.line + 1, mark.column + 1)

    def at(self, path: Path_ = ()) -> Location:
        """Where the value at `path` starts (or its nearest existing parent)."""
        while path and path not in self.nodes:
            path = path[:-1]
        node = self.nodes.get(path)
        return self._location(node.mark) if node else Location(self.display, 1, 1)

    def key_at(self, path: Path_) -> Location:
        """Where the key of the mapping entry at `path` is written."""
        node = self.nodes.get(path)
        if node is not None and node.key_mark is not None:
            return self._location(node.key_mark)
        return self.at(path)

    def inside(self, path: Path_, value: str, offset: int, token: str) -> Location:
        """Where `token`, found at `offset` of the string `value` at `path`, is in the file.

        Escapes, quotes and block indentation make offsets in the value differ from offsets in
        the file, so the token's n-th occurrence in the value is matched to its n-th occurrence in
        the raw text of the scalar. Falls back to the start of the value.
        """
        node = self.nodes.get(path)
        if node is None or not token:
            return self.at(path)
        raw = self.text[node.mark.index : node.end.index]
        nth = value.count(token, 0, offset)
        position = -1
        for _ in range(nth + 1):
            position = raw.find(token, position + 1)
            if position < 0:
                return self.at(path)
        index = node.mark.index + position
        line = self.text.count("\n", 0, index)
        col = index - (self.text.rfind("\n", 0, index) + 1)
        return Location(self.display, line + 1, col + 1)


def load_yaml(path: Path, diagnostics: Diagnostics) -> Source | None:
    """Read `path`; on a syntax error report it where it is and return None."""
    path = Path(path)
    try:
        text = read_text(path)
    except FileNotFoundError:
        diagnostics.error(Location(display_path(path), 1, 1), "file not found")
        return None
    except LimitExceeded as exc:
        diagnostics.error(Location(display_path(path), 1, 1), exc.problem)
        return None
    except (OSError, UnicodeDecodeError) as exc:
        diagnostics.error(Location(display_path(path), 1, 1), f"cannot read file: {exc}")
        return None
    source = Source(path=path, text=text)
    try:
        check_limits(text)
        root = yaml.compose(text, Loader=SAFE_LOADER)
    except LimitExceeded as exc:
        diagnostics.error(source._location(exc.problem_mark), exc.problem)
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        diagnostics.error(Location(source.display, line, col), f"invalid YAML: {problem}")
        return None
    if root is None:
        source.data = None
        return source
    source.data = _build(root, (), source, diagnostics)
    return source


def _build(node: yaml.Node, path: Path_, source: Source, diagnostics: Diagnostics) -> Any:
    existing = source.nodes.get(path)
    source.nodes[path] = _Node(node.start_mark, node.end_mark, existing.key_mark if existing else None)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                diagnostics.error(source._location(key_node.start_mark), "YAML merge keys (<<) are not supported")
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                diagnostics.error(source._location(key_node.start_mark), "mapping keys must be plain names")
                continue
            key = key_node.value
            if key in result:
                diagnostics.error(source._location(key_node.start_mark), f'key "{key}" is given twice')
                continue
            child = path + (key,)
            source.nodes[child] = _Node(value_node.start_mark, value_node.end_mark, key_node.start_mark)
            result[key] = _build(value_node, child, source, diagnostics)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), source, diagnostics) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    """The value of a scalar as a campaign author means it (YAML 1.1 would read some differently).

    >>> read = lambda text: _scalar(yaml.compose(text, Loader=SAFE_LOADER))
    >>> read("NO"), read("on"), read("'true'"), read("True")  # Norway, a link's "on", a quoted string
    ('NO', 'on', 'true', True)
    >>> read("1_000"), read("0.5"), read("012"), read("~")  # a leading zero keeps a code a string
    (1000, 0.5, '012', None)
    """
    value = node.value
    if node.style not in (None, "") or node.tag == "tag:yaml.org,2002:str":
        return value  # quoted or block: always a string
    lowered = value.lower()
    if lowered in ("", "~", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.match(value):
        return int(value.replace("_", ""))
    if _FLOAT.match(value):
        return float(value.replace("_", ""))
    return value
