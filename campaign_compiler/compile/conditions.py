"""User SQL, checked and rewritten with sqlglot.

Every piece of SQL a campaign author writes — a `where`, a `having`, an enrichment expression, an
`order_by` — is parsed in the project's `sql_dialect`, inspected node by node (no subquery, no
statement, no qualified or unknown name, no aggregate outside `having`, no function with side
effects), its columns rewritten to the aliases the package's macros use (`wt.` for the working
table, `dim.` for the dimension's entity), and later generated in each supported dialect. User
text never reaches the warehouse any other way.

Link conditions and link enrichments become `LinkJoin`s: a derived table, grouped by the link's
columns, that the macro `_link_joins` LEFT JOINs to the row it qualifies. Over zero linked rows an
aggregate is what the warehouse says it is: the `<alias>_empty` row evaluates it on an empty set.
Aggregates over the same link with different `where`s share one derived table, each `where` moved
into a FILTER clause of its aggregates (LinkJoin.merge): the linked table, often the largest of the
project (bookings, orders), is then read once per query instead of once per column. A `having` that
only asks whether linked rows exist (`count(*) = 0`, `count(*) > 0`...) is compiled as the existence
test it is (_counts_rows), and an existence test that a WHERE requires becomes [NOT] EXISTS instead of
a grouped join (semi_joins): "never booked" is the anti-join an engineer writes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from ..engines import DEFAULT_DIALECT, DIALECTS
from ..errors import Diagnostics, did_you_mean
from ..project.datamodel import DataModel, Entity, Relation
from ..reader import describe, quoted
from ..yamlsrc import Path_, Source

WORKING_ALIAS = "wt"
DIMENSION_ALIAS = "dim"
COUNT_ALIAS = "cnt"

# Functions sqlglot does not model cannot be translated between warehouses; these few were checked
# to exist, with the same meaning, on every supported one.
_UNMODELED_PORTABLE_FUNCTIONS = frozenset({"make_date"})
# What sqlglot models but that a supported warehouse lacks, or reads differently (checked on each).
_NOT_PORTABLE = {
    getattr(exp, name): advice
    for name, advice in {
        "SimilarTo": "SIMILAR TO is a regular expression on DuckDB and a SQL pattern on PostgreSQL; "
        "use LIKE, or ~ for a regular expression",
        "Glob": "use LIKE",
        "RegexpFullMatch": "use ~ with a pattern anchored by ^ and $",
        "Contains": "use strpos(text, 'part') > 0 or LIKE",
        "EndsWith": "use LIKE '%end'",
        "TryCast": "use CAST",
        "Bracket": "subscripts differ between warehouses",
        "DayOfWeek": "the days of the week are numbered differently: compare dates",
        "DayOfWeekIso": "the days of the week are numbered differently: compare dates",
        "RegexpILike": "use ~ on lower(...) with a lowercase pattern",
        "DayOfMonth": "use extract(day from ...)",
        "DayOfYear": "use extract(doy from ...)",
        "WeekOfYear": "use extract(week from ...)",
        "Hour": "use extract(hour from ...)",
        "Dayname": "compare dates",
        "Monthname": "use extract(month from ...)",
        "JustifyDays": "compare intervals in days with extract",
        "DateFromParts": "use make_date(...) with sql_dialect postgres, or cast a text date",
    }.items()
    if hasattr(exp, name)
}
# Fields of EXTRACT / date_part that a supported warehouse lacks or numbers its own way (checked on each)
_NOT_PORTABLE_FIELDS = {
    "dow": "Spark numbers the days of the week 1 (Sunday) to 7, DuckDB and PostgreSQL 0 to 6; compare dates",
    "dayofweek": "Spark numbers the days of the week 1 (Sunday) to 7, DuckDB and PostgreSQL 0 to 6; compare dates",
    "isodow": "Spark has no isodow; compare dates",
    "epoch": "Spark has no epoch; compare timestamps",
}
# IS [NOT] DISTINCT FROM and NULLIF(a, b) compare like = does
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Nullif)
# Pattern matching reads text: PostgreSQL has no LIKE, ~ or starts_with() for numbers, booleans or dates.
_PATTERN_MATCHES = {
    exp.Like: "LIKE",
    exp.ILike: "ILIKE",
    exp.RegexpLike: "a regular expression",
    exp.RegexpILike: "a regular expression",
    exp.StartsWith: "starts_with()",
}
_NUMERIC = ("integer", "number")
# Functions sqlglot models that read or write outside the row, or are not deterministic.
_BLOCKED_FUNCTIONS = tuple(
    getattr(exp, name)
    for name in (
        "ReadCSV",
        "ReadParquet",
        "ToFile",
        "AIGenerate",
        "GenerateEmbedding",
        "NextValueFor",
        "GenerateSeries",
        "ExplodingGenerateSeries",
        "GenerateTable",
        "GenerateText",
        "GenerateBool",
        "GenerateDouble",
        "GenerateInt",
        "GenerateDateArray",
        "GenerateTimestampArray",
        "Generator",
        "XMLTable",
        "Rand",
        "Randn",
        "Randstr",
        "Uuid",
    )
    if hasattr(exp, name)
)
_NOT_AN_EXPRESSION = (exp.Query, exp.Subquery, exp.Table, exp.From, exp.Join, exp.Exists, exp.Lateral)
_PARAMETERS = tuple(
    getattr(exp, name) for name in ("Placeholder", "Parameter", "SessionParameter") if hasattr(exp, name)
)
_PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# sqlglot parses each nested parenthesis (or function call) with about twenty Python calls: beyond
# this depth a condition could exhaust the stack. Other nesting (NOT NOT ..., CASE in CASE) is
# reported when the parser runs out of stack.
MAX_PARENTHESES = 20
_QUOTED_OR_PARENTHESIS = re.compile(r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|[()]")


def column(name: str, table: str) -> exp.Column:
    """A qualified column, quoted only when SQL would otherwise change its case."""
    return exp.column(exp.to_identifier(name, quoted=not _PLAIN_NAME.match(name)), table=exp.to_identifier(table))


def generate(expression: exp.Expression, dialect: str) -> str:
    return expression.sql(dialect=dialect)


@dataclass(frozen=True)
class Name:
    """What a name means in a scope: the qualified column, where it comes from, its declared type."""

    column: exp.Expression
    origin: str  # "entity", "working" or "count"
    type: str  # a data-model column type, or "" when unknown


@dataclass
class Scope:
    """The names a piece of SQL may use, and the qualified column each stands for."""

    names: dict[str, Name]  # by lowercased name
    entity: Entity | None
    entity_alias: str | None
    described_as: str

    @classmethod
    def of(
        cls,
        entity: Entity | None,
        entity_alias: str | None = DIMENSION_ALIAS,
        working: dict[str, str] | None = None,
        working_alias: str = WORKING_ALIAS,
    ) -> Scope:
        names: dict[str, Name] = {}
        if entity is not None and entity_alias is not None:
            for name, type_ in entity.columns.items():
                names[name.lower()] = Name(column(name, entity_alias), "entity", type_)
        for name, type_ in (working or {}).items():  # working-table columns win: the key is read from the row
            names[name.lower()] = Name(column(name, working_alias), "working", type_)
        parts = []
        if entity is not None:
            parts.append(f'"{entity.name}"')
        if working and (entity is None or set(working) - set(entity.columns)):
            parts.append("the working table")
        return cls(names, entity, entity_alias, " or ".join(parts) or "the working table")

    @classmethod
    def count(cls) -> Scope:
        return cls(
            {"count": Name(exp.column("n", table=COUNT_ALIAS), "count", "integer")},
            None,
            None,
            "a test (only count is available)",
        )


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
    links: list[LinkJoin] = field(default_factory=list)
    order: list[exp.Expression] = field(default_factory=list)
    rank: int = 1
    columns: list[tuple[str, exp.Expression]] = field(default_factory=list)
    signature: tuple = ()
    merged: bool = False  # other aggregate joins over the same link share this one (see merge)
    condition: exp.Expression | None = None  # this join's own `where`, which its columns filter once merged

    @property
    def row(self) -> str:
        return f"{self.alias}_row"

    def add_column(self, expression: exp.Expression) -> str:
        if self.merged and self.condition is not None:
            expression = _filtered(expression, self.condition)
        return self.add_filtered(expression)

    def merge(self, condition: exp.Expression | None) -> FilteredJoin:
        """This aggregate join, also serving the aggregates of the same link under `condition`
        (qualified with this join's row alias): one scan and one GROUP BY of the linked rows instead
        of one per `where`, as an engineer writes `count(*) filter (where ...)` side by side. Each
        column keeps its own rows through a FILTER clause on its aggregates; the derived table reads
        the rows any of them needs. A key with linked rows but none its own gets the aggregate over
        no row from its FILTER, as the `_empty` row gives a key with none at all."""
        if not self.merged:
            self.merged, self.condition = True, self.where
            if self.where is not None:
                self.columns = [(name, _filtered(e, self.where)) for name, e in self.columns]
        if self.where is not None:
            self.where = None if condition is None else exp.or_(exp.Paren(this=self.where), exp.Paren(this=condition))
        return FilteredJoin(self, condition)

    def add_filtered(self, expression: exp.Expression) -> str:
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
        return exp.Case(ifs=[exp.If(this=missing, true=exp.column(name, table=f"{self.alias}_empty"))], default=joined)


@dataclass
class FilteredJoin:
    """The aggregates over a link under one `where`, computed by a merged LinkJoin (see merge)."""

    join: LinkJoin
    condition: exp.Expression | None

    @property
    def entity(self) -> str:
        return self.join.entity

    @property
    def row(self) -> str:
        return self.join.row

    def add_column(self, expression: exp.Expression) -> str:
        return self.join.add_filtered(
            _filtered(expression, self.condition) if self.condition is not None else expression
        )

    def value(self, name: str) -> exp.Expression:
        return self.join.value(name)


def _filtered(expression: exp.Expression, condition: exp.Expression) -> exp.Expression:
    """`expression` with each of its aggregates counting only the rows where `condition` holds (user
    SQL has no FILTER of its own, and no aggregate inside another: the checks refuse both)."""
    return expression.copy().transform(
        lambda node: (
            exp.Filter(this=node.copy(), expression=exp.Where(this=condition.copy()))
            if isinstance(node, exp.AggFunc)
            else node
        )
    )


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
        """A condition: SQL text, all/any/not, or a link condition."""
        if isinstance(value, str):
            return self.expression(source, path, value, scope, what="condition", boolean=True)
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
            self._error(
                source,
                path,
                f"a condition mapping takes all, any, not or link, not {keys}"
                f"{did_you_mean(next(iter(value), ''), ('all', 'any', 'not', 'link'))}",
            )
            return None
        self._error(
            source, path, f"a condition must be SQL text or a mapping (all, any, not, link), not {describe(value)}"
        )
        return None

    def _link_condition(self, source: Source, path: Path_, value: dict, scope: Scope) -> exp.Expression | None:
        unknown = [k for k in value if k not in ("link", "where", "having")]
        for key in unknown:
            self._error(
                source,
                path + (key,),
                f'unknown key "{key}" in link condition{did_you_mean(key, ("link", "where", "having"))}',
                at_key=True,
            )
        having = value.get("having")
        some = _counts_rows(having, self.dialect)
        join = self.link_join(
            source,
            path,
            value.get("link"),
            value.get("where"),
            scope,
            kind="aggregate" if having is not None and some is None else "exists",
        )
        if join is None or unknown:
            return None
        if having is None or some is True:
            return join.present()
        if some is False:
            return exp.Is(this=exp.column("k1", table=join.alias), expression=exp.Null())
        target = self.model.entities[join.entity]
        aggregate = self.expression(
            source, path + ("having",), having, Scope.of(target, join.row), what="having", aggregates=True, boolean=True
        )
        if aggregate is None:
            return None
        return join.value(join.add_column(aggregate))

    def link_join(
        self,
        source: Source,
        path: Path_,
        link_name: Any,
        where: Any,
        scope: Scope,
        *,
        kind: str,
        order_text: Any = None,
        rank: int = 1,
    ) -> LinkJoin | None:
        """The join over `link_name` filtered by `where`, shared with an identical one in this query."""
        entity = scope.entity
        if entity is None:
            self._error(source, path + ("link",), "links need an entity dimension; this working table has none")
            return None
        if not isinstance(link_name, str) or link_name not in entity.links:
            self._error(
                source,
                path + ("link",),
                f'"{entity.name}" has no link {quoted(link_name)}'
                f"{did_you_mean(link_name, entity.links) if isinstance(link_name, str) else ''}",
            )
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
        on = [(self.column_of(scope, local), remote) for local, remote in link.on]
        signature = (
            link_name,
            kind,
            rank,
            _canonical(condition, alias),
            tuple(_canonical(o, alias) for o in ordering),
            tuple(_canonical(o, alias) for o, _ in on),
        )
        for existing in self.links:
            if existing.signature == signature:
                return existing
        for existing in self.links:
            same_but_where = existing.signature[:3] + existing.signature[4:] == signature[:3] + signature[4:]
            if kind == "aggregate" and same_but_where and not inner.links and not existing.links:
                return existing.merge(_renamed(condition, f"{alias}_row", existing.row))
        join = LinkJoin(
            alias=alias,
            entity=target.name,
            relation=target.relation,
            kind=kind,
            on=on,
            key=target.key,
            where=condition,
            links=inner.links,
            order=ordering,
            rank=rank,
            signature=signature,
            condition=condition,
        )
        self.links.append(join)
        return join

    def column_of(self, scope: Scope, name: str) -> exp.Expression:
        """The qualified column of a name known to be in `scope` (a link's own columns)."""
        found = scope.names[name.lower()]
        self.uses_entity |= found.origin == "entity" and scope.entity_alias == DIMENSION_ALIAS
        return found.column.copy()

    # -- plain SQL -----------------------------------------------------------------------------
    def expression(
        self,
        source: Source,
        path: Path_,
        text: Any,
        scope: Scope,
        *,
        what: str,
        aggregates: bool = False,
        boolean: bool = False,
    ) -> exp.Expression | None:
        """One SQL expression over `scope`, checked and with its columns qualified."""
        if not isinstance(text, str) or not text.strip():
            shown = "empty text" if isinstance(text, str) else describe(text)
            self._error(source, path, f"{what} must be SQL text, not {shown}")
            return None
        try:
            tree = self._parse(source, path, text, what)
            if tree is None:
                return None
            if not isinstance(tree, exp.Condition) or isinstance(tree, _NOT_AN_EXPRESSION):
                self._error(source, path, f"{what} must be a SQL expression, not a {_kind(tree)} statement")
                return None
            return self._check_and_qualify(source, path, text, tree, scope, what, aggregates, boolean)
        except RecursionError:
            self._error(source, path, f"{what} is nested too deeply to be read")
            return None

    def order_by(self, source: Source, path: Path_, text: Any, scope: Scope) -> list[exp.Expression] | None:
        """`"<expr> [asc|desc] [nulls first|last], ..."` as sqlglot `Ordered` nodes."""
        what = "order_by"
        if not isinstance(text, str) or not text.strip():
            self._error(source, path, f'{what} must be SQL text such as "amount desc", not {describe(text)}')
            return None
        prefix = "SELECT 1 ORDER BY "
        try:
            tree = self._parse(source, path, text, what, prefix=prefix)
            if tree is None:
                return None
            extra = [k for k, v in tree.args.items() if v and k not in ("expressions", "order")]
            if not isinstance(tree, exp.Select) or extra or not tree.args.get("order"):
                self._error(source, path, f'{what} must be a list of "<expression> [asc|desc]", separated by commas')
                return None
            ordered = []
            for item in tree.args["order"].expressions:
                checked = self._check_and_qualify(
                    source, path, text, item, scope, what, False, False, offset=len(prefix)
                )
                if checked is None:
                    return None
                ordered.append(checked)
            return ordered
        except RecursionError:
            self._error(source, path, f"{what} is nested too deeply to be read")
            return None

    def _parse(self, source: Source, path: Path_, text: str, what: str, prefix: str = "") -> exp.Expression | None:
        too_deep = _parenthesis_beyond(text, MAX_PARENTHESES)
        if too_deep is not None:
            self.diagnostics.error(
                source.inside(path, text, too_deep, "("), f"{what} has more than {MAX_PARENTHESES} nested parentheses"
            )
            return None
        try:
            statements = [s for s in sqlglot.parse(prefix + text, read=self.dialect) if s is not None]
        except ParseError as error:
            detail = error.errors[0] if error.errors else {}
            highlight = detail.get("highlight") or ""
            offset = _offset(prefix + text, detail.get("line", 1), detail.get("col", 1)) - len(highlight) - len(prefix)
            message = detail.get("description") or str(error)
            self.diagnostics.error(
                source.inside(path, text, max(offset, 0), highlight), f"invalid SQL in {what}: {message}"
            )
            return None
        except TokenError as error:
            self._error(source, path, f"invalid SQL in {what}: {error}")
            return None
        if len(statements) != 1:
            self._error(source, path, f"{what} must be one SQL expression, not {len(statements)} statements")
            return None
        return statements[0]

    def _check_and_qualify(
        self,
        source: Source,
        path: Path_,
        text: str,
        tree: exp.Expression,
        scope: Scope,
        what: str,
        aggregates: bool,
        boolean: bool,
        offset: int = 0,
    ) -> exp.Expression | None:
        tree = tree.copy()
        errors_before = len(self.diagnostics)
        error_at = self._error_at(source, path, text, offset)
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
                    error_at(
                        node,
                        f"aggregate function {node.key.upper()}() is not allowed in {what}"
                        " (aggregates belong in a link condition's having)",
                    )
            elif isinstance(node, _BLOCKED_FUNCTIONS):
                error_at(
                    node,
                    f"function {node.sql_name()}() is not allowed in {what}: it is not a deterministic scalar function",
                )
            elif isinstance(node, exp.Anonymous) and node.name.lower() not in _UNMODELED_PORTABLE_FUNCTIONS:
                error_at(
                    node,
                    f'unknown function "{node.name}" in {what}: functions must exist, with the same '
                    f"meaning, on every warehouse campaigns compile for ({', '.join(DIALECTS)})",
                )
            elif isinstance(node, exp.Extract) and node.name.lower() in _NOT_PORTABLE_FIELDS:
                error_at(
                    node,
                    f"extract({node.name.lower()} ...) is not available alike on every warehouse campaigns compile "
                    f"for ({', '.join(DIALECTS)}): {_NOT_PORTABLE_FIELDS[node.name.lower()]}",
                )
            elif type(node) in _NOT_PORTABLE:
                operators = {"similarto": "SIMILAR TO", "glob": "GLOB", "bracket": "A subscript", "regexpilike": "~*"}
                shown = operators[node.key] if node.key in operators else f"{node.sql_name()}()"
                error_at(
                    node,
                    f"{shown} is not available alike on every warehouse campaigns compile for "
                    f"({', '.join(DIALECTS)}): {_NOT_PORTABLE[type(node)]}",
                )
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
        tree = self._check_types(tree, what, boolean, error_at)
        return tree if len(self.diagnostics) == errors_before else None

    def _error_at(self, source: Source, path: Path_, text: str, offset: int) -> Callable[[exp.Expression, str], None]:
        """A function reporting an error at a node parsed from `text` (after a prefix of `offset` characters)."""

        def error_at(node: exp.Expression, message: str) -> None:
            span = _span(node)
            if span is not None:
                start, end = max(span[0] - offset, 0), span[1] - offset
                if isinstance(node, _NOT_AN_EXPRESSION):  # point at its SELECT, which has no position
                    keyword = text.lower().rfind("select", 0, start)
                    start = keyword if keyword >= 0 else start
                location = source.inside(path, text, start, text[start : end + 1])
            else:
                location = source.at(path)
            self.diagnostics.error(location, message)

        return error_at

    def _check_types(self, tree: exp.Expression, what: str, boolean: bool, error_at) -> exp.Expression:
        """Type mistakes the warehouse would only report at build time; division made portable."""
        for node in list(tree.walk()):
            if isinstance(node, _COMPARISONS):
                for value in _compared_values(node.expression):
                    _check_comparable(node, node.this, value, error_at)
            elif type(node) in _PATTERN_MATCHES:
                _check_pattern_match(node, _PATTERN_MATCHES[type(node)], error_at)
            elif isinstance(node, exp.In):
                for item in node.expressions:
                    _check_comparable(node, node.this, item, error_at)
            elif isinstance(node, exp.Case) and node.this is not None:  # CASE x WHEN value: x = value
                for when in node.args.get("ifs") or []:
                    _check_comparable(node, node.this, when.this, error_at)
            elif isinstance(node, exp.Between):
                for bound in (node.args.get("low"), node.args.get("high")):
                    _check_comparable(node, node.this, bound, error_at)
            elif isinstance(node, exp.Cast) or (isinstance(node, exp.Sub) and _type_of(node.this) == "date"):
                _check_portable_arithmetic(node, error_at)
            elif (
                isinstance(node, exp.Div)
                and node.args.get("typed")
                and _type_of(node.this) == _type_of(node.expression) == "integer"
            ):
                # integer / integer truncates in PostgreSQL but not in DuckDB: say which is meant
                replacement = exp.IntDiv(this=node.this, expression=node.expression)
                tree = replacement if node is tree else tree
                node.replace(replacement)
        kind = _type_of(tree)
        if boolean and kind and kind != "boolean":
            error_at(tree, f'{what} must be true or false, but "{_written(tree)}" is {kind}')
        return tree

    def _qualify(self, node: exp.Column, scope: Scope, what: str, aggregates: bool, error_at) -> exp.Expression | None:
        """Replace a column by its qualified form (returned), or report why it cannot be used."""
        if node.table or node.args.get("db") or isinstance(node.this, exp.Star):
            error_at(
                node, f'qualified name "{node.sql(self.dialect)}" is not allowed in {what}; write the column name alone'
            )
            return
        name = node.name
        found = scope.names.get(name.lower())
        if found is None:
            candidates = [n for n in scope.names]
            error_at(
                node,
                f'unknown column "{name}" in {what}: not a column of {scope.described_as}'
                f"{did_you_mean(name.lower(), candidates)}",
            )
            return
        if aggregates and not any(isinstance(p, exp.AggFunc) for p in _ancestors(node)):
            error_at(node, f'column "{name}" must be inside an aggregate function in {what}')
            return
        self.uses_entity |= found.origin == "entity" and scope.entity_alias == DIMENSION_ALIAS
        replacement = found.column.copy()
        replacement.meta["campaign_type"] = found.type
        replacement.this.meta.update(node.this.meta)  # where it was written, for later errors
        return node.replace(replacement)

    def _error(self, source: Source, path: Path_, message: str, *, at_key: bool = False) -> None:
        self.diagnostics.error(source.key_at(path) if at_key else source.at(path), message)


def _canonical(expression: exp.Expression | None, alias: str) -> str | None:
    """SQL text of `expression` (in one dialect, any would do) with this join's own alias blanked, to
    recognise identical joins."""
    if expression is None:
        return None
    return generate(expression, DEFAULT_DIALECT).replace(f"{alias}_row.", "_row.")


def _counts_rows(having: Any, dialect: str) -> bool | None:
    """True when `having` says "some linked row" (count(*) > 0, >= 1, <> 0), False when it says "no
    linked row" (count(*) = 0, < 1, <= 0), None otherwise. Those are an existence test: compiled as
    one, no aggregate is computed nor a `_empty` row joined, and where the test is one of the
    conjuncts of a WHERE, `count(*) = 0` becomes the NOT EXISTS an engineer writes (semi_joins)."""
    if not isinstance(having, str):
        return None
    try:
        tree = sqlglot.parse_one(having, read=dialect)
    except (ParseError, TokenError):
        return None  # the having's own check reports it
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if not isinstance(tree, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        return None
    left, right = tree.this, tree.expression
    flipped = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE}
    operator = type(tree)
    if isinstance(left, exp.Literal):
        left, right, operator = right, left, flipped.get(operator, operator)
    counts_all = isinstance(left, exp.Count) and isinstance(left.this, exp.Star)
    if not counts_all or not (isinstance(right, exp.Literal) and right.is_int):
        return None
    return {
        (exp.GT, 0): True,
        (exp.GTE, 1): True,
        (exp.NEQ, 0): True,
        (exp.EQ, 0): False,
        (exp.LT, 1): False,
        (exp.LTE, 0): False,
    }.get((operator, int(right.this)))


@dataclass
class Conjunction:
    """A WHERE whose existence tests were taken out of the joins (semi_joins): `rest` (or none) and,
    for each test, its link and whether rows must exist (EXISTS) or not (NOT EXISTS)."""

    rest: exp.Expression | None
    tests: list[tuple[LinkJoin, bool]]


def semi_joins(where: exp.Expression | None, links: list[LinkJoin]) -> tuple[Any, list[LinkJoin]]:
    """`where` and the `links` it reads, its existence tests made semi-joins and anti-joins.

    An existence join groups the linked rows by the link's columns to LEFT JOIN one row per value;
    a test "rows exist" / "no row exists" that the WHERE requires as one of its conjuncts needs no
    grouping: [NOT] EXISTS, which every engine plans as a semi-join or anti-join (PostgreSQL at 1M
    profiles: 0.65 s instead of 2.0 s, it spilled the GROUP BY; DuckDB 0.10 s instead of 0.12 s).
    Elsewhere (under OR, in a NOT of several) a test keeps its join: PostgreSQL pulls up an EXISTS
    only from the top of a WHERE, and runs any other one per row. A join that no test reads any
    more is dropped."""
    if where is None:
        return where, links
    existence = {link.alias: link for link in links if link.kind == "exists"}
    rest: list[exp.Expression] = []
    tests: list[tuple[LinkJoin, bool]] = []
    for conjunct in _conjuncts(where):
        test = _existence_test(conjunct, existence)
        if test is None:
            rest.append(conjunct)
        else:
            tests.append(test)
    if not tests:
        return where, links
    kept = exp.and_(*rest) if rest else None
    read = {node.table for node in kept.find_all(exp.Column)} if kept is not None else set()
    converted = {id(link) for link, _ in tests}
    return Conjunction(kept, tests), [link for link in links if id(link) not in converted or link.alias in read]


def _conjuncts(where: exp.Expression) -> list[exp.Expression]:
    """The parts a WHERE requires TRUE, all of them (COALESCE(x, FALSE) is TRUE where x is)."""
    while isinstance(where, exp.Paren):
        where = where.this
    if isinstance(where, exp.And):
        return _conjuncts(where.this) + _conjuncts(where.expression)
    if _coalesced_false(where):
        return _conjuncts(where.this)
    return [where]


def _existence_test(node: exp.Expression, existence: dict[str, LinkJoin]) -> tuple[LinkJoin, bool] | None:
    """(the link, True for EXISTS) when `node` is TRUE exactly where its rows exist (or where none
    does): `linkN.k1 IS NULL` under NOTs, parentheses and COALESCE(..., FALSE), which change nothing
    on a test that is never NULL."""
    exists = True
    while True:
        if isinstance(node, exp.Paren) or _coalesced_false(node):
            node = node.this
        elif isinstance(node, exp.Not):
            node, exists = node.this, not exists
        else:
            break
    if not (isinstance(node, exp.Is) and isinstance(node.expression, exp.Null)):
        return None
    tested = node.this
    if not (isinstance(tested, exp.Column) and tested.name == "k1" and tested.table in existence):
        return None
    return existence[tested.table], not exists


def _coalesced_false(node: exp.Expression) -> bool:
    return (
        isinstance(node, exp.Coalesce)
        and len(node.expressions) == 1
        and isinstance(node.expressions[0], exp.Boolean)
        and not node.expressions[0].this
    )


def _renamed(expression: exp.Expression | None, row: str, other: str) -> exp.Expression | None:
    """`expression` with the columns of table alias `row` read from `other` instead."""
    if expression is None:
        return None
    return expression.copy().transform(
        lambda node: (
            exp.column(node.name, table=other, quoted=node.this.quoted)
            if isinstance(node, exp.Column) and node.table == row
            else node
        )
    )


def _ancestors(node: exp.Expression) -> Iterator[exp.Expression]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _span(node: exp.Expression) -> tuple[int, int] | None:
    """First and last character offsets where `node` was written, if sqlglot kept them."""
    spans = [(m["start"], m["end"]) for n in node.walk() if (m := getattr(n, "_meta", None)) and "start" in m]
    if not spans:
        return None
    return min(s for s, _ in spans), max(e for _, e in spans)


def _parenthesis_beyond(text: str, most: int) -> int | None:
    """The offset of the first parenthesis nested deeper than `most` (quoted text aside), if any."""
    depth = 0
    for match in _QUOTED_OR_PARENTHESIS.finditer(text):
        token = match.group()
        if token == "(":
            depth += 1
            if depth > most:
                return match.start()
        elif token == ")":
            depth = max(depth - 1, 0)
    return None


def _offset(text: str, line: int, col: int) -> int:
    lines = text.split("\n")
    return sum(len(before) + 1 for before in lines[: max(line - 1, 0)]) + col


def _kind(tree: exp.Expression) -> str:
    return tree.key.upper()


def _type_of(node: exp.Expression | None) -> str:
    """The data-model type of an expression when it is plain to see, else "" (unknown)."""
    if node is None:
        return ""
    if isinstance(node, exp.Column):
        return node.meta.get("campaign_type", "")
    if isinstance(node, exp.Literal):
        return "text" if node.is_string else "integer" if node.is_int else "number"
    if isinstance(node, (exp.Boolean, exp.Predicate, exp.Connector, exp.Not)):
        return "boolean"
    if isinstance(node, (exp.Paren, exp.Neg)):
        return _type_of(node.this)
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)):
        left, right = _type_of(node.this), _type_of(node.expression)
        if left in _NUMERIC and right in _NUMERIC:
            return "integer" if left == right == "integer" and not isinstance(node, exp.Div) else "number"
        return ""
    if isinstance(node, exp.CurrentDate):
        return "date"
    if isinstance(node, (exp.IntDiv, exp.Count, exp.Length)):
        return "integer"
    if isinstance(node, (exp.Lower, exp.Upper, exp.Trim, exp.Concat, exp.Substring, exp.SplitPart)):
        return "text"
    if isinstance(node, exp.Cast):
        to = node.to
        for kind, types in (
            ("text", exp.DataType.TEXT_TYPES),
            ("integer", exp.DataType.INTEGER_TYPES),
            ("number", exp.DataType.REAL_TYPES),
            ("date", {exp.DataType.Type.DATE}),
            ("timestamp", exp.DataType.TEMPORAL_TYPES - {exp.DataType.Type.DATE}),
            ("boolean", {exp.DataType.Type.BOOLEAN}),
        ):
            if to.is_type(*types):
                return kind
    return ""


