"""Where dbt runs and builds: a project, its profiles.yml and a target, read as dbt reads them.

The credentials come from dbt's own profile reader, so `env_var()` defaults and target selection
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
        return Profile.from_raw_profiles(raw, where.project.profile, ProfileRenderer({}), target_override=where.target)
    except (DbtProfileError, DbtRuntimeError) as exc:
        # an unknown target or profile, a missing env_var(): the user's configuration, not a fault
        message = " ".join(str(exc).split()).removeprefix("Runtime Error ")
        outputs = ((raw or {}).get(where.project.profile) or {}).get("outputs")
        if where.target and isinstance(outputs, dict) and where.target not in outputs:
            hint = did_you_mean(where.target, outputs) or f" (targets: {', '.join(outputs)})"
            message = f'profile "{where.project.profile}" has no target "{where.target}"{hint}'
        missing = re.search(r"Could not find adapter type (\w+)", message)
        if missing:
            message += _install_hint(missing.group(1))
        raise InvalidInput([Diagnostic(_profile_location(where), message)]) from None


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


def _profile_location(where: DbtTarget):
    """Where the profile's targets are written in profiles.yml (the file itself when absent)."""

    source = load_yaml(where.profiles_dir / "profiles.yml", Diagnostics())
    if source is None:
        return None
    return source.key_at((where.project.profile, "outputs"))
