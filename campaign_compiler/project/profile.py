"""profiles.yml read as dbt reads it, without importing dbt: importing dbt's profile reader takes about
a second, which `campaign status` and `send` would otherwise spend before doing anything.

`read_profile` handles the profiles people write for this tool: DuckDB and PostgreSQL targets whose
values are YAML scalars or strings rendered with `env_var()` (defaults, DBT_ENV_SECRET_ variables),
`flags.PROFILES_DIR` and dbt's `as_number`/`as_bool`/`as_native`/`as_text` filters. Whenever a
profile holds anything else (another Jinja construct, another adapter, a field it does not know, a
value dbt would reject) it returns None, and the caller asks dbt's own reader, which also words the
errors. For what it handles, the result is dbt's; tests/test_profile.py compares the two.
"""

from __future__ import annotations

import datetime
import os
import re
from ast import literal_eval
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any

from ..engines import ENGINES
from ..yamlsrc import MAX_FILE_BYTES, SAFE_LOADER, check_limits

SECRET_PREFIX = "DBT_ENV_SECRET"  # dbt's: variables only profiles.yml and packages.yml may read
SECRET_PLACEHOLDER = "$$$DBT_SECRET_START$$${}$$$DBT_SECRET_END$$$"
DEFAULT_THREADS = 1
_RENDER_FILTERS = ("as_text", "as_bool", "as_native", "as_number")


class Unhandled(Exception):
    """The profile holds something this reader leaves to dbt."""


@dataclass(frozen=True)
class Profile:
    target_name: str
    threads: int
    credentials: Any  # the engine's credentials (Engine.read_credentials)


def read_profile(profiles_dir: Path, profile_name: str, target: str | None, env=None) -> Profile | None:
    """The target `target` (None: the profile's default) of profile `profile_name` in
    `profiles_dir`/profiles.yml, as dbt reads it with the environment `env` (default os.environ);
    None when dbt must read it."""
    env = os.environ if env is None else env
    try:
        return _read(Path(profiles_dir), profile_name, target, env)
    except Unhandled:
        return None


def _read(profiles_dir: Path, profile_name: str, target: str | None, env) -> Profile:
    import yaml

    try:
        data = (profiles_dir / "profiles.yml").read_bytes()
        text = data.decode("utf-8")  # as dbt reads it: no newline translated
        if len(data) > MAX_FILE_BYTES:
            raise Unhandled  # beyond this package's limits: dbt's reader alone reads it
        check_limits(text)
        raw = yaml.load(text, Loader=SAFE_LOADER)
    except (OSError, ValueError, yaml.YAMLError):
        raise Unhandled from None
    profile = raw.get(profile_name) if isinstance(raw, dict) else None
    if not isinstance(profile, dict) or not profile:
        raise Unhandled
    renderer = _Renderer(str(profiles_dir), env)
    if target is None:
        target = renderer.render(profile["target"], ()) if "target" in profile else "default"
    outputs = profile.get("outputs")
    if not isinstance(target, str) or not isinstance(outputs, dict) or not isinstance(outputs.get(target), dict):
        raise Unhandled
    data = renderer.render_data(outputs[target])
    threads = data.pop("threads", DEFAULT_THREADS)
    if type(threads) is not int:
        raise Unhandled
    engine = ENGINES.get(data.pop("type", None))
    credentials = engine.read_credentials(data) if engine is not None else None
    if credentials is None:
        raise Unhandled
    return Profile(target, threads, credentials)


