"""Message templates: YAML files of Jinja2 text, checked at compile time, rendered in a sandbox.

email: `subject`, `text` and/or `html`; sms: `body`; push: `title`, `body`, `data` (a mapping).
A template may use the recipient entity's columns and the working table's columns by name
(`{{ first_name }}`) and, in a multi-level send, the linked row under its `as` name
(`{{ booking.checkin_date }}`). Every name is checked against the data model when the campaign
is compiled; the models then select exactly the columns the template uses. NULL renders as "".
HTML is autoescaped; nothing a template does can reach outside the row it is given. Each rendered
part of a message (subject, text, html, body, title, a data value) is capped at OUTPUT_CAP: a
message whose template would write more fails, without its text being built whole first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.meta import find_undeclared_variables
from jinja2.sandbox import SandboxedEnvironment

from ..errors import Diagnostics, MessageFailure, did_you_mean, display_path
from ..reader import Reader
from ..yamlsrc import Path_, Source, load_yaml

FIELDS = {  # channel -> (required, optional)
    "email": (("subject",), ("text", "html")),
    "sms": (("body",), ()),
    "push": (("title", "body"), ("data",)),
}


OUTPUT_CAP = 1_000_000  # UTF-8 bytes each rendered part of a message may have: 1 MB
_POWER_CAP = 10_000  # bits of an integer `**` may make (its computation alone could take hours)


class OutputTooLarge(MessageFailure):
    """A template would make more than a message may hold; the reason names the part once rendering stops."""


_OVER_CAP = f"template output over {OUTPUT_CAP // 1_000_000} MB"


def _null_as_empty(value: Any) -> Any:
    return "" if value is None else value


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox (no attribute or call reaching outside the row, ranges of at most 100,000
    items) that also refuses to make a text or an integer of unbounded size with `*` or `**`:
    {{ 'a' * 10**9 }} would allocate a gigabyte before any output could be capped."""

    intercepted_binops = frozenset(("*", "**"))

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if (
                    isinstance(sequence, (str, list, tuple))
                    and isinstance(times, int)
                    and len(sequence) * times > OUTPUT_CAP
                ):
                    raise OutputTooLarge(_OVER_CAP)
        elif (
            isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right > 0
            and abs(left).bit_length() * right > _POWER_CAP
        ):
            raise OutputTooLarge(f"template number over {_POWER_CAP:,} bits")
        return super().call_binop(context, operator, left, right)


def environment(autoescape: bool) -> SandboxedEnvironment:
    return _Sandbox(
        undefined=StrictUndefined, finalize=_null_as_empty, autoescape=autoescape, keep_trailing_newline=True
    )


_TEXT = environment(autoescape=False)
_HTML = environment(autoescape=True)


@dataclass(frozen=True)
class Per:
    """The linked row of a multi-level send, as templates see it: `alias.column`."""

    alias: str
    columns: dict[str, str]  # column -> type, of the linked entity


@dataclass
class Template:
    path: Path
    channel: str
    fields: dict[str, str]  # subject/text/html/body/title -> Jinja source
    data: dict[str, str] = field(default_factory=dict)  # push data: key -> Jinja source
    names: list[str] = field(default_factory=list)  # row columns used, in order of first use
    per_columns: list[str] = field(default_factory=list)  # columns of the linked row used

    def render(self, values: dict[str, Any], per: str | None) -> dict[str, Any]:
        """The message parts for one message, given the values of the names it uses (row columns by
        name, the linked row's as `<per>.<column>`)."""
        context = {name: values.get(name) for name in self.names}
        if per:
            context[per] = {column: values.get(f"{per}.{column}") for column in self.per_columns}
        rendered: dict[str, Any] = {name: self._render(name, context) for name in self.fields}
        if self.data:
            rendered["data"] = {key: self._render(f"data.{key}", context) for key in self.data}
        return rendered

    def _render(self, name: str, context: dict) -> str:
        """One part, streamed: it fails as soon as it is over OUTPUT_CAP."""
        compiled, globals_, pieces = self._compiled(name)
        if pieces is not None:
            return _joined(name, pieces, context)
        chunks, size = [], 0
        # what Template.generate does, less its copies of the context: the variables and the
        # environment's globals in one dict of this part's own (a template cannot change its parent)
        parent = {**globals_, **context}
        try:
            for chunk in compiled.root_render_func(compiled.new_context(parent, shared=True)):
                size += len(chunk) if chunk.isascii() else len(chunk.encode("utf-8", "surrogatepass"))
                if size > OUTPUT_CAP:
                    raise OutputTooLarge(_OVER_CAP)
                chunks.append(chunk)
        except OutputTooLarge as error:
            raise OutputTooLarge(f"{name}: {error}") from None
        return "".join(chunks)

    def _compiled(self, name: str):
        cache = self.__dict__.setdefault("_cache", {})
        if name not in cache:
            source = self.data[name[5:]] if name.startswith("data.") else self.fields[name]
            environment = _HTML if name == "html" else _TEXT
            compiled = environment.from_string(source)
            pieces = None if name == "html" else _pieces(environment.parse(source), self.names)
            cache[name] = compiled, dict(compiled.globals), pieces  # (a ChainMap, slow to copy for each message)
        return cache[name]


def _pieces(tree: nodes.Template, names: list[str]) -> tuple[tuple[str, str | None], ...] | None:
    """A text template made of text and row columns only (`Dear {{ first_name }},`), as its pieces:
    (text, None) or ("", column). Jinja writes such a template as its text and each column's value,
    None as "" (`str` of the value, as `finalize` then Jinja's output do): joining the pieces makes
    the same text without building a Jinja context per message, which costs more than the rest. None
    for any other template (a filter, a condition, a linked row's column...)."""
    if not tree.body:
        return ()
    if len(tree.body) > 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    pieces = []
    for node in tree.body[0].nodes:
        if type(node) is nodes.TemplateData:
            pieces.append((node.data, None))
        elif type(node) is nodes.Name and node.ctx == "load" and node.name in names:
            pieces.append(("", node.name))
        else:
            return None
    return tuple(pieces)


