"""Ingest one received submission: staging, privacy, validation, verdict, publish.

``process_submission`` is what the Airflow task and ``insurshare ingest`` call. A file that
cannot be read, a header that is wrong and a submission that fails its thresholds all end in
a recorded ``rejected`` verdict, never in an exception. So does a failure of the platform
itself while processing one file (``SUB-PROCESSING``): it is recorded against that submission,
and the run goes on with the others. What raises is what a retry or an operator can fix (a
busy catalog, an I/O hiccup, a missing key).

``ingest_all`` runs in one process over one lake connection (``Session``). It takes the queue in
groups of independent submissions (one per member: a file's checks read only its own member's
published data) and publishes the verdicts of a group's small files in one commit; each slice is
still replaced whole or not at all, and when the grouped commit fails each file is published in
a commit of its own, so one bad file never loses another's verdict. A slice's versions are in
different groups, in version order.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines import archive, store
from pipelines.config import Settings
from pipelines.contracts import DatasetContract, SubmissionRules, dependencies, load_contract, load_submission_rules
from pipelines.core.domain import WAITING, RuleKind, parse_period
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.errors import ConfigError, FileRejected, InsurShareError, is_retryable
from pipelines.faults import checkpoint
from pipelines.intake import Submission, load_submission
from pipelines.lake import Lake, write_transaction
from pipelines.privacy.tokens import PseudonymKey, load_key
from pipelines.publish import Checked, Published, StagedRows, ToPublish, publish, publish_many, record_snapshots
from pipelines.staging import SMALL_FILE_BYTES, StagedFile, stage_file, staging_connection
from pipelines.validation import Validation, validate
from pipelines.validation.engine import RowCheck
from pipelines.validation.expectations import GxOutcome
from pipelines.verdict import Verdict, decide, file_verdict, reconcile
from pipelines.workspace import claim

L = store.LAKE
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    submission_id: str
    status: str
    rows_total: int | None
    rows_accepted: int
    rows_quarantined: int
    reasons: tuple[str, ...] = ()
    snapshot_id: int | None = None
    gx: str = "not run"
    timings: dict[str, float] = field(default_factory=dict)
    already_done: bool = False
    failed: bool = False      # the platform failed to process it (recorded as SUB-PROCESSING)

    def line(self) -> str:
        rows = f"{self.rows_total:,} rows" if self.rows_total is not None else "unreadable"
        extra = f", {self.rows_quarantined:,} quarantined" if self.rows_quarantined else ""
        why = f" - {self.reasons[0]}" if self.reasons and self.status in (Status.REJECTED, Status.HELD) else ""
        return f"{self.submission_id}: {self.status} ({rows}{extra}){why}"


@dataclass(frozen=True)
class Selection:
    """Which pending submissions a run takes: of these members, datasets and periods (empty: any).

    A period is a label (``2024Q1``, ``2024``) or a year, which takes the year and its quarters."""

    members: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    periods: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "periods", tuple(parse_period(p).label for p in self.periods))

    def where(self) -> tuple[str, list]:
        """SQL conditions on ``s`` (the submissions), each starting with AND, and their arguments."""
        sql, args = "", []
        if self.members:
            sql, args = sql + "AND list_contains(?, s.member_id) ", [*args, list(self.members)]
        if self.datasets:
            sql, args = sql + "AND list_contains(?, s.dataset) ", [*args, list(self.datasets)]
        if self.periods:
            years = [p for p in self.periods if "Q" not in p]
            sql += "AND (list_contains(?, s.period) OR list_contains(?, left(s.period, 4))) "
            args += [list(self.periods), years]
        return sql, args


def pending(settings: Settings, dataset: str | None = None, *, select: Selection | None = None) -> list[str]:
    """Received submissions waiting to be processed, oldest slice and version first (only those
    ``select`` takes, when given).

    A submission of a dataset that depends on others (``contracts.dependencies``: a claim's
    cross-dataset rule reads the member's accepted premium data) waits while the same member
    has submissions of those datasets not yet processed. A ``held`` submission (see
    ``_waiting_for``) comes back once no file of a dataset it depends on, of its member and of
    its period or an earlier one, is rejected and not yet replaced.
    """
    if not Path(settings.catalog).exists() and not settings.catalog_is_postgres:
        return []
    pairs = sorted((d, n) for d, needs in dependencies(settings.schemas_dir).items() for n in needs)
    chosen, chosen_args = (select or Selection()).where()
    with Lake(settings, read_only=True) as lake:
        con = lake.con
        if "submissions" not in store.lake_tables(con):
            return []
        needed = "SELECT d.needs FROM needs d WHERE d.dataset = s.dataset"
        sql = ("WITH needs AS (SELECT unnest(?::VARCHAR[]) AS dataset, unnest(?::VARCHAR[]) AS needs) "
               f"SELECT s.submission_id FROM {L}.submissions s WHERE (s.status = {Status.RECEIVED.sql} "
               f"OR (s.status = {Status.HELD.sql} AND NOT EXISTS (SELECT 1 {_latest_rejected('s.member_id', 's.period', needed)}))) "
               + ("AND s.dataset = ? " if dataset else "") + chosen
               + f"AND NOT EXISTS (SELECT 1 FROM {L}.submissions p WHERE p.member_id = s.member_id "
               f"AND p.dataset IN ({needed}) AND p.status = {Status.RECEIVED.sql}) "
               "ORDER BY s.member_id, s.period, s.dataset, s.version")
        args = [[d for d, _ in pairs], [n for _, n in pairs], *([dataset] if dataset else []), *chosen_args]
        return [r[0] for r in con.execute(sql, args).fetchall()]


def _latest_rejected(member: str, period: str, datasets: str) -> str:
    """SQL ``FROM ... WHERE``: the member's files of ``datasets`` up to ``period`` that are rejected
    and not yet replaced by a later processed version of the same slice (``member`` and ``period``
    are SQL expressions, ``datasets`` a SQL list or subquery of dataset names). A later period's
    premium cannot hold a claim's policy: a policy is written before its claims."""
    return (f"FROM {L}.submissions r WHERE r.member_id = {member} AND r.period <= {period} "
            f"AND r.dataset IN ({datasets}) "
            f"AND r.status = {Status.REJECTED.sql} AND NOT EXISTS (SELECT 1 FROM {L}.submissions n "
            "WHERE n.member_id = r.member_id AND n.dataset = r.dataset AND n.period = r.period "
            f"AND n.version > r.version AND n.status IN ({Status.ACCEPTED.sql}, {Status.SUPERSEDED.sql}, {Status.REJECTED.sql}))")


@dataclass
class Run:
    """What one ``ingest_all`` run did: outcomes, and the submissions it could not finish."""

    outcomes: list[Outcome] = field(default_factory=list)
    failed: list[Outcome] = field(default_factory=list)       # recorded as SUB-PROCESSING
    postponed: dict[str, str] = field(default_factory=dict)   # id -> transient error, still received

    @property
    def ok(self) -> bool:
        return not self.failed and not self.postponed


def ingest_all(settings: Settings, submission_ids: list[str] | None = None, *, attempts: int = 3,
               progress: Callable[[str], None] | None = None, select: Selection | None = None) -> Run:
    """Process the given (default: every pending, or those ``select`` takes) submission; one
    failure never stops the others.

    An error a retry can fix is tried ``attempts`` times with a growing pause; a submission that
    still fails stays ``received`` for the next run and is listed in ``postponed``.
    """
    run = Run()
    say = progress or (lambda _: None)
    queue = list(submission_ids) if submission_ids else pending(settings, select=select)
    seen: set[str] = set()
    held_again: set[str] = set()
    with Session(settings) as session:
        while queue:
            for group in _groups(queue):
                seen.update(group)
                for sid, outcome in zip(group, _take_group(session, group, attempts, run), strict=True):
                    if outcome is None:
                        say(f"{sid}: postponed - {run.postponed[sid]}")
                        continue
                    run.outcomes.append(outcome)
                    if outcome.status == Status.HELD and sid not in held_again:
                        held_again.add(sid)      # offered again if the file it waits for is accepted in this run
                        seen.discard(sid)
                    if outcome.failed:
                        run.failed.append(outcome)
                    say(outcome.line())
            session.flush()
            queue = [] if submission_ids else [s for s in pending(settings, select=select) if s not in seen]
    return run


def _groups(queue: list[str]) -> list[list[str]]:
    """The queue in groups of up to ``GROUP`` submissions of different members, each member's in
    queue order: the files of one group are independent (a file's checks read only its own
    member's published data), so that their verdicts can share one commit."""
    by_member: dict[str, list[str]] = {}
    for sid in queue:
        by_member.setdefault(sid.split("-", 1)[0], []).append(sid)
    groups: list[list[str]] = []
    while by_member:
        row = [files.pop(0) for files in by_member.values()]
        by_member = {m: files for m, files in by_member.items() if files}
        groups += [row[i:i + GROUP] for i in range(0, len(row), GROUP)]
    return groups


def _take_group(session: Session, group: list[str], attempts: int, run: Run) -> list[Outcome | None]:
    """Process ``group``; a submission whose grouped processing failed is processed on its own,
    with retries (``_with_retries``); None: postponed (see ``run.postponed``)."""
    done = session.process_group(group)
    outcomes: list[Outcome | None] = []
    for sid, outcome in zip(group, done, strict=True):
        if outcome is None:
            try:
                outcome = _with_retries(session, sid, attempts, run)
            except ConfigError:
                raise
            except Exception as exc:   # even recording the failure failed: next run tries again
                log.exception("processing %s failed and could not be recorded", sid)
                run.postponed[sid] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        outcomes.append(outcome)
    return outcomes


def requeue(settings: Settings, submission_ids: list[str]) -> list[str]:
    """Put submissions that the platform failed to process (``SUB-PROCESSING``) back in the queue.

    Their recorded failure (verdict, rule results) is removed and the change audited; the next
    ingestion processes them from the archived raw file.
    """
    from pipelines import audit

    with Lake(settings, read_only=False) as lake:
        def work(c: duckdb.DuckDBPyConnection) -> list[str]:
            rows = c.execute(
                f"SELECT submission_id FROM {L}.submissions WHERE list_contains(?, submission_id) "
                f"AND status = {Status.REJECTED.sql} AND starts_with(verdict_reasons[1], 'SUB-PROCESSING')",
                [submission_ids]).fetchall()
            ids = [r[0] for r in rows]
            for table in ("rule_results", "quarantine", "validation_results"):
                c.execute(f"DELETE FROM {L}.{table} WHERE list_contains(?, submission_id)", [ids])
            c.execute(f"UPDATE {L}.submissions SET status = {Status.RECEIVED.sql}, verdict = NULL, verdict_reasons = NULL, "
                      "processed_at = NULL, snapshot_id = NULL WHERE list_contains(?, submission_id)", [ids])
            for sid in ids:
                audit.append(c, "requeued", sid, {"reason": "processing failed; queued again by the operator"})
            return ids

        ids, _ = lake.write(work, message="requeue failed submissions")
        return ids


def _with_retries(session: Session, submission_id: str, attempts: int, run: Run) -> Outcome | None:
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            return session.process(submission_id)
        except Exception as exc:
            if not is_retryable(exc):
                raise
            if attempt == attempts:
                run.postponed[submission_id] = str(exc).splitlines()[0][:300]
                return None
            time.sleep(delay)
            delay *= 4
    return None


def process_in_order(settings: Settings, submission_id: str,
                     progress: Callable[[str], None] | None = None) -> list[Outcome]:
    """Process the earlier versions of the submission's slice that are still received, oldest
    first, then the submission itself; return their outcomes in that order.

    A slice's versions are judged and published in the order they were sent, whichever of them
    is offered first (the DAG's mapped tasks run in any order, two at a time): version 1 is
    accepted and then superseded by version 2, never judged after it.
    """
    with Lake(settings, read_only=True) as lake:
        sub = load_submission(lake.con, submission_id)
        earlier = [r[0] for r in lake.con.execute(
            f"SELECT submission_id FROM {L}.submissions WHERE member_id = ? AND dataset = ? AND period = ? "
            f"AND version < ? AND status = {Status.RECEIVED.sql} ORDER BY version",
            [sub.member_id, sub.dataset, sub.period, sub.version]).fetchall()]
    with Session(settings) as session:
        return [session.process(sid, progress) for sid in [*earlier, submission_id]]


def process_submission(settings: Settings, submission_id: str,
                       progress: Callable[[str], None] | None = None) -> Outcome:
    """Run every stage for one submission and publish the result in one transaction.

    The file is read and checked in an isolated staging database (``staging.staging_connection``)
    inside a work folder that only this process uses (``work.claim``); its plaintext is deleted
    as soon as it is staged. Errors a retry can fix (a busy catalog, I/O) are raised; any other
    failure is recorded against the submission as ``SUB-PROCESSING`` (see ``_record_failure``),
    so it never stays ``received`` to crash every later run.
    """
    with Session(settings) as session:
        return session.process(submission_id, progress)


GROUP = 20             # submissions whose verdicts one commit may hold
GROUP_ROWS = 50_000    # a file of more rows is published in a commit of its own


@dataclass
class _Ready:
    """A submission checked and waiting for its publishing commit (its staging database open)."""

    sub: Submission
    contract: DatasetContract
    checked: Checked
    timings: dict[str, float]


class Session:
    """What a run of ingestion shares: one lake connection, the submission rules and the key read
    once, and the snapshots of publishing commits whose ids are not yet recorded.

    A file's publishing commit records the snapshot id of the commits before it (a snapshot's id
    is known only once it is committed), and ``flush`` records the last ones: each file makes one
    commit. A crash in between leaves ids for ``repair_snapshot_ids``, which finds them by the
    commit's ``submission_id``/``submission_ids``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lake = Lake(settings, read_only=False)
        self.unrecorded: list[tuple[str, int, dict[str, float]]] = []
        self._sub_rules: SubmissionRules | None = None
        self._key: PseudonymKey | None = None

    def __enter__(self) -> Session:
        self.con = self._lake.__enter__().con
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.unrecorded:
                self.flush()
        except Exception:
            if exc[0] is None:
                raise
            log.exception("recording snapshot ids failed; `insurshare ingest` repairs them")
        finally:
            self._lake.__exit__(*exc)

    @property
    def sub_rules(self) -> SubmissionRules:
        if self._sub_rules is None:
            self._sub_rules = load_submission_rules(self.settings.schemas_dir)
        return self._sub_rules

    @property
    def key(self) -> PseudonymKey:
        if self._key is None:
            self._key = load_key(self.settings)
        return self._key

    def flush(self) -> None:
        """Record the snapshot ids not yet recorded, in one commit."""
        if self.unrecorded:
            write_transaction(self.con, self.settings, self._record_snapshots,
                              message=f"record snapshots of {len(self.unrecorded)} submission(s)")
            self.unrecorded = []

    def _record_snapshots(self, c: duckdb.DuckDBPyConnection) -> None:
        record_snapshots(c, self.unrecorded)

    def publish(self, ready: list[_Ready]) -> tuple[list[Published], int]:
        """Publish ``ready`` in one commit, with the snapshot ids not yet recorded."""
        def work(c: duckdb.DuckDBPyConnection) -> list[Published]:
            self._record_snapshots(c)
            done = publish_many(c, [ToPublish(r.sub, r.contract, r.checked, r.timings) for r in ready],
                                self.sub_rules, self.key.key_id)   # the key is checked current once per commit
            checkpoint(self.settings, "publish-before-commit",   # the submission, when it is one
                       ready[0].sub.submission_id if len(ready) == 1 else None)
            return done

        ids = [r.sub.submission_id for r in ready]
        extra = {"submission_id": ids[0]} if len(ids) == 1 else {"submission_ids": ids}
        message = f"publish {ids[0]}" if len(ids) == 1 else f"publish {len(ids)} submissions"
        t0 = time.perf_counter()
        results, snapshot = write_transaction(self.con, self.settings, work, message=message, extra=json.dumps(extra))
        self.unrecorded = []
        checkpoint(self.settings, "after-publish-commit")
        for r, result in zip(ready, results, strict=True):
            if not result.already_done:
                r.timings["publish"] = time.perf_counter() - t0
                self.unrecorded.append((r.sub.submission_id, snapshot, r.timings))
        return results, snapshot

    def process(self, submission_id: str, progress: Callable[[str], None] | None = None) -> Outcome:
        """Run every stage for one submission and publish it in a commit of its own."""
        with ExitStack() as stack:
            got = self._check(stack, submission_id)
            if isinstance(got, _Ready):
                got = self._publish_one(got)
        if progress and not got.already_done:
            progress(got.line())
        return got

    def process_group(self, group: list[str]) -> list[Outcome | None]:
        """Process ``group`` (independent submissions: see ``_groups``), the verdicts of its small
        files in one commit. None for a submission whose processing raised an error a retry or the
        operator can fix; when the grouped commit fails, each file is published on its own."""
        outcomes: dict[str, Outcome | None] = {}
        with ExitStack() as stack:
            ready: list[_Ready] = []
            for sid in group:
                own = ExitStack()   # this file's work folder and staging database
                with own:
                    try:
                        got = self._check(own, sid)
                        if isinstance(got, _Ready) and (len(group) == 1 or (got.checked.check is not None
                                                                            and got.checked.check.rows > GROUP_ROWS)):
                            got = self._publish_one(got)   # a large file: published, and its staging freed, now
                    except Exception:   # processed again on its own, with retries
                        outcomes[sid] = None
                        continue
                    if isinstance(got, _Ready):
                        ready.append(got)
                        stack.enter_context(own.pop_all())   # kept open until the grouped commit
                    else:
                        outcomes[sid] = got
            try:
                results, snapshot = self.publish(ready) if ready else ([], None)
                for r, result in zip(ready, results, strict=True):
                    outcomes[r.sub.submission_id] = self._outcome(r, result, snapshot)
            except Exception as exc:   # one file's failure must not lose the others' verdicts
                if isinstance(exc, ConfigError):
                    raise
                log.warning("publishing %d submissions in one commit failed (%s); one by one", len(ready), exc)
                for r in ready:
                    try:
                        outcomes[r.sub.submission_id] = self._publish_one(r)
                    except Exception:
                        outcomes[r.sub.submission_id] = None
        return [outcomes[sid] for sid in group]

    def _check(self, stack: ExitStack, submission_id: str) -> Outcome | _Ready:
        """Stage, validate and decide one submission in a work folder and staging database that
        ``stack`` keeps until it is published; an outcome when there is nothing to publish (done
        already, held, or its failure recorded)."""
        settings, con = self.settings, self.con
        folder = stack.enter_context(claim(settings, submission_id))
        sub = load_submission(con, submission_id)
        if sub.status not in WAITING:
            return _outcome_of(con, submission_id, already_done=True)
        try:
            contract = load_contract(sub.dataset, sub.contract_version, settings.schemas_dir)
            timings: dict[str, float] = {}
            st = stack.enter_context(staging_connection(settings, folder,
                                                        small=_is_small(settings, sub)))
            checked = check_file(st, con, settings, sub, contract, self.sub_rules, self.key, timings,
                                 lambda: _stage(st, settings, sub, contract, folder, timings))
            waiting = _waiting_for(con, contract, sub, checked.check)
            if waiting:
                return _hold(con, settings, sub, checked.check, *waiting)
            return _Ready(sub, contract, checked, timings)
        except Exception as exc:
            if is_retryable(exc) or isinstance(exc, ConfigError):
                raise
            return self._record_failure(sub, exc)

    def _publish_one(self, ready: _Ready) -> Outcome:
        try:
            results, snapshot = self.publish([ready])
        except Exception as exc:
            if is_retryable(exc) or isinstance(exc, ConfigError):
                raise
            return self._record_failure(ready.sub, exc)
        return self._outcome(ready, results[0], snapshot)

    def _outcome(self, ready: _Ready, result: Published, snapshot: int) -> Outcome:
        check, verdict = ready.checked.check, ready.checked.verdict
        return Outcome(submission_id=ready.sub.submission_id, status=result.status,
                       rows_total=check.rows if check else None, rows_accepted=result.rows_accepted,
                       rows_quarantined=result.rows_quarantined, reasons=verdict.reasons,
                       snapshot_id=None if result.already_done else snapshot,
                       gx=_gx_words(ready.checked.gx, check, self.settings), timings=ready.timings,
                       already_done=result.already_done)

    def _record_failure(self, sub: Submission, exc: BaseException) -> Outcome:
        """Record a submission that the platform failed to process as rejected (``SUB-PROCESSING``).

        The member reads what kind of failure it was, never a traceback; the operator's log has
        the traceback, and ``insurshare ingest --retry`` processes the submission again once fixed.
        """
        log.exception("processing %s failed", sub.submission_id, exc_info=exc)
        what = str(exc).splitlines()[0][:300] if str(exc) else ""
        message = (f"SUB-PROCESSING: file {sub.file_name!r} could not be processed ({type(exc).__name__}"
                   + (f": {what}" if what else "") + "). The platform's operator has been told; the file is "
                   "kept in the archive and will be processed again once the cause is fixed.")
        verdict = Verdict(accepted=False, failed_checks=("SUB-PROCESSING",), reasons=(message,))
        contract = load_contract(sub.dataset, sub.contract_version, self.settings.schemas_dir)
        ready = _Ready(sub, contract, Checked(verdict, None, None, None, {}), {})
        result, snapshot = self._publish_failure(ready)
        return Outcome(submission_id=sub.submission_id, status=result.status, rows_total=None, rows_accepted=0,
                       rows_quarantined=0, reasons=verdict.reasons, snapshot_id=snapshot, failed=True)

    def _publish_failure(self, ready: _Ready) -> tuple[Published, int]:
        sub = ready.sub

        def work(c: duckdb.DuckDBPyConnection) -> Published:
            self._record_snapshots(c)
            return publish(c, sub, ready.contract, self.sub_rules, ready.checked, {}, None)

        result, snapshot = write_transaction(
            self.con, self.settings, work, message=f"record failure of {sub.submission_id}",
            extra=json.dumps({"submission_id": sub.submission_id}))
        self.unrecorded = [] if result.already_done else [(sub.submission_id, snapshot, {})]
        return result, snapshot


def check_file(st: duckdb.DuckDBPyConnection, lake: duckdb.DuckDBPyConnection, settings: Settings,
               sub: Submission, contract: DatasetContract, sub_rules: SubmissionRules, key: PseudonymKey,
               timings: dict[str, float], stage: Callable[[], StagedFile]) -> Checked:
    """Stage (``stage()`` reads the file into ``st``), validate and decide: what publishing needs.

    A file that cannot be read is a verdict of its own (``FileRejected`` from ``stage``). ``lake``
    is only read (the member's accepted values that cross-dataset rules look up); the pre-check
    (``pipelines.precheck``) calls this with the lake opened read-only.
    """
    try:
        staged = stage()
    except FileRejected as exc:
        return Checked(file_verdict(exc.check_id, str(exc)), None, None, None, {})
    checkpoint(settings, "after-staging", sub.submission_id)
    found = validate(st, lake, contract, member_id=sub.member_id, period=sub.period,
                     file_format=sub.file_format, key=key, settings=settings, name=sub.submission_id)
    timings.update(found.timings)
    facts = {"encoding": staged.encoding, "totals": {k: str(v) for k, v in found.totals.items()}}
    return Checked(_decide(contract, sub_rules, sub, found), found.check, StagedRows(st, contract), found.gx, facts)


def _is_small(settings: Settings, sub: Submission) -> bool:
    """The archived file (its plaintext's size, encrypted) is at most ``SMALL_FILE_BYTES``."""
    try:
        return (archive.archived_size(settings, sub.sha256) or SMALL_FILE_BYTES + 1) <= SMALL_FILE_BYTES
    except (OSError, InsurShareError):
        return False


def _stage(st: duckdb.DuckDBPyConnection, settings: Settings, sub: Submission, contract: DatasetContract,
           work: Path, timings: dict[str, float]) -> StagedFile:
    """Restore the archived file and stage it in ``st`` (view ``raw``); its plaintext is deleted as
    soon as it is read. A file that cannot be read raises ``FileRejected``."""
    t0 = time.perf_counter()
    try:
        raw = archive.restore(settings, sub.sha256, work / f"raw.{sub.file_format}")
        try:
            checkpoint(settings, "after-restore", sub.submission_id)
            return stage_file(st, raw, file_name=sub.file_name, file_format=sub.file_format,
                              contract=contract, work_dir=work, encoding=sub.manifest.get("encoding"))
        finally:
            raw.unlink(missing_ok=True)   # the plaintext lives no longer than the read
    finally:
        timings["staging"] = time.perf_counter() - t0


def _decide(contract: DatasetContract, sub_rules: SubmissionRules, sub: Submission, found: Validation) -> Verdict:
    """The verdict on the validated rows, with the row count and control totals of the manifest."""
    return decide(contract, sub_rules, found.check, file_name=sub.file_name,
                  row_count_given=sub.manifest.get("row_count"),
                  reconciliations=reconcile(contract, sub_rules, sub.manifest.get("control_totals") or {},
                                            found.totals, found.unreadable))


def _waiting_for(con: duckdb.DuckDBPyConnection, contract: DatasetContract, sub: Submission,
                 check: RowCheck | None) -> tuple[str, int, str, list[str]] | None:
    """Why to hold the file rather than judge it: rows fail a cross-dataset rule (a claim whose
    policy is not in the accepted premium data) while the member's file of that dataset was
    rejected. Those rows are not wrong, their premium is missing; judging them now would
    quarantine (or reject) a whole claim history for one bad premium file."""
    if check is None:
        return None
    for rule in contract.rules:
        if rule.kind != RuleKind.EXISTS_IN or not check.failed(rule.id):
            continue
        dataset = rule.params.get("dataset", contract.dataset)
        rejected = [r[0] for r in con.execute(
            f"SELECT r.submission_id {_latest_rejected('?', '?', '?')} ORDER BY r.period, r.version",
            [sub.member_id, sub.period, dataset]).fetchall()]
        if rejected:
            return rule.id, check.failed(rule.id), dataset, rejected
    return None


def held_message(rule_id: str, rows: int, dataset: str, rejected: list[str]) -> str:
    """Why a file is held (``SUB-HELD``): the rule its rows fail and the rejected files they wait for."""
    files = ", ".join(rejected[:5]) + (f" and {len(rejected) - 5} more" if len(rejected) > 5 else "")
    return (f"SUB-HELD: {rows:,} row(s) fail {rule_id} while the member's {dataset} file(s) {files} "
            f"{'is' if len(rejected) == 1 else 'are'} rejected. The file is held, not judged, and is "
            f"processed again as soon as corrected {dataset} data is accepted.")


def _hold(con: duckdb.DuckDBPyConnection, settings: Settings, sub: Submission, check: RowCheck,
          rule_id: str, rows: int, dataset: str, rejected: list[str]) -> Outcome:
    """Record the submission as ``held``: nothing is published and nothing is judged; ``pending``
    offers it again once every rejected file it waits for has been replaced."""
    from pipelines import audit

    message = held_message(rule_id, rows, dataset, rejected)

    def work(c: duckdb.DuckDBPyConnection) -> None:
        status = c.execute(f"SELECT status FROM {L}.submissions WHERE submission_id = ?",
                           [sub.submission_id]).fetchone()[0]
        if status not in WAITING:
            return
        c.execute(f"UPDATE {L}.submissions SET status = {Status.HELD.sql}, verdict = 'held', verdict_reasons = ?, "
                  "rows_total = ?, processed_at = ? WHERE submission_id = ?",
                  [[message], check.rows, dt.datetime.now(dt.UTC).replace(tzinfo=None), sub.submission_id])
        audit.append(c, "held", sub.submission_id, {"rule": rule_id, "rows": rows, "waiting_for": rejected})

    write_transaction(con, settings, work, message=f"hold {sub.submission_id}")
    return Outcome(submission_id=sub.submission_id, status=Status.HELD, rows_total=check.rows, rows_accepted=0,
                   rows_quarantined=0, reasons=(message,))


def _gx_words(gx: GxOutcome | None, check: RowCheck | None, settings: Settings) -> str:
    if gx is not None:
        return f"{gx.successful}/{gx.evaluated} expectations met"
    if check is not None and not settings.gx_at_ingest:
        return "not run: GX is off at ingestion (INSURSHARE_GX_AT_INGEST)"
    if check is not None and check.rows > settings.gx_max_rows:
        return f"not run: {check.rows:,} rows is above the GX limit of {settings.gx_max_rows:,}"
    return "not run"


def _outcome_of(con: duckdb.DuckDBPyConnection, submission_id: str, already_done: bool) -> Outcome:
    row = con.execute(
        f"SELECT status, rows_total, rows_accepted, rows_quarantined, verdict_reasons, snapshot_id "
        f"FROM {L}.submissions WHERE submission_id = ?", [submission_id]).fetchone()
    return Outcome(submission_id=submission_id, status=row[0], rows_total=row[1],
                   rows_accepted=row[2] or 0, rows_quarantined=row[3] or 0,
                   reasons=tuple(row[4] or ()), snapshot_id=row[5], already_done=already_done)


def repair_snapshot_ids(settings: Settings) -> int:
    """Fill in the snapshot id of submissions whose publishing committed but whose follow-up
    record did not (a crash before it: see ``Session``); the commit's extra info names the
    submission (``submission_id``) or the submissions (``submission_ids``), in one commit."""
    if not settings.catalog_is_postgres and not Path(settings.catalog).exists():
        return 0
    with Lake(settings, read_only=False) as lake:
        con = lake.con
        if "submissions" not in store.lake_tables(con):
            return 0
        missing = con.execute(f"""
            WITH n AS (
                SELECT snapshot_id, unnest(coalesce(
                    CAST(json_extract(commit_extra_info, '$.submission_ids') AS VARCHAR[]),
                    [json_extract_string(commit_extra_info, '$.submission_id')])) AS submission_id
                FROM ducklake_snapshots('{L}') WHERE commit_extra_info IS NOT NULL)
            SELECT s.submission_id, max(n.snapshot_id)
            FROM {L}.submissions s JOIN n USING (submission_id)
            WHERE s.snapshot_id IS NULL AND s.status NOT IN ({Status.RECEIVED.sql}, {Status.REFUSED.sql})
            GROUP BY 1""").fetchall()
        if missing:
            write_transaction(con, settings,
                              lambda c: c.executemany(
                                  f"UPDATE {L}.submissions SET snapshot_id = ? WHERE submission_id = ?",
                                  [[snap, sid] for sid, snap in missing]),
                              message=f"repair snapshot ids of {len(missing)} submission(s)")
        return len(missing)
