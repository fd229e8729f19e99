"""The experience mart: premium, exposure and losses by calendar period, line and province.

One row per cell (grain, period, line of business, province), industry-wide and per member,
with rollups over provinces (``region_code = 'ALL'``) and over lines and provinces
(``line_of_business = 'ALL'``):

- ``written_premium`` / ``written_exposure``: transactions whose accounting date is in the period;
- ``earned_premium`` / ``earned_exposure``: pro rata by day, summed exactly
  (``premium.earned_decimal_sql``) and rounded to the cent and to 6 decimals once per cell;
- ``claim_count``, ``paid_loss``, ``incurred_loss``: claims whose accident date is in the period,
  valued at each member's latest snapshot (accident-period basis; ``valuation_date`` is the
  latest valuation of the member, or of the industry);
- ``frequency`` = claims / earned exposure, ``severity`` = incurred / claims, ``pure_premium``
  = incurred / earned exposure, ``loss_ratio`` = incurred / earned premium; NULL when the base
  is not positive.

Periods are the calendar quarters from the first to the last accounting quarter of the
premium data, and the calendar years whose four quarters all lie in that range.
"""

from __future__ import annotations

from pipelines.marts.cells import max_share, period_label, ratio, rollup
from pipelines.marts.premium import earned_decimal_sql

CELL = ("grain", "period_start", "line_of_business", "region_code")
ORDER = "scope, member_id NULLS FIRST, grain, period_start, line_of_business, region_code"


def periods_sql(policy: str) -> str:
    """The calendar: (grain, period_start, period_end) covered by the premium data."""
    return f"""
        WITH bounds AS (
            SELECT min(date_trunc('quarter', accounting_date))::DATE AS lo,
                   max(date_trunc('quarter', accounting_date))::DATE AS hi FROM {policy}),
        quarters AS (
            SELECT unnest(generate_series(lo, hi, INTERVAL 3 MONTH))::DATE AS q FROM bounds)
        SELECT 'quarter' AS grain, q AS period_start,
               (q + INTERVAL 3 MONTH - INTERVAL 1 DAY)::DATE AS period_end FROM quarters
        UNION ALL
        SELECT 'year', q, (q + INTERVAL 1 YEAR - INTERVAL 1 DAY)::DATE FROM quarters
        WHERE month(q) = 1 AND (q + INTERVAL 9 MONTH)::DATE IN (SELECT q FROM quarters)"""


def _member_facts_sql(policy: str, claim: str) -> str:
    """Per member and base cell: written, earned and loss amounts (one UNION of three parts)."""
    ep = earned_decimal_sql("written_premium", "per.period_start", "(per.period_end + 1)", alias="p")
    ee = earned_decimal_sql("written_exposure", "per.period_start", "(per.period_end + 1)", alias="p")
    keys = "member_id, per.grain, per.period_start, line_of_business, region_code"
    return f"""
        SELECT {keys}, sum(written_premium) AS written_premium,
               sum(written_exposure) AS written_exposure
        FROM {policy} p JOIN periods per
          ON p.accounting_date BETWEEN per.period_start AND per.period_end
        GROUP BY ALL
        UNION ALL BY NAME
        SELECT {keys}, sum({ep}) AS earned_premium, sum({ee}) AS earned_exposure
        FROM {policy} p JOIN periods per
          ON p.effective_date <= per.period_end AND p.expiry_date > per.period_start
        GROUP BY ALL
        UNION ALL BY NAME
        SELECT {keys}, count(*) AS claim_count, sum(paid_to_date) AS paid_loss,
               sum(paid_to_date + case_reserve) AS incurred_loss
        FROM {claim} c JOIN latest USING (member_id) JOIN periods per
          ON c.accident_date BETWEEN per.period_start AND per.period_end
        WHERE c.valuation_date = latest.valuation_date
        GROUP BY ALL"""


