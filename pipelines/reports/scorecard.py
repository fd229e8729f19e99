"""A member's scorecard across periods, as plain data.

One score per quality dimension and an overall one (``scoring.r_scores``), per period for
the trend and over all periods for the headline; the member's position in the industry
distribution of each score, where the other members appear only as anonymous values; the
member's slots with their status (and the operators' declarations about them); and the rules the member breaks most, with their fixes.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.contracts import load_contract
from pipelines.errors import ContractError, NotFound
from pipelines.reports.options import ReportOptions
from pipelines.reports.scoring import KIND_DIMENSION, SCORES, declarations, dimension_of, record, records

MIN_MEMBERS_TO_COMPARE = 3   # fewer members than this: no distribution, no industry median


def member_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT member_id FROM members ORDER BY member_id").fetchall()]


def scorecard_facts(con: duckdb.DuckDBPyConnection, member_id: str, options: ReportOptions,
                    schemas_dir: Path) -> dict:
    member = record(con, "SELECT member_id, name FROM members WHERE member_id = ?", [member_id])
    if member is None:
        raise NotFound(f"Member {member_id!r} is not registered.", hint="List members with `insurshare members list`.")
    overall = record(con, "SELECT * FROM r_scores WHERE member_id = ? AND period IS NULL", [member_id]) or {}
    return {
        "kind": "scorecard",
        "member": member,
        "scores": {s: overall.get(s) for s in SCORES},
        "counts": {k: v for k, v in overall.items() if k not in SCORES and k not in ("member_id", "period")},
        "periods": records(con, "SELECT * EXCLUDE (member_id) FROM r_scores WHERE member_id = ? "
                                "AND period IS NOT NULL ORDER BY period", [member_id]),
        "positions": _positions(con, member_id),
        "industry_median": _industry_median(con),
        "slots": records(con, """
            SELECT dataset, period, status, owed, declarations, versions, rejected, superseded, current_id, latest_id,
                   CAST(due_date AS VARCHAR) AS due_date, days_late,
                   strftime(first_accepted_at, '%Y-%m-%d') AS first_accepted_on
            FROM r_slots WHERE member_id = ? AND (status <> 'not_owed' OR versions > 0)
            ORDER BY period, dataset""", [member_id]),
        "rules": _member_rules(con, member_id, options.top_rules, schemas_dir),
        "declarations": declarations(con, member_id),
    }


def _positions(con: duckdb.DuckDBPyConnection, member_id: str) -> dict:
    """Per score: the member's value and rank, and the anonymous distribution of all members."""
    rows = records(con, """
        SELECT p.score, p.value, p.rank, p.members, p.below, p.industry_median,
               (SELECT list(o.value ORDER BY o.value) FROM r_positions o WHERE o.score = p.score) AS distribution
        FROM r_positions p WHERE p.member_id = ?""", [member_id])
    out = {}
    for r in rows:
        comparable = r["members"] >= MIN_MEMBERS_TO_COMPARE
        out[r["score"]] = {
            "value": r["value"], "rank": r["rank"], "members": r["members"],
            "better_than": r["below"] if comparable else None,
            "industry_median": r["industry_median"] if comparable else None,
            "distribution": r["distribution"] if comparable else [],
        }
    return out


def _industry_median(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, float | None]]:
    """Per score, the industry's median per period, where enough members were scored."""
    out = {}
    for score in SCORES:
        rows = con.execute(f"SELECT period, median({score}), count({score}) FROM r_scores "
                           "WHERE period IS NOT NULL GROUP BY period ORDER BY period").fetchall()
        out[score] = {p: (round(m, 2) if n >= MIN_MEMBERS_TO_COMPARE and m is not None else None)
                      for p, m, n in rows}
    return out


def _member_rules(con: duckdb.DuckDBPyConnection, member_id: str, top: int, schemas_dir: Path) -> list[dict]:
    rows = records(con, """
        SELECT r.dataset, r.rule_id, any_value(r.severity) AS severity, any_value(r.kind) AS kind,
               sum(r.failed) AS failed, sum(r.checked) AS checked,
               count(*) FILTER (WHERE r.failed > 0) AS submissions,
               max(s.contract_version) AS contract_version
        FROM r_rules r JOIN r_subs s USING (submission_id)
        WHERE s.member_id = ? AND r.kind <> 'submission'
        GROUP BY ALL HAVING sum(r.failed) > 0 ORDER BY failed DESC, rule_id LIMIT ?""", [member_id, top])
    for r in rows:
        r.update(rule_text(r["dataset"], r.pop("contract_version"), r["rule_id"], schemas_dir))
        r["dimension"] = r["dimension"] or KIND_DIMENSION.get(r["kind"], "")
    return rows


def rule_text(dataset: str, version: str | None, rule_id: str, schemas_dir: Path) -> dict:
    """What the rule is, where it is defined and how to fix the data (empty if unknown)."""
    try:
        rule = load_contract(dataset, version, schemas_dir).rule(rule_id)
    except ContractError:
        return {"description": "", "fix": "", "source": "", "dimension": ""}
    return {"description": rule.description, "fix": rule.fix, "source": rule.source, "dimension": dimension_of(rule)}