def _joined(name: str, pieces: tuple[tuple[str, str | None], ...], context: dict) -> str:
    """A template of `_pieces` rendered; over OUTPUT_CAP, it fails as Jinja's rendering would."""
    text = "".join(
        piece if column is None else "" if (value := context[column]) is None else str(value)
        for piece, column in pieces
    )
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > OUTPUT_CAP:
        raise OutputTooLarge(f"{name}: {_OVER_CAP}")
    return text


def load_template(
    project_root: Path,
    source: Source,
    path: Path_,
    value: Any,
    channel: str,
    names: dict[str, str],
    per: Per | None,
    diagnostics: Diagnostics,
) -> Template | None:
    """The template named at `path` of a campaign file, checked against the columns `names` can use."""
    r = Reader(source, diagnostics)
    relative = r.string(path, value, "template")
    if relative is None:
        return None
    file = (project_root / relative).resolve()
    if project_root.resolve() not in file.parents:
        r.error(path, f'template "{relative}" must be a file inside the dbt project')
        return None
    if not file.is_file():
        r.error(path, f"template not found: {display_path(file)}")
        return None
    template_source = load_yaml(file, diagnostics)
    if template_source is None:
        return None
    t = Reader(template_source, diagnostics)
    required, optional = FIELDS[channel]
    article = "an" if channel[0] in "aeiou" else "a"
    raw = t.mapping((), template_source.data, f"{article} {channel} template", required=required, optional=optional)
    if raw is None:
        return None
    if channel == "email" and not ("text" in raw or "html" in raw):
        t.error((), 'an email template needs "text", "html" or both')
        return None
    checker = _Checker(template_source, names, per, diagnostics)
    fields = {}
    for name in (*required, *optional):
        if name in raw and name != "data":
            text = t.string((name,), raw[name], name)
            if text is not None and checker.check((name,), text, html=name == "html"):
                fields[name] = text
    data = {}
    if "data" in raw:
        mapping = t.mapping(("data",), raw["data"], "data")
        for key, text in (mapping or {}).items():
            if not isinstance(text, (str, int, float, bool)):
                t.error(("data", key), "data values are text (templates)")
                continue
            if checker.check(("data", key), str(text), html=False):
                data[key] = str(text)
    if checker.failed or len(fields) != len([n for n in (*required, *optional) if n in raw and n != "data"]):
        return None
    return Template(
        path=file, channel=channel, fields=fields, data=data, names=checker.names, per_columns=checker.per_columns
    )


class _Checker:
    """Parses template text and checks every name it reads."""

    def __init__(self, source: Source, names: dict[str, str], per: Per | None, diagnostics: Diagnostics):
        self.source, self.allowed, self.per, self.diagnostics = source, names, per, diagnostics
        self.names: list[str] = []
        self.per_columns: list[str] = []
        self.failed = False

    def check(self, path: Path_, text: str, html: bool) -> bool:
        env = _HTML if html else _TEXT
        try:
            tree = env.parse(text)
        except TemplateSyntaxError as error:
            self._error(path, text, error.lineno or 1, "", f"invalid template: {error.message}")
            return False
        except RecursionError:  # Jinja parses nested expressions recursively; rendering is no deeper
            self._error(path, text, 1, "", "invalid template: nested too deeply to be read")
            return False
        ok = True
        undeclared = find_undeclared_variables(tree)
        # in order of first use, so that generated models do not depend on set ordering
        for name in dict.fromkeys(n.name for n in tree.find_all(nodes.Name) if n.name in undeclared):
            if name in env.globals:
                continue
            line = _first_line(tree, name)
            if self.per is not None and name == self.per.alias:
                ok &= self._check_per(path, text, tree)
            elif name in self.allowed:
                if name not in self.names:
                    self.names.append(name)
            else:
                known = list(self.allowed) + ([self.per.alias] if self.per else [])
                self._error(path, text, line, name, f'unknown variable "{name}"{did_you_mean(name, known)}')
                ok = False
        return ok

    def _check_per(self, path: Path_, text: str, tree: nodes.Template) -> bool:
        alias = self.per.alias
        ok = True
        used = {
            id(n.node)
            for n in tree.find_all((nodes.Getattr, nodes.Getitem))
            if isinstance(n.node, nodes.Name) and n.node.name == alias
        }
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            if not (isinstance(node.node, nodes.Name) and node.node.name == alias):
                continue
            column = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
            if column in self.per.columns:
                if column not in self.per_columns:
                    self.per_columns.append(column)
            else:
                self._error(
                    path,
                    text,
                    node.lineno,
                    str(column),
                    f'"{alias}" has no column "{column}"{did_you_mean(str(column), self.per.columns)}',
                )
                ok = False
        for node in tree.find_all(nodes.Name):
            if node.name == alias and node.ctx == "load" and id(node) not in used:
                self._error(path, text, node.lineno, alias, f'use one column of the linked row: "{alias}.<column>"')
                ok = False
        return ok

    def _error(self, path: Path_, text: str, line: int, token: str, message: str) -> None:
        lines = text.split("\n")
        start = sum(len(before) + 1 for before in lines[: line - 1])
        within = lines[line - 1].find(token) if token and line <= len(lines) else -1
        location = self.source.inside(path, text, start + max(within, 0), token or lines[min(line, len(lines)) - 1])
        self.diagnostics.error(location, message)
        self.failed = True


def _first_line(tree: nodes.Template, name: str) -> int:
    return min((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), default=1)
