"""Partial aggregates per slice: the only step of a build that reads the claim and premium rows.

A *slice* is what one accepted submission replaces: a member's dataset for one period
(``member_id``, ``period``). Every mart is assembled from two small tables of sums kept per
slice, never from the rows themselves:

``partials_claim``: per slice, line, province, accident quarter (``origin_start``) and
valuation date: ``paid`` (sum of paid to date), ``incurred`` (paid + case reserve),
``reported`` (claims), ``closed`` (claims closed) and ``first_report`` (earliest report date);
``carried``, ``carried_paid``, ``carried_incurred``, ``carried_closed``: the part of those that
comes from claims quarantined in the slice and carried forward from their last accepted row
(``carried_rows_sql``). A carried row is read when its slice is: resubmitting an earlier slice
of the claim updates it at the next full build (``--force``).

``partials_policy``: per slice, line, province, grain and calendar period, in two kinds of row:
written amounts of the transactions accounted in the period (``accounted`` transactions,
``written_premium``, ``written_exposure``) and amounts earned in it (``earned_premium``,
``earned_exposure``), for every quarter and year the cover touches (the calendar of the
experience mart is applied when the marts are assembled, so a slice's partials depend on that
slice alone).

Earning: the transactions of a slice, line and province with the same cover dates earn as
one: their summed written amount x days of the cover inside the period / days of the cover
(``premium.earned_decimal_sql``), as DECIMAL(38, 10). Sums of DECIMALs are exact, so a cell
is the same however its slices are added up, by a full build or after one new submission.

Sums of sums are the sums: the triangles, the experience cells and the industry rows built
from these tables equal those built from the rows (a rollup over provinces or over the
quarters of a year adds partials; the earliest report is the earliest of the earliest).
"""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.core.sql import literal
from pipelines.marts.premium import earned_decimal_sql

CLAIM, POLICY = "partials_claim", "partials_policy"
TABLES = {"claim": CLAIM, "policy": POLICY}     # source dataset -> its partials table
SLICE = ("member_id", "period")
Slice = tuple[str | None, str | None]
_STEPS = {"quarter": "INTERVAL 3 MONTH", "year": "INTERVAL 1 YEAR"}
CLAIM_ORDER = "member_id, period, line_of_business, region_code, origin_start, valuation_date"
POLICY_ORDER = "member_id, period, line_of_business, region_code, grain, period_start, accounted NULLS LAST"


def claim_partials_sql(claim: str, where: str = "TRUE", quarantine: str | None = None) -> str:
    """Claim partials of the rows of ``claim`` that match ``where``, with the rows carried
    forward for the claims quarantined in those slices (``carried_rows_sql``) when the
    ``quarantine`` table is given."""
    rows = f"SELECT *, 0 AS carried FROM {claim} WHERE {where}"
    if quarantine:
        rows += f" UNION ALL BY NAME SELECT * FROM ({carried_rows_sql(claim, quarantine, where)}) WHERE {where}"
    return f"""
        SELECT member_id, period, line_of_business, region_code,
               date_trunc('quarter', accident_date)::DATE AS origin_start, valuation_date,
               sum(paid_to_date) AS paid, sum(paid_to_date + case_reserve) AS incurred,
               count(*) AS reported, count(*) FILTER (WHERE claim_status = 'CLOSED') AS closed,
               min(report_date) AS first_report,
               sum(carried) AS carried, sum(paid_to_date) FILTER (WHERE carried = 1) AS carried_paid,
               sum(paid_to_date + case_reserve) FILTER (WHERE carried = 1) AS carried_incurred,
               count(*) FILTER (WHERE carried = 1 AND claim_status = 'CLOSED') AS carried_closed
        FROM ({rows})
        GROUP BY member_id, period, line_of_business, region_code, origin_start, valuation_date"""


