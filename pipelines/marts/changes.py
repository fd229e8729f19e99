"""What changed in the source data since the marts were last built: the slices to read again.

A slice is one member's dataset for one period (``partials.SLICE``), what one accepted
submission replaces. DuckLake keeps every snapshot, so the slices that differ between the
marts' source snapshot and the new one are those with a row inserted or deleted in between
(``ducklake_table_insertions`` / ``ducklake_table_deletions``, in either direction, so a
build ``--as-of`` an older snapshot is incremental too). A superseded version that comes back
is just another change to its slice.

A full build is needed instead when there are no partials to start from, when a data table
was created, dropped or altered in between, or when too many slices changed for reading them
one by one to pay (``MAX_SLICES``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from pipelines import store
from pipelines.core.sql import literal
from pipelines.marts.partials import TABLES, Slice
from pipelines.marts.source import DATA_TABLES, bare_name

MAX_SLICES = 200
_STRUCTURE_KEYS = ("tables_created", "tables_dropped", "tables_altered")


@dataclass(frozen=True)
class Changes:
    """How a build reads its sources: everything (``since`` None) or the changed slices only."""

    since: int | None = None                       # the source snapshot the changes are counted from
    slices: dict[str, frozenset[Slice]] = field(default_factory=dict)   # dataset -> changed slices
    reason: str = "first build"                    # why a build is full

    @property
    def full(self) -> bool:
        return self.since is None

    def members(self, *datasets: str) -> set[str]:
        """Members with a changed slice of any of ``datasets``."""
        return {m for d in datasets for m, _ in self.slices.get(d, ()) if m is not None}

    def describe(self) -> dict:
        if self.full:
            return {"full": True, "reason": self.reason}
        return {"full": False, "since": self.since,
                "slices": {d: sorted([m, p] for m, p in s) for d, s in self.slices.items()}}


def full_build(reason: str) -> Changes:
    return Changes(since=None, reason=reason)


def find_changes(con: duckdb.DuckDBPyConnection, previous: int | None, snapshot: int) -> Changes:
    """The slices of the data tables that differ between snapshots ``previous`` and ``snapshot``."""
    if previous is None:
        return full_build("no marts built before")
    if not have_partials(con):
        return full_build("no partial aggregates in the lake")
    lo, hi = sorted((int(previous), int(snapshot)))
    if _structure_changed(con, lo, hi):
        return full_build("a data table was created, dropped or altered")
    slices = {d: frozenset(_changed(con, d, lo, hi)) for d in DATA_TABLES} if lo < hi else {}
    if sum(len(s) for s in slices.values()) > MAX_SLICES:
        return full_build(f"more than {MAX_SLICES} slices changed")
    return Changes(since=int(previous), slices={d: s for d, s in slices.items() if s})


def have_partials(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the lake holds the partial aggregates of a build."""
    return set(TABLES.values()) <= store.lake_tables(con)


def _structure_changed(con: duckdb.DuckDBPyConnection, lo: int, hi: int) -> bool:
    rows = con.execute(f"SELECT changes FROM ducklake_snapshots('{store.LAKE}') "
                       "WHERE snapshot_id > ? AND snapshot_id <= ?", [lo, hi]).fetchall()
    return any(bare_name(name) in DATA_TABLES
               for (changes,) in rows for key, names in (changes or {}).items() if key in _STRUCTURE_KEYS
               for name in names)


def _changed(con: duckdb.DuckDBPyConnection, dataset: str, lo: int, hi: int) -> set[Slice]:
    """(member, period) of the rows of ``dataset`` inserted or deleted after ``lo`` up to ``hi``."""
    parts = [f"SELECT DISTINCT member_id, period FROM ducklake_{kind}('{store.LAKE}', 'main', "
             f"{literal(dataset)}, {lo + 1}, {hi})" for kind in ("table_insertions", "table_deletions")]
    return {(r[0], r[1]) for r in con.execute(" UNION ".join(parts)).fetchall()}
