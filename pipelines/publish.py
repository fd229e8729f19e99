"""Publish: one DuckLake transaction per submission.

An accepted submission replaces its (member, dataset, period) slice: the slice's rows are
deleted and the accepted rows inserted in the same transaction, and the version it replaces
is marked superseded. Every submission, accepted or not, publishes its record, its
quarantined rows and its rule results. A submission that is no longer ``received`` when the
transaction starts (another worker finished it) publishes nothing: a retry never doubles rows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from pipelines import audit, store
from pipelines.contracts import DatasetContract, SubmissionRules
from pipelines.core.checked import ACCEPTED, ROW, TABLE, WARNINGS
from pipelines.core.domain import WAITING
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.core.sql import ident
from pipelines.intake import Submission
from pipelines.privacy.tokens import check_key_current
from pipelines.validation.engine import RowCheck, quarantine_select
from pipelines.validation.expectations import GxOutcome
from pipelines.verdict import Verdict

L = store.LAKE
ROWS_PER_BATCH = 122_880


class StagedRows:
    """The checked rows of one submission (``pipelines.core.checked``), still in its isolated
    staging database.

    Publishing reads them from there as Arrow streams (the staging database cannot reach the
    lake, and the lake connection never reads the member's file): the accepted rows in the
    order of the dataset's table, and the quarantined rows. Each call opens a new stream, so a
    publishing transaction that is retried reads them again.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, contract: DatasetContract) -> None:
        self.con = con
        self.contract = contract

    def _stream(self, sql: str) -> pa.RecordBatchReader:
        cursor = self.con.cursor()   # one stream per cursor: two may be open at once
        reader = cursor.execute(sql).to_arrow_reader(ROWS_PER_BATCH)
        return pa.RecordBatchReader.from_batches(reader.schema, _closing(reader, cursor))

    def accepted(self) -> pa.RecordBatchReader:
        cols = ", ".join([ROW, *(ident(c.name) for c in self.contract.columns), WARNINGS])
        return self._stream(f"SELECT {cols} FROM {TABLE} WHERE {ACCEPTED}")

    def quarantined(self) -> pa.RecordBatchReader:
        return self._stream(quarantine_select(self.contract))

    def digest(self) -> tuple[int, int]:
        """Row count and an order-free digest of the accepted rows (for the audit entry)."""
        cols = ", ".join(ident(c.name) for c in self.contract.columns)
        return self.con.execute(
            f"SELECT count(*), CAST(coalesce(sum(hash({cols}) % 1000000007), 0) AS BIGINT) FROM {TABLE} "
            f"WHERE {ACCEPTED}").fetchone()


def _closing(reader: pa.RecordBatchReader, cursor: duckdb.DuckDBPyConnection):
    try:
        yield from reader
    finally:
        cursor.close()


@dataclass(frozen=True)
class Checked:
    """What staging and validation decided about one submission, ready to publish."""

    verdict: Verdict
    check: RowCheck | None          # None: the file could not be read (or processing failed)
    rows: StagedRows | None
    gx: GxOutcome | None
    facts: dict                     # encoding used and control totals computed


@dataclass(frozen=True)
class Published:
    status: str            # accepted | rejected | superseded, or the status found if already done
    rows_accepted: int
    rows_quarantined: int
    already_done: bool = False


def publish(con: duckdb.DuckDBPyConnection, sub: Submission, contract: DatasetContract,
            sub_rules: SubmissionRules, checked: Checked, timings: dict[str, float],
            key_id: str | None) -> Published:
    """The body of the publishing transaction (run it with ``lake.write_transaction``)."""
    status = con.execute(f"SELECT status FROM {L}.submissions WHERE submission_id = ?",
                         [sub.submission_id]).fetchone()[0]
    if status not in WAITING:
        return Published(status=status, rows_accepted=0, rows_quarantined=0, already_done=True)
    verdict, check = checked.verdict, checked.check
    if key_id is not None:
        check_key_current(con, key_id)
    slice_args = [sub.member_id, sub.dataset, sub.period]
    status = verdict.label
    accepted_rows = 0
    if verdict.accepted:
        newer = con.execute(
            f"SELECT submission_id FROM {L}.submissions WHERE member_id = ? AND dataset = ? "
            f"AND period = ? AND version > ? AND status = {Status.ACCEPTED.sql}", [*slice_args, sub.version]).fetchone()
        if newer:
            status = Status.SUPERSEDED
            _mark_superseded(con, [sub.submission_id], newer[0])
        else:
            accepted_rows = _replace_slice(con, sub, contract, checked.rows)
    quarantined = 0
    if check is not None and check.quarantined_rows:
        with _registered(con, "_staged_quarantine", checked.rows.quarantined()):
            con.execute(f"INSERT INTO {L}.quarantine SELECT ?, ?, ?, ?, source_row, rule_ids, reasons, record "
                        "FROM _staged_quarantine", [sub.submission_id, *slice_args])
        quarantined = check.quarantined_rows
    _insert_rule_results(con, sub, contract, sub_rules, verdict, check, checked.gx)
    if checked.gx is not None:
        gx = checked.gx
        con.execute(f"INSERT INTO {L}.validation_results VALUES (?, 'gx-pandas', ?, ?, ?, ?, ?)",
                    [sub.submission_id, gx.suite_name, gx.success, gx.evaluated, gx.successful,
                     json.dumps(gx.result, default=str)])
    _audit(con, sub, status, checked, accepted_rows, quarantined)
    facts = checked.facts
    con.execute(
        f"UPDATE {L}.submissions SET status = ?, verdict = ?, verdict_reasons = ?, encoding = ?, "
        "control_totals = ?, rows_total = ?, rows_accepted = ?, rows_quarantined = ?, rows_warned = ?, "
        "error_row_share = ?, processed_at = ?, timings = ? WHERE submission_id = ?",
        [status, verdict.label, list(verdict.reasons), facts.get("encoding"),
         json.dumps(facts.get("totals", {}), default=str),
         check.rows if check else None, accepted_rows, quarantined,
         check.warned_rows if check else None,
         (check.error_rows / check.rows) if check and check.rows else None,
         dt.datetime.now(dt.UTC).replace(tzinfo=None),
         json.dumps({k: round(v, 3) for k, v in timings.items()}), sub.submission_id])
    return Published(status=status, rows_accepted=accepted_rows, rows_quarantined=quarantined)


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, data: object) -> Iterator[None]:
    con.register(name, data)
    try:
        yield
    finally:
        con.unregister(name)


