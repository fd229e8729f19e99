"""Development triangles from the claim snapshots (DOMAIN.md section 5).

Rows are accident periods (the year or quarter of the accident date, ``origin``), columns are
development ages in months from the start of the accident period to the valuation date
(12, 24, ... for ``year``; 3, 6, ... for ``quarter``). A cell sums a cumulative measure over
the claims of the accident period in the snapshot valued at that date:

- ``paid``: paid to date; ``incurred``: paid to date + case reserve;
- ``reported``: claims in the snapshot; ``closed``: claims whose status there is ``CLOSED``.

Triangles are built per line of business, per line and province and (``region_code = 'ALL'``)
per line over all provinces; industry-wide and per member. Line ``ALL`` is every line together:
its cells sum the claims of all lines (each claim counted once), so its factors and ultimates
(``development``) are those of the summed triangle, as an actuary takes an aggregate view, not
a combination of the lines' factors. A member is missing from an ``ALL`` cell exactly when it is
missing from one of its lines there. The annual grain reads the year-end snapshots only.

**Missing members.** A member *owes* every valuation from its first accepted one to the
industry's latest (at the quarter grain: from its first quarterly obligation, ``QUARTER_GRAIN``),
and the valuation of every claim file of its that was rejected or refused, except a valuation
an operator exempted; a declared nil return reports zeros there (``obligations_sql``). A member that owes ``v`` and has no accepted
snapshot at ``v`` is *missing* from the industry cells at ``v`` of the accident periods it had
claims in by then (first reported on or before ``v``, as its other snapshots show), and, when no
later snapshot of it shows what it had, of every accident period of its lines and provinces that
began after its last accepted valuation. Its own triangle holds those cells with ``value`` NULL
and ``missing_members`` 1. The industry cell counts them in ``missing_members`` and sums the
members that reported in ``observed_value``; ``value`` is NULL here when a member is missing,
until ``development.complete_sql`` completes it. ``members`` counts the members with claims in
the cell at ``v``. (The snapshot's submissions say which files were not accepted: a rejection
recorded after the marts' data snapshot is seen by the next build.)
"""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.core.domain import SubmissionStatus as Status
from pipelines.core.sql import literal
from pipelines.errors import QueryError
from pipelines.marts.cells import ALL, GRAINS, max_share, period_label, rollup

MEASURES = ("paid", "incurred", "reported", "closed")   # columns of the claim partials
CARRIED = {"paid": "carried_paid", "incurred": "carried_incurred", "reported": "carried",
           "closed": "carried_closed"}   # the part of each measure carried for quarantined claims
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