_SUMS = """
        coalesce(sum(written_premium), 0) AS written_premium,
        coalesce(sum(written_exposure), 0) AS written_exposure,
        coalesce(sum(earned_premium), 0) AS earned_premium,
        coalesce(sum(earned_exposure), 0) AS earned_exposure,
        coalesce(sum(claim_count), 0) AS claim_count,
        coalesce(sum(paid_loss), 0) AS paid_loss,
        coalesce(sum(incurred_loss), 0) AS incurred_loss"""


def experience_sql(policy: str, claim: str) -> str:
    """The experience mart's rows (all columns but ``source_snapshot``)."""
    return f"""
        WITH periods AS ({periods_sql(policy)}),
        latest AS (SELECT member_id, max(valuation_date) AS valuation_date FROM {claim} GROUP BY 1),
        facts AS ({_member_facts_sql(policy, claim)}),
        {_cells_ctes()}
        {_experience_select()}"""


def _cells_ctes() -> str:
    """``member_cells`` at every rollup level, then the member and industry ``cells``."""
    return f"""
        member_cells AS (
            SELECT member_id, grain, period_start, {rollup('line_of_business')} AS line_of_business,
                   {rollup('region_code')} AS region_code, {_SUMS}
            FROM facts
            GROUP BY GROUPING SETS ((member_id, grain, period_start, line_of_business, region_code),
                                    (member_id, grain, period_start, line_of_business),
                                    (member_id, grain, period_start))),
        industry AS (
            SELECT NULL::VARCHAR AS member_id, {', '.join(CELL)},
                   sum(written_premium) AS written_premium, sum(written_exposure) AS written_exposure,
                   round(sum(earned_premium), 2)::DECIMAL(38, 2) AS earned_premium,
                   round(sum(earned_exposure), 6)::DECIMAL(38, 6) AS earned_exposure,
                   sum(claim_count) AS claim_count, sum(paid_loss) AS paid_loss,
                   sum(incurred_loss) AS incurred_loss, count(*) AS members,
                   greatest({max_share('earned_premium')}, {max_share('incurred_loss')})
                       AS max_member_share
            FROM member_cells GROUP BY ALL),
        cells AS (
            SELECT 'industry' AS scope, * FROM industry
            UNION ALL BY NAME
            SELECT 'member' AS scope, * REPLACE (
                       round(earned_premium, 2)::DECIMAL(38, 2) AS earned_premium,
                       round(earned_exposure, 6)::DECIMAL(38, 6) AS earned_exposure),
                   1 AS members, 1.0::DOUBLE AS max_member_share
            FROM member_cells)"""


def _experience_select() -> str:
    """Typed columns, the ratios (from the rounded amounts) and the losses' valuation date."""
    months = "(CASE WHEN grain = 'year' THEN 12 ELSE 3 END)"
    return f"""
        SELECT scope, member_id, grain, {period_label('grain', 'period_start')} AS period, period_start,
               (period_start + INTERVAL {months} MONTH - INTERVAL 1 DAY)::DATE AS period_end,
               line_of_business, region_code,
               written_premium::DECIMAL(38, 2) AS written_premium,
               written_exposure::DECIMAL(38, 6) AS written_exposure,
               earned_premium, earned_exposure, claim_count::BIGINT AS claim_count,
               paid_loss::DECIMAL(38, 2) AS paid_loss, incurred_loss::DECIMAL(38, 2) AS incurred_loss,
               {ratio('claim_count', 'earned_exposure')} AS frequency,
               {ratio('incurred_loss', 'claim_count')} AS severity,
               {ratio('incurred_loss', 'earned_exposure')} AS pure_premium,
               {ratio('incurred_loss', 'earned_premium')} AS loss_ratio,
               members::INTEGER AS members, max_member_share,
               (SELECT max(valuation_date) FROM latest l
                WHERE cells.member_id IS NULL OR l.member_id = cells.member_id) AS valuation_date
        FROM cells"""