def _check_portable_arithmetic(node: exp.Cast | exp.Sub, error_at) -> None:
    """Casts and date arithmetic whose result differs between the warehouses campaigns compile for."""
    where = f"on every warehouse campaigns compile for ({', '.join(DIALECTS)})"
    if isinstance(node, exp.Sub):
        if _type_of(node.expression) == "date":
            error_at(
                node,
                f'"{_written(node)}" is not the same {where}: a date minus a date is a number of days on '
                "DuckDB and PostgreSQL, an interval on Spark; compare a date with the other plus a number of days",
            )
    elif (
        node.to.is_type(*exp.DataType.INTEGER_TYPES)
        and _type_of(node.this) == "number"
        and not isinstance(node.this, (exp.Round, exp.Floor, exp.Ceil))
    ):
        error_at(
            node,
            f'"{_written(node)}" is not the same {where}: a number cast to an integer is rounded on DuckDB and '
            "PostgreSQL, truncated on Spark; cast round(), floor() or ceil() of it",
        )


def _compared_values(right: exp.Expression) -> list[exp.Expression]:
    """What the left side is compared with: each element of `ANY (ARRAY[...])`, else `right` itself."""
    if isinstance(right, exp.Any) and isinstance(right.this, exp.Paren) and isinstance(right.this.this, exp.Array):
        return right.this.this.expressions
    return [right]


