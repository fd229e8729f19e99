"""The release ledger: every industry value the products published, build after build, and
the decision of which changes a new build may publish (disclosure control over time).

Every ``products build`` is a *release* (numbered from 1). Whoever kept an earlier product can
subtract it from the new one; the change of a cell is then a cell of its own, whose
contributors are the members whose contributions changed. So the ledger, kept in the lake
(``release_ledger``, ``release_cells``, ``release_contributions``, written in the same
transaction as the build's audit entry), holds for each release the industry values it
published for the first time or revised, with each member's contribution to them, and a NULL
value the first time a unit exists without being published.

A unit's *basis* is its last published value (``dc_basis``). Against it, each unit of the new
build is (``dc_change``):

- ``new``: never seen before (its old value is zero to everyone: the change is the cell);
- ``withheld``: seen, never published (nobody knows its old value);
- ``published``: published before; ``changed`` when a member's contribution differs from the
  basis, the change's contributors being those members.

``decide`` then applies ``disclosure.protect`` in both spaces (see ``pipelines.products.disclosure``):
a published unit whose change fails the primary rules, or whose change the relations would
expose, is *held* (reason ``revision held``): it keeps its basis value and release.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import duckdb
import pandas as pd

from pipelines import store
from pipelines.products.cells import MEASURES
from pipelines.products.disclosure import REVISION, DisclosureRules, System, protect
from pipelines.store import LAKE

TABLES = {
    "release_ledger": "release BIGINT, lake_snapshot BIGINT, built_at TIMESTAMP, disclosure_profile VARCHAR, "
                      "units_published BIGINT, units_revised BIGINT, units_held BIGINT",
    "release_cells": "release BIGINT, unit_key VARCHAR, value DOUBLE",
    "release_contributions": "release BIGINT, unit_key VARCHAR, member_id VARCHAR, value DOUBLE",
}
TOLERANCE = 1e-6          # contributions are DECIMALs with at most 6 places
MAX_ROUNDS = 20


def load_basis(con: duckdb.DuckDBPyConnection, lake_tables: set[str]) -> int:
    """Create ``dc_basis`` (unit_key, release, value: the last published value, or NULL when
    the unit was seen but never published) and ``dc_basis_contrib``; return the next release."""
    if not set(TABLES) <= lake_tables:
        con.execute("CREATE OR REPLACE TEMP TABLE dc_basis (unit_key VARCHAR, release BIGINT, value DOUBLE)")
        con.execute("CREATE OR REPLACE TEMP TABLE dc_basis_contrib (unit_key VARCHAR, member_id VARCHAR, value DOUBLE)")
        return 1
    con.execute(f"""CREATE OR REPLACE TEMP TABLE dc_basis AS
        SELECT unit_key, arg_max(release, release) FILTER (WHERE value IS NOT NULL) AS published_release,
               coalesce(published_release, min(release)) AS release,
               arg_max(value, release) FILTER (WHERE value IS NOT NULL) AS value
        FROM {LAKE}.release_cells GROUP BY unit_key""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE dc_basis_contrib AS
        SELECT c.unit_key, c.member_id, c.value FROM {LAKE}.release_contributions c
        JOIN dc_basis b ON b.unit_key = c.unit_key AND b.published_release = c.release""")
    return int(con.execute(f"SELECT coalesce(max(release), 0) + 1 FROM {LAKE}.release_ledger").fetchone()[0])


def load_changes(con: duckdb.DuckDBPyConnection) -> None:
    """``dc_change``: each unit's state against its basis and the members whose contribution
    changed (``dc_changers``: unit, member, change)."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE dc_changers AS
        WITH published AS (SELECT u.unit, u.unit_key, u.mart, u.row_id, u.measure FROM dc_units u
                           JOIN dc_basis b USING (unit_key) WHERE b.value IS NOT NULL),
        now AS (SELECT p.unit, c.member_id, c.value FROM published p JOIN dc_contrib c USING (mart, row_id, measure)
                WHERE c.value <> 0),
        old AS (SELECT p.unit, o.member_id, o.value FROM published p JOIN dc_basis_contrib o USING (unit_key))
        SELECT coalesce(n.unit, o.unit) AS unit, coalesce(n.member_id, o.member_id) AS member_id,
               coalesce(n.value, 0) - coalesce(o.value, 0) AS change
        FROM now n FULL JOIN old o ON n.unit = o.unit AND n.member_id = o.member_id
        WHERE abs(coalesce(n.value, 0) - coalesce(o.value, 0)) > {TOLERANCE}""")
    casts = ", ".join(f"CAST({m} AS DOUBLE) AS {m}" for m in MEASURES)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE dc_unit_values AS
        SELECT u.unit, v.value FROM dc_units u
        JOIN (SELECT * FROM (SELECT row_id, {casts} FROM dc_xp) UNPIVOT (value FOR measure IN ({', '.join(MEASURES)}))) v
          ON u.mart = 'experience' AND v.row_id = u.row_id AND v.measure = u.measure
        UNION ALL
        SELECT u.unit, CAST(t.value AS DOUBLE) FROM dc_units u JOIN dc_tri t ON u.mart = 'triangle' AND t.row_id = u.row_id""")
    con.execute("""CREATE OR REPLACE TEMP TABLE dc_change AS
        SELECT u.unit, u.unit_key,
               CASE WHEN b.unit_key IS NULL THEN 'new' WHEN b.value IS NULL THEN 'withheld' ELSE 'published' END
                   AS state,
               b.release AS basis_release, b.value AS basis_value,
               coalesce(d.changers, 0)::INTEGER AS changers, d.change_share
        FROM dc_units u LEFT JOIN dc_basis b USING (unit_key)
        LEFT JOIN (SELECT unit, count(*) AS changers, max(abs(change)) / nullif(sum(abs(change)), 0) AS change_share
                   FROM dc_changers GROUP BY unit) d USING (unit)""")


