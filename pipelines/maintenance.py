"""Lake maintenance: flush small inserts to files, merge small files, expire old snapshots.

Every small submission makes a few commits, each with a few rows inlined in the catalog or a
small Parquet file, and a snapshot. ``maintain_lake`` (``insurshare lake maintain``, the
``lake_maintenance`` DAG) keeps that history from growing without end, in three audited
transactions through ``lake.write_transaction`` (under the writer lock):

1. ``ducklake_flush_inlined_data``: rows inlined in the catalog move to Parquet files;
2. ``ducklake_merge_adjacent_files``: small adjacent files of a table become one (a DuckLake
   commit may compact or change, not both: this one only compacts);
3. ``ducklake_expire_snapshots`` of the snapshots older than the retention, with the
   ``lake-maintenance`` audit entry; then ``ducklake_cleanup_old_files`` deletes the files
   that no kept snapshot reads.

What it keeps (the as-of guarantee): every snapshot of the last ``retention_days`` (setting
``INSURSHARE_SNAPSHOT_RETENTION_DAYS``, 30 by default), the latest snapshot, and every snapshot
from the marts' last build source on (the next marts build reads the changes since it). An
``--as-of`` query or build within the retention reads exactly what it read before; one at an
expired snapshot is refused ("Snapshot N does not exist"). Submission records keep the
snapshot id they were published in, as a record. The current data never changes: flushing and
merging rewrite files, not rows. Each commit is sealed again in whole in the audit anchor (every
live file, the whole catalog), and the expired snapshot ids are written in the anchor line, so
``insurshare audit verify`` tells them from a rolled-back catalog.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass

import duckdb

from pipelines import audit, store
from pipelines.config import Settings, setting
from pipelines.errors import ConfigError
from pipelines.lake import Lake, write_transaction
from pipelines.marts.build import last_build

META = f"__ducklake_metadata_{store.LAKE}"
DEFAULT_RETENTION_DAYS = 30


@dataclass(frozen=True)
class LakeShape:
    snapshots: int
    live_files: int
    inlined_rows: int


@dataclass(frozen=True)
class MaintenanceReport:
    before: LakeShape
    after: LakeShape
    flushed_rows: int
    merged_files: int
    expired: int
    kept_from: int | None        # the oldest snapshot kept (None: nothing expired)
    deleted_files: int
    retention_days: float
    seconds: float

    def line(self) -> str:
        b, a = self.before, self.after
        kept = f", kept from snapshot {self.kept_from} on" if self.kept_from is not None else ""
        return (f"lake maintained in {self.seconds:.1f} s: snapshots {b.snapshots:,} -> {a.snapshots:,} "
                f"({self.expired:,} expired, older than {self.retention_days:g} days{kept}); live data files "
                f"{b.live_files:,} -> {a.live_files:,}; rows inlined in the catalog {b.inlined_rows:,} -> "
                f"{a.inlined_rows:,}; {self.deleted_files:,} old files deleted")

    def as_dict(self) -> dict:
        return asdict(self)


def retention_days(settings: Settings) -> float:
    """``INSURSHARE_SNAPSHOT_RETENTION_DAYS`` of the settings' environment (30 when unset)."""
    text = setting("INSURSHARE_SNAPSHOT_RETENTION_DAYS").read(settings.env) or str(DEFAULT_RETENTION_DAYS)
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not days >= 0:
        raise ConfigError(f"INSURSHARE_SNAPSHOT_RETENTION_DAYS={text!r} is not a number of days.",
                          hint="Write it like 30 or 7.5 (0 keeps only what maintenance must keep).")
    return days


def lake_shape(con: duckdb.DuckDBPyConnection) -> LakeShape:
    snapshots, files = con.execute(
        f"SELECT (SELECT count(*) FROM {META}.ducklake_snapshot), "
        f"(SELECT count(*) FROM {META}.ducklake_data_file WHERE end_snapshot IS NULL)").fetchone()
    inlined = 0
    for (table,) in con.execute(f"SELECT table_name FROM {META}.ducklake_inlined_data_tables").fetchall():
        inlined += con.execute(f"SELECT count(*) FROM {META}.{table} WHERE end_snapshot IS NULL").fetchone()[0]
    return LakeShape(int(snapshots), int(files), int(inlined))


def expirable(con: duckdb.DuckDBPyConnection, retention_days: float, now: dt.datetime) -> list[int]:
    """The snapshots older than the retention, before the marts' last build source and not the latest."""
    floor = last_build(con)
    latest = store.latest_snapshot(con)
    keep_from = min(latest, floor) if floor is not None else latest
    cutoff = now - dt.timedelta(days=retention_days)
    return [r[0] for r in con.execute(
        f"SELECT snapshot_id FROM ducklake_snapshots('{store.LAKE}') WHERE snapshot_time < ?::TIMESTAMPTZ "
        "AND snapshot_id < ? ORDER BY snapshot_id", [cutoff.isoformat(), keep_from]).fetchall()]


def ranges(ids: list[int]) -> list[list[int]]:
    """[[first, last], ...] of the runs of consecutive ids (the anchor line stays short)."""
    out: list[list[int]] = []
    for i in sorted(ids):
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def maintain_lake(settings: Settings, retention_days: float = DEFAULT_RETENTION_DAYS,
                  now: dt.datetime | None = None) -> MaintenanceReport:
    """Flush, merge, expire the snapshots older than ``retention_days`` and clean up (see above)."""
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    with Lake(settings, read_only=False) as lake:
        con = lake.con
        lake.ensure()
        before = lake_shape(con)
        flushed, _ = write_transaction(con, settings, _flush, message="lake maintenance: flush inlined rows",
                                       reseal=True)
        merged, _ = write_transaction(con, settings, _merge, message="lake maintenance: merge small files",
                                      reseal=True)
        ids = expirable(con, retention_days, now)
        details = {"retention_days": retention_days, "flushed_rows": flushed, "merged_files": merged,
                   "expired": len(ids), "expired_ranges": ranges(ids)[:50],
                   "kept_from": (ids[-1] + 1) if ids else None}

        def expire(c: duckdb.DuckDBPyConnection) -> None:
            if ids:
                c.execute(f"CALL ducklake_expire_snapshots('{store.LAKE}', versions => ?)", [ids])
            audit.append(c, "lake-maintenance", f"lake as of {now.isoformat(timespec='seconds')}", details)

        write_transaction(con, settings, expire, message="lake maintenance: expire snapshots", reseal=True,
                          anchor_note={"expired": ranges(ids)})
        with store.writer_lock(settings):
            deleted = len(con.execute(f"CALL ducklake_cleanup_old_files('{store.LAKE}', cleanup_all => true)")
                          .fetchall())
        after = lake_shape(con)
    return MaintenanceReport(before, after, flushed, merged, len(ids), details["kept_from"], deleted,
                             retention_days, round(time.perf_counter() - started, 1))


def _flush(con: duckdb.DuckDBPyConnection) -> int:
    return sum(int(r[-1] or 0) for r in con.execute(f"CALL ducklake_flush_inlined_data('{store.LAKE}')").fetchall())


def _merge(con: duckdb.DuckDBPyConnection) -> int:
    return sum(int(r[2] or 0) for r in con.execute(f"CALL ducklake_merge_adjacent_files('{store.LAKE}')").fetchall())
