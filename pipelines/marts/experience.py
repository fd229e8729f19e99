"""The experience mart: premium, exposure and losses by calendar period, line and province.

One row per cell (grain, period, line of business, province), industry-wide and per member,
with rollups over provinces (``region_code = 'ALL'``) and over lines and provinces
(``line_of_business = 'ALL'``):

- ``written_premium`` / ``written_exposure``: transactions whose accounting date is in the period;
- ``earned_premium`` / ``earned_exposure``: pro rata by day, summed exactly (as DECIMAL, see
  ``partials``) and rounded to the cent and to 6 decimals once per cell;
- ``claim_count``, ``paid_loss``, ``incurred_loss``: claims whose accident date is in the period
  (accident-period basis), valued at one common valuation ``valuation_date``: the industry's
  latest (the last valuation of the claim data). Losses valued at different dates are not
  comparable, so a member without an accepted snapshot at that valuation (late, rejected)
  has no losses in the cell: it is left out of the numerators *and* of the denominators
  (``earned_premium_matched``, ``earned_exposure_matched``: the earned amounts of the members
  whose losses are in the cell), and counted in ``members_missing``; its own member row shows
  NULL losses and ratios;
- ``frequency`` = claims / matched earned exposure, ``severity`` = incurred / claims,
  ``pure_premium`` = incurred / matched earned exposure, ``loss_ratio`` = incurred / matched
  earned premium; NULL when the base is not positive.

Periods are the calendar quarters from the first to the last accounting quarter of the
premium data, and the calendar years whose four quarters all lie in that range.
"""

from __future__ import annotations

from pipelines.marts.cells import max_share, period_label, ratio, rollup

CELL = ("grain", "period_start", "line_of_business", "region_code")
ORDER = "scope, member_id NULLS FIRST, grain, period_start, line_of_business, region_code"


def periods_sql(policy_parts: str) -> str:
    """The calendar: (grain, period_start, period_end) covered by the premium data (the quarters
    from the first to the last with transactions accounted, and the whole years among them)."""
    return f"""
        WITH bounds AS (
            SELECT min(period_start) AS lo, max(period_start) AS hi FROM {policy_parts}
            WHERE grain = 'quarter' AND accounted > 0),
        quarters AS (
            SELECT unnest(generate_series(lo, hi, INTERVAL 3 MONTH))::DATE AS q FROM bounds)
        SELECT 'quarter' AS grain, q AS period_start,
               (q + INTERVAL 3 MONTH - INTERVAL 1 DAY)::DATE AS period_end FROM quarters
        UNION ALL
        SELECT 'year', q, (q + INTERVAL 1 YEAR - INTERVAL 1 DAY)::DATE FROM quarters
        WHERE month(q) = 1 AND (q + INTERVAL 9 MONTH)::DATE IN (SELECT q FROM quarters)"""


def _member_facts_sql(policy_parts: str, claim_parts: str) -> str:
    """Per member and base cell of the calendar: written, earned and loss amounts; ``usable``:
    whether the member's losses are valued at the common valuation."""
    keys = "member_id, per.grain, per.period_start, line_of_business, region_code"
    return f"""
        SELECT {keys}, written_premium, written_exposure, earned_premium, earned_exposure,
               member_id IN (SELECT member_id FROM reporters) AS usable
        FROM {policy_parts} p JOIN periods per USING (grain, period_start)
        UNION ALL BY NAME
        SELECT {keys}, sum(reported) AS claim_count, sum(paid) AS paid_loss, sum(incurred) AS incurred_loss,
               TRUE AS usable
        FROM {claim_parts} c JOIN periods per
          ON c.origin_start BETWEEN per.period_start AND per.period_end
        WHERE c.valuation_date = (SELECT valuation_date FROM valuation)
        GROUP BY ALL"""


_SUMS = """
        coalesce(sum(written_premium), 0) AS written_premium,
        coalesce(sum(written_exposure), 0) AS written_exposure,
        coalesce(sum(earned_premium), 0) AS earned_premium,
        coalesce(sum(earned_exposure), 0) AS earned_exposure,
        coalesce(sum(earned_premium) FILTER (WHERE usable), 0) AS earned_premium_matched,
        coalesce(sum(earned_exposure) FILTER (WHERE usable), 0) AS earned_exposure_matched,
        NOT bool_and(usable) AS missing,
        coalesce(sum(claim_count), 0) AS claim_count,
        coalesce(sum(paid_loss), 0) AS paid_loss,
        coalesce(sum(incurred_loss), 0) AS incurred_loss"""


