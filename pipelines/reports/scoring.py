"""Slots and scores: what every report stands on, computed from the lake in DuckDB SQL.

A **slot** is one member x dataset x period of a dataset's window, which runs from the first
period that any member reported for it or that a calendar starts at, to the last period that any
member reported (gaps filled). Whether the member *owes* a slot is data
(``pipelines.calendars``): its reporting calendar for the dataset (quarterly: every quarter;
annual: the year's last quarter; from and until a period), or, without a calendar, every period
from the first one that a member without a calendar reported. An operator's declaration changes
one slot: a nil return completes it with zero rows (on time, no penalty), an exemption removes
the obligation, an extension moves the due date. A slot is due ``due_days`` (per dataset
contract, 45 by default) after its period ends, or at its extension's date when later. A slot
not owed is never "missing" and never judged for timeliness.

``prepare`` creates temporary tables on a connection that has the lake as its default schema:

- ``r_subs``: the submissions of registered members (refused files excluded);
- ``r_slots``: one row per slot with its status (accepted, late, nil, exempt, rejected,
  pending, missing, open, not_owed), whether it is owed, its declarations, versions, the current and the first accepted submission, and days late;
- ``r_scores``: scores per member and period (``period`` NULL: all periods), one column per
  dimension of ``DIMENSIONS`` and ``overall``;
- ``r_positions``: each member's rank in the industry distribution of each score.

The definitions are in the README ("Quality reports"); ``KIND_DIMENSION`` maps rule kinds of
the contracts to dimensions.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from pipelines.contracts import DatasetContract, Rule, load_contract
from pipelines.core.domain import RuleKind
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.core.sql import literal

DIMENSIONS = ("timeliness", "completeness", "validity", "uniqueness", "consistency",
              "reconciliation", "resubmissions")
SCORES = (*DIMENSIONS, "overall")

KIND_DIMENSION = {
    "required": "completeness",
    "type": "validity", "codes": "validity", "pattern": "validity", "free_text": "validity",
    "max_length": "validity", "range": "validity", "check_digit": "validity", "identifiers_in_text": "validity",
    "unique": "uniqueness", "unique_across_periods": "uniqueness",
    "compare": "consistency", "resident_id_agrees": "consistency", "exists_in": "consistency",
}


def dimension_of(rule: Rule) -> str:
    """The quality dimension a rule measures: by its kind, except that a check that applies
    only under a condition on another column (``when``) is a cross-field check (consistency)."""
    if rule.kind != RuleKind.REQUIRED and any(col not in rule.columns for col in rule.when):
        return "consistency"
    return KIND_DIMENSION[rule.kind]


DEFINITIONS = {
    "timeliness": "Share of due slots (member x dataset x period that the member's calendar says it owes, past "
                  "its due date or already accepted) whose first accepted version arrived by the due date (period "
                  "end + the dataset's due_days, or a declared extension); a declared nil return counts as on time, "
                  "an exempted slot and a slot the calendar does not owe are not judged.",
    "completeness": "100 x (1 - failures of required-field rules / rows checked), over every processed version.",
    "validity": "100 x (1 - failures of type, code-list, pattern, range, length, formula and check-digit rules "
                "/ rows checked).",
    "uniqueness": "100 x (1 - failures of key-uniqueness rules (in the file and across periods) / rows checked).",
    "consistency": "100 x (1 - failures of cross-field rules (comparisons between columns, checks that apply "
                   "under a condition on another column, identity number against birth date and sex) and "
                   "cross-dataset rules / rows checked).",
    "reconciliation": "Share of versions read row by row whose row count and control totals reconciled "
                      "with the manifest.",
    "resubmissions": "Share of slots with a processed version that needed exactly one file (accepted first "
                     "time, never replaced).",
    "overall": "The mean of the dimension scores that apply.",
}

SLOT_STATUSES = {
    "accepted": "accepted on time",
    "late": "accepted after the due date",
    "rejected": "rejected, no accepted version",
    "pending": "received, not processed yet",
    "nil": "nil return declared: no business, complete with zero rows",
    "exempt": "exempted by an operator's declaration",
    "missing": "nothing received and past due",
    "open": "not due yet",
    "not_owed": "not owed under the member's reporting calendar",
}


def records(con: duckdb.DuckDBPyConnection, sql: str, args: list | tuple = ()) -> list[dict]:
    """Rows of ``sql`` as dicts keyed by column name."""
    cur = con.execute(sql, list(args))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def record(con: duckdb.DuckDBPyConnection, sql: str, args: list | tuple = ()) -> dict | None:
    rows = records(con, sql, args)
    return rows[0] if rows else None


def declarations(con: duckdb.DuckDBPyConnection, member_id: str | None = None) -> list[dict]:
    """The operators' declarations (of ``member_id`` when given) as the reports show them."""
    return records(con, """
        SELECT declaration_id, kind, member_id, dataset, period, reason, CAST(until AS VARCHAR) AS until,
               strftime(declared_at, '%Y-%m-%d') AS declared_on
        FROM r_declarations WHERE ? IS NULL OR member_id = ?
        ORDER BY member_id, dataset, period, declared_at""", [member_id, member_id])


