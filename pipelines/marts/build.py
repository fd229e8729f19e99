"""Build every mart from one lake snapshot and publish them in one DuckLake transaction.

The marts are computed first into temporary tables of the builder's own DuckDB (spilling to
``work/`` when large), reading the lake at the data snapshot (``source.resolve_source``);
then one transaction replaces every ``mart_*`` table and appends a line to ``mart_builds``,
so readers see the old marts or the new ones, never a mix. Building again from the same
data snapshot is skipped (the marts would be identical) unless ``force`` is given.

| table | one row per |
|---|---|
| ``mart_experience`` | scope, member, grain, period, line, province: premium, exposure, losses, ratios |
| ``mart_triangle`` | scope, member, grain, line, province, measure, accident period, age |
| ``mart_factors`` | scope, member, grain, line, province, measure, age: factors and CDFs |
| ``mart_ultimates`` | scope, member, grain, line, province, measure, accident period |
| ``mart_benchmark`` | member, metric, cell: member and industry value, rank |
| ``linked_claims`` | claim linked to another member's by claimant or vehicle (regulator only) |
| ``mart_builds`` | build: source snapshot, requested snapshot, rows per mart, time |

Every ``mart_*`` row carries ``members``, ``max_member_share`` and ``source_snapshot``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field

import duckdb

from pipelines import audit, store
from pipelines.config import Settings
from pipelines.faults import checkpoint
from pipelines.marts import benchmark, development, experience, linkage, triangles
from pipelines.marts.cells import GRAINS
from pipelines.marts.source import Source, resolve_source

MARTS = ("mart_experience", "mart_triangle", "mart_factors", "mart_ultimates", "mart_benchmark",
         "linked_claims")
ORDERS = {"mart_experience": experience.ORDER, "mart_triangle": triangles.ORDER,
          "mart_factors": development.ORDER, "mart_ultimates": triangles.ORDER.replace(", age", ""),
          "mart_benchmark": benchmark.ORDER, "linked_claims": linkage.ORDER}
BUILDS_TABLE = "mart_builds"
_BUILDS_DDL = ("source_snapshot BIGINT, requested_snapshot BIGINT, built_at TIMESTAMP, "
               "rows VARCHAR, seconds DOUBLE")


@dataclass(frozen=True)
class BuildResult:
    source_snapshot: int
    snapshot: int | None                 # the snapshot that published the marts (None if skipped)
    rows: dict[str, int] = field(default_factory=dict)
    skipped: bool = False
    seconds: float = 0.0

    def line(self) -> str:
        if self.skipped:
            return (f"marts are up to date: built from snapshot {self.source_snapshot} "
                    "(use --force to build again)")
        counts = ", ".join(f"{name} {n:,}" for name, n in self.rows.items())
        return (f"built marts from snapshot {self.source_snapshot} in {self.seconds:.1f} s "
                f"(published as snapshot {self.snapshot}): {counts}")


def build_marts(settings: Settings, as_of: str | int | None = None, *, force: bool = False) -> BuildResult:
    """Build the marts from the lake as of ``as_of`` (a snapshot id or timestamp; default: now)."""
    from pipelines.query import resolve_snapshot

    started = time.perf_counter()
    requested = None if as_of is None else resolve_snapshot(settings, str(as_of))
    con = store.connect(settings, read_only=False)
    try:
        store.ensure_lake(con, settings)
        source = resolve_source(con, requested)
        if not force and last_build(con) == source.snapshot:
            return BuildResult(source_snapshot=source.snapshot, snapshot=None, skipped=True)
        rows = compute_marts(con, source)
        seconds = round(time.perf_counter() - started, 3)
        def publish_and_maybe_crash(c: duckdb.DuckDBPyConnection) -> None:
            _publish(c, source, rows, seconds)
            checkpoint(settings, "marts-before-commit")

        _, snapshot = store.write_transaction(
            con, settings, publish_and_maybe_crash,
            message=f"build marts from snapshot {source.snapshot}",
            extra=json.dumps({"source_snapshot": source.snapshot}))
    finally:
        con.close()
    return BuildResult(source_snapshot=source.snapshot, snapshot=snapshot, rows=rows,
                       seconds=round(time.perf_counter() - started, 1))


def compute_marts(con: duckdb.DuckDBPyConnection, source: Source) -> dict[str, int]:
    """Compute every mart into a temporary table ``build_<mart>``; return the row counts."""
    snap = f"{int(source.snapshot)}::BIGINT AS source_snapshot"
    tri = " UNION ALL BY NAME ".join(f"({triangles.triangle_sql(source.claim, g)})" for g in GRAINS)
    steps = {
        "mart_experience": f"SELECT *, {snap} FROM ({experience.experience_sql(source.policy, source.claim)})",
        "mart_triangle": f"SELECT *, {snap} FROM ({tri})",
        "mart_factors": f"SELECT *, {snap} FROM ({development.factors_sql('build_mart_triangle')})",
        "mart_ultimates": (f"SELECT *, {snap} FROM ("
                           f"{development.ultimates_sql('build_mart_triangle', 'build_mart_factors')})"),
        "mart_benchmark": (f"SELECT *, {snap} FROM ("
                           f"{benchmark.benchmark_sql('build_mart_experience', 'build_mart_factors')})"),
        "linked_claims": f"SELECT *, {snap} FROM ({linkage.linked_claims_sql(source.policy, source.claim)})",
    }
    rows = {}
    for name, sql in steps.items():
        con.execute(f"CREATE OR REPLACE TEMP TABLE build_{name} AS {sql} ORDER BY {ORDERS[name]}")
        rows[name] = con.execute(f"SELECT count(*) FROM build_{name}").fetchone()[0]
    return rows


def _publish(con: duckdb.DuckDBPyConnection, source: Source, rows: dict[str, int], seconds: float) -> None:
    for name in MARTS:
        con.execute(f"CREATE OR REPLACE TABLE {store.LAKE}.{name} AS "
                    f"SELECT * FROM build_{name} ORDER BY {ORDERS[name]}")
    con.execute(f"CREATE TABLE IF NOT EXISTS {store.LAKE}.{BUILDS_TABLE} ({_BUILDS_DDL})")
    con.execute(f"INSERT INTO {store.LAKE}.{BUILDS_TABLE} VALUES (?, ?, ?, ?, ?)",
                [source.snapshot, source.requested, dt.datetime.now(dt.UTC).replace(tzinfo=None),
                 json.dumps(rows), seconds])
    digests = {name: con.execute(f"SELECT count(*), CAST(coalesce(sum(hash(b) % 1000000007), 0) AS BIGINT) "
                                 f"FROM build_{name} b").fetchone() for name in MARTS}
    audit.append(con, "marts", f"snapshot {source.snapshot}",
                 {"source_snapshot": source.snapshot, "rows": rows}, content=digests)


def last_build(con: duckdb.DuckDBPyConnection) -> int | None:
    """The source snapshot of the marts in the lake now (None if they were never built)."""
    have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ?",
                                      [store.LAKE]).fetchall()}
    if not {*MARTS, BUILDS_TABLE} <= have:
        return None
    row = con.execute(f"SELECT source_snapshot FROM {store.LAKE}.{BUILDS_TABLE} "
                      "ORDER BY built_at DESC LIMIT 1").fetchone()
    return int(row[0]) if row else None