def decide(con: duckdb.DuckDBPyConnection, rules: DisclosureRules, primary: dict[int, str],
           systems: list[System]) -> dict[int, str]:
    """Every withheld unit with its reason, held revisions (``REVISION``) included.

    Repeats, until neither adds a unit: secondary suppression of this release's values (held
    units are unknowns), then of the changes since each unit's basis (withheld units that
    changed, and units never published, are unknowns; units published and unchanged are
    ``known`` in both spaces)."""
    state = {u: (s, n, share) for u, s, n, share in
             con.execute("SELECT unit, state, changers, change_share FROM dc_change").fetchall()}
    if all(s == "new" for s, _, _ in state.values()):
        return protect(primary, systems)
    known = frozenset(u for u, (s, n, _) in state.items() if s == "published" and n == 0)
    value_systems = [replace(s, known=known) for s in systems]
    delta_systems = _change_systems(con, systems, state, known)
    withheld = dict(primary)
    for _ in range(MAX_ROUNDS):
        current = protect(withheld, value_systems)
        held = {u: REVISION for u, (s, n, share) in state.items()
                if u not in current and s == "published" and n and rules.primary_reason(n, share)}
        unknown = {u: REVISION for u in current if u not in known}
        unknown |= {u: REVISION for u, (s, _, _) in state.items() if s == "withheld"}
        changes = protect(unknown | held, delta_systems)
        held |= {u: REVISION for u in changes if u not in unknown and u not in current}
        if not held:
            return current
        withheld = current | held
    raise RuntimeError(f"disclosure over time did not settle in {MAX_ROUNDS} rounds")


def _change_systems(con: duckdb.DuckDBPyConnection, systems: list[System],
                    state: dict[int, tuple], known: frozenset[int]) -> list[System]:
    """The same relations over the changes: contributors are the members whose contribution
    changed (all of them for a unit never published), the cost the size of the change."""
    changers: dict[int, set[str]] = defaultdict(set)
    cost: dict[int, float] = defaultdict(float)
    for unit, member, change in con.execute("SELECT unit, member_id, change FROM dc_changers").fetchall():
        changers[unit].add(member)
        cost[unit] += abs(change)
    out = []
    for system in systems:
        contributors = {u: frozenset(changers.get(u, ())) if state.get(u, ("new",))[0] == "published" else m
                        for u, m in system.contributors.items()}
        contributors |= {u: frozenset(m) for u, m in changers.items() if u in system.index}
        costs = {u: cost[u] if state.get(u, ("new",))[0] == "published" else c for u, c in system.cost.items()}
        costs |= {u: c for u, c in cost.items() if u in system.index}
        # members with a non-zero amount: the changers of a published unit, else as for its value
        held = system.contributors if system.amounts is None else system.amounts
        amounts = {u: contributors[u] if state.get(u, ("new",))[0] == "published" else held.get(u, frozenset())
                   for u in contributors}
        out.append(replace(system, contributors=contributors, cost=costs, known=known, amounts=amounts))
    return out


def pending(con: duckdb.DuckDBPyConnection, release: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ledger rows of this release: values published for the first time or revised (with
    their contributions), and NULL for units seen for the first time and not published."""
    cells = con.execute("""
        SELECT ?::BIGINT AS release, u.unit_key,
               CASE WHEN u.reason IS NULL THEN v.value END AS value
        FROM dc_units u JOIN dc_change c USING (unit) LEFT JOIN dc_unit_values v USING (unit)
        WHERE NOT u.missing AND ((u.reason IS NULL AND (c.state <> 'published' OR c.changers > 0))
                                 OR (u.reason IS NOT NULL AND c.state = 'new'))
        ORDER BY u.unit_key""", [release]).df()
    contributions = con.execute("""
        SELECT ?::BIGINT AS release, u.unit_key, c.member_id, c.value
        FROM dc_units u JOIN dc_change g USING (unit) JOIN dc_contrib c USING (mart, row_id, measure)
        WHERE NOT u.missing AND u.reason IS NULL AND (g.state <> 'published' OR g.changers > 0) AND c.value <> 0
        ORDER BY u.unit_key, c.member_id""", [release]).df()
    return cells, contributions


def record(con: duckdb.DuckDBPyConnection, release: int, info: dict, cells: pd.DataFrame,
           contributions: pd.DataFrame) -> None:
    """Append the release to the lake's ledger (inside the caller's transaction)."""
    existing = store.lake_tables(con)
    for table, columns in TABLES.items():
        if table not in existing:
            con.execute(f"CREATE TABLE {LAKE}.{table} ({columns})")
    con.execute(f"INSERT INTO {LAKE}.release_ledger VALUES (?, ?, ?, ?, ?, ?, ?)",
                [release, info["lake_snapshot"], info["built_at"], info["disclosure_profile"],
                 info["units_published"], info["units_revised"], info["units_held"]])
    for table, frame in (("release_cells", cells), ("release_contributions", contributions)):
        if len(frame):
            con.register("ledger_rows", frame)
            try:
                con.execute(f"INSERT INTO {LAKE}.{table} BY NAME SELECT * FROM ledger_rows")
            finally:
                con.unregister("ledger_rows")


def counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(units revised, units held) in this build (a cell left without a value by a missing
    snapshot is neither)."""
    return tuple(int(n or 0) for n in con.execute(f"""
        SELECT count(*) FILTER (WHERE u.reason IS NULL AND c.state = 'published' AND c.changers > 0),
               count(*) FILTER (WHERE u.reason = '{REVISION}')
        FROM dc_units u JOIN dc_change c USING (unit) WHERE NOT u.missing""").fetchone())
