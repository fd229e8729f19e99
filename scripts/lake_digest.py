"""A digest per lake table and per product table, for showing that a change altered no published number.

    uv run --frozen --no-sync python scripts/lake_digest.py > before.txt   # on the old code's demo home
    uv run --frozen --no-sync python scripts/lake_digest.py > after.txt    # on the new code's, same keys
    diff before.txt after.txt

Columns that record when or how fast something ran (timestamps, timings, GX's run metadata,
audit hashes that cover timestamps, the snapshot a submission was committed in) are left out,
and archive paths are taken relative to the home folder; everything else, including the marts,
the submissions table, the quarantine and the release ledger's cells, is hashed row by row in
a fixed order; so is every table of every product database. Run both demos with the same key
files (copy ``secrets/`` first) or every pseudonym differs.
"""

from __future__ import annotations

import hashlib

import duckdb

from pipelines import store
from pipelines.config import Settings

VOLATILE = {"recorded_at", "registered_at", "received_at", "processed_at", "timings", "built_at", "seconds",
            "result", "content_sha256", "prev_sha256", "entry_sha256", "details", "changes",
            "snapshot_id"}   # the order in which Airflow's parallel tasks commit varies from run to run
RELATIVE = {"archive_path": "regexp_replace(archive_path, '^.*/archive/', 'archive/')"}   # not the home folder
SKIP = {"audit_head", "audit_log", "mart_builds"}   # the log of when things ran; `insurshare audit verify` checks it


def digest(con: duckdb.DuckDBPyConnection, database: str, table: str) -> tuple[int, str, int]:
    """(rows, first 16 hex digits of the digest, columns hashed) of one table."""
    cols = [r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = ? "
                                      "AND table_name = ? ORDER BY column_index", [database, table]).fetchall()
            if r[0] not in VOLATILE]
    listed = ", ".join(RELATIVE.get(c, f'"{c}"') for c in cols)
    h, rows = hashlib.sha256(), 0
    for row in con.execute(f'SELECT {listed} FROM "{database}"."{table}" ORDER BY ALL').fetchall():
        h.update(repr(row).encode())
        rows += 1
    return rows, h.hexdigest()[:16], len(cols)


def tables(con: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    return [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1",
                                      [database]).fetchall() if r[0] not in SKIP]


def main() -> None:
    settings = Settings.from_env()
    con = store.connect(settings)
    try:
        for table in tables(con, store.LAKE):
            rows, hexdigest, ncols = digest(con, store.LAKE, table)
            print(f"{table:40} {rows:>8} rows  {hexdigest}  ({ncols} columns)")
    finally:
        con.close()
    for product in sorted((settings.home / "products").glob("*.duckdb")):
        con = duckdb.connect(str(product), read_only=True)
        try:
            database = con.execute("SELECT current_database()").fetchone()[0]
            for table in tables(con, database):
                rows, hexdigest, ncols = digest(con, database, table)
                print(f"{product.stem + '.' + table:40} {rows:>8} rows  {hexdigest}  ({ncols} columns)")
        finally:
            con.close()


if __name__ == "__main__":
    main()
