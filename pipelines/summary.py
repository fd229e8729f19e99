"""What the platform holds, in words: submission status and the demo's summary."""

from __future__ import annotations

import datetime as dt

import duckdb

from pipelines.config import Settings
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.core.domain import parse_period
from pipelines.core.tables import frame_text
from pipelines.marts.premium import earned_sql
from pipelines.store import reader


def status_table(settings: Settings, member: str | None = None, period: str | None = None) -> str:
    """Submissions by member and period with their verdicts, newest version last."""
    where, args = [], []
    if member:
        where.append("member_id = ?")
        args.append(member)
    if period:
        where.append("period = ?")
        args.append(period)
    sql = ("SELECT member_id AS member, period, dataset, version AS v, status, rows_total AS rows, "
           "rows_accepted AS published, rows_quarantined AS quarantined, "
           "strftime(received_at, '%Y-%m-%d %H:%M') AS received, submission_id "
           "FROM submissions " + (f"WHERE {' AND '.join(where)} " if where else "")
           + "ORDER BY member_id, period, dataset, version NULLS LAST, received_at")
    with reader(settings) as con:
        frame = con.execute(sql, args).df()
    if frame.empty:
        return "No submissions yet."
    return frame_text(frame)


def loss_ratio_by_line(con: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date) -> duckdb.DuckDBPyRelation:
    """Accident-period loss ratio by line over ``[start, end]``: incurred at each member's latest
    valuation for accidents in the window, over premium earned in the window."""
    ep = earned_sql("written_premium", start, end)
    return con.sql(f"""
        WITH earned AS (
            SELECT line_of_business, sum({ep}) AS earned_premium, count(DISTINCT member_id) AS members
            FROM policy GROUP BY 1),
        latest AS (SELECT member_id, max(valuation_date) AS v FROM claim GROUP BY 1),
        incurred AS (
            SELECT c.line_of_business, sum(c.paid_to_date + c.case_reserve) AS incurred, count(*) AS claims
            FROM claim c JOIN latest l ON c.member_id = l.member_id AND c.valuation_date = l.v
            WHERE c.accident_date BETWEEN DATE '{start}' AND DATE '{end}' GROUP BY 1)
        SELECT e.line_of_business AS line, e.members, round(e.earned_premium, 2) AS earned_premium,
               round(coalesce(i.incurred, 0), 2) AS incurred, coalesce(i.claims, 0) AS claims,
               CASE WHEN e.earned_premium > 0
                    THEN round(coalesce(i.incurred, 0) / e.earned_premium, 4) END AS loss_ratio
        FROM earned e LEFT JOIN incurred i USING (line_of_business)
        ORDER BY e.earned_premium DESC""")


def demo_summary(settings: Settings, top_rules: int = 8) -> str:
    with reader(settings) as con:
        per_member = con.sql(f"""
            SELECT member_id AS member,
                   count(*) FILTER (WHERE status = {Status.ACCEPTED.sql}) AS accepted,
                   count(*) FILTER (WHERE status = {Status.REJECTED.sql}) AS rejected,
                   count(*) FILTER (WHERE status = {Status.SUPERSEDED.sql}) AS superseded,
                   count(*) FILTER (WHERE status IN ({Status.RECEIVED.sql}, {Status.HELD.sql})) AS pending,
                   CAST(coalesce(sum(rows_accepted) FILTER (WHERE status = {Status.ACCEPTED.sql}), 0) AS BIGINT) AS rows_published,
                   CAST(coalesce(sum(rows_quarantined), 0) AS BIGINT) AS rows_quarantined
            FROM submissions WHERE status <> {Status.REFUSED.sql} GROUP BY 1 ORDER BY 1""").df()
        refused = con.sql(f"SELECT count(*) FROM submissions WHERE status = {Status.REFUSED.sql}").fetchone()[0]
        rules = con.sql(f"""
            SELECT r.rule_id AS rule, r.severity, CAST(sum(r.failed) AS BIGINT) AS rows_failed,
                   count(DISTINCT r.submission_id) AS submissions
            FROM rule_results r JOIN submissions s USING (submission_id)
            WHERE r.failed > 0 GROUP BY 1, 2 ORDER BY rows_failed DESC, rule LIMIT {int(top_rules)}""").df()
        periods = [p for (p,) in con.sql("SELECT DISTINCT period FROM policy ORDER BY 1").fetchall()]
        ratios = None
        if periods:
            start, end = parse_period(periods[0]).start, parse_period(periods[-1]).end
            ratios = loss_ratio_by_line(con, start, end).df()
    lines = ["Submissions per member", frame_text(per_member), ""]
    if refused:
        lines += [f"Refused at intake (unknown member, period, dataset or manifest): {refused}", ""]
    lines += ["Most broken rules (rows failing, all versions)", frame_text(rules), ""]
    if ratios is not None:
        lines += [f"Industry loss ratio by line of business, accidents {start} to {end} "
                  "(incurred at latest valuation / earned premium)",
                  frame_text(ratios), ""]
    lines += ["Where to look next:",
              "  insurshare status                      submissions and verdicts",
              "  insurshare query \"SHOW TABLES\"         what the lake holds",
              "  insurshare query \"SELECT * FROM quarantine LIMIT 5\"",
              "  insurshare query \"SELECT * FROM snapshots()\"  (the lake's history; use --as-of N)"]
    return "\n".join(lines)
