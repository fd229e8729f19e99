"""Cross-company linkage: the same claimant or vehicle claiming at two or more members.

A claim is linked when its claimant token, or the token of the vehicle of its policy, appears
in a claim of another member whose accident date is at most 90 days away. Claims are read at
each member's latest valuation. The table is for the regulator; a member's product shows only
that its own claim is linked and to how many other members (see ``pipelines.products``).

The table is rebuilt whole at every build (a new snapshot of one member can link or unlink
claims of every other). To stay cheap on a large lake it reads only the claims of each
member's latest snapshot (a literal filter, so DuckLake skips the files of older snapshots),
first keeps the tokens seen at two or more members (by a 64-bit hash), and joins only those.
"""

from __future__ import annotations

from collections import defaultdict

import duckdb

from pipelines.core.sql import literal

WINDOW_DAYS = 90
ORDER = "link_kind, link_id, member_id, claim_no"


def current_filter(con: duckdb.DuckDBPyConnection, claim_partials: str) -> str:
    """SQL matching the claim rows of each member's latest valuation (from the claim partials):
    one term per distinct latest valuation, with the list of its members (a term per member
    made every claim row test every member, a cost growing with the square of the members)."""
    latest = con.execute(f"SELECT member_id, max(valuation_date) FROM {claim_partials} "
                         "WHERE member_id IS NOT NULL GROUP BY 1 HAVING max(valuation_date) IS NOT NULL "
                         "ORDER BY 1").fetchall()
    members: dict = defaultdict(list)     # latest valuation -> its members: a few dates, an IN list each
    for member, valuation in latest:
        members[valuation].append(literal(member))
    terms = [f"(valuation_date = DATE '{v.isoformat()}' AND member_id IN ({', '.join(ms)}))"
             for v, ms in sorted(members.items())]
    return " OR ".join(terms) or "FALSE"


def linked_claims_sql(policy: str, claim: str, current: str, window_days: int = WINDOW_DAYS) -> str:
    """SQL for ``linked_claims``: one row per linked claim and kind of link; ``current`` is SQL
    selecting the claim rows at each member's latest valuation (``current_filter``)."""
    shared = "GROUP BY 1 HAVING min(member_id) <> max(member_id)"
    return f"""
        WITH claimants AS (  -- claimants seen at two or more members (hash collisions only add work)
            SELECT hash(claimant_id) AS h FROM {claim}
            WHERE ({current}) AND claimant_id IS NOT NULL {shared}),
        vins AS (SELECT member_id, policy_no, vin FROM {policy} WHERE vin IS NOT NULL),
        shared_vins AS (SELECT hash(vin) AS h FROM vins {shared}),
        vehicles AS (  -- the vehicle of each policy that has a vehicle seen at two or more members
            SELECT v.member_id, v.policy_no, max(v.vin) AS vin FROM vins v
            SEMI JOIN (SELECT member_id, policy_no FROM vins WHERE hash(vin) IN (SELECT h FROM shared_vins)) s
              ON s.member_id = v.member_id AND s.policy_no = v.policy_no
            GROUP BY 1, 2),
        current AS MATERIALIZED (
            SELECT member_id, claim_no, policy_no, accident_date, claimant_id, line_of_business
            FROM {claim}
            WHERE ({current}) AND (hash(claimant_id) IN (SELECT h FROM claimants)
                                   OR policy_no IN (SELECT policy_no FROM vehicles))),
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
