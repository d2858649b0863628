"""One class per activity type, mirroring one macro per type in `macros/`.

Each type declares its keys and outputs, then `resolve`s an activity: it checks the parameters
against the working tables it receives, compiles their SQL through `conditions.Query`, and adds
the working tables it produces and the models (macro calls) that build them.

The types live by purpose: `base` (what they share), `sources` (where rows come from),
`targeting` (what shapes an audience), `flow` (routing) and `channels` (messages).
"""

from __future__ import annotations

from .base import ActivityType, Context
from .flow import AndJoin, End, Fork, OrJoin, Reaction, Test, Wait
from .sources import BuildAudience, IncrementalQuery, LoadFile, Reconciliation
from .targeting import ChangeDimension, Combine, Deduplication, Enrichment, SaveAudience, Split

__all__ = ["PLANNED_TYPES", "TYPES", "ActivityType", "Context"]

TYPES: dict[str, ActivityType] = {
    t.name: t
    for t in (
        BuildAudience(),
        IncrementalQuery(),
        LoadFile(),
        Reconciliation(),
        Combine(),
        Split(),
        Deduplication(),
        Enrichment(),
        ChangeDimension(),
        SaveAudience(),
        Fork(),
        AndJoin(),
        OrJoin(),
        Test(),
        Wait(),
        Reaction(),
        End(),
    )
}
# Activity types the campaign language names that this version does not compile yet.
PLANNED_TYPES: tuple[str, ...] = ()
