"""A digest per lake table, for showing that a change altered no published number.

    uv run --frozen --no-sync python scripts/lake_digest.py > before.txt   # on the old code's demo lake
    uv run --frozen --no-sync python scripts/lake_digest.py > after.txt    # on the new code's, same keys
    diff before.txt after.txt

Columns that record when or how fast something ran (timestamps, timings, GX's run metadata,
audit hashes that cover timestamps) are left out; everything else, including the marts,
the submissions table, the quarantine and the release ledger's cells, is hashed row by row in
a fixed order. Run both demos with the same key files (copy ``secrets/`` first) or every
pseudonym differs.
"""

from __future__ import annotations

import hashlib

from pipelines import store
from pipelines.config import Settings

VOLATILE = {"recorded_at", "registered_at", "received_at", "processed_at", "timings", "built_at", "seconds",
            "result", "content_sha256", "prev_sha256", "entry_sha256", "details", "changes"}
SKIP = {"audit_head", "audit_log", "mart_builds"}


def main() -> None:
    settings = Settings.from_env()
    con = store.connect(settings)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
                                            "ORDER BY 1", [store.LAKE]).fetchall()]
        for table in tables:
            if table in SKIP:
                continue
            cols = [r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = ? "
                                              "AND table_name = ? ORDER BY column_index", [store.LAKE, table]).fetchall()
                    if r[0] not in VOLATILE]
            listed = ", ".join(f'"{c}"' for c in cols)
            digest, rows = hashlib.sha256(), 0
            for row in con.execute(f"SELECT {listed} FROM {store.LAKE}.{table} ORDER BY ALL").fetchall():
                digest.update(repr(row).encode())
                rows += 1
            print(f"{table:24} {rows:>8} rows  {digest.hexdigest()[:16]}  ({len(cols)} columns)")
    finally:
        con.close()


if __name__ == "__main__":
    main()
