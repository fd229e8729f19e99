"""Which lake snapshot a mart is built from, and how the marts' SQL reads it.

Marts depend on the accepted premium and claim rows only. The snapshot a build reads is
therefore pinned to the *data snapshot*: the last snapshot, at or before the one asked for,
that changed the ``policy`` or ``claim`` table. Snapshots that only record submissions,
verdicts or earlier mart builds do not move it, so building twice without new data reads
the same snapshot and gives identical marts, and ``--as-of <data snapshot>`` reproduces them.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pipelines import store
from pipelines.errors import NotFound, QueryError

DATA_TABLES = ("policy", "claim")
_ID_KEYS = ("tables_inserted_into", "tables_deleted_from", "inlined_insert", "inlined_delete")
_NAME_KEYS = ("tables_created", "tables_dropped", "tables_altered")


@dataclass(frozen=True)
class Source:
    """The source tables of the marts, pinned to one lake snapshot."""

    snapshot: int        # the data snapshot: the marts' ``source_snapshot``
    requested: int       # the snapshot that was asked for (or the current one)

    def table(self, name: str) -> str:
        """A subquery reading ``name`` at the snapshot (DuckDB takes no alias after ``AT``)."""
        return f'(SELECT * FROM {store.LAKE}."{name}" AT (VERSION => {int(self.snapshot)}))'

    def obligation_table(self, con: duckdb.DuckDBPyConnection, name: str) -> str | None:
        """A subquery reading ``calendars`` or ``declarations`` at the *requested* snapshot (None
        where the lake had no such table then). What members owe is read as it stands when the
        marts are built, not at the data snapshot: a declaration or a calendar recorded after
        the last data is seen by the next build (``build-marts --force`` when no data changed)."""
        sql = f'(SELECT * FROM {store.LAKE}."{name}" AT (VERSION => {int(self.requested)}))'
        try:
            con.execute(f"SELECT 1 FROM {sql} LIMIT 0")
        except duckdb.Error:
            return None
        return sql

    @property
    def policy(self) -> str:
        return self.table("policy")

    @property
    def claim(self) -> str:
        return self.table("claim")


def resolve_source(con: duckdb.DuckDBPyConnection, snapshot: int | None = None) -> Source:
    """The data snapshot at or before ``snapshot`` (default: the current one)."""
    current = store.current_snapshot(con)
    requested = current if snapshot is None else int(snapshot)
    if not 0 <= requested <= current:
        raise QueryError(f"Snapshot {requested} does not exist in the lake (the latest is {current}).",
                         hint="List snapshots with `insurshare query \"SELECT * FROM snapshots()\"`.")
    ids = {str(r[0]) for r in con.execute(
        f"SELECT table_id FROM __ducklake_metadata_{store.LAKE}.ducklake_table "
        "WHERE table_name IN (SELECT unnest(?))", [list(DATA_TABLES)]).fetchall()}
    result = con.execute(f"SELECT snapshot_id, changes FROM ducklake_snapshots('{store.LAKE}') "
                         "WHERE snapshot_id <= ? ORDER BY snapshot_id DESC", [requested])
    while (row := result.fetchone()) is not None:
        if _changes_data(row[1] or {}, ids):
            return Source(snapshot=int(row[0]), requested=requested)
    raise NotFound(f"The lake holds no premium or claim data at snapshot {requested}.",
                   hint="Submit and ingest data first (`insurshare ingest`), or pick a later snapshot.")


def _changes_data(changes: dict, table_ids: set[str]) -> bool:
    for key, values in changes.items():
        if key in _ID_KEYS and table_ids.intersection(str(v) for v in values):
            return True
        if key in _NAME_KEYS and any(bare_name(v) in DATA_TABLES for v in values):
            return True
    return False


def touches_only(con: duckdb.DuckDBPyConnection, changes: dict, tables: set[str]) -> bool:
    """Whether a snapshot's ``changes`` (``ducklake_snapshots().changes``) touch no table but
    ``tables`` (bare names): a commit of bookkeeping only, e.g. the access log and the audit chain."""
    ids = {str(r[0]) for r in con.execute(
        f"SELECT table_id FROM __ducklake_metadata_{store.LAKE}.ducklake_table WHERE table_name IN (SELECT unnest(?))",
        [sorted(tables)]).fetchall()}
    for key, values in (changes or {}).items():
        if key in _ID_KEYS and not {str(v) for v in values} <= ids:
            return False
        if key in _NAME_KEYS and not {bare_name(v) for v in values} <= tables:
            return False
        if key not in _ID_KEYS + _NAME_KEYS and values:
            return False
    return True


def bare_name(qualified: str) -> str:
    return str(qualified).rsplit(".", 1)[-1].strip('"')