def rule_dimensions(contracts: list[DatasetContract]) -> dict[tuple[str, str], str]:
    """(dataset, rule id) -> dimension over ``contracts``; the first contract naming a rule wins."""
    out: dict[tuple[str, str], str] = {}
    for c in contracts:
        for r in c.rules:
            out.setdefault((c.dataset, r.id), dimension_of(r))
    return out


def _values(rows: list[tuple]) -> str:
    return ", ".join("(" + ", ".join(str(v) if isinstance(v, int) else literal(str(v)) for v in row) + ")"
                     for row in rows)


def prepare(con: duckdb.DuckDBPyConnection, contracts: list[DatasetContract], today: dt.date,
            schemas_dir: Path) -> None:
    """Create the ``r_*`` temporary tables (see the module docstring) as of ``today``."""
    cfg = _values([(c.dataset, c.due_days, c.grain) for c in contracts])
    kinds = _values(sorted(KIND_DIMENSION.items()))
    con.execute(f"CREATE OR REPLACE TEMP TABLE r_cfg(dataset VARCHAR, due_days INTEGER, grain VARCHAR); "
                f"INSERT INTO r_cfg VALUES {cfg}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE r_kinds(kind VARCHAR, dimension VARCHAR); "
                f"INSERT INTO r_kinds VALUES {kinds}")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE r_subs AS
        SELECT s.*, CAST(s.received_at AS DATE) AS received_on
        FROM submissions s SEMI JOIN members m ON m.member_id = s.member_id
        WHERE s.status <> {Status.REFUSED.sql} AND s.dataset IN (SELECT dataset FROM r_cfg)""")
    used = con.execute("SELECT DISTINCT dataset, contract_version FROM r_subs ORDER BY ALL").fetchall()
    versions = [*contracts, *(load_contract(d, v, schemas_dir) for d, v in used if v)]
    con.execute("CREATE OR REPLACE TEMP TABLE r_rule_dims(dataset VARCHAR, rule_id VARCHAR, dimension VARCHAR)")
    con.executemany("INSERT INTO r_rule_dims VALUES (?, ?, ?)",
                    [[d, r, dim] for (d, r), dim in sorted(rule_dimensions(versions).items())])
    _obligations(con)
    con.execute(_SLOTS_SQL, [today] * 4)
    con.execute(_SCORES_SQL)
    con.execute(_POSITIONS_SQL)


def _obligations(con: duckdb.DuckDBPyConnection) -> None:
    """``r_calendars`` and ``r_declarations``: the lake's tables, or empty ones in a lake that
    predates them (the reports read the lake read-only and cannot create them)."""
    have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = "
                                      "current_database()").fetchall()}
    for name, ddl in (("calendars", "member_id VARCHAR, dataset VARCHAR, frequency VARCHAR, from_period VARCHAR, "
                                    "until_period VARCHAR"),
                      ("declarations", "declaration_id VARCHAR, kind VARCHAR, member_id VARCHAR, dataset VARCHAR, "
                                       "period VARCHAR, reason VARCHAR, until DATE, declared_at TIMESTAMP")):
        con.execute(f"CREATE OR REPLACE TEMP TABLE r_{name}({ddl})")
        if name in have:
            columns = ", ".join(part.split()[0] for part in ddl.split(", "))
            con.execute(f"INSERT INTO r_{name} SELECT {columns} FROM {name}")


def _index(period: str, grain: str) -> str:
    """SQL: the period's position on its grain's axis (quarters: year x 4 + quarter - 1)."""
    return (f"CASE WHEN {grain} = 'quarter' THEN CAST(left({period}, 4) AS INTEGER) * 4 "
            f"+ CAST(right({period}, 1) AS INTEGER) - 1 ELSE CAST({period} AS INTEGER) END")


_SLOTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE r_slots AS
WITH idx AS (
    SELECT DISTINCT s.member_id, s.dataset, c.grain, s.period, {_index('s.period', 'c.grain')} AS i,
           EXISTS (SELECT 1 FROM r_calendars k WHERE k.member_id = s.member_id AND k.dataset = s.dataset)
               AS calendared
    FROM r_subs s JOIN r_cfg c USING (dataset)),
cal AS (
    SELECT k.member_id, k.dataset, k.frequency, c.grain, {_index('k.from_period', 'c.grain')} AS lo,
           {_index('k.until_period', 'c.grain')} AS until_i,
           lead({_index('k.from_period', 'c.grain')}) OVER (PARTITION BY k.member_id, k.dataset
                                                           ORDER BY k.from_period) AS next_lo
    FROM r_calendars k JOIN r_cfg c USING (dataset)),
bounds AS (
    SELECT x.dataset, x.grain, least(min(x.i), any_value(k.lo)) AS lo, max(x.i) AS hi,
           min(x.i) FILTER (WHERE NOT x.calendared) AS default_lo
    FROM idx x LEFT JOIN (SELECT dataset, min(lo) AS lo FROM cal GROUP BY dataset) k ON k.dataset = x.dataset
    GROUP BY x.dataset, x.grain),
owed AS (
    SELECT m.member_id, b.dataset, g.i,
           CASE WHEN NOT EXISTS (SELECT 1 FROM cal k WHERE k.member_id = m.member_id AND k.dataset = b.dataset)
                THEN g.i >= coalesce(b.default_lo, b.lo)
                ELSE EXISTS (SELECT 1 FROM cal k WHERE k.member_id = m.member_id AND k.dataset = b.dataset
                             AND g.i >= k.lo AND (k.until_i IS NULL OR g.i <= k.until_i)
                             AND (k.next_lo IS NULL OR g.i < k.next_lo)
                             AND (k.frequency = 'quarterly' OR k.grain = 'year' OR g.i % 4 = 3)) END AS owed
    FROM members m CROSS JOIN bounds b, LATERAL (SELECT unnest(range(b.lo, b.hi + 1)) AS i) g),
decl AS (
    SELECT member_id, dataset, period,
           bool_or(kind = 'nil-return') AS nil, bool_or(kind = 'exemption') AS exempt,
           max(until) FILTER (WHERE kind = 'extension') AS extended_to,
           list(kind || ': ' || reason ORDER BY declared_at) AS declarations
    FROM r_declarations GROUP BY ALL),
periods AS (
    SELECT b.dataset, g.i,
           CASE WHEN b.grain = 'quarter' THEN printf('%dQ%d', g.i // 4, g.i % 4 + 1)
                ELSE CAST(g.i AS VARCHAR) END AS period,
           CASE WHEN b.grain = 'quarter' THEN last_day(make_date(g.i // 4, 3 * (g.i % 4) + 3, 1))
                ELSE make_date(g.i, 12, 31) END AS period_end
    FROM bounds b, LATERAL (SELECT unnest(range(b.lo, b.hi + 1)) AS i) g),
agg AS (
    SELECT member_id, dataset, period,
           count(*) AS versions,
           count(*) FILTER (WHERE status IN ({Status.ACCEPTED.sql}, {Status.REJECTED.sql}, {Status.SUPERSEDED.sql})) AS processed,
           count(*) FILTER (WHERE status IN ({Status.RECEIVED.sql}, {Status.HELD.sql})) AS pending,
           count(*) FILTER (WHERE status = {Status.REJECTED.sql}) AS rejected,
           count(*) FILTER (WHERE status = {Status.SUPERSEDED.sql}) AS superseded,
           max(submission_id) FILTER (WHERE status = {Status.ACCEPTED.sql}) AS current_id,
           arg_max(submission_id, version) AS latest_id,
           arg_max(status, version) AS latest_status,
           min(received_at) AS first_received_at,
           min(received_at) FILTER (WHERE verdict = 'accepted') AS first_accepted_at
    FROM r_subs GROUP BY ALL),
slots AS (
    SELECT m.member_id, p.dataset, p.period, p.i AS period_index, p.period_end,
           o.owed AND NOT coalesce(d.exempt, false) AS owed, coalesce(d.nil, false) AS nil,
           coalesce(d.exempt, false) AS exempt, d.declarations,
           greatest(CAST(p.period_end + c.due_days AS DATE), d.extended_to) AS due_date,
           coalesce(a.versions, 0) AS versions, coalesce(a.processed, 0) AS processed,
           coalesce(a.pending, 0) AS pending, coalesce(a.rejected, 0) AS rejected,
           coalesce(a.superseded, 0) AS superseded,
           a.current_id, a.latest_id, a.latest_status, a.first_received_at, a.first_accepted_at
    FROM members m CROSS JOIN periods p JOIN r_cfg c USING (dataset)
    JOIN owed o ON o.member_id = m.member_id AND o.dataset = p.dataset AND o.i = p.i
    LEFT JOIN decl d ON d.member_id = m.member_id AND d.dataset = p.dataset AND d.period = p.period
    LEFT JOIN agg a ON a.member_id = m.member_id AND a.dataset = p.dataset AND a.period = p.period)
SELECT *,
       CASE WHEN current_id IS NOT NULL AND CAST(first_accepted_at AS DATE) > due_date THEN 'late'
            WHEN current_id IS NOT NULL THEN 'accepted'
            WHEN nil THEN 'nil'
            WHEN exempt THEN 'exempt'
            WHEN pending > 0 THEN 'pending'
            WHEN rejected > 0 THEN 'rejected'
            WHEN NOT owed THEN 'not_owed'
            WHEN versions = 0 AND due_date < ?::DATE THEN 'missing'
            ELSE 'open' END AS status,
       (owed OR nil) AND (nil OR first_accepted_at IS NOT NULL OR due_date < ?::DATE) AS timeliness_judged,
       coalesce(CAST(first_accepted_at AS DATE) <= due_date, nil) AS on_time,
       CASE WHEN first_accepted_at IS NOT NULL
                 THEN greatest(0, date_diff('day', due_date, CAST(first_accepted_at AS DATE)))
            WHEN owed AND NOT nil AND due_date < ?::DATE THEN date_diff('day', due_date, ?::DATE) END AS days_late,
       versions = 1 AND current_id IS NOT NULL AS first_time_right
FROM slots
"""

