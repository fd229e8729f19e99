"""Read-only queries on the lake, now or as of an older snapshot."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipelines import store
from pipelines.config import Settings
from pipelines.errors import ConfigError, QueryError

FORMATS = ("table", "csv", "json", "parquet")


@contextmanager
def reader(settings: Settings, as_of: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with the lake attached read-only (at snapshot ``as_of``) as the default schema.

    For the platform's own SQL (reports, exports, summaries), never for a user's: that runs in
    ``pipelines.sandbox``.
    """
    snapshot = None
    con = store.new_connection(settings)
    try:
        if as_of is not None:
            snapshot = resolve_snapshot(settings, as_of)
        store.attach(con, settings, read_only=True, snapshot=snapshot)
        con.execute(f"USE {store.LAKE}")
        yield con
    finally:
        con.close()


def resolve_snapshot(settings: Settings, as_of: str) -> int:
    """A snapshot id from an id or a timestamp (the last snapshot at or before it)."""
    if str(as_of).isdigit():
        return int(as_of)
    try:
        when = dt.datetime.fromisoformat(str(as_of))
    except ValueError:
        raise QueryError(f"--as-of {as_of!r} is neither a snapshot id nor an ISO timestamp.",
                         hint="Use e.g. --as-of 42 or --as-of 2025-04-01T12:00:00.") from None
    con = store.connect(settings, read_only=True)
    try:
        row = con.execute(
            f"SELECT max(snapshot_id) FROM ducklake_snapshots('{store.LAKE}') "
            "WHERE snapshot_time <= ?::TIMESTAMPTZ", [when.isoformat()]).fetchone()
    finally:
        con.close()
    if row[0] is None:
        raise QueryError(f"The lake has no snapshot at or before {as_of}.")
    return int(row[0])


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Exactly one statement, and a SELECT (the first of ``sandbox.check_sql``'s checks)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"The query does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryError("Give exactly one statement.", hint="Run statements one by one.")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise QueryError(f"Only read-only SELECT queries are allowed, not {statements[0].type.name}.",
                         hint="The lake is changed only by submissions and the pipelines.")


def run_query(settings: Settings, sql: str, *, fmt: str = "table", as_of: str | None = None,
              output: Path | None = None, limit: int = 1000) -> str:
    """Run ``sql`` read-only on the lake and return it formatted (``parquet`` needs ``output``).

    The query runs in the sandbox (``pipelines.sandbox``): no file but the lake's, no catalog
    maintenance, and a time, memory and disk budget.
    """
    from pipelines import sandbox

    if fmt not in FORMATS:
        raise QueryError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if fmt == "parquet" and output is None:
        raise QueryError("The parquet format writes a file.", hint="Add --output FILE.parquet.")
    if not settings.catalog_is_postgres and not Path(settings.catalog).exists():
        raise ConfigError(f"No lake at {settings.catalog}.",
                          hint="Submit and ingest data first (see `insurshare --help`), or set INSURSHARE_HOME.")
    snapshot = resolve_snapshot(settings, as_of) if as_of is not None else None
    return sandbox.run(settings, sandbox.Request(sql, fmt, limit, snapshot=snapshot), output)


def format_relation(rel: duckdb.DuckDBPyRelation, fmt: str, *, limit: int = 1000,
                    output: Path | None = None) -> str:
    if fmt == "table":
        frame = rel.limit(limit + 1).df()
        if frame.empty:
            return "  ".join(frame.columns) + "\n(no rows)"
        more = len(frame) > limit
        text = frame.head(limit).to_string(index=False, na_rep="NULL", max_colwidth=60)
        return text + (f"\n... (first {limit} rows shown; use --format csv for all)" if more else "")
    frame = rel.df()
    if fmt == "csv":
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        text = buf.getvalue().rstrip("\n")
    else:
        text = json.dumps(json.loads(frame.to_json(orient="records", date_format="iso")),
                          ensure_ascii=False, indent=1)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        return f"wrote {output}"
    return text
