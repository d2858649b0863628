"""Where dbt runs and builds: a project, its profiles.yml and a target, read as dbt reads them.

The credentials are those dbt reads (project.profile reads the usual profiles itself, exactly as
dbt does, and leaves the others to dbt's reader), so `env_var()` defaults and target selection
behave exactly as in `dbt build`; `connect` opens the warehouse of that target.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..engines.warehouse import Warehouse
from ..errors import Diagnostic, Diagnostics, InvalidInput, RuntimeFailure, did_you_mean
from ..yamlsrc import load_yaml
from .dbt import DbtProject


@dataclass(frozen=True)
class DbtTarget:
    """Where dbt runs: a project, its profiles directory and a target (None: the profile's default)."""

    project: DbtProject
    profiles_dir: Path
    target: str | None = None

    def flags(self) -> list[str]:
        flags = ["--project-dir", str(self.project.root), "--profiles-dir", str(self.profiles_dir)]
        return flags + (["--target", self.target] if self.target else [])


def connect(where: DbtTarget) -> Warehouse:
    """A direct connection to the warehouse dbt builds into, from the same profile and target."""
    profile = load_profile(where)
    return Warehouse.connect(profile.credentials, profile.target_name, where.project.root)


def load_profile(where: DbtTarget):
    """The target's profile as dbt reads it for a command run with `where.flags()`: by
    project.profile's reader when it can (no dbt import), else by dbt's own reader."""
    from .profile import read_profile

    name, target = profile_name(where), target_name(where)
    return read_profile(where.profiles_dir, name, target) or _dbt_profile(where, name, target)


def profile_name(where: DbtTarget) -> str:
    """The profile dbt uses: $DBT_PROFILE (dbt's --profile, which we never pass), else the project's."""
    return os.environ.get("DBT_PROFILE") or where.project.profile


def target_name(where: DbtTarget) -> str | None:
    """The target dbt uses: --target, else $DBT_TARGET, else (None) the profile's default."""
    return where.target or os.environ.get("DBT_TARGET") or None


def _dbt_profile(where: DbtTarget, name: str, target: str | None):
    from argparse import Namespace

    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.exceptions import DbtProfileError, DbtRuntimeError
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    # dbt's defaults, and the profiles directory `{{ flags.PROFILES_DIR }}` names in profiles.yml (the
    # demo's DuckDB file is next to its profiles.yml, wherever dbt runs from)
    set_from_args(Namespace(PROFILES_DIR=str(where.profiles_dir)), None)
    set_invocation_context(os.environ)  # what env_var() in profiles.yml reads
    raw = None
    try:
        raw = read_profile(str(where.profiles_dir))
        if not raw:
            raise RuntimeFailure(f"no profiles.yml in {where.profiles_dir}")
        return Profile.from_raw_profiles(raw, name, ProfileRenderer({}), target_override=target)
    except (DbtProfileError, DbtRuntimeError) as exc:
        # an unknown target or profile, a missing env_var(): the user's configuration, not a fault
        message = " ".join(str(exc).split()).removeprefix("Runtime Error ")
        outputs = ((raw or {}).get(name) or {}).get("outputs")
        if target and isinstance(outputs, dict) and target not in outputs:
            hint = did_you_mean(target, outputs) or f" (targets: {', '.join(outputs)})"
            message = f'profile "{name}" has no target "{target}"{hint}'
        missing = re.search(r"Could not find adapter type (\w+)", message)
        if missing:
            message += _install_hint(missing.group(1))
        raise InvalidInput([Diagnostic(_profile_location(where, name), message)]) from None


def _install_hint(kind: str) -> str:
    """How to get the dbt adapter `kind`: this package's extra of that name when it has one.

    >>> _install_hint("nosuch")
    ' (install its dbt adapter, dbt-nosuch)'
    """
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        extras = metadata("campaign-compiler").get_all("Provides-Extra") or []
    except PackageNotFoundError:
        extras = []
    if kind in extras:
        return f' (install it with this package: pip install "campaign-compiler[{kind}]")'
    return f" (install its dbt adapter, dbt-{kind})"


def _profile_location(where: DbtTarget, name: str):
    """Where the profile's targets are written in profiles.yml (the file itself when absent)."""

    source = load_yaml(where.profiles_dir / "profiles.yml", Diagnostics())
    if source is None:
        return None
    return source.key_at((name, "outputs"))