def _check_comparable(node: exp.Expression, left: exp.Expression, right: exp.Expression | None, error_at) -> None:
    kinds = {_type_of(left), _type_of(right)}
    # text against a date or a boolean is left to the warehouse: it reads literals such as '2024-01-31'
    mismatched = (
        ("text" in kinds and kinds & set(_NUMERIC))
        or ("boolean" in kinds and kinds & set(_NUMERIC))
        or (kinds & {"date", "timestamp"} and kinds & set(_NUMERIC))
    )
    if mismatched:
        _cannot_compare(node, left, right, error_at)


def _check_pattern_match(node: exp.Expression, operator: str, error_at) -> None:
    """Text matched against text patterns: a value of another type is cast, a pattern of another type
    against text is a comparison of unlike types."""
    value = node.this
    kind = _type_of(value)
    if kind and kind != "text":
        _cast_to_text(node, operator, value, error_at)
    for pattern in _compared_values(node.expression):
        if _type_of(pattern) in ("", "text"):
            continue
        if kind == "text":
            _cannot_compare(node, value, pattern, error_at)
        else:
            _cast_to_text(node, operator, pattern, error_at)


def _cannot_compare(node: exp.Expression, left: exp.Expression, right: exp.Expression, error_at) -> None:
    error_at(node, f'cannot compare "{_written(left)}" ({_type_of(left)}) with "{_written(right)}" ({_type_of(right)})')


def _cast_to_text(node: exp.Expression, operator: str, operand: exp.Expression, error_at) -> None:
    written = _written(operand)
    error_at(node, f'{operator} matches text, but "{written}" is {_type_of(operand)}: write cast({written} as text)')


def _written(node: exp.Expression) -> str:
    """An expression as its author wrote it: columns without the aliases the compiler added."""
    return node.transform(lambda n: exp.column(n.name) if isinstance(n, exp.Column) else n).sql()
