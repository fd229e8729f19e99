"""The cells of the industry marts that disclosure control decides on, and their relations.

A *unit* is one published number: one additive measure of an industry experience row
(written and earned premium and exposure, claim count, paid and incurred losses) or one
industry triangle cell. ``load_units`` creates, in the builder's connection:

- ``dc_xp`` / ``dc_tri``: the industry rows of ``mart_experience`` and ``mart_triangle``, numbered;
- ``dc_contrib``: each member's amount per unit (the member rows of the same marts) and
  whether it *contributes* (``contributes``): it has a value in the cell, zero included (an
  experience row of its with the measure valued; a triangle cell it has claims in);
- ``dc_units``: one row per unit: its measure and system, contributors (the members that
  contribute, whatever their amount: a zero of one member is that member's value) and holders
  (those with a non-zero amount), the largest member's share, whether it has no value at all (a triangle
  cell that a missing snapshot leaves NULL), its primary reason to be withheld and its
  ``unit_key``, the name that stays the same from one build to the next (the release ledger's).

``systems`` returns the additive relations of every measure as ``disclosure.System`` objects:
provinces add up to ``ALL`` and lines to ``ALL`` (experience), quarters add up to their year
(experience periods; triangle accident quarters to the accident year at the same valuation),
provinces and lines add up to ``ALL`` in triangles (line ``ALL`` sums every line's claims:
its cells are disclosure-controlled like any other, and a withheld line cell must not be
recomputable from ``ALL`` less the other lines), and the claim count, paid and incurred losses of an
accident quarter in the experience mart equal the quarterly triangle's ``reported``, ``paid``
and ``incurred`` cells at the latest valuation (claims at each member's latest snapshot).
"""

from __future__ import annotations

from collections import defaultdict

import duckdb

from pipelines.products.disclosure import DisclosureRules, System
from pipelines.store import LAKE

PREMIUM = ("written_premium", "written_exposure", "earned_premium", "earned_exposure")
LOSSES = {"claim_count": "reported", "paid_loss": "paid", "incurred_loss": "incurred"}  # -> triangle measure
MEASURES = (*PREMIUM, *LOSSES)
XP_KEY = ("grain", "period_start", "line_of_business", "region_code")
TRI_KEY = ("grain", "line_of_business", "region_code", "measure", "origin_start", "age")


def system_sql(mart: str, measure: str) -> str:
    """SQL: the system (additive measure) of a unit; claim counts and losses are shared with
    the triangles' ``reported``, ``paid`` and ``incurred``."""
    cases = " ".join(f"WHEN '{m}' THEN '{t}'" for m, t in LOSSES.items())
    return f"CASE WHEN {mart} = 'experience' THEN CASE {measure} {cases} ELSE {measure} END ELSE {measure} END"


