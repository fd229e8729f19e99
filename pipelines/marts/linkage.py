"""Cross-company linkage: the same claimant or vehicle claiming at two or more members.

A claim is linked when its claimant token, or the token of the vehicle of its policy, appears
in a claim of another member whose accident date is at most 90 days away. Claims are read at
each member's latest valuation. The table is for the regulator; a member's product shows only
that its own claim is linked and to how many other members (see ``pipelines.products``).
"""

from __future__ import annotations

WINDOW_DAYS = 90
ORDER = "link_kind, link_id, member_id, claim_no"


def linked_claims_sql(policy: str, claim: str, window_days: int = WINDOW_DAYS) -> str:
    """SQL for ``linked_claims``: one row per linked claim and kind of link."""
    return f"""
        WITH latest AS (SELECT member_id, max(valuation_date) AS v FROM {claim} GROUP BY 1),
        current AS (
            SELECT c.member_id, c.claim_no, c.policy_no, c.accident_date, c.claimant_id, c.line_of_business
            FROM {claim} c JOIN latest l ON c.member_id = l.member_id AND c.valuation_date = l.v),
        vehicles AS (
            SELECT member_id, policy_no, max(vin) AS vin FROM {policy} WHERE vin IS NOT NULL GROUP BY 1, 2),
        tokens AS (
            SELECT member_id, claim_no, accident_date, line_of_business, 'claimant' AS link_kind,
                   claimant_id AS token
            FROM current WHERE claimant_id IS NOT NULL
            UNION ALL
            SELECT c.member_id, c.claim_no, c.accident_date, c.line_of_business, 'vehicle', v.vin
            FROM current c JOIN vehicles v USING (member_id, policy_no)),
        pairs AS (
            SELECT a.*, b.member_id AS other_member, b.claim_no AS other_claim
            FROM tokens a JOIN tokens b
              ON a.link_kind = b.link_kind AND a.token = b.token AND a.member_id <> b.member_id
             AND abs(date_diff('day', a.accident_date, b.accident_date)) <= {int(window_days)})
        SELECT link_kind, md5(link_kind || ':' || token) AS link_id, token, member_id, claim_no,
               any_value(accident_date) AS accident_date, any_value(line_of_business) AS line_of_business,
               count(DISTINCT other_member) AS other_members, count(*) AS other_claims
        FROM pairs GROUP BY link_kind, token, member_id, claim_no"""
