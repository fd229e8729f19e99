"""Publish: one DuckLake transaction for a submission, or for a group of small ones (``publish_many``).

An accepted submission replaces its (member, dataset, period) slice: the slice's rows are
deleted and the accepted rows inserted in the same transaction, and the version it replaces
is marked superseded. Every submission, accepted or not, publishes its record, its
quarantined rows and its rule results. A submission that is no longer ``received`` when the
transaction starts (another worker finished it) publishes nothing: a retry never doubles rows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
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
    return publish_many(con, [ToPublish(sub, contract, checked, timings)], sub_rules, key_id)[0]


@dataclass(frozen=True)
class ToPublish:
    """One checked submission of a grouped publishing commit (``publish_many``)."""

    sub: Submission
    contract: DatasetContract
    checked: Checked
    timings: dict[str, float]


def publish_many(con: duckdb.DuckDBPyConnection, items: Sequence[ToPublish], sub_rules: SubmissionRules,
                 key_id: str | None) -> list[Published]:
    """Publish submissions in one transaction, each lake table written by one statement whatever
    their number: a commit of twenty small files costs about what one costs.

    The result is what publishing them one after the other in the same transaction gives:
    the same rows, records, rule results and audit entries, in the same order. Submissions of
    the same slice cannot be published together (the second replaces the first): they are
    published one by one.
    """
    if len({(i.sub.member_id, i.sub.dataset, i.sub.period) for i in items}) < len(items):
        return [publish(con, i.sub, i.contract, sub_rules, i.checked, i.timings, key_id if n == 0 else None)
                for n, i in enumerate(items)]
    ids = [i.sub.submission_id for i in items]
    found = dict(con.execute(f"SELECT submission_id, status FROM {L}.submissions "
                             "WHERE list_contains(?::VARCHAR[], submission_id)", [ids]).fetchall())
    done = {sid: Published(status=found[sid], rows_accepted=0, rows_quarantined=0, already_done=True)
            for sid in ids if found[sid] not in WAITING}
    todo = [i for i in items if i.sub.submission_id not in done]
    if not todo:
        return [done[sid] for sid in ids]
    if key_id is not None:
        check_key_current(con, key_id)
    newer = _newer_versions(con, [i.sub for i in todo if i.checked.verdict.accepted])
    status = {i.sub.submission_id: i.checked.verdict.label for i in todo}
    _supersede(con, [(sid, by) for sid, by in newer.items()])
    status.update(dict.fromkeys(newer, Status.SUPERSEDED))
    replacing = [i for i in todo if i.checked.verdict.accepted and i.sub.submission_id not in newer]
    digests = {i.sub.submission_id: i.checked.rows.digest() for i in replacing}
    accepted = _replace_slices(con, replacing, digests)
    quarantined = _insert_quarantine(con, [i for i in todo if i.checked.check is not None
                                           and i.checked.check.quarantined_rows])
    _insert_rule_results(con, [row for i in todo for row in _rule_result_rows(
        i.sub, sub_rules, i.checked.verdict, i.checked.check, i.checked.gx)])
    for i in todo:
        if (gx := i.checked.gx) is not None:
            con.execute(f"INSERT INTO {L}.validation_results VALUES (?, 'gx-pandas', ?, ?, ?, ?, ?)",
                        [i.sub.submission_id, gx.suite_name, gx.success, gx.evaluated, gx.successful,
                         json.dumps(gx.result, default=str)])
    results: dict[str, Published] = dict(done)
    entries, verdicts = [], []
    for i in todo:
        sid = i.sub.submission_id
        got = Published(status=status[sid], rows_accepted=accepted.get(sid, 0), rows_quarantined=quarantined.get(sid, 0))
        entries += _audit_entries(i.sub, got.status, i.checked, got.rows_accepted, got.rows_quarantined,
                                  digests.get(sid))
        verdicts.append(_verdict_row(i.sub, got.status, i.checked, i.timings, got.rows_accepted, got.rows_quarantined))
        results[sid] = got
    audit.append_many(con, entries)
    _record_verdicts(con, verdicts)
    return [results[sid] for sid in ids]


def _slices(subs: Sequence[Submission]) -> tuple[str, list]:
    """A derived table of ``subs``' ids and slices (columns submission_id, member_id, dataset,
    period, version) and its parameters."""
    columns = (("submission_id", "VARCHAR"), ("member_id", "VARCHAR"), ("dataset", "VARCHAR"),
               ("period", "VARCHAR"), ("version", "INTEGER"))
    sql = "SELECT " + ", ".join(f"unnest(?::{t}[]) AS {n}" for n, t in columns)
    return sql, [[getattr(s, n) for s in subs] for n, _ in columns]


def _newer_versions(con: duckdb.DuckDBPyConnection, subs: Sequence[Submission]) -> dict[str, str]:
    """Of accepted ``subs``, those whose slice already has a newer accepted version, and that version."""
    if not subs:
        return {}
    sql, params = _slices(subs)
    return dict(con.execute(
        f"SELECT d.submission_id, min(s.submission_id) FROM ({sql}) d JOIN {L}.submissions s "
        "ON s.member_id = d.member_id AND s.dataset = d.dataset AND s.period = d.period "
        f"AND s.version > d.version AND s.status = {Status.ACCEPTED.sql} GROUP BY d.submission_id",
        params).fetchall())


def _supersede(con: duckdb.DuckDBPyConnection, pairs: list[tuple[str, str]]) -> None:
    """Mark each submission (old, by) superseded by the other, in one statement."""
    if pairs:
        con.execute(f"UPDATE {L}.submissions s SET status = {Status.SUPERSEDED.sql}, superseded_by = d.by "
                    "FROM (SELECT unnest(?::VARCHAR[]) AS old, unnest(?::VARCHAR[]) AS by) d "
                    "WHERE s.submission_id = d.old", [[o for o, _ in pairs], [b for _, b in pairs]])


def _replace_slices(con: duckdb.DuckDBPyConnection, items: Sequence[ToPublish],
                    digests: dict[str, tuple[int, int]]) -> dict[str, int]:
    """Replace the slices of ``items`` (distinct slices) by their accepted rows: per dataset one
    delete and one insert; the versions they replace are superseded. Each one's accepted row count."""
    by_dataset: dict[str, list[ToPublish]] = {}
    for i in items:
        by_dataset.setdefault(i.contract.dataset, []).append(i)
    for dataset, group in by_dataset.items():
        table = f"{L}.{dataset}"
        members = sorted({i.sub.member_id for i in group})
        periods = sorted({i.sub.period for i in group})
        pairs = " OR ".join(["(member_id = ? AND period = ?)"] * len(group))
        con.execute(f"DELETE FROM {table} WHERE member_id IN ({', '.join('?' * len(members))}) "
                    f"AND period IN ({', '.join('?' * len(periods))}) AND ({pairs})",
                    [*members, *periods, *(v for i in group for v in (i.sub.member_id, i.sub.period))])
        cols = [n for n, _ in store.dataset_table_columns(group[0].contract)]
        with ExitStack() as stack:
            parts, params = [], []
            for n, i in enumerate(group):
                stack.enter_context(_registered(con, f"_staged_accepted_{n}", i.checked.rows.accepted()))
                parts.append(f"SELECT ?::VARCHAR, ?::VARCHAR, ?::VARCHAR, * FROM _staged_accepted_{n}")
                params += [i.sub.member_id, i.sub.period, i.sub.submission_id]
            inserted = con.execute(f"INSERT INTO {table} ({', '.join(cols)}) {' UNION ALL '.join(parts)}",
                                   params).fetchone()[0]
        expected = sum(digests[i.sub.submission_id][0] for i in group)
        if inserted != expected:
            raise RuntimeError(f"{inserted} rows inserted into {dataset} for {len(group)} submissions, "
                               f"whose accepted rows number {expected}")
    if items:
        sql, params = _slices([i.sub for i in items])
        _supersede(con, con.execute(
            f"SELECT s.submission_id, d.submission_id FROM ({sql}) d JOIN {L}.submissions s "
            "ON s.member_id = d.member_id AND s.dataset = d.dataset AND s.period = d.period "
            f"AND s.status = {Status.ACCEPTED.sql} AND s.submission_id <> d.submission_id", params).fetchall())
    return {i.sub.submission_id: digests[i.sub.submission_id][0] for i in items}