class _Renderer:
    """dbt's ProfileRenderer for the Jinja it handles: each string value rendered natively (a lone
    `{{ x | as_number }}` is a number), every other YAML scalar as it is, dates as ISO text."""

    def __init__(self, profiles_dir: str, env):
        self.env = env
        self.context = {"env_var": self.env_var, "flags": _Flags(profiles_dir)}

    def render_data(self, data: Any, keypath: tuple = ()) -> Any:
        if isinstance(data, dict):
            return {key: self.render_data(value, (*keypath, str(key))) for key, value in data.items()}
        if isinstance(data, list):
            return [self.render_data(value, (*keypath, index)) for index, value in enumerate(data)]
        return self.render(data, keypath)

    def render(self, value: Any, keypath: tuple) -> Any:
        if isinstance(value, datetime.date):
            return value.isoformat()
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if not isinstance(value, str):
            raise Unhandled  # dbt refuses other YAML types
        try:
            rendered = _template(value).render(self.context)
        except Exception:
            raise Unhandled from None  # dbt's error (or, for a password, the text unrendered)
        return self._unveil(rendered)

    def env_var(self, name: str, default: str | None = None) -> str:
        if name in self.env and name.startswith(SECRET_PREFIX):
            return SECRET_PLACEHOLDER.format(name)
        if name in self.env:
            return self.env[name]
        if default is None:
            raise Unhandled  # dbt: the variable is required
        return default

    def _unveil(self, rendered: Any) -> Any:
        """A secret variable's value put in place of its placeholder, as dbt's SecretRenderer does."""
        if SECRET_PREFIX not in str(rendered):
            return rendered
        pattern = SECRET_PLACEHOLDER.format(f"({SECRET_PREFIX}(.*))").replace("$", r"\$")
        found = re.search(pattern, rendered) if isinstance(rendered, str) else None
        if found is None:
            raise Unhandled  # dbt makes the value None, or fails
        name = found.group(1)
        return rendered.replace(SECRET_PLACEHOLDER.format(name), self.env[name])


@dataclass(frozen=True)
class _Flags:
    PROFILES_DIR: str  # noqa: N815 - dbt's name, as profiles.yml writes it


def _template(text: str):
    """`text` compiled as dbt compiles a profile's value (a native template), when its Jinja is the
    subset handled here."""
    from jinja2 import nodes

    environment = _environment()
    try:
        tree = environment.parse(text)
    except Exception:
        raise Unhandled from None  # dbt's syntax error
    for statement in tree.body:
        if not isinstance(statement, nodes.Output) or not all(_handled(node) for node in statement.nodes):
            raise Unhandled
    return environment.from_string(text)


def _handled(node) -> bool:
    """Text, env_var('NAME'[, 'default']), flags.PROFILES_DIR, or one of them through dbt's as_* filters."""
    from jinja2 import nodes

    if isinstance(node, nodes.TemplateData):
        return True
    if isinstance(node, nodes.Filter):
        plain = not (node.args or node.kwargs or node.dyn_args or node.dyn_kwargs)
        return plain and node.name in _RENDER_FILTERS and node.node is not None and _handled(node.node)
    if isinstance(node, nodes.Getattr):
        return isinstance(node.node, nodes.Name) and node.node.name == "flags" and node.attr == "PROFILES_DIR"
    if isinstance(node, nodes.Call):
        arguments = node.args
        return (
            isinstance(node.node, nodes.Name)
            and node.node.name == "env_var"
            and not (node.kwargs or node.dyn_args or node.dyn_kwargs)
            and 1 <= len(arguments) <= 2
            and all(isinstance(a, nodes.Const) and isinstance(a.value, str) for a in arguments)
        )
    return False


_ENVIRONMENT = None


def _environment():
    """A native Jinja environment whose output is combined as dbt's is (dbt_common's
    quoted_native_concat) and whose as_* filters mark values as dbt's do."""
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        from jinja2.nativetypes import NativeEnvironment, NativeTemplate

        class Template(NativeTemplate):
            def render(self, context):
                return _native_concat(self.root_render_func(self.new_context(context)))

        environment = NativeEnvironment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])
        environment.template_class = Template
        environment.filters.update({"as_text": _Text, "as_bool": _Bool, "as_native": _Native, "as_number": _Number})
        _ENVIRONMENT = environment
    return _ENVIRONMENT


class _Text(str):
    """Marks text that stays text."""


class _Native(str):
    """Marks text read as a Python literal."""


class _Bool(_Native):
    pass


class _Number(_Native):
    pass


def _native_concat(nodes) -> Any:
    """dbt's rule for a native template's output: one value stays as it is (a marked one is read
    as a literal, and must then be of the marked type); several are joined as text.

    >>> _native_concat(iter([_Number("5432")])), _native_concat(iter(["a", 1])), _native_concat(iter(["5432"]))
    (5432, 'a1', '5432')
    """
    head = list(islice(nodes, 2))
    if not head:
        return ""
    if len(head) > 1:
        return "".join(str(v) for v in chain(head, nodes))
    raw = head[0]
    if isinstance(raw, _Text):
        return str(raw)
    if not isinstance(raw, _Native):
        return raw
    try:
        result = literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError):
        result = raw
    if isinstance(raw, _Bool) and not isinstance(result, bool):
        raise Unhandled
    if isinstance(raw, _Number) and (not isinstance(result, (int, float)) or isinstance(result, bool)):
        raise Unhandled
    return result
