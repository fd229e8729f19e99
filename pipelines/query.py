"""A user's read-only query on the lake, now or as of an older snapshot, run in the sandbox.

The platform's own SQL reads the lake through ``store.reader``; a user's never does.
"""

from __future__ import annotations

from pathlib import Path

from pipelines import sandbox, store
from pipelines.config import Settings
from pipelines.errors import ConfigError, QueryError


def run_query(settings: Settings, sql: str, *, fmt: str = "table", as_of: str | None = None,
              output: Path | None = None, limit: int = 1000) -> str:
    """Run ``sql`` read-only on the lake and return it formatted (``parquet`` needs ``output``).

    The query runs in the sandbox (``pipelines.sandbox``): no file but the lake's, no catalog
    maintenance, and a time, memory and disk budget.
    """
    if fmt not in sandbox.FORMATS:
        raise QueryError(f"Unknown format {fmt!r}; use one of {', '.join(sandbox.FORMATS)}.")
    if fmt == "parquet" and output is None:
        raise QueryError("The parquet format writes a file.", hint="Add --output FILE.parquet.")
    if not settings.catalog_is_postgres and not Path(settings.catalog).exists():
        raise ConfigError(f"No lake at {settings.catalog}.",
                          hint="Submit and ingest data first (see `insurshare --help`), or set INSURSHARE_HOME.")
    snapshot = store.resolve_snapshot(settings, as_of) if as_of is not None else None
    return sandbox.run(settings, sandbox.Request(sql, fmt, limit, snapshot=snapshot), output)