def _insert_quarantine(con: duckdb.DuckDBPyConnection, items: Sequence[ToPublish]) -> dict[str, int]:
    """The quarantined rows of ``items`` in one statement; each one's count."""
    if not items:
        return {}
    with ExitStack() as stack:
        parts, params = [], []
        for n, i in enumerate(items):
            stack.enter_context(_registered(con, f"_staged_quarantine_{n}", i.checked.rows.quarantined()))
            parts.append("SELECT ?::VARCHAR, ?::VARCHAR, ?::VARCHAR, ?::VARCHAR, source_row, rule_ids, reasons, "
                         f"record FROM _staged_quarantine_{n}")
            params += [i.sub.submission_id, i.sub.member_id, i.sub.dataset, i.sub.period]
        con.execute(f"INSERT INTO {L}.quarantine {' UNION ALL '.join(parts)}", params)
    return {i.sub.submission_id: i.checked.check.quarantined_rows for i in items}


_VERDICT_COLUMNS = (("status", "VARCHAR"), ("verdict", "VARCHAR"), ("verdict_reasons", "VARCHAR[]"),
                    ("encoding", "VARCHAR"), ("control_totals", "VARCHAR"), ("rows_total", "BIGINT"),
                    ("rows_accepted", "BIGINT"), ("rows_quarantined", "BIGINT"), ("rows_warned", "BIGINT"),
                    ("error_row_share", "DOUBLE"), ("processed_at", "TIMESTAMP"), ("timings", "VARCHAR"))