def experience_sql(policy_parts: str, claim_parts: str, *, members: str | None = None) -> str:
    """The experience mart's rows (all columns but ``source_snapshot``) from the partials
    (``partials``); ``members`` (SQL) restricts the member-scope rows to those members."""
    return f"""
        WITH periods AS ({periods_sql(policy_parts)}),
        valuation AS (SELECT max(valuation_date) AS valuation_date FROM {claim_parts}),
        reporters AS (SELECT DISTINCT member_id FROM {claim_parts}
                      WHERE valuation_date = (SELECT valuation_date FROM valuation)),
        facts AS ({_member_facts_sql(policy_parts, claim_parts)}),
        {_cells_ctes(members)}
        {_experience_select()}"""


def _cells_ctes(members: str | None) -> str:
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
                   round(sum(earned_premium_matched), 2)::DECIMAL(38, 2) AS earned_premium_matched,
                   round(sum(earned_exposure_matched), 6)::DECIMAL(38, 6) AS earned_exposure_matched,
                   count(*) FILTER (WHERE missing) AS members_missing,
                   sum(claim_count) AS claim_count, sum(paid_loss) AS paid_loss,
                   sum(incurred_loss) AS incurred_loss, count(*) AS members,
                   greatest({max_share('earned_premium')}, {max_share('incurred_loss')})
                       AS max_member_share
            FROM member_cells GROUP BY ALL),
        cells AS (
            SELECT 'industry' AS scope, * FROM industry
            UNION ALL BY NAME
            SELECT 'member' AS scope, * EXCLUDE (missing) REPLACE (
                       round(earned_premium, 2)::DECIMAL(38, 2) AS earned_premium,
                       round(earned_exposure, 6)::DECIMAL(38, 6) AS earned_exposure,
                       round(earned_premium_matched, 2)::DECIMAL(38, 2) AS earned_premium_matched,
                       round(earned_exposure_matched, 6)::DECIMAL(38, 6) AS earned_exposure_matched,
                       CASE WHEN NOT missing THEN claim_count END AS claim_count,
                       CASE WHEN NOT missing THEN paid_loss END AS paid_loss,
                       CASE WHEN NOT missing THEN incurred_loss END AS incurred_loss),
                   missing::INTEGER AS members_missing, 1 AS members, 1.0::DOUBLE AS max_member_share
            FROM member_cells WHERE {f"member_id IN ({members})" if members else "TRUE"})"""


def _experience_select() -> str:
    """Typed columns, the ratios (from the rounded amounts, on the matched members) and the
    losses' valuation date."""
    months = "(CASE WHEN grain = 'year' THEN 12 ELSE 3 END)"
    return f"""
        SELECT scope, member_id, grain, {period_label('grain', 'period_start')} AS period, period_start,
               (period_start + INTERVAL {months} MONTH - INTERVAL 1 DAY)::DATE AS period_end,
               line_of_business, region_code,
               written_premium::DECIMAL(38, 2) AS written_premium,
               written_exposure::DECIMAL(38, 6) AS written_exposure,
               earned_premium, earned_exposure, claim_count::BIGINT AS claim_count,
               paid_loss::DECIMAL(38, 2) AS paid_loss, incurred_loss::DECIMAL(38, 2) AS incurred_loss,
               earned_premium_matched, earned_exposure_matched,
               {ratio('claim_count', 'earned_exposure_matched')} AS frequency,
               {ratio('incurred_loss', 'claim_count')} AS severity,
               {ratio('incurred_loss', 'earned_exposure_matched')} AS pure_premium,
               {ratio('incurred_loss', 'earned_premium_matched')} AS loss_ratio,
               members::INTEGER AS members, members_missing::INTEGER AS members_missing, max_member_share,
               (SELECT valuation_date FROM valuation) AS valuation_date
        FROM cells"""
