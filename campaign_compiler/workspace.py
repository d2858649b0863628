"""A dbt project with campaigns: the data model, loaded once, and campaigns, resolved on demand.

Campaigns meet through saved audiences: `build_audience: {audience: vip}` reads the model of the
`save_audience` that names `vip`, in whichever campaign of the project it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .compile.campaign import AudienceSource, load_campaign
from .compile.plan import Campaign
from .errors import Diagnostic, Diagnostics, InvalidInput, Location, RuntimeFailure, did_you_mean, display_path
from .project.datamodel import DataModel, load_data_model
from .project.dbt import DbtProject
from .yamlsrc import load_plain, load_yaml

CAMPAIGNS_DIR = "campaigns"


@dataclass(frozen=True)
class _Named:
    """Something that gives dbt a name: a model, seed or table, where it is defined, and by whom."""

    location: Location
    what: str
    owner: str  # two definitions of one owner (a campaign defined twice) are reported as such


class Workspace:
    def __init__(self, project_dir: Path):
        self.dbt = DbtProject.load(project_dir)
        self._model: DataModel | None = None
        self._model_diagnostics = Diagnostics()
        self._model_loaded = False
        self._campaigns: dict[Path, tuple[Campaign | None, list[Diagnostic]]] = {}
        self._loading: list[Path] = []
        self._index: list[tuple[Path, dict]] | None = None

    @property
    def campaigns_dir(self) -> Path:
        return self.dbt.root / CAMPAIGNS_DIR

    def data_model(self, diagnostics: Diagnostics) -> DataModel | None:
        if not self._model_loaded:
            self._model = load_data_model(self.dbt, self._model_diagnostics)
            self._model_loaded = True
        for diagnostic in self._model_diagnostics.sorted():
            diagnostics.error(diagnostic.location, diagnostic.message)
        return self._model if not self._model_diagnostics else None

    def channel_settings(self, channel: str):
        """The provider settings of a channel (the data model is valid once a campaign loaded)."""
        model = self.data_model(Diagnostics())
        if model is None:
            raise RuntimeFailure("campaign_project.yml has errors: run campaign validate")
        return model.channels[channel]

    # -- finding campaigns ----------------------------------------------------------------------
    def _campaign_index(self) -> list[tuple[Path, dict]]:
        """(file, raw content) of every campaign file under campaigns/, read without checks."""
        if self._index is None:
            self._index = []
            if self.campaigns_dir.is_dir():
                for path in sorted(self.campaigns_dir.rglob("*.y*ml")):
                    try:  # a file beyond the limits is skipped here, and refused when it is loaded
                        raw = load_plain(path)
                    except (OSError, UnicodeDecodeError, yaml.YAMLError):
                        raw = None
                    self._index.append((path.resolve(), raw if isinstance(raw, dict) else {}))
        return self._index

    def files(self) -> list[Path]:
        """Every campaign file under campaigns/."""
        return [path for path, _ in self._campaign_index()]

    def names(self) -> list[str]:
        """The names of the campaigns under campaigns/ and of those loaded from elsewhere."""
        loaded = {c.name for c, _ in self._campaigns.values() if c is not None}
        return sorted({str(raw.get("campaign")) for _, raw in self._campaign_index() if raw.get("campaign")} | loaded)

    def find(self, campaign: str) -> Path:
        """A campaign file from a campaign name or a path."""
        as_path = Path(campaign)
        if as_path.suffix in (".yml", ".yaml") or "/" in campaign:
            for candidate in (as_path, self.dbt.root / as_path):
                if candidate.is_file():
                    return candidate.resolve()
            raise InvalidInput([Diagnostic(None, f"campaign file not found: {display_path(as_path)}")])
        matches = [path for path, raw in self._campaign_index() if raw.get("campaign") == campaign]
        if not matches:
            stem = self.campaigns_dir / f"{campaign}.yml"
            if stem.is_file():
                return stem.resolve()
            raise InvalidInput(
                [
                    Diagnostic(
                        None,
                        f'no campaign named "{campaign}" in {display_path(self.campaigns_dir)}/'
                        f"{did_you_mean(campaign, self.names())}",
                    )
                ]
            )
        return matches[0]

    # -- loading --------------------------------------------------------------------------------
    def load(self, campaign: str | Path, diagnostics: Diagnostics) -> Campaign | None:
        """The campaign, resolved; its errors (and the data model's) are added to `diagnostics`."""
        path = self.find(campaign) if isinstance(campaign, str) else Path(campaign).resolve()
        loaded, found = self._load(path)
        for diagnostic in found:
            diagnostics.error(diagnostic.location, diagnostic.message)
        return loaded

    def _load(self, path: Path) -> tuple[Campaign | None, list[Diagnostic]]:
        if path not in self._campaigns:
            diagnostics = Diagnostics()
            model = self.data_model(diagnostics)
            source = load_yaml(path, diagnostics)
            campaign = None
            if source is not None:  # checked even when the data model has errors: all errors in one run
                self._loading.append(path)
                try:
                    campaign = load_campaign(
                        source, model, self.dbt, diagnostics, lambda name: self._audience(name, path)
                    )
                finally:
                    self._loading.pop()
                if campaign is not None:
                    self._check_unique(campaign, diagnostics)
            self._campaigns[path] = (campaign, diagnostics.sorted())
        return self._campaigns[path]

    def _check_unique(self, campaign: Campaign, diagnostics: Diagnostics) -> None:
        source = campaign.source
        for path, raw in self._campaign_index():
            if path == source.path.resolve():
                continue
            if raw.get("campaign") == campaign.name:
                diagnostics.error(
                    source.at(("campaign",)), f'campaign "{campaign.name}" is also defined in {display_path(path)}'
                )
            for saved in _saved_audiences(raw):
                for activity in campaign.ordered():
                    if activity.type == "save_audience" and activity.spec.get("name") == saved:
                        diagnostics.error(
                            source.at(activity.path + ("name",)),
                            f'audience "{saved}" is also saved by {display_path(path)}',
                        )

    def check_names(self, campaigns: list[Campaign], diagnostics: Diagnostics) -> None:
        """Each name dbt sees is given once in the project: the models and seeds of every campaign
        (`campaigns` and those under campaigns/), the tables of saved audiences, and the project's
        own models and seeds. dbt refuses two models of one name, and two tables of one name in a
        schema are one table; each clash is reported at both definitions."""
        names: dict[str, list[_Named]] = {}
        for campaign in self._with_all_files(campaigns):
            _add_campaign_names(campaign, names)
        for name, path in self.dbt.own_nodes():
            kind = "seed" if path.suffix == ".csv" else "model"
            shown = display_path(path)
            names.setdefault(name.lower(), []).append(
                _Named(Location(shown, 1, 1), f"the project's {kind} {shown}", str(path))
            )
        for name, defined in names.items():
            _report_clash(name, defined, diagnostics)

    def _with_all_files(self, campaigns: list[Campaign]) -> list[Campaign]:
        """`campaigns`, then every other campaign under campaigns/ that loads."""
        loaded = {campaign.source.path.resolve(): campaign for campaign in campaigns}
        for path in self.files():
            if path not in loaded:
                other, _ = self._load(path)  # its own errors are its own; its names are checked all the same
                if other is not None:
                    loaded[path] = other
        return list(loaded.values())

    def _audience(self, name: str, requester: Path) -> AudienceSource | str:
        savers = [(path, raw) for path, raw in self._campaign_index() if name in _saved_audiences(raw)]
        if not savers:
            known = sorted({a for _, raw in self._campaign_index() for a in _saved_audiences(raw)})
            return f'no campaign saves an audience named "{name}"{did_you_mean(name, known)}'
        if len(savers) > 1:
            files = ", ".join(display_path(p) for p, _ in savers)
            return f'audience "{name}" is saved by several campaigns ({files})'
        path, raw = savers[0]
        if path == requester:
            return (
                f'audience "{name}" is saved by this campaign: read the save_audience activity '
                "through a transition instead"
            )
        if path in self._loading:
            return f"saved audiences form a cycle between {display_path(requester)} and {display_path(path)}"
        other, errors = self._load(path)
        if other is None or errors:
            return (
                f'audience "{name}" is saved by {display_path(path)}, which has errors '
                f"(run: campaign validate {raw.get('campaign')})"
            )
        activity = next(a for a in other.ordered() if a.type == "save_audience" and a.spec.get("name") == name)
        table = activity.tables["out"]
        return AudienceSource(campaign=other, model=table.model, table=table)

    def audience_savers(self, campaign: Campaign) -> list[tuple[Campaign, list[str]]]:
        """The campaigns whose saved audiences `campaign` reads, directly or through another, upstream
        first, each with the models that save those audiences."""
        savers: dict[str, tuple[Campaign, list[str]]] = {}

        def visit(reader: Campaign) -> None:
            for source in reader.audiences.values():
                visit(source.campaign)
                models = savers.setdefault(source.campaign.name, (source.campaign, []))[1]
                if source.model not in models:
                    models.append(source.model)

        visit(campaign)
        return list(savers.values())


def _add_campaign_names(campaign: Campaign, names: dict[str, list[_Named]]) -> None:
    """The names a campaign gives dbt: its models, its seeds and the tables of the audiences it saves."""
    for activity in campaign.ordered():
        location = activity.source.key_at(activity.path)
        at = f'activity "{activity.id}" ({location})'
        owner = f"campaign {campaign.name}, activity {activity.id}"
        models = [table.model for table in activity.tables.values()] + [m.name for m in activity.models]
        for name in dict.fromkeys(models):
            names.setdefault(name, []).append(_Named(location, f"the model of {at}", owner))
        for seed in activity.seeds:
            names.setdefault(seed.name, []).append(_Named(location, f"the seed of {at}", owner))
        for model in activity.models:
            if model.alias:
                names.setdefault(model.alias, []).append(
                    _Named(location, f"the table of the audience saved by {at}", f"table {model.alias}")
                )


def _report_clash(name: str, defined: list[_Named], diagnostics: Diagnostics) -> None:
    """An error at each definition of `name` when two owners or more define it (first place of each)."""
    first: dict[str, _Named] = {}
    for named in sorted(defined, key=lambda n: n.location):
        first.setdefault(named.owner, named)
    if len(first) < 2:
        return
    *others, last = first.values()
    listed = ", ".join(n.what for n in others) + f" and {last.what}"
    count = "two" if len(first) == 2 else str(len(first))
    for named in first.values():
        diagnostics.error(named.location, f'"{name}" names {count} dbt nodes: {listed}; rename one of them')


def _saved_audiences(raw: dict) -> list[str]:
    activities = raw.get("activities")
    if not isinstance(activities, dict):
        return []
    return [
        a["name"]
        for a in activities.values()
        if isinstance(a, dict) and a.get("type") == "save_audience" and isinstance(a.get("name"), str)
    ]