def _verdict_row(sub: Submission, status: str, checked: Checked, timings: dict[str, float], accepted: int,
                 quarantined: int) -> list:
    """A submission's record once decided: ``_VERDICT_COLUMNS``' values, then its id."""
    verdict, check, facts = checked.verdict, checked.check, checked.facts
    return [status, verdict.label, list(verdict.reasons), facts.get("encoding"),
            json.dumps(facts.get("totals", {}), default=str),
            check.rows if check else None, accepted, quarantined,
            check.warned_rows if check else None,
            (check.error_rows / check.rows) if check and check.rows else None,
            dt.datetime.now(dt.UTC).replace(tzinfo=None),
            json.dumps({k: round(v, 3) for k, v in timings.items()}), sub.submission_id]


def _record_verdicts(con: duckdb.DuckDBPyConnection, rows: list[list]) -> None:
    """Record decided submissions (``_verdict_row``) in one statement."""
    names = [*_VERDICT_COLUMNS, ("submission_id", "VARCHAR")]
    sets = ", ".join(f"{n} = d.{n}" for n, _ in _VERDICT_COLUMNS)
    columns = ", ".join(f"unnest(?::{t}[]) AS {n}" for n, t in names)
    con.execute(f"UPDATE {L}.submissions s SET {sets} FROM (SELECT {columns}) d "
                "WHERE s.submission_id = d.submission_id", [list(c) for c in zip(*rows, strict=True)])


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, data: object) -> Iterator[None]:
    con.register(name, data)
    try:
        yield
    finally:
        con.unregister(name)


def _audit_entries(sub: Submission, status: str, checked: Checked, accepted: int, quarantined: int,
                   digest: tuple[int, int] | None) -> list[tuple[str, str, dict, object]]:
    """The verdict, and for an accepted submission the publish, with ``digest`` of the rows."""
    verdict, check = checked.verdict, checked.check
    failures = {c.rule.id: c.failed for c in check.counts if c.failed} if check else {}
    entries: list[tuple[str, str, dict, object]] = [
        ("verdict", sub.submission_id,
         {"verdict": verdict.label, "status": status, "reasons": list(verdict.reasons),
          "rows_total": check.rows if check else None, "rows_quarantined": quarantined},
         {"sha256": sub.sha256, "failures": failures})]
    if status == Status.ACCEPTED:
        n, row_digest = digest
        entries.append(("publish", sub.submission_id,
                        {"table": sub.dataset, "member_id": sub.member_id, "period": sub.period, "rows": accepted},
                        {"sha256": sub.sha256, "rows": n, "row_digest": row_digest}))
    return entries


RULE_RESULT_COLUMNS = ("submission_id", "dataset", "rule_id", "kind", "severity", "checked", "failed",
                       "gx_expectation", "gx_unexpected", "missing")
_RULE_RESULT_SCHEMA = pa.schema([(n, pa.int64() if n in ("checked", "failed", "gx_unexpected", "missing")
                                  else pa.string()) for n in RULE_RESULT_COLUMNS])


def _rule_result_rows(sub: Submission, sub_rules: SubmissionRules, verdict: Verdict, check: RowCheck | None,
                      gx: GxOutcome | None) -> list[list]:
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
    return rows


def _insert_rule_results(con: duckdb.DuckDBPyConnection, rows: list[list]) -> None:
    """The rule results of one or more submissions, in one statement."""
    table = pa.Table.from_pylist([dict(zip(RULE_RESULT_COLUMNS, r, strict=True)) for r in rows],
                                 schema=_RULE_RESULT_SCHEMA)
    with _registered(con, "_rule_results", table):
        con.execute(f"INSERT INTO {L}.rule_results ({', '.join(RULE_RESULT_COLUMNS)}) SELECT * FROM _rule_results")


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
