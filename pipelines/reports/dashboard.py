"""The platform dashboard, as plain data: the regulator's and the operators' view.

The member x period grid per dataset (accepted, late, nil return, exempt, rejected, pending,
missing, open, not owed, with resubmissions, superseded versions and declarations marked), the
operators' declarations, every member's scores, the most broken rules
industry-wide with their trend per period, the submission checks that failed, every
submission (linked to its report) and the files refused at intake.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.core.domain import SubmissionStatus as Status
from pipelines.reports.options import ReportOptions
from pipelines.reports.scorecard import rule_text
from pipelines.reports.scoring import KIND_DIMENSION, SCORES, SLOT_STATUSES, declarations, record, records


def dashboard_facts(con: duckdb.DuckDBPyConnection, options: ReportOptions, schemas_dir: Path) -> dict:
    return {
        "kind": "dashboard",
        "totals": _totals(con),
        "grids": _grids(con),
        "members": records(con, f"""
            SELECT m.member_id, m.name, {', '.join('s.' + x for x in SCORES)}
            FROM members m LEFT JOIN r_scores s ON s.member_id = m.member_id AND s.period IS NULL
            ORDER BY m.member_id"""),
        "rules": _top_rules(con, options.top_rules, schemas_dir),
        "checks": records(con, """
            SELECT rule_id, sum(failed) AS submissions, count(DISTINCT s.member_id) FILTER (WHERE failed > 0) AS members
            FROM r_rules r JOIN r_subs s USING (submission_id) WHERE r.kind = 'submission'
            GROUP BY rule_id HAVING sum(failed) > 0 ORDER BY submissions DESC, rule_id"""),
        "submissions": records(con, """
            SELECT s.submission_id, s.member_id, s.dataset, s.period, s.version, s.status,
                   strftime(s.received_at, '%Y-%m-%d') AS received_on, CAST(l.due_date AS VARCHAR) AS due_date,
                   greatest(0, date_diff('day', l.due_date, s.received_on)) AS days_late,
                   s.rows_total, s.rows_accepted, s.rows_quarantined, s.superseded_by
            FROM r_subs s JOIN r_slots l USING (member_id, dataset, period)
            ORDER BY s.member_id, s.dataset, s.period, s.version"""),
        "declarations": declarations(con),
        "refused": records(con, f"""
            SELECT file_name, strftime(received_at, '%Y-%m-%d %H:%M') AS received_at,
                   left(coalesce(verdict_reasons[1], ''), 300) AS reason
            FROM submissions WHERE status = {Status.REFUSED.sql} ORDER BY received_at, file_name"""),
    }


def _totals(con: duckdb.DuckDBPyConnection) -> dict:
    row = record(con, f"""
        SELECT count(*) AS submissions,
               count(*) FILTER (WHERE status = {Status.ACCEPTED.sql}) AS accepted,
               count(*) FILTER (WHERE status = {Status.REJECTED.sql}) AS rejected,
               count(*) FILTER (WHERE status = {Status.SUPERSEDED.sql}) AS superseded,
               count(*) FILTER (WHERE status IN ({Status.RECEIVED.sql}, {Status.HELD.sql})) AS pending,
               coalesce(sum(rows_accepted) FILTER (WHERE status = {Status.ACCEPTED.sql}), 0) AS rows_published,
               coalesce(sum(rows_quarantined), 0) AS rows_quarantined
        FROM r_subs""")
    slots = dict(con.execute("SELECT status, count(*) FROM r_slots GROUP BY status").fetchall())
    row["slots"] = {s: slots.get(s, 0) for s in SLOT_STATUSES}
    row["members"] = con.execute("SELECT count(*) FROM members").fetchone()[0]
    row["refused"] = con.execute(f"SELECT count(*) FROM submissions WHERE status = {Status.REFUSED.sql}").fetchone()[0]
    return row


def _grids(con: duckdb.DuckDBPyConnection) -> list[dict]:
    slots = records(con, """
        SELECT member_id, dataset, period, status, versions, rejected, superseded, current_id, latest_id,
               days_late, declarations FROM r_slots ORDER BY dataset DESC, member_id, period""")
    grids: dict[str, dict] = {}
    for s in slots:
        g = grids.setdefault(s["dataset"], {"dataset": s["dataset"], "periods": [], "rows": {}})
        if s["period"] not in g["periods"]:
            g["periods"].append(s["period"])
        g["rows"].setdefault(s["member_id"], {})[s["period"]] = {
            k: s[k] for k in ("status", "versions", "rejected", "superseded", "current_id", "latest_id", "days_late",
                              "declarations")}
    for g in grids.values():
        g["periods"].sort()
        g["rows"] = [{"member_id": m, "cells": [cells[p] for p in g["periods"]]} for m, cells in g["rows"].items()]
    return list(grids.values())


def _top_rules(con: duckdb.DuckDBPyConnection, top: int, schemas_dir: Path) -> list[dict]:
    """The rules that fail most rows over every processed version, and their rate per period."""
    rules = records(con, """
        SELECT r.dataset, r.rule_id, any_value(r.severity) AS severity, any_value(r.kind) AS kind,
               sum(r.failed) AS failed, sum(r.checked) AS checked,
               count(*) FILTER (WHERE r.failed > 0) AS submissions,
               count(DISTINCT s.member_id) FILTER (WHERE r.failed > 0) AS members,
               max(s.contract_version) AS contract_version
        FROM r_rules r JOIN r_subs s USING (submission_id) WHERE r.kind <> 'submission'
        GROUP BY r.dataset, r.rule_id HAVING sum(r.failed) > 0
        ORDER BY failed DESC, rule_id LIMIT ?""", [top])
    trend = con.execute("""
        SELECT r.rule_id, s.period, 1000.0 * sum(r.failed) / nullif(sum(r.checked), 0)
        FROM r_rules r JOIN r_subs s USING (submission_id)
        WHERE list_contains(?, r.rule_id) GROUP BY ALL ORDER BY s.period""",
                        [[r["rule_id"] for r in rules]]).fetchall()
    for r in rules:
        r.update(rule_text(r["dataset"], r.pop("contract_version"), r["rule_id"], schemas_dir))
        r["dimension"] = r["dimension"] or KIND_DIMENSION.get(r["kind"], "")
        r["trend"] = [{"period": p, "per_1000": round(v, 3) if v is not None else None}
                      for rid, p, v in trend if rid == r["rule_id"]]
    return rules
