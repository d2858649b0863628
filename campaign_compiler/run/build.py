"""Building a campaign: write its models, then one `dbt build` of them and of what they need.

What they need: the seeds they read, and the campaigns whose saved audiences they read when those
audiences are not built on the target as their campaign stands (`build_audience: {audience: x}`
refs the model of the `save_audience` that names it, so dbt orders them; this builds the part of
the other campaign that saves it).

The campaign's own seeds (loaded files) are always rebuilt. A seed the campaign reads (the demo's
CRM tables, say) is loaded only when its table is missing from the target or its CSV changed
since this command last loaded it: re-seeding on every count would dominate its run time.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

from ..compile.emit import model_refs, remove_orphans, restore, step_tag, write_campaigns
from ..compile.plan import START, Campaign
from ..project.target import DbtTarget, connect
from ..timing import ONCE, sql_timestamp
from ..workspace import Workspace
from .dbt import Progress, ProjectFailure, build, read_json
from .state import CampaignBuild

STATE_FILE = "campaign_seeds.json"


def build_campaign(
    campaign: Campaign,
    workspace: Workspace,
    where: DbtTarget,
    progress: Progress | None = None,
    occurrence: str = ONCE,
    notify=None,
    now: datetime | None = None,
    step: str = START,
    simulate: bool = False,
) -> None:
    """Build `step` of the campaign (all of it when it has no wait) for `occurrence`, whose time is
    `now` (default: the warehouse's clock): incremental queries read the rows up to it, waits release
    their populations after it, and a frequency cap does not count the messages this occurrence
    already sent. A `simulate`d build records no population in its waits.

    `notify(text)` is told of the other campaigns built along."""
    dbt = workspace.dbt
    savers = workspace.audience_savers(campaign)
    written = write_campaigns([*(saver for saver, _ in savers), campaign], dbt)  # every model a ref names must exist
    remove_orphans(dbt, set(workspace.names()))
    selectors = [f"tag:{step_tag(campaign, step)}" if campaign.waits else f"tag:{campaign.tag}"]
    built = [campaign]
    state_path = dbt.target_dir / STATE_FILE
    state = read_json(state_path)
    with connect(where) as warehouse:
        for other, models in savers:
            problem = CampaignBuild(other, warehouse, where.target).problem(models)
            if problem is not None:
                selectors += [f"+{model},tag:{other.tag}" for model in models]
                built.append(other)
                if notify is not None:
                    notify(
                        f"Building {other.name} too: {campaign.name} reads an audience it saves, and {other.name} "
                        f"{problem}."
                    )
        seeds = {name: path for other in built for name, path in upstream_seeds(other, workspace).items()}
        digests = {name: _digest(path, dbt.root / "dbt_project.yml") for name, path in seeds.items()}
        loaded = state.get(warehouse.target_name, {})
        stale = [
            name for name in sorted(seeds) if loaded.get(name) != digests[name] or not warehouse.table_exists(name)
        ]
        target_name = warehouse.target_name
    origins = {
        model.name: f"{other.source.display}:{other.activities[model.table.activity].line}, activity "
        f"{model.table.activity}"
        for other in built
        for model in other.models()
    }
    try:
        variables = {"campaign_occurrence": occurrence, **({"campaign_now": sql_timestamp(now)} if now else {})}
        if simulate:
            variables["campaign_simulation"] = True
        build(where, [*selectors, *stale], progress, origins, variables)
    except ProjectFailure as failure:
        # files dbt cannot parse would break the build of every campaign of the project, not only this one
        restore(written, dbt)
        raise ProjectFailure(f"{failure}; the generated files are as they were before this command") from None
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
    names = {name for model in campaign.models() for name in model_refs(model)}
    return {name: available[name] for name in sorted(names) if name in available}


def _digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()