def triangle_sql(parts: str, grain: str, *, valuations: str | None = None, owed: str | None = None,
                 scopes: tuple[str, ...] = SCOPES, members: str | None = None,
                 obligations: str | None = None) -> str:
    """Long triangle rows (``KEY``, origin, age, valuation_date, value, members, ...) of the claim
    partials ``parts`` (``partials.claim_partials_sql``): the *observed* triangle, before
    missing members are completed (``development.complete_sql``).

    ``valuations`` holds (member_id, valuation_date) of every snapshot, when ``parts`` covers
    only some lines: which members reported at which valuation is read over all lines, as in
    the marts. ``owed`` holds (member_id, valuation_date) of the files a member sent that were
    not accepted (rejected or refused submissions, ``owed_sql``). ``members`` (SQL) restricts
    the member-scope rows to those members; industry rows always sum every member.
    ``obligations`` (``obligations_sql``) holds the calendars' and declarations' word on which
    valuations a member owes (see ``QUARTER_GRAIN``).
    """
    check_choice("grain", grain, GRAINS)
    at_grain = ("month(valuation_date) % 3 = 0 AND valuation_date = last_day(valuation_date)"
                + (" AND month(valuation_date) = 12" if grain == "year"
                   else " AND coalesce(valuation_date >= first_quarterly, false)"))
    wide = [_industry_sql() if check_choice("scope", s, SCOPES) == "industry" else _member_sql(members)
            for s in scopes]
    return f"""
        WITH obligations AS ({obligations or _NO_OBLIGATIONS}),
        quarterly_from AS ({_quarterly_from_sql(valuations or parts)}),
        by_line AS (
            SELECT member_id, line_of_business, region_code,
                   date_trunc('{grain}', origin_start)::DATE AS origin_start, valuation_date,
                   {', '.join(MEASURES)}, {', '.join(f'coalesce({c}, 0) AS {c}' for c in CARRIED.values())},
                   first_report, {at_grain} AS at_grain
            FROM {parts} LEFT JOIN quarterly_from USING (member_id)),
        claims AS (  -- every claim once in its line and once in line ALL: summed before any factor
            SELECT * FROM by_line
            UNION ALL
            SELECT * REPLACE ({literal(ALL)} AS line_of_business) FROM by_line),
        member_vals AS (  -- who reported at which valuation: read over every line; a nil return reports zeros
            SELECT DISTINCT member_id, valuation_date, {at_grain} AS at_grain
            FROM (SELECT member_id, valuation_date FROM {valuations or parts}
                  UNION SELECT member_id, valuation_date FROM obligations WHERE kind = 'nil')
            LEFT JOIN quarterly_from USING (member_id)),
        vals AS ({_valuations_sql(GRAINS[grain])}),
        first_reports AS (
            SELECT member_id, line_of_business, {rollup('region_code')} AS region_code, origin_start,
                   min(first_report) AS first_report
            FROM claims
            GROUP BY GROUPING SETS ((member_id, line_of_business, region_code, origin_start),
                                    (member_id, line_of_business, origin_start))),
        cells AS (
            SELECT member_id, line_of_business, {rollup('region_code')} AS region_code, origin_start,
                   valuation_date, {', '.join(f'sum({m}) AS {m}' for m in (*MEASURES, *CARRIED.values()))}
            FROM claims WHERE at_grain
            GROUP BY GROUPING SETS (
                (member_id, line_of_business, region_code, origin_start, valuation_date),
                (member_id, line_of_business, origin_start, valuation_date))),
        {_missing_ctes(owed, grain)},
        wide AS ({' UNION ALL BY NAME '.join(wide)})
        {_long_sql(grain)}"""


def owed_sql(submissions: str, dataset: str = "claim") -> str:
    """(member_id, valuation_date) of every ``dataset`` file a member sent that was not accepted
    (``rejected`` or ``refused``): the member owes that valuation. ``submissions`` is the lake's
    submissions table (a subquery); the valuation is the last day of the period (a quarter
    ``2024Q3`` or a year ``2024``)."""
    return f"""
        SELECT DISTINCT member_id,
               last_day(make_date(CAST(substr(period, 1, 4) AS INTEGER),
                                  CASE WHEN length(period) = 6 THEN CAST(substr(period, 6, 1) AS INTEGER) * 3
                                       ELSE 12 END, 1)) AS valuation_date
        FROM {submissions}
        WHERE dataset = {literal(dataset)} AND status IN ({Status.REJECTED.sql}, {Status.REFUSED.sql}) AND member_id IS NOT NULL
          AND regexp_full_match(period, '[0-9]{{4}}(Q[1-4])?')"""


QUARTER_GRAIN = """The quarter grain holds a member's snapshots from the quarter-end before its first
quarterly obligation on: from the first ``quarterly`` entry of its claim calendar, or, without a
calendar, from its first snapshot valued at the end of March, June or September. Its year-end
history before that (annual reporting) is in the year grain only: it neither makes quarter cells
NULL nor joins cells whose other quarters it never reported, so a quarter cell and a quarterly
factor are computed from the members that owed quarterly data at that valuation. A member that
reports only at year ends is in the year grain only."""

_NO_OBLIGATIONS = "SELECT NULL::VARCHAR AS member_id, NULL::VARCHAR AS kind, NULL::DATE AS valuation_date WHERE FALSE"


def _period_end(period: str) -> str:
    """SQL: the last day of ``period`` (a quarter ``2024Q3`` or a year ``2024``)."""
    return (f"last_day(make_date(CAST(substr({period}, 1, 4) AS INTEGER), "
            f"CASE WHEN length({period}) = 6 THEN CAST(substr({period}, 6, 1) AS INTEGER) * 3 ELSE 12 END, 1))")


