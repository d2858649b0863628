"""The warehouses campaigns are built in and sent from: one engine per dbt adapter, registered here.

This is the only place that names them; the rest of the compiler asks the registry (`DIALECTS`,
`engine_for`) or a `Warehouse`'s engine. Adding a warehouse takes:

* one module in this package, whose `Engine` subclass connects with dbt's credentials of the
  adapter and keeps a campaign's lock (see `base.py` for what it must say);
* one line in `ENGINES` below;
* the dispatched macros of the adapter in the dbt package's `macros/` (`adapter.dispatch` picks
  `<adapter>__<macro>`), for the SQL the models need written the warehouse's own way.
"""

from __future__ import annotations

from ..errors import RuntimeFailure
from .base import Engine, EngineLock
from .duckdb import DuckDB
from .postgres import Postgres
from .spark import Spark

__all__ = ["DEFAULT_DIALECT", "DIALECTS", "ENGINES", "Engine", "EngineLock", "engine_for"]

# dbt's adapter type -> its engine
ENGINES: dict[str, type[Engine]] = {
    DuckDB.name: DuckDB,
    Postgres.name: Postgres,
    Spark.name: Spark,
}

# the sqlglot dialects campaigns compile for: a condition must mean the same in each
DIALECTS: tuple[str, ...] = tuple(ENGINES)

# the dialect a project's conditions are read in when it names none (`sql_dialect`)
DEFAULT_DIALECT = Postgres.name


def engine_for(kind: str) -> type[Engine]:
    """The engine of dbt's adapter `kind`; RuntimeFailure when no engine is registered for it."""
    try:
        return ENGINES[kind]
    except KeyError:
        supported = ", ".join(ENGINES)
        raise RuntimeFailure(f'adapter "{kind}" is not supported (supported: {supported})') from None