def _audit(con: duckdb.DuckDBPyConnection, sub: Submission, status: str, checked: Checked,
           accepted: int, quarantined: int) -> None:
    """The verdict, and for an accepted submission the publish, with a digest of the rows."""
    verdict, check = checked.verdict, checked.check
    failures = {c.rule.id: c.failed for c in check.counts if c.failed} if check else {}
    audit.append(con, "verdict", sub.submission_id,
                 {"verdict": verdict.label, "status": status, "reasons": list(verdict.reasons),
                  "rows_total": check.rows if check else None, "rows_quarantined": quarantined},
                 content={"sha256": sub.sha256, "failures": failures})
    if status == Status.ACCEPTED:
        n, digest = checked.rows.digest()
        audit.append(con, "publish", sub.submission_id,
                     {"table": sub.dataset, "member_id": sub.member_id, "period": sub.period,
                      "rows": accepted},
                     content={"sha256": sub.sha256, "rows": n, "row_digest": digest})


def _replace_slice(con: duckdb.DuckDBPyConnection, sub: Submission, contract: DatasetContract,
                   rows: StagedRows) -> int:
    table = f"{L}.{contract.dataset}"
    con.execute(f"DELETE FROM {table} WHERE member_id = ? AND period = ?", [sub.member_id, sub.period])
    cols = [n for n, _ in store.dataset_table_columns(contract)]
    with _registered(con, "_staged_accepted", rows.accepted()):
        n = con.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT ?, ?, ?, * FROM _staged_accepted",
            [sub.member_id, sub.period, sub.submission_id]).fetchone()[0]
    older = [r[0] for r in con.execute(
        f"SELECT submission_id FROM {L}.submissions WHERE member_id = ? AND dataset = ? AND period = ? "
        f"AND status = {Status.ACCEPTED.sql} AND submission_id <> ?",
        [sub.member_id, sub.dataset, sub.period, sub.submission_id]).fetchall()]
    if older:
        _mark_superseded(con, older, sub.submission_id)
    return n


def _mark_superseded(con: duckdb.DuckDBPyConnection, ids: list[str], by: str) -> None:
    con.execute(f"UPDATE {L}.submissions SET status = {Status.SUPERSEDED.sql}, superseded_by = ? "
                "WHERE list_contains(?, submission_id)", [by, ids])


def _insert_rule_results(con: duckdb.DuckDBPyConnection, sub: Submission, contract: DatasetContract,
                         sub_rules: SubmissionRules, verdict: Verdict, check: RowCheck | None,
                         gx: GxOutcome | None) -> None:
    rows = []
    for c in sub_rules.checks:
        rows.append([sub.submission_id, sub.dataset, c.id, "submission", "fatal", 1,
                     int(c.id in verdict.failed_checks), None, None, None])
    if check is not None:
        for c in check.counts:
            rows.append([sub.submission_id, sub.dataset, c.rule.id, c.rule.kind, c.rule.severity,
                         c.checked, c.failed,
                         gx.expectation_types.get(c.rule.id) if gx else None,
                         gx.unexpected.get(c.rule.id) if gx else None, c.missing])
    names = ["submission_id", "dataset", "rule_id", "kind", "severity", "checked", "failed",
             "gx_expectation", "gx_unexpected", "missing"]
    numbers = ("checked", "failed", "gx_unexpected", "missing")
    table = pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows],
                                 schema=pa.schema([(n, pa.int64() if n in numbers else pa.string()) for n in names]))
    con.register("_rule_results", table)
    try:
        con.execute(f"INSERT INTO {L}.rule_results ({', '.join(names)}) SELECT * FROM _rule_results")
    finally:
        con.unregister("_rule_results")


def record_snapshot(con: duckdb.DuckDBPyConnection, submission_id: str, snapshot: int,
                    timings: dict[str, float]) -> None:
    """After the publishing commit: the snapshot it made and how long publishing took."""
    con.execute(f"UPDATE {L}.submissions SET snapshot_id = ?, timings = ? WHERE submission_id = ? "
                "AND snapshot_id IS NULL",
                [snapshot, json.dumps({k: round(v, 3) for k, v in timings.items()}), submission_id])


def record_snapshots(con: duckdb.DuckDBPyConnection, done: list[tuple[str, int, dict[str, float]]]) -> None:
    """``record_snapshot`` for several submissions (id, snapshot, timings) in one statement."""
    if not done:
        return
    con.execute(f"""
        UPDATE {L}.submissions s SET snapshot_id = d.snapshot, timings = d.timings
        FROM (SELECT unnest(?::VARCHAR[]) AS submission_id, unnest(?::BIGINT[]) AS snapshot,
                     unnest(?::VARCHAR[]) AS timings) d
        WHERE s.submission_id = d.submission_id AND s.snapshot_id IS NULL""",
                [[sid for sid, _, _ in done], [snap for _, snap, _ in done],
                 [json.dumps({k: round(v, 3) for k, v in t.items()}) for _, _, t in done]])