def obligations_sql(calendars: str | None, declarations: str | None, dataset: str = "claim") -> str:
    """(member_id, kind, valuation_date) of what the reporting calendars and the operators'
    declarations say about ``dataset``'s valuations: ``nil`` (a nil return: the member reported
    zeros), ``exempt`` (it does not owe that valuation) and ``quarterly_from`` (the end of the
    first quarter its calendar makes it report quarterly). ``calendars`` and ``declarations``
    are the lake's tables (subqueries), None where the lake has none."""
    parts = [_NO_OBLIGATIONS]
    if declarations:
        parts.append(f"""
            SELECT member_id, CASE kind WHEN 'nil-return' THEN 'nil' ELSE 'exempt' END AS kind,
                   {_period_end('period')} AS valuation_date
            FROM {declarations}
            WHERE dataset = {literal(dataset)} AND kind IN ('nil-return', 'exemption')
              AND regexp_full_match(period, '[0-9]{{4}}(Q[1-4])?')""")
    if calendars:
        parts.append(f"""
            SELECT member_id, 'quarterly_from' AS kind, min({_period_end('from_period')}) AS valuation_date
            FROM {calendars}
            WHERE dataset = {literal(dataset)} AND frequency = 'quarterly'
              AND regexp_full_match(from_period, '[0-9]{{4}}(Q[1-4])?')
            GROUP BY member_id""")
    return " UNION ALL ".join(parts)


def _quarterly_from_sql(valuations: str) -> str:
    """Per member, the first valuation of the quarter grain (``QUARTER_GRAIN``): the quarter-end
    before its first quarterly obligation, from its calendar or its first quarterly snapshot."""
    return f"""
        SELECT v.member_id,
               last_day((coalesce(any_value(c.valuation_date),
                                  min(v.valuation_date) FILTER (WHERE month(v.valuation_date) <> 12))
                         - INTERVAL 3 MONTH)::DATE) AS first_quarterly
        FROM (SELECT DISTINCT member_id, valuation_date FROM {valuations}) v
        LEFT JOIN (SELECT member_id, min(valuation_date) AS valuation_date FROM obligations
                   WHERE kind = 'quarterly_from' GROUP BY member_id) c ON c.member_id = v.member_id
        GROUP BY v.member_id"""


def _missing_ctes(owed: str | None, grain: str) -> str:
    """``owes``: the valuations at the grain a member owes and did not report (from its first
    accepted valuation to the industry's latest, at the quarter grain only from its first
    quarterly obligation on (``QUARTER_GRAIN``), and those of its files that were not accepted;
    neither a valuation exempted by a declaration nor one declared a nil return);
    ``missing_cells``: the member's cells left empty by them.

    A member owing valuation ``v`` is missing from the cells of an accident period it had claims
    in by ``v`` (first reported on or before ``v``, seen in its later snapshots), and, when no
    later snapshot of it shows what it had, from every accident period of a line and province
    it writes that began after its last accepted valuation (it cannot have been seen there)."""
    rejected = (f"SELECT o.member_id, v.valuation_date FROM ({owed}) o JOIN vals v USING (valuation_date)"
                if owed else "SELECT NULL::VARCHAR AS member_id, NULL::DATE AS valuation_date WHERE FALSE")
    return f"""
        spans AS (SELECT member_id, min(valuation_date) AS first_val, max(valuation_date) AS last_val
                  FROM member_vals GROUP BY member_id),
        owes AS (
            SELECT o.member_id, o.valuation_date, o.valuation_date < s.last_val AS reported_later,
                   s.last_val
            FROM (SELECT s.member_id, v.valuation_date FROM spans s JOIN vals v ON v.valuation_date > s.first_val
                  UNION {rejected}) o
            JOIN spans s USING (member_id)
            LEFT JOIN quarterly_from q USING (member_id)
            ANTI JOIN (SELECT * FROM member_vals WHERE at_grain) r USING (member_id, valuation_date)
            ANTI JOIN (SELECT * FROM obligations WHERE kind = 'exempt') x USING (member_id, valuation_date)
            WHERE {"TRUE" if grain == "year" else "coalesce(o.valuation_date >= q.first_quarterly, false)"}),
        missing_cells AS (
            SELECT g.member_id, g.line_of_business, g.region_code, g.origin_start, o.valuation_date
            FROM first_reports g JOIN owes o ON o.member_id = g.member_id AND o.valuation_date > g.origin_start
            WHERE g.first_report <= o.valuation_date OR NOT o.reported_later
            UNION
            SELECT a.member_id, a.line_of_business, a.region_code, io.origin_start, o.valuation_date
            FROM (SELECT DISTINCT member_id, line_of_business, region_code FROM first_reports) a
            JOIN owes o ON o.member_id = a.member_id AND NOT o.reported_later
            JOIN (SELECT DISTINCT line_of_business, region_code, origin_start FROM first_reports) io
              ON io.line_of_business = a.line_of_business AND io.region_code = a.region_code
             AND io.origin_start > o.last_val AND io.origin_start < o.valuation_date)"""


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
    """A member's cells: every valuation it reported after the accident period began, and the
    cells it owes and did not report (``value`` NULL, ``missing_members`` 1), of the members
    ``members`` selects, when given."""
    shares = ", ".join(f"CASE WHEN c.{m} <> 0 THEN 1.0 END AS share_{m}" for m in MEASURES)
    return f"""
        SELECT 'member' AS scope, g.member_id, g.line_of_business, g.region_code,
               g.origin_start, v.valuation_date, 0 AS missing_members,
               (c.member_id IS NOT NULL)::INTEGER AS members,
               {', '.join(f'c.{m}' for m in (*MEASURES, *CARRIED.values()))}, {shares}
        FROM first_reports g
        JOIN member_vals v ON v.member_id = g.member_id AND v.at_grain
         AND v.valuation_date > g.origin_start
        LEFT JOIN cells c ON c.member_id = g.member_id AND c.line_of_business = g.line_of_business
         AND c.region_code = g.region_code AND c.origin_start = g.origin_start
         AND c.valuation_date = v.valuation_date
        WHERE {f"g.member_id IN ({members})" if members else "TRUE"}
        UNION ALL BY NAME
        SELECT 'member' AS scope, member_id, line_of_business, region_code, origin_start, valuation_date,
               1 AS missing_members, 0 AS members
        FROM missing_cells WHERE {f"member_id IN ({members})" if members else "TRUE"}"""


