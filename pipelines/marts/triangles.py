"""Development triangles from the claim snapshots (DOMAIN.md section 5).

Rows are accident periods (the year or quarter of the accident date, ``origin``), columns are
development ages in months from the start of the accident period to the valuation date
(12, 24, ... for ``year``; 3, 6, ... for ``quarter``). A cell sums a cumulative measure over
the claims of the accident period in the snapshot valued at that date:

- ``paid``: paid to date; ``incurred``: paid to date + case reserve;
- ``reported``: claims in the snapshot; ``closed``: claims whose status there is ``CLOSED``.

Triangles are built per line of business, per line and province and (``region_code = 'ALL'``)
per line over all provinces; industry-wide and per member. The annual grain reads the
year-end snapshots only.

**Missing snapshots.** A member may lack a snapshot (a rejected or late file). The industry
cell at valuation ``v`` is then *missing* (``value`` NULL, ``missing_members`` > 0) when a
member without a snapshot at ``v`` has claims in that cell reported on or before ``v`` (seen
in any of its other snapshots): summing only the members present would understate it and
bend the factors. Cells no such member would have contributed to keep their value. A
member's own triangle has no cell at a valuation it did not report. ``members`` counts the
members with claims in the cell at ``v``.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.errors import QueryError
from pipelines.marts.cells import GRAINS, max_share, period_label, rollup

MEASURES = ("paid", "incurred", "reported", "closed")   # columns of the claim partials
SCOPES = ("industry", "member")
KEY = ("scope", "member_id", "grain", "line_of_business", "region_code", "measure")
ORDER = ("scope, member_id NULLS FIRST, grain, line_of_business, region_code, measure, "
         "origin_start, age")
_CELL = "line_of_business, region_code, origin_start, valuation_date"


def check_choice(kind: str, value: str, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed``, else a QueryError listing them."""
    allowed = list(allowed)
    if value not in allowed:
        raise QueryError(f"Unknown {kind} {value!r}; use one of {', '.join(allowed)}.")
    return value


def triangle_sql(parts: str, grain: str, *, valuations: str | None = None,
                 scopes: tuple[str, ...] = SCOPES, members: str | None = None) -> str:
    """Long triangle rows (``KEY``, origin, age, valuation_date, value, members, ...) of the claim
    partials ``parts`` (``partials.claim_partials_sql``).

    ``valuations`` holds (member_id, valuation_date) of every snapshot, when ``parts`` covers
    only some lines: which members reported at which valuation is read over all lines, as in
    the marts. ``members`` (SQL) restricts the member-scope rows to those members; industry
    rows always sum every member.
    """
    check_choice("grain", grain, GRAINS)
    at_grain = ("month(valuation_date) % 3 = 0 AND valuation_date = last_day(valuation_date)"
                + (" AND month(valuation_date) = 12" if grain == "year" else ""))
    wide = [_industry_sql() if check_choice("scope", s, SCOPES) == "industry" else _member_sql(members)
            for s in scopes]
    return f"""
        WITH claims AS (
            SELECT member_id, line_of_business, region_code,
                   date_trunc('{grain}', origin_start)::DATE AS origin_start, valuation_date,
                   {', '.join(MEASURES)}, first_report, {at_grain} AS at_grain
            FROM {parts}),
        member_vals AS (  -- who reported at which valuation: read over every line
            SELECT DISTINCT member_id, valuation_date, {at_grain} AS at_grain FROM {valuations or parts}),
        vals AS ({_valuations_sql(GRAINS[grain])}),
        first_reports AS (
            SELECT member_id, line_of_business, {rollup('region_code')} AS region_code, origin_start,
                   min(first_report) AS first_report
            FROM claims
            GROUP BY GROUPING SETS ((member_id, line_of_business, region_code, origin_start),
                                    (member_id, line_of_business, origin_start))),
        cells AS (
            SELECT member_id, line_of_business, {rollup('region_code')} AS region_code, origin_start,
                   valuation_date, {', '.join(f'sum({m}) AS {m}' for m in MEASURES)}
            FROM claims WHERE at_grain
            GROUP BY GROUPING SETS (
                (member_id, line_of_business, region_code, origin_start, valuation_date),
                (member_id, line_of_business, origin_start, valuation_date))),
        wide AS ({' UNION ALL BY NAME '.join(wide)})
        {_long_sql(grain)}"""


