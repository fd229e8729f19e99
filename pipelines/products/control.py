"""Disclosure control applied to the industry marts: the tables every audience is shown.

``apply_control`` decides every unit (``cells``, ``disclosure.protect``) and creates, in the
builder's connection, the published industry tables (``pub_<name>``):

| table | withheld when |
|---|---|
| ``industry_experience`` | each amount: its unit is withheld; a ratio: one of its two inputs is |
| ``industry_triangle`` | the cell is withheld (a cell that members are missing from is NULL with ``missing_members``: its completed value is for the regulator only) |
| ``industry_factors`` | ``ldf_*``: a cell the factor is computed from is withheld; ``cdf_*``: a factor from this age on is |
| ``industry_ultimates`` | ``latest``: its cell is withheld; ``cdf``, ``ultimate``, ``ibnr``: the cell or the CDF is |

A withheld value is NULL, never zero, and its row says so: ``suppressed`` and ``suppression``
(the reason: ``members``, ``dominance``, ``secondary`` or ``derived``; in the experience table,
each withheld measure with its reason, e.g. ``paid_loss: dominance; incurred_loss: secondary``). ``members`` is shown for published
cells only; the largest member's share is never published (with the total it would give
that member's amount).

A *held revision* (reason ``revision held``, see ``releases``) is the exception: the cell shows
the value it was last published with, ``suppressed`` is true (the value is not this build's)
and ``held_from_release`` (triangle) or the suppression text (``paid_loss: revision held from
release 3``) says which release it comes from; ratios, factors, ultimates and benchmarks that
use it are withheld, since they would give away its current value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import duckdb
import pandas as pd

from pipelines import store
from pipelines.core.sql import literal
from pipelines.products import cells, releases
from pipelines.products.disclosure import DERIVED, REVISION, DisclosureRules
from pipelines.store import LAKE

PUBLISHED = ("industry_experience", "industry_triangle", "industry_factors", "industry_ultimates")
_TRI_SAME = ("grain", "line_of_business", "region_code", "measure")


@dataclass(frozen=True)
class ControlResult:
    """How many units were published and withheld, by reason (``revision held`` counts the
    cells that keep an earlier release's value), and the release this build is."""

    units: int
    withheld: dict[str, int]
    release: int = 1
    revised: int = 0

    @property
    def published(self) -> int:
        return self.units - sum(self.withheld.values())


def apply_control(con: duckdb.DuckDBPyConnection, rules: DisclosureRules,
                  lake_tables: set[str] | None = None, steps: dict[str, float] | None = None) -> ControlResult:
    """Decide every industry unit against this build and every earlier release (the ledger in
    the lake), and create the ``pub_*`` tables (and ``dc_units.reason``, ``held_value``); the
    seconds of each step go to ``steps`` when given."""
    steps = {} if steps is None else steps
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        steps[step] = round(now - clock, 3)
        clock = now

    cells.load_units(con, rules)
    lap("control_units")
    release = releases.load_basis(con, lake_tables if lake_tables is not None else store.lake_tables(con))
    releases.load_changes(con)
    lap("control_changes")
    primary = dict(con.execute("SELECT unit, primary_reason FROM dc_units WHERE primary_reason IS NOT NULL")
                   .fetchall())
    systems = cells.systems(con)
    lap("control_systems")
    reasons = releases.decide(con, rules, primary, systems)
    lap("control_decide")
    decided = pd.DataFrame({"unit": pd.Series(list(reasons), dtype="int64"),
                            "reason": pd.Series(list(reasons.values()), dtype="object")})
    con.register("dc_decided", decided)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE dc_units AS
        SELECT u.*, r.reason::VARCHAR AS reason,
               CASE WHEN r.reason = '{REVISION}' THEN c.basis_value END AS held_value,
               CASE WHEN r.reason = '{REVISION}' AND c.basis_value IS NOT NULL THEN c.basis_release END AS held_from
        FROM dc_units u LEFT JOIN dc_decided r USING (unit) LEFT JOIN dc_change c USING (unit)""")
    con.unregister("dc_decided")
    _experience(con)
    _triangle(con)
    _factors(con)
    _ultimates(con)
    _metric_hidden(con)
    lap("control_publish")
    counts = dict(con.execute("SELECT coalesce(reason, ''), count(*) FROM dc_units WHERE NOT missing "
                              "GROUP BY ALL").fetchall())
    total = sum(counts.values())
    counts.pop("", None)
    return ControlResult(units=total, withheld=counts, release=release, revised=releases.counts(con)[0])


METRIC_INPUTS = {"frequency": ("claim_count", "earned_exposure"), "severity": ("incurred_loss", "claim_count"),
                 "pure_premium": ("incurred_loss", "earned_exposure"), "loss_ratio": ("incurred_loss", "earned_premium")}
# Ratios over the *matched* earned amounts (of the members whose losses are in the cell). Where a
# member is missing, the matched amount is not the published one: the published ratio and its
# published numerator would give it, and the published amount minus it is the missing members'
# exact earned premium or exposure. Such a ratio is withheld while any member is missing.
MATCHED_RATIOS = ("frequency", "pure_premium", "loss_ratio")


def _unit(alias: str, mart: str, measure: str, row: str) -> str:
    return (f"JOIN dc_units {alias} ON {alias}.mart = '{mart}' AND {alias}.row_id = {row} "
            f"AND {alias}.measure = {measure}")


def _experience(con: duckdb.DuckDBPyConnection) -> None:
    """One column per measure, NULL where withheld; a ratio NULL where an input is;
    ``suppression`` lists the withheld measures with their reasons."""
    hidden = ", ".join(f"max(u.reason) FILTER (WHERE u.measure = '{m}') AS {m}" for m in cells.MEASURES)
    types = dict(con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'dc_xp'")
                 .fetchall())
    values = ", ".join(f"CASE WHEN h.{m} IS NULL THEN x.{m} WHEN h.{m} = '{REVISION}' THEN "
                       f"CAST(k.{m} AS {types[m]}) END AS {m}" for m in cells.MEASURES)
    held = ", ".join(f"max(u.held_value) FILTER (WHERE u.measure = '{m}') AS {m}" for m in cells.MEASURES)
    froms = ", ".join(f"max(u.held_from) FILTER (WHERE u.measure = '{m}') AS {m}" for m in cells.MEASURES)
    ratios = ", ".join(f"CASE WHEN h.{a} IS NULL AND h.{b} IS NULL "
                       + ("AND coalesce(x.members_missing, 0) = 0 " if metric in MATCHED_RATIOS else "")
                       + f"THEN x.{metric} END AS {metric}" for metric, (a, b) in METRIC_INPUTS.items())
    listed = ", ".join(f"CASE WHEN h.{m} IS NOT NULL THEN '{m}: ' || h.{m} "
                       f"|| coalesce(' from release ' || f.{m}, '') END" for m in cells.MEASURES)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE pub_industry_experience AS
        WITH h AS (SELECT u.row_id, {hidden} FROM dc_units u WHERE u.mart = 'experience' GROUP BY u.row_id),
        k AS (SELECT u.row_id, {held} FROM dc_units u WHERE u.mart = 'experience' GROUP BY u.row_id),
        f AS (SELECT u.row_id, {froms} FROM dc_units u WHERE u.mart = 'experience' GROUP BY u.row_id)
        SELECT x.grain, x.period, x.period_start, x.period_end, x.line_of_business, x.region_code,
               {values}, {ratios}, x.valuation_date,
               CASE WHEN concat_ws('', {', '.join(f'h.{m}' for m in cells.MEASURES)}) = '' THEN x.members END AS members,
               concat_ws('', {', '.join(f'h.{m}' for m in cells.MEASURES)}) <> '' AS suppressed,
               nullif(concat_ws('; ', {listed}), '') AS suppression, x.source_snapshot
        FROM dc_xp x JOIN h USING (row_id) JOIN k USING (row_id) JOIN f USING (row_id) ORDER BY x.row_id""")


