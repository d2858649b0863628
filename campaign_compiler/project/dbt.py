"""What the compiler needs to know about the user's dbt project, read from its files.

The compiler never asks dbt to parse the project (that takes seconds); it reads `dbt_project.yml`
for names and paths, and lists models, seeds and sources so that a campaign naming one that does
not exist gets a located error instead of a dbt failure at build time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from ..errors import RuntimeFailure, display_path
from ..yamlsrc import LimitExceeded, load_plain

PACKAGE_NAME = "campaign_orchestration"
GENERATED_FOLDER = "campaigns"


@dataclass
class DbtProject:
    root: Path
    name: str
    profile: str
    model_paths: list[str] = field(default_factory=lambda: ["models"])
    seed_paths: list[str] = field(default_factory=lambda: ["seeds"])
    packages_install_path: str = "dbt_packages"
    target_path: str = "target"

    @classmethod
    def load(cls, root: Path) -> DbtProject:
        root = Path(root).resolve()
        path = root / "dbt_project.yml"
        if not path.is_file():
            raise RuntimeFailure(f"{display_path(root)} is not a dbt project (no dbt_project.yml)")
        try:
            raw = load_plain(path) or {}
        except (OSError, UnicodeDecodeError) as exc:
            raise RuntimeFailure(f"{display_path(path)}: cannot read file: {exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            where = f"{display_path(path)}:{mark.line + 1}:{mark.column + 1}" if mark else display_path(path)
            problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
            raise RuntimeFailure(
                f"{where}: {problem if isinstance(exc, LimitExceeded) else 'invalid YAML: ' + problem}"
            ) from None
        return cls(
            root=root,
            name=str(raw.get("name", "")),
            profile=str(raw.get("profile") or raw.get("name", "")),
            model_paths=list(raw.get("model-paths") or ["models"]),
            seed_paths=list(raw.get("seed-paths") or ["seeds"]),
            packages_install_path=str(raw.get("packages-install-path") or "dbt_packages"),
            # dbt's order: $DBT_TARGET_PATH (its --target-path, which we never pass), then the project's
            target_path=os.environ.get("DBT_TARGET_PATH") or str(raw.get("target-path") or "target"),
        )

    # -- where generated files go -----------------------------------------------------------
    def models_dir(self, campaign: str) -> Path:
        return self.root / self.model_paths[0] / GENERATED_FOLDER / campaign

    def seeds_dir(self, campaign: str) -> Path:
        return self.root / self.seed_paths[0] / GENERATED_FOLDER / campaign

    @property
    def target_dir(self) -> Path:
        return self.root / self.target_path

    @property
    def package_installed(self) -> bool:
        return (self.root / self.packages_install_path / PACKAGE_NAME / "dbt_project.yml").is_file()

    # -- what exists ---------------------------------------------------------------------------
    @cached_property
    def node_names(self) -> set[str]:
        """Names `ref()` can resolve: models and seeds of the project and installed packages."""
        names: set[str] = set()
        roots = [self.root / p for p in self.model_paths + self.seed_paths]
        packages = self.root / self.packages_install_path
        if packages.is_dir():
            for package in packages.iterdir():
                roots += [package / "models", package / "seeds"]
        for base in roots:
            for _, _, files in os.walk(base, followlinks=True):
                for filename in files:
                    stem, ext = os.path.splitext(filename)
                    if ext in (".sql", ".py", ".csv"):
                        names.add(stem)
        return names

    def own_nodes(self) -> list[tuple[str, Path]]:
        """The project's own models and seeds, not the generated ones: (name, file)."""
        generated = {self.models_dir("_").parent, self.seeds_dir("_").parent}
        found = []
        for base in self.model_paths + self.seed_paths:
            for dirpath, dirs, files in os.walk(self.root / base, followlinks=True):
                if Path(dirpath) in generated:
                    dirs[:] = []
                    continue
                dirs.sort()
                for filename in sorted(files):
                    stem, ext = os.path.splitext(filename)
                    if ext in (".sql", ".py", ".csv"):
                        found.append((stem, Path(dirpath, filename)))
        return found

    @cached_property
    def sources(self) -> dict[str, set[str]]:
        """source name -> table names, from the `sources:` of the project's property files."""
        found: dict[str, set[str]] = {}
        for base in (self.root / p for p in self.model_paths):
            for dirpath, _, files in os.walk(base, followlinks=True):
                for filename in files:
                    if not filename.endswith((".yml", ".yaml")):
                        continue
                    try:
                        raw = load_plain(Path(dirpath, filename))
                    except (OSError, UnicodeDecodeError, yaml.YAMLError):
                        continue  # dbt reports broken property files itself
                    declared = raw.get("sources") if isinstance(raw, dict) else None
                    for source in declared if isinstance(declared, list) else []:
                        if isinstance(source, dict) and source.get("name"):
                            tables = found.setdefault(str(source["name"]), set())
                            for table in source.get("tables") or []:
                                if isinstance(table, dict) and table.get("name"):
                                    tables.add(str(table["name"]))
        return found


def default_profiles_dir(project_root: Path) -> Path:
    """dbt's rule (DBT_PROFILES_DIR, then the working directory, then ~/.dbt), extended with the
    project directory so that `campaign --project-dir demo ...` finds demo/profiles.yml."""
    if os.environ.get("DBT_PROFILES_DIR"):
        return Path(os.environ["DBT_PROFILES_DIR"]).resolve()
    for candidate in (project_root, Path.cwd()):
        if (candidate / "profiles.yml").is_file():
            return candidate.resolve()
    return Path.home() / ".dbt"
