"""Building a campaign: write its models, then one `dbt build` of them and of the seeds they need.

The campaign's own seeds (loaded files) are always rebuilt. A seed the campaign reads (the demo's
CRM tables, say) is loaded only when its table is missing from the target or its CSV changed
since this command last loaded it: re-seeding on every count would dominate its run time.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from .conditions import LinkJoin
from .dbt_runner import DbtTarget, Progress, build, read_json, record_relations
from .deliverylog import DeliveryLog
from .emit import remove_orphans, write_campaign
from .plan import Campaign, Jinja
from .warehouse import Warehouse
from .workspace import Workspace

STATE_FILE = "campaign_seeds.json"
_REF = re.compile(r"^ref\('([^']+)'\)$")


def build_campaign(campaign: Campaign, workspace: Workspace, where: DbtTarget, progress: Progress | None = None,
                   occurrence: str = "once") -> None:
    """Build for `occurrence`: a frequency cap does not count the messages this occurrence already sent."""
    dbt = workspace.dbt
    remove_orphans(dbt, set(workspace.names()))
    write_campaign(campaign, dbt)
    seeds = upstream_seeds(campaign, workspace)
    digests = {name: _digest(path, dbt.root / "dbt_project.yml") for name, path in seeds.items()}
    state_path = dbt.target_dir / STATE_FILE
    state = read_json(state_path)
    with Warehouse.connect(where) as warehouse:
        DeliveryLog(warehouse).ensure_tables()  # channel models read suppressions and deliveries
        loaded = state.get(warehouse.target_name, {})
        stale = [name for name in sorted(seeds)
                 if loaded.get(name) != digests[name] or not warehouse.table_exists(name)]
        target_name = warehouse.target_name
    campaign_file = campaign.source.display
    origins = {model.name: f"{campaign_file}:{campaign.activities[model.table.activity].line}, activity "
                           f"{model.table.activity}" for model in campaign.models()}
    build(where, [f"tag:{campaign.tag}", *stale], progress, origins, {"campaign_occurrence": occurrence})
    record_relations(dbt, target_name, [model.name for model in campaign.models()])
    state.setdefault(target_name, {}).update({name: digests[name] for name in stale})
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(state, indent=2, sort_keys=True))


def upstream_seeds(campaign: Campaign, workspace: Workspace) -> dict[str, Path]:
    """The project's seeds that the campaign's models `ref()`, by name."""
    dbt = workspace.dbt
    available = {}
    for base in dbt.seed_paths:
        for path in sorted((dbt.root / base).rglob("*.csv")):
            generated = dbt.seeds_dir(campaign.name).parent in path.parents
            if not generated:
                available.setdefault(path.stem, path)
    names = {name for model in campaign.models() for name in _refs(model.args)}
    return {name: available[name] for name in sorted(names) if name in available}


def _refs(value):
    if isinstance(value, Jinja):
        match = _REF.match(value.code)
        if match:
            yield match.group(1)
    elif isinstance(value, LinkJoin):
        yield from _refs(Jinja(value.relation.jinja()))
        yield from _refs(value.links)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _refs(item)


def _digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()