def _triangle(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"""CREATE OR REPLACE TEMP TABLE pub_industry_triangle AS
        SELECT t.grain, t.line_of_business, t.region_code, t.measure, t.origin, t.origin_start, t.age,
               t.valuation_date, CASE WHEN u.reason IS NULL THEN t.value
                                      WHEN u.reason = '{REVISION}' THEN CAST(u.held_value AS DECIMAL(38, 2)) END AS value,
               CASE WHEN u.reason IS NULL THEN t.members END AS members, t.missing_members,
               u.reason IS NOT NULL AS suppressed, u.reason AS suppression,
               u.held_from AS held_from_release, t.source_snapshot
        FROM dc_tri t {_unit('u', 'triangle', 't.measure', 't.row_id')}
        ORDER BY t.row_id""")


def _factors(con: duckdb.DuckDBPyConnection) -> None:
    """A factor is withheld when a cell it is computed from is (both cells of a pair exist);
    a CDF when a factor from its age on is."""
    same = " AND ".join(f"b.{k} = a.{k}" for k in _TRI_SAME)
    part = ", ".join(f"f.{k}" for k in _TRI_SAME)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE pub_industry_factors AS
        WITH cell AS (SELECT t.*, u.reason FROM dc_tri t {_unit('u', 'triangle', 't.measure', 't.row_id')}),
        inputs AS (
            SELECT a.grain, a.line_of_business, a.region_code, a.measure, a.age AS age_from,
                   bool_or(a.reason IS NOT NULL OR b.reason IS NOT NULL) AS hidden
            FROM cell a JOIN cell b ON {same} AND b.origin_start = a.origin_start
             AND b.age = a.age + CASE WHEN a.grain = 'year' THEN 12 ELSE 3 END
            WHERE a.value IS NOT NULL AND b.value IS NOT NULL GROUP BY ALL),
        flagged AS (
            SELECT f.*, coalesce(i.hidden, false) AS ldf_suppressed,
                   bool_or(coalesce(i.hidden, false)) OVER (PARTITION BY {part} ORDER BY f.age_from DESC
                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cdf_suppressed
            FROM {LAKE}.mart_factors f LEFT JOIN inputs i USING (grain, line_of_business, region_code, measure, age_from)
            WHERE f.scope = 'industry')
        SELECT grain, line_of_business, region_code, measure, development, age_from, age_to,
               CASE WHEN NOT ldf_suppressed THEN ldf_volume END AS ldf_volume,
               CASE WHEN NOT ldf_suppressed THEN ldf_simple END AS ldf_simple,
               CASE WHEN NOT cdf_suppressed THEN cdf_volume END AS cdf_volume,
               CASE WHEN NOT cdf_suppressed THEN cdf_simple END AS cdf_simple,
               origins, CASE WHEN NOT cdf_suppressed THEN members END AS members, diagonals, tail,
               ldf_suppressed, cdf_suppressed, cdf_suppressed AS suppressed,
               CASE WHEN cdf_suppressed THEN '{DERIVED}' END AS suppression, source_snapshot
        FROM flagged ORDER BY grain, line_of_business, region_code, measure, age_from""")


def _ultimates(con: duckdb.DuckDBPyConnection) -> None:
    def same(alias: str) -> str:
        return " AND ".join(f"{alias}.{k} = m.{k}" for k in _TRI_SAME)

    con.execute(f"""CREATE OR REPLACE TEMP TABLE pub_industry_ultimates AS
        WITH flagged AS (
            SELECT m.*, c.suppressed OR c.value IS NULL AS cell_hidden,
                   coalesce(c.suppression, '{DERIVED}') AS cell_reason,
                   coalesce(f.cdf_suppressed, false) AS cdf_hidden
            FROM {LAKE}.mart_ultimates m
            JOIN pub_industry_triangle c ON {same('c')} AND c.origin_start = m.origin_start AND c.age = m.latest_age
            LEFT JOIN pub_industry_factors f ON {same('f')} AND f.age_from = m.latest_age
            WHERE m.scope = 'industry')
        SELECT grain, line_of_business, region_code, measure, origin, origin_start, latest_age,
               latest_valuation_date, CASE WHEN NOT cell_hidden THEN latest END AS latest,
               CASE WHEN NOT cdf_hidden THEN cdf END AS cdf,
               CASE WHEN NOT (cell_hidden OR cdf_hidden) THEN ultimate END AS ultimate,
               CASE WHEN NOT (cell_hidden OR cdf_hidden) THEN ibnr END AS ibnr,
               CASE WHEN NOT (cell_hidden OR cdf_hidden) THEN members END AS members,
               cell_hidden OR cdf_hidden AS suppressed,
               CASE WHEN cell_hidden THEN cell_reason WHEN cdf_hidden THEN '{DERIVED}' END AS suppression,
               source_snapshot
        FROM flagged ORDER BY grain, line_of_business, region_code, measure, origin_start""")


def _metric_hidden(con: duckdb.DuckDBPyConnection) -> None:
    """``dc_metric_hidden``: the experience cells whose industry ratio is withheld, per metric."""
    pairs = ", ".join(f"('{metric}', '{m}')" for metric, inputs in METRIC_INPUTS.items() for m in inputs)
    matched = ", ".join(f"('{m}')" for m in MATCHED_RATIOS)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE dc_metric_hidden AS
        SELECT grain, period, line_of_business, region_code, metric, min(reason) AS reason FROM (
            SELECT x.grain, x.period, x.line_of_business, x.region_code, m.metric, u.reason
            FROM dc_xp x JOIN dc_units u ON u.mart = 'experience' AND u.row_id = x.row_id
            JOIN (VALUES {pairs}) m(metric, measure) ON m.measure = u.measure
            WHERE u.reason IS NOT NULL
            UNION ALL
            SELECT x.grain, x.period, x.line_of_business, x.region_code, m.metric, '{DERIVED}'
            FROM dc_xp x CROSS JOIN (VALUES {matched}) m(metric)
            WHERE coalesce(x.members_missing, 0) > 0)
        GROUP BY ALL""")


