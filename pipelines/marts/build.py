"""Build every mart from one lake snapshot and publish them in one DuckLake transaction.

A build reads the claim and premium rows once, into partial aggregates per slice (a member's
dataset for one period, see ``partials``), and assembles every mart from those. The partials
are published next to the marts, so the next build reads again only the slices that changed
since (``changes``): a new submission costs the rows of its own slice. The member-scope rows
of the members whose slices did not change are kept as they are in the experience mart; the
triangles are assembled again from every member's partials (which valuations a member owes
depends on the industry's valuations and on its files that were not accepted, not only on its
own slices); the industry rows are summed
again from every member's partials; factors, ultimates and benchmarks are recomputed from the
triangles and experience cells. The result equals a full build from the same snapshot, row for
row. ``force`` (``--force``) builds everything from the rows.

The marts are computed first into temporary tables of the builder's own DuckDB (spilling to
``work/`` when large), reading the lake at the data snapshot (``source.resolve_source``);
then one transaction replaces every ``mart_*`` table, updates the partials and appends a line
to ``mart_builds``, so readers see the old marts or the new ones, never a mix. Building again
from the same data snapshot is skipped (the marts would be identical) unless ``force`` is given.

| table | one row per |
|---|---|
| ``mart_experience`` | scope, member, grain, period, line, province: premium, exposure, losses, ratios |
| ``mart_triangle`` | scope, member, grain, line, province, measure, accident period, age |
| ``mart_factors`` | scope, member, grain, line, province, measure, age: factors and CDFs |
| ``mart_ultimates`` | scope, member, grain, line, province, measure, accident period |
| ``mart_benchmark`` | member, metric, cell: member and industry value, rank |
| ``linked_claims`` | claim linked to another member's by claimant or vehicle (regulator only) |
| ``mart_builds`` | build: source snapshot, requested snapshot, rows per mart, time, slices read again |
| ``partials_claim``, ``partials_policy`` | slice and base cell: sums the marts are assembled from |

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
from pipelines.lake import Lake
from pipelines.marts import benchmark, development, experience, linkage, triangles
from pipelines.marts.cells import GRAINS
from pipelines.marts.changes import Changes, find_changes, full_build
from pipelines.marts.partials import (
    CLAIM,
    CLAIM_ORDER,
    POLICY,
    POLICY_ORDER,
    claim_partials_sql,
    policy_partials_sql,
    slice_filter,
)
from pipelines.marts.source import Source, resolve_source

MARTS = ("mart_experience", "mart_triangle", "mart_factors", "mart_ultimates", "mart_benchmark",
         "linked_claims")
ORDERS = {"mart_experience": experience.ORDER, "mart_triangle": triangles.ORDER,
          "mart_factors": development.ORDER, "mart_ultimates": triangles.ORDER.replace(", age", ""),
          "mart_benchmark": benchmark.ORDER, "linked_claims": linkage.ORDER, "observed_triangle": triangles.ORDER}
BUILDS_TABLE = "mart_builds"
_BUILDS_DDL = ("source_snapshot BIGINT, requested_snapshot BIGINT, built_at TIMESTAMP, "
               "rows VARCHAR, seconds DOUBLE, changes VARCHAR")
_PARTIALS = {  # partials table -> (dataset, SQL of the partials of a source's rows matching a filter, order)
    CLAIM: ("claim", lambda src, where="TRUE": claim_partials_sql(src.claim, where, src.table("quarantine")),
            CLAIM_ORDER),
    POLICY: ("policy", lambda src, where="TRUE": policy_partials_sql(src.policy, where), POLICY_ORDER)}


@dataclass(frozen=True)
class BuildResult:
    source_snapshot: int
    snapshot: int | None                 # the snapshot that published the marts (None if skipped)
    rows: dict[str, int] = field(default_factory=dict)
    skipped: bool = False
    seconds: float = 0.0
    changes: dict = field(default_factory=dict)   # ``Changes.describe()``: full, or the slices read again
    steps: dict[str, float] = field(default_factory=dict)   # seconds per step (``compute_marts``, publish)

    def line(self) -> str:
        if self.skipped:
            return (f"marts are up to date: built from snapshot {self.source_snapshot} "
                    "(use --force to build again)")
        counts = ", ".join(f"{name} {n:,}" for name, n in self.rows.items())
        return (f"built marts from snapshot {self.source_snapshot} in {self.seconds:.1f} s "
                f"(published as snapshot {self.snapshot}; {self.how()}): {counts}")

    def how(self) -> str:
        """Full build and why, or how many changed slices were read again."""
        if self.changes.get("full", True):
            return f"full build: {self.changes.get('reason', 'requested')}"
        n = sum(len(s) for s in self.changes["slices"].values())
        return f"{n} changed slice{'' if n == 1 else 's'} read since snapshot {self.changes['since']}"


def build_marts(settings: Settings, as_of: str | int | None = None, *, force: bool = False) -> BuildResult:
    """Build the marts from the lake as of ``as_of`` (a snapshot id or timestamp; default: now)."""
    from pipelines.store import resolve_snapshot

    started = time.perf_counter()
    requested = None if as_of is None else resolve_snapshot(settings, str(as_of))
    with Lake(settings, read_only=False) as lake:
        con = lake.con
        lake.ensure()
        source = resolve_source(con, requested)
        previous = last_build(con)
        if not force and previous == source.snapshot:
            return BuildResult(source_snapshot=source.snapshot, snapshot=None, skipped=True)
        changes = full_build("--force") if force else find_changes(con, previous, source.snapshot)
        steps: dict[str, float] = {}
        rows = compute_marts(con, source, changes, steps)
        seconds = round(time.perf_counter() - started, 3)
        publishing = time.perf_counter()

        def publish_and_maybe_crash(c: duckdb.DuckDBPyConnection) -> None:
            _publish(c, source, changes, rows, seconds)
            checkpoint(settings, "marts-before-commit")

        _, snapshot = lake.write(publish_and_maybe_crash,
            message=f"build marts from snapshot {source.snapshot}",
            extra=json.dumps({"source_snapshot": source.snapshot}))
        steps["publish"] = round(time.perf_counter() - publishing, 3)
    return BuildResult(source_snapshot=source.snapshot, snapshot=snapshot, rows=rows,
                       seconds=round(time.perf_counter() - started, 1), changes=changes.describe(), steps=steps)


def compute_marts(con: duckdb.DuckDBPyConnection, source: Source, changes: Changes | None = None,
                  steps: dict[str, float] | None = None) -> dict[str, int]:
    """Compute every mart into a temporary table ``build_<mart>``; return the row counts
    (and the seconds of each step in ``steps``, when given)."""
    changes = changes or full_build("requested")
    steps = {} if steps is None else steps
    clock = time.perf_counter()
    read_partials(con, source, changes)
    steps["partials"] = round(time.perf_counter() - clock, 3)
    kept = _members_to_assemble(con, changes)
    pc, pp = f"build_{CLAIM}", f"build_{POLICY}"
    owed = triangles.owed_sql(source.table("submissions"))
    obligations = triangles.obligations_sql(source.obligation_table(con, "calendars"),
                                            source.obligation_table(con, "declarations"))
    tri = " UNION ALL BY NAME ".join(
        f"({triangles.triangle_sql(pc, g, owed=owed, obligations=obligations)})" for g in GRAINS)
    marts = {  # temp table -> (SQL, the lake mart whose kept member rows it adds)
        "observed_triangle": (tri, None),
        "mart_factors": (development.factors_sql("build_observed_triangle"), None),
        "mart_triangle": (development.complete_sql("build_observed_triangle", "build_mart_factors"), None),
        "mart_ultimates": (development.ultimates_sql("build_mart_triangle", "build_mart_factors"), None),
        "mart_experience": (experience.experience_sql(pp, pc, members=kept.get("mart_experience")),
                            "mart_experience"),
        "mart_benchmark": (benchmark.benchmark_sql("build_mart_experience", "build_mart_factors"), None),
        "linked_claims": (linkage.linked_claims_sql(source.policy, source.claim, linkage.current_filter(con, pc)),
                          None),
    }
    snap = f"{int(source.snapshot)}::BIGINT"
    for name, (sql, kept_from) in marts.items():
        clock = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TEMP TABLE build_{name} AS {_step_sql(name, sql, kept_from, kept, snap)} "
                    f"ORDER BY {ORDERS[kept_from or name]}")
        steps[name] = round(time.perf_counter() - clock, 3)
    return {name: con.execute(f"SELECT count(*) FROM build_{name}").fetchone()[0] for name in MARTS}


def _step_sql(name: str, sql: str, kept_from: str | None, kept: dict[str, str], snap: str) -> str:
    """A build step's rows with their source snapshot, and the kept member-scope rows of the
    members whose slices did not change."""
    if name == "observed_triangle":   # not published: no snapshot
        return sql
    sql = f"SELECT *, {snap} AS source_snapshot FROM ({sql})"
    if kept_from in kept:
        sql += (f" UNION ALL BY NAME SELECT * REPLACE ({snap} AS source_snapshot) FROM {store.LAKE}.{kept_from} "
                f"WHERE scope = 'member' AND member_id NOT IN ({kept[kept_from]})")
    return sql


def read_partials(con: duckdb.DuckDBPyConnection, source: Source, changes: Changes) -> None:
    """``build_partials_*``: the partials at the source snapshot; ``fresh_partials_*``: those of
    the changed slices (read from the rows), the rest coming from the partials in the lake."""
    for table, (dataset, partials_sql, order) in _PARTIALS.items():
        if changes.full:
            con.execute(f"CREATE OR REPLACE TEMP TABLE build_{table} AS "
                        f"{partials_sql(source)} ORDER BY {order}")
            continue
        where = slice_filter(changes.slices.get(dataset, ()))
        con.execute(f"CREATE OR REPLACE TEMP TABLE fresh_{table} AS {partials_sql(source, where)}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE build_{table} AS "
                    f"SELECT * FROM {store.LAKE}.{table} WHERE NOT coalesce(({where}), FALSE) "
                    f"UNION ALL BY NAME SELECT * FROM fresh_{table} ORDER BY {order}")


def _members_to_assemble(con: duckdb.DuckDBPyConnection, changes: Changes) -> dict[str, str]:
    """Per base mart built incrementally: SQL listing the members whose member-scope rows are
    assembled again (the others' rows are kept): the experience mart's, whose member rows depend
    on the member's claim and premium slices, on the calendar and on the common valuation of
    the losses. (Triangles are assembled for
    every member: see the module's docstring.)"""
    if changes.full:
        return {}
    wanted: dict[str, set] = {}
    if not _calendar_moved(con) and not _valuation_moved(con):
        wanted["mart_experience"] = changes.members("claim", "policy")
    out = {}
    for name, members in wanted.items():
        con.execute(f"CREATE OR REPLACE TEMP TABLE members_{name} AS "
                    "SELECT unnest(?::VARCHAR[]) AS member_id", [sorted(members)])
        out[name] = f"SELECT member_id FROM members_{name}"
    return out


def _valuation_moved(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the experience mart's common valuation (the latest of the claim data) moved."""
    latest = [con.execute(f"SELECT max(valuation_date) FROM {t}").fetchone()[0]
              for t in (f"{store.LAKE}.{CLAIM}", f"build_{CLAIM}")]
    return latest[0] != latest[1]


def _calendar_moved(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the experience calendar differs between the lake's partials and the new ones."""
    calendars = [con.execute(f"SELECT grain, period_start FROM ({experience.periods_sql(t)}) ORDER BY ALL")
                 .fetchall() for t in (f"{store.LAKE}.{POLICY}", f"build_{POLICY}")]
    return calendars[0] != calendars[1]


def _publish(con: duckdb.DuckDBPyConnection, source: Source, changes: Changes, rows: dict[str, int],
             seconds: float) -> None:
    for name in MARTS:
        con.execute(f"CREATE OR REPLACE TABLE {store.LAKE}.{name} AS "
                    f"SELECT * FROM build_{name} ORDER BY {ORDERS[name]}")
    _publish_partials(con, changes)
    con.execute(f"CREATE TABLE IF NOT EXISTS {store.LAKE}.{BUILDS_TABLE} ({_BUILDS_DDL})")
    con.execute(f"ALTER TABLE {store.LAKE}.{BUILDS_TABLE} ADD COLUMN IF NOT EXISTS changes VARCHAR")
    con.execute(f"INSERT INTO {store.LAKE}.{BUILDS_TABLE} "
                "(source_snapshot, requested_snapshot, built_at, rows, seconds, changes) VALUES (?, ?, ?, ?, ?, ?)",
                [source.snapshot, source.requested, dt.datetime.now(dt.UTC).replace(tzinfo=None),
                 json.dumps(rows), seconds, json.dumps(changes.describe())])
    digests = {name: con.execute(f"SELECT count(*), CAST(coalesce(sum(hash(b) % 1000000007), 0) AS BIGINT) "
                                 f"FROM build_{name} b").fetchone() for name in MARTS}
    audit.append(con, "marts", f"snapshot {source.snapshot}",
                 {"source_snapshot": source.snapshot, "rows": rows}, content=digests)


def _publish_partials(con: duckdb.DuckDBPyConnection, changes: Changes) -> None:
    """Replace the changed slices' partials (all of them after a full build, or when another
    build published in the meantime)."""
    in_place = not changes.full and last_build(con) == changes.since
    for table, (dataset, _, order) in _PARTIALS.items():
        if in_place:
            con.execute(f"DELETE FROM {store.LAKE}.{table} WHERE {slice_filter(changes.slices.get(dataset, ()))}")
            con.execute(f"INSERT INTO {store.LAKE}.{table} BY NAME SELECT * FROM fresh_{table} ORDER BY {order}")
        else:
            con.execute(f"CREATE OR REPLACE TABLE {store.LAKE}.{table} AS SELECT * FROM build_{table} ORDER BY {order}")


def last_build(con: duckdb.DuckDBPyConnection) -> int | None:
    """The source snapshot of the marts in the lake now (None if they were never built)."""
    if not {*MARTS, BUILDS_TABLE} <= store.lake_tables(con):
        return None
    row = con.execute(f"SELECT source_snapshot FROM {store.LAKE}.{BUILDS_TABLE} "
                      "ORDER BY built_at DESC LIMIT 1").fetchone()
    return int(row[0]) if row else None