def load_units(con: duckdb.DuckDBPyConnection, rules: DisclosureRules) -> None:
    """Create ``dc_xp``, ``dc_tri``, ``dc_contrib`` and ``dc_units`` from the lake's marts."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE dc_xp AS
        SELECT row_number() OVER (ORDER BY {', '.join(XP_KEY)}) AS row_id, *
        FROM {LAKE}.mart_experience WHERE scope = 'industry'""")
    # A cell some members are missing from is not published (NULL with ``missing_members``): its
    # completed part is one member's own value times factors, which no contributor count covers,
    # and completion is not additive (provinces completed with their own factors need not add up
    # to the completed total), so the relations that secondary suppression solves would not hold.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE dc_tri AS
        SELECT row_number() OVER (ORDER BY {', '.join(TRI_KEY)}) AS row_id,
               * REPLACE (CASE WHEN coalesce(missing_members, 0) = 0 THEN value END AS value)
        FROM {LAKE}.mart_triangle WHERE scope = 'industry'""")
    casts = ", ".join(f"CAST(m.{m} AS DOUBLE) AS {m}" for m in MEASURES)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE dc_contrib AS
        SELECT 'experience' AS mart, row_id, measure, member_id, value, value IS NOT NULL AS contributes
        FROM (SELECT i.row_id, m.member_id, {casts}
              FROM dc_xp i JOIN {LAKE}.mart_experience m ON m.scope = 'member'
               AND {' AND '.join(f'm.{k} = i.{k}' for k in XP_KEY)})
             UNPIVOT (value FOR measure IN ({', '.join(MEASURES)}))
        UNION ALL
        SELECT 'triangle', i.row_id, i.measure, m.member_id, CAST(m.value AS DOUBLE),
               m.value IS NOT NULL AND (m.members > 0 OR m.value <> 0)
        FROM dc_tri i JOIN {LAKE}.mart_triangle m ON m.scope = 'member'
         AND {' AND '.join(f'm.{k} = i.{k}' for k in TRI_KEY)}
        WHERE i.value IS NOT NULL""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE dc_units AS
        WITH units AS (
            SELECT 'experience' AS mart, row_id, measure, false AS missing,
                   concat_ws('|', 'x', measure, grain, period_start, line_of_business, region_code) AS unit_key
            FROM dc_xp, (SELECT unnest(?::VARCHAR[]) AS measure)
            UNION ALL
            SELECT 'triangle', row_id, measure, value IS NULL,
                   concat_ws('|', 't', measure, grain, line_of_business, region_code, origin_start, age)
            FROM dc_tri),
        stats AS (
            SELECT mart, row_id, measure, count(*) FILTER (WHERE contributes) AS contributors,
                   count(*) FILTER (WHERE value <> 0) AS holders,
                   max(abs(value)) / nullif(sum(abs(value)), 0) AS max_share
            FROM dc_contrib GROUP BY ALL)
        SELECT row_number() OVER (ORDER BY u.mart, u.row_id, u.measure) AS unit, u.*,
               {system_sql('u.mart', 'u.measure')} AS system,
               coalesce(s.contributors, 0)::INTEGER AS contributors, coalesce(s.holders, 0)::INTEGER AS holders,
               s.max_share,
               CASE WHEN NOT u.missing THEN {rules.primary_sql('coalesce(s.contributors, 0)', 's.max_share',
                                                               'coalesce(s.holders, 0)')}
               END AS primary_reason
        FROM units u LEFT JOIN stats s USING (mart, row_id, measure)""", [list(MEASURES)])


def _relations_sql() -> str:
    """(family, rel, mart, row_id, coef): every additive relation as signed lists of rows (of
    any measure: the relation holds for each measure of the rows)."""
    same_tri = "q.line_of_business = y.line_of_business AND q.region_code = y.region_code AND q.measure = y.measure"
    quarters_of_year = (f"FROM dc_tri y JOIN dc_tri q ON y.grain = 'year' AND q.grain = 'quarter' AND {same_tri} "
                        "AND date_trunc('year', q.origin_start) = y.origin_start AND q.valuation_date = y.valuation_date")
    return f"""
        SELECT 'province' AS family, concat_ws('|', grain, period_start, line_of_business) AS rel,
               'experience' AS mart, row_id, CASE WHEN region_code = 'ALL' THEN -1 ELSE 1 END AS coef
        FROM dc_xp WHERE line_of_business <> 'ALL'
        UNION ALL
        SELECT 'line', concat_ws('|', grain, period_start), 'experience', row_id,
               CASE WHEN line_of_business = 'ALL' THEN -1 ELSE 1 END
        FROM dc_xp WHERE region_code = 'ALL'
        UNION ALL
        SELECT 'year', y.row_id::VARCHAR, 'experience', q.row_id, 1
        FROM dc_xp y JOIN dc_xp q ON y.grain = 'year' AND q.grain = 'quarter'
         AND q.line_of_business = y.line_of_business AND q.region_code = y.region_code
         AND date_trunc('year', q.period_start) = y.period_start
        UNION ALL
        SELECT 'year', row_id::VARCHAR, 'experience', row_id, -1 FROM dc_xp WHERE grain = 'year'
        UNION ALL
        SELECT 'tri-province', concat_ws('|', grain, line_of_business, measure, origin_start, age),
               'triangle', row_id, CASE WHEN region_code = 'ALL' THEN -1 ELSE 1 END
        FROM dc_tri
        UNION ALL
        SELECT 'tri-line', concat_ws('|', grain, region_code, measure, origin_start, age),
               'triangle', row_id, CASE WHEN line_of_business = 'ALL' THEN -1 ELSE 1 END
        FROM dc_tri  -- only where line ALL is there: marts built before it existed have no total
        QUALIFY bool_or(line_of_business = 'ALL')
                OVER (PARTITION BY grain, region_code, measure, origin_start, age)
        UNION ALL
        SELECT 'tri-year', y.row_id::VARCHAR, 'triangle', q.row_id, 1 {quarters_of_year}
        UNION ALL
        SELECT DISTINCT 'tri-year', y.row_id::VARCHAR, 'triangle', y.row_id, -1 {quarters_of_year}"""