def benchmark_sql(member: str, source: str = LAKE) -> str:
    """A member's benchmark rows, the industry side withheld where the industry figure's
    inputs are (experience metrics) or the industry factor is (``ldf_*``); ``mart_benchmark``
    is read from database ``source`` (the lake, or a copy of its tables)."""

    same = " AND ".join(f"x.{k} = b.{k}" for k in ("grain", "period", "line_of_business", "region_code", "metric"))
    return f"""
        WITH hidden AS (
            SELECT b.*, CASE WHEN b.metric LIKE 'ldf_%' THEN CASE WHEN f.ldf_suppressed THEN '{DERIVED}' END
                             ELSE x.reason END AS reason
            FROM {source}.mart_benchmark b
            LEFT JOIN dc_metric_hidden x ON {same}
            LEFT JOIN pub_industry_factors f ON f.grain = b.grain
             AND f.development = b.development AND f.line_of_business = b.line_of_business
             AND f.region_code = b.region_code AND 'ldf_' || f.measure = b.metric
            WHERE b.member_id = {literal(member)})
        SELECT member_id, metric, grain, period, development, line_of_business, region_code, member_value,
               {', '.join(f"CASE WHEN reason IS NULL THEN {c} END AS {c}" for c in _BENCHMARK_INDUSTRY)},
               reason IS NOT NULL AS suppressed, reason AS suppression, source_snapshot
        FROM hidden ORDER BY metric, grain, period, development, line_of_business, region_code"""


_BENCHMARK_INDUSTRY = ("industry_value", "relativity", "rank", "ranked_members", "percentile", "members")
