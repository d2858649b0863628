"""User SQL, checked and rewritten with sqlglot (SPEC §4.1).

Every piece of SQL a campaign author writes — a `where`, a `having`, an enrichment expression, an
`order_by` — is parsed in the project's `sql_dialect`, inspected node by node (no subquery, no
statement, no qualified or unknown name, no aggregate outside `having`, no function with side
effects), its columns rewritten to the aliases the package's macros use (`wt.` for the working
table, `dim.` for the dimension's entity), and later generated in each supported dialect. User
text never reaches the warehouse any other way.

Link conditions and link enrichments become `LinkJoin`s: a derived table, grouped by the link's
columns, that the macro `_link_joins` LEFT JOINs to the row it qualifies. Over zero linked rows an
aggregate is what the warehouse says it is: the `<alias>_empty` row evaluates it on an empty set.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterator

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from .datamodel import DataModel, Entity, Relation
from .errors import Diagnostics, did_you_mean
from .reader import describe
from .yamlsrc import Path_, Source

SUPPORTED_DIALECTS = ("duckdb", "postgres")

WORKING_ALIAS = "wt"
DIMENSION_ALIAS = "dim"
COUNT_ALIAS = "cnt"

# Functions sqlglot does not model but that are plain, side-effect-free scalar functions.
_UNMODELED_SAFE_FUNCTIONS = frozenset({
    "age", "btrim", "chr", "date_diff", "dayname", "dayofweek", "dayofyear", "epoch", "initcap",
    "isodow", "isoyear", "justify_days", "last_day", "make_date", "make_timestamp", "monthname",
    "regexp_matches", "strftime", "strptime", "to_date", "translate", "unaccent", "weekofyear",
})
# Functions sqlglot models that read or write outside the row, or are not deterministic.
_BLOCKED_FUNCTIONS = tuple(getattr(exp, name) for name in (
    "ReadCSV", "ReadParquet", "ToFile", "AIGenerate", "GenerateEmbedding", "NextValueFor",
    "GenerateSeries", "ExplodingGenerateSeries", "GenerateTable", "GenerateText", "GenerateBool",
    "GenerateDouble", "GenerateInt", "GenerateDateArray", "GenerateTimestampArray", "Generator",
    "XMLTable", "Rand", "Randn", "Randstr", "Uuid",
) if hasattr(exp, name))
_NOT_AN_EXPRESSION = (exp.Query, exp.Subquery, exp.Table, exp.From, exp.Join, exp.Exists, exp.Lateral)
_PARAMETERS = tuple(getattr(exp, name) for name in ("Placeholder", "Parameter", "SessionParameter")
                    if hasattr(exp, name))
_PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def column(name: str, table: str) -> exp.Column:
    """A qualified column, quoted only when SQL would otherwise change its case."""
    return exp.column(exp.to_identifier(name, quoted=not _PLAIN_NAME.match(name)),
                      table=exp.to_identifier(table))


def generate(expression: exp.Expression, dialect: str) -> str:
    return expression.sql(dialect=dialect)


@dataclass
class Scope:
    """The names a piece of SQL may use, and the qualified column each stands for."""

    names: dict[str, tuple[exp.Expression, str]]  # lowercased name -> (replacement, origin)
    entity: Entity | None
    entity_alias: str | None
    described_as: str

    @classmethod
    def of(cls, entity: Entity | None, entity_alias: str | None = DIMENSION_ALIAS,
           working: dict[str, str] | None = None, working_alias: str = WORKING_ALIAS) -> "Scope":
        names: dict[str, tuple[exp.Expression, str]] = {}
        if entity is not None and entity_alias is not None:
            for name in entity.columns:
                names[name.lower()] = (column(name, entity_alias), "entity")
        for name in working or {}:  # working-table columns win: the key is read from the row itself
            names[name.lower()] = (column(name, working_alias), "working")
        parts = []
        if entity is not None:
            parts.append(f'"{entity.name}"')
        if working and (entity is None or set(working) - set(entity.columns)):
            parts.append("the working table")
        return cls(names, entity, entity_alias, " or ".join(parts) or "the working table")

    @classmethod
    def count(cls) -> "Scope":
        return cls({"count": (exp.column("n", table=COUNT_ALIAS), "count")}, None, None,
                   "a test (only count is available)")


@dataclass
class LinkJoin:
    """A derived table over a linked entity, LEFT JOINed on the link's columns (macro `_link_joins`).

    kind `exists`: one row per link value having a matching row; `aggregate`: plus aggregate
    columns (and an `<alias>_empty` row with their value over no row); `rank`: the `rank`-th
    matching row by `order` (ties by the target's key), with plain columns.
    """

    alias: str
    entity: str
    relation: Relation
    kind: str
    on: list[tuple[exp.Expression, str]]
    key: str
    where: exp.Expression | None = None
    links: list["LinkJoin"] = field(default_factory=list)
    order: list[exp.Expression] = field(default_factory=list)
    rank: int = 1
    columns: list[tuple[str, exp.Expression]] = field(default_factory=list)
    signature: tuple = ()

    @property
    def row(self) -> str:
        return f"{self.alias}_row"

    def add_column(self, expression: exp.Expression) -> str:
        for name, existing in self.columns:
            if existing == expression:
                return name
        name = f"v{len(self.columns) + 1}"
        self.columns.append((name, expression))
        return name

    def present(self) -> exp.Expression:
        """True when the row has linked rows (the join matched)."""
        return exp.Not(this=exp.Paren(this=exp.Is(this=exp.column("k1", table=self.alias), expression=exp.Null())))

    def value(self, name: str) -> exp.Expression:
        """The column `name` of the join; for aggregates, its value over no row when unmatched."""
        joined = exp.column(name, table=self.alias)
        if self.kind != "aggregate":
            return joined
        missing = exp.Is(this=exp.column("k1", table=self.alias), expression=exp.Null())
        return exp.Case(ifs=[exp.If(this=missing, true=exp.column(name, table=f"{self.alias}_empty"))],
                        default=joined)


class Query:
    """Compiles the user SQL of one model and collects the link joins it needs."""

    def __init__(self, model: DataModel, diagnostics: Diagnostics, aliases: Iterator[int] | None = None):
        self.model = model
        self.dialect = model.sql_dialect
        self.diagnostics = diagnostics
        self.links: list[LinkJoin] = []
        self.uses_entity = False
        self._aliases = aliases or itertools.count(1)

    # -- conditions -----------------------------------------------------------------------------
    def condition(self, source: Source, path: Path_, value: Any, scope: Scope) -> exp.Expression | None:
        """A condition of SPEC §4.1: SQL text, all/any/not, or a link condition."""
        if isinstance(value, str):
            return self.expression(source, path, value, scope, what="condition")
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("all", "any"):
            operator = next(iter(value))
            items = value[operator]
            if not isinstance(items, list) or not items:
                self._error(source, path + (operator,), f'"{operator}" takes a non-empty list of conditions')
                return None
            parts = [self.condition(source, path + (operator, i), item, scope) for i, item in enumerate(items)]
            if any(p is None for p in parts):
                return None
            joined = exp.and_(*parts) if operator == "all" else exp.or_(*parts)
            return exp.Paren(this=joined) if len(parts) > 1 else parts[0]
        if isinstance(value, dict) and len(value) == 1 and "not" in value:
            inner = self.condition(source, path + ("not",), value["not"], scope)
            return exp.Not(this=exp.Paren(this=inner)) if inner is not None else None
        if isinstance(value, dict) and "link" in value:
            return self._link_condition(source, path, value, scope)
        if isinstance(value, dict):
            keys = ", ".join(f'"{k}"' for k in value)
            self._error(source, path, f"a condition mapping takes all, any, not or link, not {keys}"
                                      f"{did_you_mean(next(iter(value), ''), ('all', 'any', 'not', 'link'))}")
            return None
        self._error(source, path, f"a condition must be SQL text or a mapping (all, any, not, link), "
                                  f"not {describe(value)}")
        return None

    def _link_condition(self, source: Source, path: Path_, value: dict, scope: Scope) -> exp.Expression | None:
        unknown = [k for k in value if k not in ("link", "where", "having")]
        for key in unknown:
            self._error(source, path + (key,), f'unknown key "{key}" in link condition'
                                               f"{did_you_mean(key, ('link', 'where', 'having'))}", at_key=True)
        having = value.get("having")
        join = self.link_join(source, path, value.get("link"), value.get("where"), scope,
                              kind="aggregate" if having is not None else "exists")
        if join is None or unknown:
            return None
        if having is None:
            return join.present()
        target = self.model.entities[join.entity]
        aggregate = self.expression(source, path + ("having",), having, Scope.of(target, join.row),
                                    what="having", aggregates=True)
        if aggregate is None:
            return None
        return join.value(join.add_column(aggregate))

    def link_join(self, source: Source, path: Path_, link_name: Any, where: Any, scope: Scope, *,
                  kind: str, order_text: Any = None, rank: int = 1) -> LinkJoin | None:
        """The join over `link_name` filtered by `where`, shared with an identical one in this query."""
        entity = scope.entity
        if entity is None:
            self._error(source, path + ("link",), "links need an entity dimension; this working table has none")
            return None
        if not isinstance(link_name, str) or link_name not in entity.links:
            shown = f'"{link_name}"' if isinstance(link_name, str) else describe(link_name)
            self._error(source, path + ("link",), f'"{entity.name}" has no link {shown}'
                                                  f"{did_you_mean(link_name, entity.links) if isinstance(link_name, str) else ''}")
            return None
        link = entity.links[link_name]
        target = self.model.entities[link.entity]
        alias = f"link{next(self._aliases)}"
        inner = Query(self.model, self.diagnostics, self._aliases)
        target_scope = Scope.of(target, f"{alias}_row")
        condition = None
        if where is not None:
            condition = inner.condition(source, path + ("where",), where, target_scope)
            if condition is None:
                return None
        ordering: list[exp.Expression] = []
        if order_text is not None:
            ordering = inner.order_by(source, path + ("order_by",), order_text, target_scope)
            if ordering is None:
                return None
        on = []
        for local, remote in link.on:
            replacement, origin = scope.names[local.lower()]
            self.uses_entity |= origin == "entity"
            on.append((replacement.copy(), remote))
        signature = (link_name, kind, rank, _canonical(condition, alias), tuple(_canonical(o, alias) for o in ordering),
                     tuple(_canonical(o, alias) for o, _ in on))
        for existing in self.links:
            if existing.signature == signature:
                return existing
        join = LinkJoin(alias=alias, entity=target.name, relation=target.relation, kind=kind, on=on,
                        key=target.key, where=condition, links=inner.links, order=ordering, rank=rank,
                        signature=signature)
        self.links.append(join)
        return join

    # -- plain SQL -----------------------------------------------------------------------------
    def expression(self, source: Source, path: Path_, text: Any, scope: Scope, *, what: str,
                   aggregates: bool = False) -> exp.Expression | None:
        """One SQL expression over `scope`, checked and with its columns qualified."""
        if not isinstance(text, str) or not text.strip():
            self._error(source, path, f"{what} must be SQL text, not {describe(text)}")
            return None
        tree = self._parse(source, path, text, what)
        if tree is None:
            return None
        if not isinstance(tree, exp.Condition) or isinstance(tree, _NOT_AN_EXPRESSION):
            self._error(source, path, f"{what} must be a SQL expression, not a {_kind(tree)} statement")
            return None
        return self._check_and_qualify(source, path, text, tree, scope, what, aggregates)

    def order_by(self, source: Source, path: Path_, text: Any, scope: Scope) -> list[exp.Expression] | None:
        """`"<expr> [asc|desc] [nulls first|last], ..."` as sqlglot `Ordered` nodes."""
        what = "order_by"
        if not isinstance(text, str) or not text.strip():
            self._error(source, path, f"{what} must be SQL text such as \"amount desc\", not {describe(text)}")
            return None
        prefix = "SELECT 1 ORDER BY "
        tree = self._parse(source, path, text, what, prefix=prefix)
        if tree is None:
            return None
        extra = [k for k, v in tree.args.items() if v and k not in ("expressions", "order")]
        if not isinstance(tree, exp.Select) or extra or not tree.args.get("order"):
            self._error(source, path, f'{what} must be a list of "<expression> [asc|desc]", separated by commas')
            return None
        ordered = []
        for item in tree.args["order"].expressions:
            checked = self._check_and_qualify(source, path, text, item, scope, what, False, offset=len(prefix))
            if checked is None:
                return None
            ordered.append(checked)
        return ordered

    def _parse(self, source: Source, path: Path_, text: str, what: str, prefix: str = "") -> exp.Expression | None:
        try:
            statements = [s for s in sqlglot.parse(prefix + text, read=self.dialect) if s is not None]
        except ParseError as error:
            detail = error.errors[0] if error.errors else {}
            highlight = detail.get("highlight") or ""
            offset = _offset(prefix + text, detail.get("line", 1), detail.get("col", 1)) - len(highlight) - len(prefix)
            message = detail.get("description") or str(error)
            self.diagnostics.error(source.inside(path, text, max(offset, 0), highlight),
                                   f"invalid SQL in {what}: {message}")
            return None
        except TokenError as error:
            self._error(source, path, f"invalid SQL in {what}: {error}")
            return None
        if len(statements) != 1:
            self._error(source, path, f"{what} must be one SQL expression, not {len(statements)} statements")
            return None
        return statements[0]

    def _check_and_qualify(self, source: Source, path: Path_, text: str, tree: exp.Expression, scope: Scope,
                           what: str, aggregates: bool, offset: int = 0) -> exp.Expression | None:
        tree = tree.copy()
        errors_before = len(self.diagnostics)

        def error_at(node: exp.Expression, message: str) -> None:
            span = _span(node)
            if span is not None:
                start, end = max(span[0] - offset, 0), span[1] - offset
                if isinstance(node, _NOT_AN_EXPRESSION):  # point at its SELECT, which has no position
                    keyword = text.lower().rfind("select", 0, start)
                    start = keyword if keyword >= 0 else start
                location = source.inside(path, text, start, text[start:end + 1])
            else:
                location = source.at(path)
            self.diagnostics.error(location, message)

        has_aggregate = False
        for node in list(tree.walk(prune=lambda n: isinstance(n, _NOT_AN_EXPRESSION))):
            node.comments = None
            if isinstance(node, _NOT_AN_EXPRESSION):
                error_at(node, f"subqueries are not allowed in {what}")
            elif isinstance(node, exp.Window):
                error_at(node, f"window functions are not allowed in {what}")
            elif isinstance(node, exp.AggFunc):
                has_aggregate = True
                if not aggregates:
                    error_at(node, f"aggregate function {node.key.upper()}() is not allowed in {what}"
                                   " (aggregates belong in a link condition's having)")
            elif isinstance(node, _BLOCKED_FUNCTIONS):
                error_at(node, f"function {node.sql_name()}() is not allowed in {what}: it is not a "
                               "deterministic scalar function")
            elif isinstance(node, exp.Anonymous) and node.name.lower() not in _UNMODELED_SAFE_FUNCTIONS:
                error_at(node, f'unknown function "{node.name}" in {what}')
            elif isinstance(node, _PARAMETERS):
                error_at(node, f"parameters are not allowed in {what}")
            elif isinstance(node, exp.Dot):
                error_at(node, f"qualified names are not allowed in {what}; write the column name alone")
            elif isinstance(node, exp.Column):
                qualified = self._qualify(node, scope, what, aggregates, error_at)
                if node is tree and qualified is not None:
                    tree = qualified
        if aggregates and not has_aggregate and len(self.diagnostics) == errors_before:
            self._error(source, path, f"{what} must use an aggregate function such as count(*) or sum(amount)")
        if len(self.diagnostics) > errors_before:
            return None
        return tree

    def _qualify(self, node: exp.Column, scope: Scope, what: str, aggregates: bool,
                 error_at) -> exp.Expression | None:
        """Replace a column by its qualified form (returned), or report why it cannot be used."""
        if node.table or node.args.get("db") or isinstance(node.this, exp.Star):
            error_at(node, f'qualified name "{node.sql(self.dialect)}" is not allowed in {what}; '
                           "write the column name alone")
            return
        name = node.name
        found = scope.names.get(name.lower())
        if found is None:
            candidates = [n for n in scope.names]
            error_at(node, f'unknown column "{name}" in {what}: not a column of {scope.described_as}'
                           f"{did_you_mean(name.lower(), candidates)}")
            return
        if aggregates and not any(isinstance(p, exp.AggFunc) for p in _ancestors(node)):
            error_at(node, f'column "{name}" must be inside an aggregate function in {what}')
            return
        replacement, origin = found
        self.uses_entity |= origin == "entity" and scope.entity_alias == DIMENSION_ALIAS
        return node.replace(replacement.copy())

    def _error(self, source: Source, path: Path_, message: str, *, at_key: bool = False) -> None:
        self.diagnostics.error(source.key_at(path) if at_key else source.at(path), message)


def all_links(links: list[LinkJoin]) -> Iterator[LinkJoin]:
    for link in links:
        yield link
        yield from all_links(link.links)


def _canonical(expression: exp.Expression | None, alias: str) -> str | None:
    """SQL text of `expression` with this join's own alias blanked, to recognise identical joins."""
    if expression is None:
        return None
    return generate(expression, "postgres").replace(f"{alias}_row.", "_row.")


def _ancestors(node: exp.Expression) -> Iterator[exp.Expression]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _span(node: exp.Expression) -> tuple[int, int] | None:
    """First and last character offsets where `node` was written, if sqlglot kept them."""
    spans = [(m["start"], m["end"]) for n in node.walk()
             if (m := getattr(n, "_meta", None)) and "start" in m]
    if not spans:
        return None
    return min(s for s, _ in spans), max(e for _, e in spans)


def _offset(text: str, line: int, col: int) -> int:
    lines = text.split("\n")
    return sum(len(l) + 1 for l in lines[: max(line - 1, 0)]) + col


def _kind(tree: exp.Expression) -> str:
    return tree.key.upper()