def _diagonal_links_sql() -> str:
    """(rel, xp_row, tri_row, measure): an experience quarter's claim count or losses equal the
    quarterly triangle cell at the latest valuation wherever that cell has a value (checked
    value by value: a link is made only where the numbers are equal)."""
    equal = " OR ".join(f"(t.measure = '{t}' AND CAST(t.value AS DOUBLE) = CAST(x.{m} AS DOUBLE))"
                        for m, t in LOSSES.items())
    return f"""
        SELECT 'diagonal|' || x.row_id || '|' || t.measure AS rel, x.row_id AS xp_row,
               t.row_id AS tri_row, t.measure
        FROM dc_xp x JOIN dc_tri t ON x.grain = 'quarter' AND t.grain = 'quarter'
         AND x.line_of_business = t.line_of_business AND x.region_code = t.region_code
         AND t.origin_start = x.period_start
         AND t.valuation_date = (SELECT max(valuation_date) FROM dc_tri WHERE grain = 'quarter')
        WHERE t.value IS NOT NULL AND ({equal})"""


def systems(con: duckdb.DuckDBPyConnection) -> list[System]:
    """The additive relations of every measure, with the units nobody knows, each unit's
    contributors and the cost of withholding it."""
    rows = con.execute(f"""
        SELECT u.system, r.family || '|' || r.rel, u.unit, r.coef
        FROM ({_relations_sql()}) r JOIN dc_units u ON u.mart = r.mart AND u.row_id = r.row_id
        UNION ALL
        SELECT d.measure, d.rel, u.unit, CASE u.mart WHEN 'experience' THEN 1 ELSE -1 END
        FROM ({_diagonal_links_sql()}) d JOIN dc_units u ON u.system = d.measure
         AND ((u.mart = 'experience' AND u.row_id = d.xp_row) OR (u.mart = 'triangle' AND u.row_id = d.tri_row))
        ORDER BY 1, 2, 3""").fetchall()
    rels: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for system, rel, unit, coef in rows:
        rels[system][rel][unit] = float(coef)
    return [_system(con, name, list(by_rel.values())) for name, by_rel in sorted(rels.items())]


def _system(con: duckdb.DuckDBPyConnection, name: str, relations: list[dict[int, float]]) -> System:
    missing = {u for (u,) in con.execute("SELECT unit FROM dc_units WHERE missing AND system = ?", [name]).fetchall()}
    contributors: dict[int, set[str]] = defaultdict(set)
    amounts: dict[int, set[str]] = defaultdict(set)
    cost: dict[int, float] = defaultdict(float)
    for unit, member, value in con.execute("""
            SELECT u.unit, c.member_id, c.value FROM dc_contrib c JOIN dc_units u USING (mart, row_id, measure)
            WHERE u.system = ? AND c.contributes""", [name]).fetchall():
        contributors[unit].add(member)
        if value:
            amounts[unit].add(member)
        cost[unit] += abs(value)
    return System(name, relations, {u: frozenset(m) for u, m in contributors.items()},
                  frozenset(missing), dict(cost), amounts={u: frozenset(m) for u, m in amounts.items()})