_SCORES_SQL = f"""
CREATE OR REPLACE TEMP TABLE r_scores AS
WITH slot_part AS (
    SELECT member_id, period,
           count(*) FILTER (WHERE timeliness_judged) AS slots_judged,
           count(*) FILTER (WHERE timeliness_judged AND on_time) AS slots_on_time,
           count(*) FILTER (WHERE processed > 0) AS slots_processed,
           count(*) FILTER (WHERE processed > 0 AND first_time_right) AS slots_first_time_right
    FROM r_slots GROUP BY GROUPING SETS ((member_id, period), (member_id))),
checked_subs AS (
    SELECT * FROM r_subs WHERE status IN ({Status.ACCEPTED.sql}, {Status.REJECTED.sql}, {Status.SUPERSEDED.sql}) AND rows_total > 0),
sub_part AS (
    SELECT s.member_id, s.period, count(*) AS submissions_checked, sum(s.rows_total) AS rows_checked,
           count(*) FILTER (WHERE NOT EXISTS (
               SELECT 1 FROM rule_results r WHERE r.submission_id = s.submission_id
               AND r.rule_id IN ('SUB-ROW-COUNT', 'SUB-CONTROL-TOTAL') AND r.failed > 0)) AS submissions_reconciled
    FROM checked_subs s GROUP BY GROUPING SETS ((s.member_id, s.period), (s.member_id))),
fail_part AS (
    SELECT s.member_id, s.period,
           sum(r.failed) FILTER (WHERE r.dimension = 'completeness') AS completeness_failures,
           sum(r.failed) FILTER (WHERE r.dimension = 'validity') AS validity_failures,
           sum(r.failed) FILTER (WHERE r.dimension = 'uniqueness') AS uniqueness_failures,
           sum(r.failed) FILTER (WHERE r.dimension = 'consistency') AS consistency_failures
    FROM checked_subs s JOIN (
        SELECT r.submission_id, r.failed, coalesce(d.dimension, k.dimension) AS dimension
        FROM rule_results r LEFT JOIN r_rule_dims d ON d.dataset = r.dataset AND d.rule_id = r.rule_id
        LEFT JOIN r_kinds k ON k.kind = r.kind) r USING (submission_id)
    GROUP BY GROUPING SETS ((s.member_id, s.period), (s.member_id))),
counts AS (
    SELECT t.member_id, t.period, t.slots_judged, t.slots_on_time, t.slots_processed,
           t.slots_first_time_right, coalesce(s.submissions_checked, 0) AS submissions_checked,
           coalesce(s.submissions_reconciled, 0) AS submissions_reconciled,
           coalesce(s.rows_checked, 0) AS rows_checked,
           coalesce(f.completeness_failures, 0) AS completeness_failures,
           coalesce(f.validity_failures, 0) AS validity_failures,
           coalesce(f.uniqueness_failures, 0) AS uniqueness_failures,
           coalesce(f.consistency_failures, 0) AS consistency_failures
    FROM slot_part t
    LEFT JOIN sub_part s ON s.member_id = t.member_id AND s.period IS NOT DISTINCT FROM t.period
    LEFT JOIN fail_part f ON f.member_id = t.member_id AND f.period IS NOT DISTINCT FROM t.period),
dims AS (
    SELECT *,
           100.0 * slots_on_time / nullif(slots_judged, 0) AS timeliness,
           CASE WHEN rows_checked > 0 THEN 100.0 * greatest(0, 1 - completeness_failures / rows_checked) END AS completeness,
           CASE WHEN rows_checked > 0 THEN 100.0 * greatest(0, 1 - validity_failures / rows_checked) END AS validity,
           CASE WHEN rows_checked > 0 THEN 100.0 * greatest(0, 1 - uniqueness_failures / rows_checked) END AS uniqueness,
           CASE WHEN rows_checked > 0 THEN 100.0 * greatest(0, 1 - consistency_failures / rows_checked) END AS consistency,
           100.0 * submissions_reconciled / nullif(submissions_checked, 0) AS reconciliation,
           100.0 * slots_first_time_right / nullif(slots_processed, 0) AS resubmissions
    FROM counts)
SELECT * EXCLUDE (timeliness, completeness, validity, uniqueness, consistency, reconciliation, resubmissions),
       round(timeliness, 2) AS timeliness, round(completeness, 2) AS completeness,
       round(validity, 2) AS validity, round(uniqueness, 2) AS uniqueness,
       round(consistency, 2) AS consistency, round(reconciliation, 2) AS reconciliation,
       round(resubmissions, 2) AS resubmissions,
       round(list_avg(list_filter([timeliness, completeness, validity, uniqueness, consistency,
                                   reconciliation, resubmissions], x -> x IS NOT NULL)), 2) AS overall
FROM dims
"""

_POSITIONS_SQL = """
CREATE OR REPLACE TEMP TABLE r_positions AS
WITH long AS (
    UNPIVOT (SELECT member_id, timeliness, completeness, validity, uniqueness, consistency,
                    reconciliation, resubmissions, overall FROM r_scores WHERE period IS NULL)
    ON timeliness, completeness, validity, uniqueness, consistency, reconciliation, resubmissions, overall
    INTO NAME score VALUE value)
SELECT member_id, score, value,
       rank() OVER (PARTITION BY score ORDER BY value DESC) AS rank,
       count(*) OVER (PARTITION BY score) AS members,
       rank() OVER (PARTITION BY score ORDER BY value) - 1 AS below,
       median(value) OVER (PARTITION BY score) AS industry_median
FROM long
"""