def carried_rows_sql(claim: str, quarantine: str, where: str = "TRUE") -> str:
    """A claim whose row was quarantined in an accepted snapshot keeps its last accepted row
    there (``carried`` = 1), valued as at that row: a claim stays in every later snapshot, so
    leaving it out would make the cumulative cells dip and the factors fall below 1. The
    triangles show how many claims and how much of each cell were carried."""
    return f"""
        WITH slices AS (SELECT DISTINCT member_id, period, submission_id, valuation_date
                        FROM {claim} WHERE {where}),
        lost AS (
            SELECT DISTINCT s.member_id, s.period, s.valuation_date,
                   json_extract_string(q.record, '$.claim_no') AS claim_no
            FROM {quarantine} q JOIN slices s USING (submission_id)
            WHERE q.dataset = 'claim')
        SELECT c.* REPLACE (l.period AS period, l.valuation_date AS valuation_date), 1 AS carried
        FROM lost l
        JOIN {claim} c ON c.member_id = l.member_id AND c.claim_no = l.claim_no
         AND c.valuation_date < l.valuation_date
        ANTI JOIN (SELECT member_id, claim_no, valuation_date FROM {claim}) p
          ON p.member_id = l.member_id AND p.claim_no = l.claim_no AND p.valuation_date = l.valuation_date
        QUALIFY row_number() OVER (PARTITION BY l.member_id, l.claim_no, l.valuation_date
                                   ORDER BY c.valuation_date DESC) = 1"""


def policy_partials_sql(policy: str, where: str = "TRUE") -> str:
    """Policy partials of the rows of ``policy`` that match ``where``: written, then earned rows."""
    keys = "member_id, period, line_of_business, region_code"
    earned = " UNION ALL ".join(_earned_sql(grain) for grain in _STEPS)
    return f"""
        WITH rows AS (SELECT * FROM {policy} WHERE {where}),
        written AS (
            SELECT {keys}, date_trunc('quarter', accounting_date)::DATE AS period_start,
                   count(*) AS accounted, sum(written_premium) AS written_premium,
                   sum(written_exposure) AS written_exposure
            FROM rows WHERE accounting_date IS NOT NULL GROUP BY ALL),
        covers AS (
            SELECT {keys}, effective_date, expiry_date, sum(written_premium) AS written_premium,
                   sum(written_exposure) AS written_exposure
            FROM rows GROUP BY ALL)
        SELECT {keys}, 'quarter' AS grain, period_start, accounted, written_premium, written_exposure,
               NULL::DECIMAL(38, 10) AS earned_premium, NULL::DECIMAL(38, 10) AS earned_exposure
        FROM written
        UNION ALL
        SELECT {keys}, 'year', date_trunc('year', period_start)::DATE, sum(accounted)::BIGINT,
               sum(written_premium), sum(written_exposure), NULL, NULL
        FROM written GROUP BY ALL
        UNION ALL {earned}"""


def _earned_sql(grain: str) -> str:
    """Earned rows of one grain: every period from the one holding the effective date to the
    one holding the last day of cover (exactly the periods the cover overlaps)."""
    step = _STEPS[grain]
    end = f"(period_start + {step})::DATE"
    return f"""
        SELECT member_id, period, line_of_business, region_code, '{grain}', period_start, NULL, NULL, NULL,
               sum({earned_decimal_sql('written_premium', 'period_start', end)}),
               sum({earned_decimal_sql('written_exposure', 'period_start', end)})
        FROM (SELECT *, unnest(generate_series(date_trunc('{grain}', effective_date),
                                               date_trunc('{grain}', expiry_date - 1), {step}))::DATE
                        AS period_start
              FROM covers)
        GROUP BY ALL"""


def slice_filter(slices: Iterable[Slice]) -> str:
    """SQL matching the rows of ``slices`` (FALSE for none), literal so that it prunes files."""
    terms = [" AND ".join(f"{col} = {literal(v)}" if v is not None else f"{col} IS NULL"
                          for col, v in zip(SLICE, s, strict=True)) for s in sorted(slices, key=_sort_key)]
    return " OR ".join(f"({t})" for t in terms) or "FALSE"


def _sort_key(s: Slice) -> tuple[str, str]:
    return (s[0] or "", s[1] or "")