def _valuations_sql(months: int) -> str:
    """Every period end from the first to the last snapshot at the grain (gaps included)."""
    return f"""
        SELECT (s + INTERVAL {months} MONTH - INTERVAL 1 DAY)::DATE AS valuation_date
        FROM (SELECT unnest(generate_series(
                  (min(valuation_date) + 1 - INTERVAL {months} MONTH)::DATE,
                  (max(valuation_date) + 1 - INTERVAL {months} MONTH)::DATE,
                  INTERVAL {months} MONTH)) AS s
              FROM member_vals WHERE at_grain)"""


def _member_sql(members: str | None = None) -> str:
    """A member's cells: every valuation it reported after the accident period began (of the
    members ``members`` selects, when given)."""
    shares = ", ".join(f"CASE WHEN c.{m} <> 0 THEN 1.0 END AS share_{m}" for m in MEASURES)
    return f"""
        SELECT 'member' AS scope, g.member_id, g.line_of_business, g.region_code,
               g.origin_start, v.valuation_date, 0 AS missing_members,
               (c.member_id IS NOT NULL)::INTEGER AS members,
               {', '.join(f'c.{m}' for m in MEASURES)}, {shares}
        FROM first_reports g
        JOIN member_vals v ON v.member_id = g.member_id AND v.at_grain
         AND v.valuation_date > g.origin_start
        LEFT JOIN cells c ON c.member_id = g.member_id AND c.line_of_business = g.line_of_business
         AND c.region_code = g.region_code AND c.origin_start = g.origin_start
         AND c.valuation_date = v.valuation_date
        WHERE {f"g.member_id IN ({members})" if members else "TRUE"}"""


def _industry_sql() -> str:
    """Industry cells: every period end after the accident period began, with the members
    that contributed and those whose missing snapshot leaves the cell incomplete."""
    shares = ", ".join(f"{max_share(m)} AS share_{m}" for m in MEASURES)
    return f"""
        SELECT 'industry' AS scope, NULL::VARCHAR AS member_id, g.*,
               coalesce(miss.missing_members, 0) AS missing_members,
               coalesce(s.members, 0) AS members, {', '.join(f's.{m}' for m in MEASURES)},
               {', '.join(f's.share_{m}' for m in MEASURES)}
        FROM (SELECT DISTINCT line_of_business, region_code, origin_start, valuation_date
              FROM first_reports JOIN vals ON valuation_date > origin_start) g
        LEFT JOIN (SELECT {_CELL}, count(*) AS members,
                          {', '.join(f'sum({m}) AS {m}' for m in MEASURES)}, {shares}
                   FROM cells GROUP BY {_CELL}) s USING ({_CELL})
        LEFT JOIN (
            SELECT f.line_of_business, f.region_code, f.origin_start, v.valuation_date,
                   count(*) AS missing_members
            FROM first_reports f JOIN vals v ON f.first_report <= v.valuation_date
            LEFT JOIN member_vals mv ON mv.member_id = f.member_id AND mv.valuation_date = v.valuation_date
            WHERE mv.member_id IS NULL
            GROUP BY ALL) miss USING ({_CELL})"""


def _long_sql(grain: str) -> str:
    """One row per cell and measure; a cell a missing member would have fed is NULL."""
    return " UNION ALL ".join(f"""
        SELECT scope, member_id, '{grain}' AS grain, line_of_business, region_code,
               '{m}' AS measure, {period_label(repr(grain), 'origin_start')} AS origin, origin_start,
               date_diff('month', origin_start, valuation_date + 1)::INTEGER AS age, valuation_date,
               CASE WHEN missing_members = 0 THEN coalesce({m}, 0) END::DECIMAL(38, 2) AS value,
               members::INTEGER AS members, share_{m} AS max_member_share,
               missing_members::INTEGER AS missing_members
        FROM wide""" for m in MEASURES)