def _industry_sql() -> str:
    """Industry cells: every period end after the accident period began, with the sums of the
    members that reported (``observed``) and the count of members missing from the cell."""
    shares = ", ".join(f"{max_share(m)} AS share_{m}" for m in MEASURES)
    return f"""
        SELECT 'industry' AS scope, NULL::VARCHAR AS member_id, g.*,
               coalesce(miss.missing_members, 0) AS missing_members,
               coalesce(s.members, 0) AS members, {', '.join(f's.{m}' for m in (*MEASURES, *CARRIED.values()))},
               {', '.join(f's.share_{m}' for m in MEASURES)}
        FROM (SELECT DISTINCT line_of_business, region_code, origin_start, valuation_date
              FROM first_reports JOIN vals ON valuation_date > origin_start) g
        LEFT JOIN (SELECT {_CELL}, count(*) AS members,
                          {', '.join(f'sum({m}) AS {m}' for m in (*MEASURES, *CARRIED.values()))}, {shares}
                   FROM cells GROUP BY {_CELL}) s USING ({_CELL})
        LEFT JOIN (SELECT {_CELL}, count(*) AS missing_members FROM missing_cells GROUP BY ALL) miss
          USING ({_CELL})"""


def _long_sql(grain: str) -> str:
    """One row per cell and measure. ``observed_value`` sums the members that reported; ``value``
    is that sum when nobody is missing, else NULL until completed (``development.complete_sql``).
    ``carried_claims`` and ``carried_value``: the claims quarantined at that valuation and the
    part of the cell they carry forward from their last accepted rows (``partials``)."""
    return " UNION ALL ".join(f"""
        SELECT scope, member_id, '{grain}' AS grain, line_of_business, region_code,
               '{m}' AS measure, {period_label(repr(grain), 'origin_start')} AS origin, origin_start,
               date_diff('month', origin_start, valuation_date + 1)::INTEGER AS age, valuation_date,
               CASE WHEN missing_members = 0 THEN coalesce({m}, 0) END::DECIMAL(38, 2) AS value,
               CASE WHEN scope = 'industry' OR missing_members = 0 THEN coalesce({m}, 0) END::DECIMAL(38, 2)
                   AS observed_value,
               members::INTEGER AS members, share_{m} AS max_member_share,
               missing_members::INTEGER AS missing_members,
               coalesce(carried, 0)::INTEGER AS carried_claims,
               coalesce({CARRIED[m]}, 0)::DECIMAL(38, 2) AS carried_value
        FROM wide""" for m in MEASURES)
