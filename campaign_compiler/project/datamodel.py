"""`campaign_project.yml`: the relational data model campaigns are written against."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlglot

from ..engines import DEFAULT_DIALECT
from ..errors import Diagnostics, did_you_mean
from ..reader import Reader, quoted
from ..yamlsrc import Path_, Source, load_yaml
from .channels import CHANNELS, ChannelSettings, check_channels
from .dbt import DbtProject

PROJECT_FILE = "campaign_project.yml"
COLUMN_TYPES = ("text", "integer", "number", "boolean", "date", "timestamp")
COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
FILE_DIMENSION = "file"


@dataclass(frozen=True)
class Relation:
    """A dbt relation: `source('crm', 'profiles')` or `ref('stg_profiles')`."""

    kind: str  # "source" | "ref"
    parts: tuple[str, ...]

    def jinja(self) -> str:
        return f"{self.kind}({', '.join(repr(p) for p in self.parts)})"

    def __str__(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Link:
    name: str
    entity: str  # target entity
    on: tuple[tuple[str, str], ...]  # (column of this entity, column of the target)
    cardinality: str  # "one" | "many"


@dataclass
class Entity:
    name: str
    relation: Relation
    key: str
    columns: dict[str, str]  # name -> type
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    consent: dict[str, str] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    description: str = ""
    path: Path_ = ()

    def column(self, name: str) -> str | None:
        """The declared spelling of `name`, matched without regard to case (as SQL does)."""
        if name in self.columns:
            return name
        lowered = name.lower()
        for column in self.columns:
            if column.lower() == lowered:
                return column
        return None


@dataclass
class DataModel:
    source: Source
    sql_dialect: str
    entities: dict[str, Entity]
    channels: dict[str, ChannelSettings]


def load_data_model(project: DbtProject, diagnostics: Diagnostics) -> DataModel | None:
    source = load_yaml(project.root / PROJECT_FILE, diagnostics)
    if source is None:
        return None
    r = Reader(source, diagnostics)
    raw = r.mapping(
        (), source.data, PROJECT_FILE, required=("entities",), optional=("version", "sql_dialect", "channels")
    )
    if raw is None:
        return None
    if "version" in raw and raw["version"] != 1:
        r.error(("version",), f"unsupported version {quoted(raw['version'])}; this compiler reads version 1")
    dialect = raw.get("sql_dialect", DEFAULT_DIALECT)
    if not isinstance(dialect, str) or not _known_dialect(dialect):
        names = sorted(d for d in sqlglot.Dialect.classes if d)
        r.error(
            ("sql_dialect",),
            f"unknown sql_dialect {quoted(dialect)}{did_you_mean(dialect, names) if isinstance(dialect, str) else ''}",
        )
        dialect = DEFAULT_DIALECT
    entities: dict[str, Entity] = {}
    raw_entities = r.mapping(("entities",), raw.get("entities"), "entities")
    for name, spec in (raw_entities or {}).items():
        path = ("entities", name)
        if name == FILE_DIMENSION:
            r.error(path, f'"{FILE_DIMENSION}" is reserved for the dimension of loaded files', at_key=True)
            continue
        if r.identifier(path, name, "entity name", at_key=True) is None:
            continue
        entity = _entity(r, path, name, spec, project)
        if entity is not None:
            entities[name] = entity
    declared = set(raw_entities or {})
    for entity in entities.values():
        _check_links(r, entity, entities, declared)
    channels = check_channels(r, raw.get("channels"), project)
    return DataModel(source=source, sql_dialect=dialect, entities=entities, channels=channels)


def _known_dialect(name: str) -> bool:
    try:
        sqlglot.Dialect.get_or_raise(name)
    except ValueError:
        return False
    return True


def _entity(r: Reader, path: Path_, name: str, spec: Any, project: DbtProject) -> Entity | None:
    spec = r.mapping(
        path,
        spec,
        f'entity "{name}"',
        required=("key", "columns"),
        optional=("source", "model", "addresses", "consent", "links", "description"),
    )
    if spec is None:
        return None
    relation = _relation(r, path, name, spec, project)
    columns: dict[str, str] = {}
    raw_columns = r.mapping(path + ("columns",), spec.get("columns"), f'columns of "{name}"')
    for column, type_ in (raw_columns or {}).items():
        cpath = path + ("columns", column)
        if not COLUMN_NAME.match(column):
            r.error(cpath, f'column name "{column}" is not a SQL identifier', at_key=True)
            continue
        if any(c.lower() == column.lower() for c in columns):
            r.error(cpath, f'column "{column}" is declared twice (names are not case-sensitive)', at_key=True)
            continue
        if r.choice(cpath, type_, f'type of column "{column}"', COLUMN_TYPES) is not None:
            columns[column] = type_
    entity = Entity(
        name=name, relation=relation, key="", columns=columns, description=spec.get("description") or "", path=path
    )
    key = spec.get("key")
    if isinstance(key, str) and entity.column(key):
        entity.key = entity.column(key)
    elif raw_columns is not None:
        r.error(
            path + ("key",),
            f'key {quoted(key)} is not a declared column of "{name}"'
            f"{did_you_mean(key, columns) if isinstance(key, str) else ''}",
        )
    entity.addresses = _addresses(r, path, entity, spec.get("addresses"))
    entity.consent = _consent(r, path, entity, spec.get("consent"))
    raw_links = spec.get("links")
    if raw_links is not None and r.mapping(path + ("links",), raw_links, f'links of "{name}"') is not None:
        for link_name, link_spec in raw_links.items():
            link = _link(r, path + ("links", link_name), entity, link_name, link_spec)
            if link is not None:
                entity.links[link_name] = link
    if relation is None or not entity.key:
        return None
    return entity


def _relation(r: Reader, path: Path_, name: str, spec: dict, project: DbtProject) -> Relation | None:
    if ("source" in spec) == ("model" in spec):
        r.error(path, f'entity "{name}" needs exactly one of "source" (a dbt source) or "model" (a dbt model)')
        return None
    if "source" in spec:
        value = r.string(path + ("source",), spec["source"], "source")
        if value is None:
            return None
        parts = value.split(".")
        if len(parts) != 2 or not all(parts):
            r.error(path + ("source",), f'source "{value}" must be written <source name>.<table name>')
            return None
        tables = project.sources.get(parts[0])
        if tables is None:
            r.error(
                path + ("source",),
                f'no dbt source named "{parts[0]}" in the project{did_you_mean(parts[0], project.sources)}',
            )
        elif parts[1] not in tables:
            r.error(
                path + ("source",), f'dbt source "{parts[0]}" has no table "{parts[1]}"{did_you_mean(parts[1], tables)}'
            )
        return Relation("source", tuple(parts))
    value = r.string(path + ("model",), spec["model"], "model")
    if value is None:
        return None
    if value not in project.node_names:
        r.error(
            path + ("model",),
            f'no dbt model or seed named "{value}" in the project{did_you_mean(value, project.node_names)}',
        )
    return Relation("ref", (value,))


def _addresses(r: Reader, path: Path_, entity: Entity, raw: Any) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    path = path + ("addresses",)
    if r.mapping(path, raw, f'addresses of "{entity.name}"', optional=CHANNELS) is None:
        return {}
    result = {}
    for channel, value in raw.items():
        if channel not in CHANNELS:
            continue
        names = value if channel == "direct_mail" and isinstance(value, list) else [value]
        columns = []
        for i, column in enumerate(names):
            cpath = path + (channel, i) if isinstance(value, list) else path + (channel,)
            declared = entity.column(column) if isinstance(column, str) else None
            if declared is None:
                r.error(
                    cpath,
                    f'address column {quoted(column)} is not a declared column of "{entity.name}"'
                    f"{did_you_mean(column, entity.columns) if isinstance(column, str) else ''}",
                )
            else:
                columns.append(declared)
        if len(columns) == len(names):
            result[channel] = tuple(columns)
    return result


def _consent(r: Reader, path: Path_, entity: Entity, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    path = path + ("consent",)
    if r.mapping(path, raw, f'consent of "{entity.name}"', optional=CHANNELS) is None:
        return {}
    result = {}
    for channel, column in raw.items():
        if channel not in CHANNELS:
            continue
        declared = entity.column(column) if isinstance(column, str) else None
        if declared is None:
            r.error(path + (channel,), f'consent column {quoted(column)} is not a declared column of "{entity.name}"')
        elif entity.columns[declared] != "boolean":
            r.error(path + (channel,), f'consent column "{declared}" must be boolean, not {entity.columns[declared]}')
        else:
            result[channel] = declared
    return result


def _link(r: Reader, path: Path_, entity: Entity, name: str, spec: Any) -> Link | None:
    if r.identifier(path, name, "link name", at_key=True) is None:
        return None
    spec = r.mapping(path, spec, f'link "{name}"', required=("entity", "on"), optional=("cardinality",))
    if spec is None:
        return None
    on = r.mapping(path + ("on",), spec.get("on"), f'"on" of link "{name}"')
    if on is not None and not on:
        r.error(path + ("on",), f'link "{name}" needs at least one pair of columns in "on"')
        on = None
    cardinality = spec.get("cardinality")
    if cardinality is not None:
        cardinality = r.choice(path + ("cardinality",), cardinality, "cardinality", ("one", "many"))
    if not isinstance(spec.get("entity"), str) or on is None:
        return None
    pairs = tuple((str(k), v if isinstance(v, str) else repr(v)) for k, v in on.items())
    return Link(name=name, entity=spec["entity"], on=pairs, cardinality=cardinality or "")


def _check_links(r: Reader, entity: Entity, entities: dict[str, Entity], declared: set[str]) -> None:
    """Links are checked once every entity is known; their cardinality is derived here.

    A link to an entity that is declared but invalid is dropped without a word: that entity's
    own errors say what is wrong."""
    for name, link in list(entity.links.items()):
        path = entity.path + ("links", name)
        target = entities.get(link.entity)
        if target is None:
            if link.entity not in declared:
                r.error(
                    path + ("entity",),
                    f'link "{name}" targets unknown entity "{link.entity}"{did_you_mean(link.entity, declared)}',
                )
            del entity.links[name]
            continue
        pairs, ok = [], True
        for local, remote in link.on:
            local_col, remote_col = entity.column(local), target.column(remote)
            if local_col is None:
                r.error(
                    path + ("on", local),
                    f'"{local}" is not a column of "{entity.name}"{did_you_mean(local, entity.columns)}',
                    at_key=True,
                )
                ok = False
            if remote_col is None:
                r.error(
                    path + ("on", local),
                    f'"{remote}" is not a column of "{target.name}"{did_you_mean(remote, target.columns)}',
                )
                ok = False
            pairs.append((local_col, remote_col))
        if not ok:
            del entity.links[name]
            continue
        derived = "one" if {remote for _, remote in pairs} == {target.key} else "many"
        entity.links[name] = Link(name, target.name, tuple(pairs), link.cardinality or derived)
