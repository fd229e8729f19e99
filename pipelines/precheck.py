"""Pre-check: a member's file staged, validated and judged exactly as ingestion would, with
nothing recorded.

``precheck`` runs the steps of ``intake.receive`` and ``ingest.process_submission`` on a file
that is never submitted: the same manifest checks, the same contract, the same staging in an
isolated database, the same validation (the cross-dataset rules read the member's accepted
data from the lake, opened read-only), the same verdict, and the same publishing code. What
publishing writes goes into a *shadow*: an in-memory database with the lake's tables, holding
a copy of the members and submissions (so the version number, supersession, timeliness and the
comparison with the previous period come out as they would) and, for the checked file, its
would-be rule results, quarantine and published rows. The submission report is then built from
the shadow by the report code itself, marked "Pre-check: not submitted", and written to a
folder of the caller's choice with the quarantined rows as CSV and XLSX.

Nothing is written to the lake, the archive or the audit log: no submission row, no snapshot,
no audit entry, no archived copy. The only files left are the report files; the copy of the
file that staging reads lives in a private work folder removed on return.

A file or manifest that intake would refuse raises the same ``SubmissionError`` (the same
text); a file that cannot be read gets the verdict ingestion would record (``SUB-FILE``,
``SUB-EMPTY``, ...) and a report that says so. The CLI (``insurshare check``) and a future
portal call ``precheck``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import stat
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines import audit, store
from pipelines.audit.key import AuditKey
from pipelines.config import Settings
from pipelines.contracts import DatasetContract, datasets, load_contract, load_submission_rules
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.core.domain import format_of, parse_period
from pipelines.errors import SubmissionError
from pipelines.intake import Manifest, Submission, _record, check_manifest
from pipelines.lake import Lake
from pipelines.privacy.tokens import load_key
from pipelines.publish import publish
from pipelines.staging import StagedFile, stage_file, staging_connection
from pipelines.workspace import claim

L = store.LAKE
BANNER = "Pre-check: not submitted"
COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class RuleBroken:
    rule_id: str
    severity: str
    failed: int


@dataclass(frozen=True)
class PreCheck:
    """What the file would get if it were submitted now (nothing was recorded)."""

    file_name: str
    verdict: str                     # accepted | rejected | held (or the status of the same file already received)
    submission_id: str               # the id it would get (or already has, see ``already_received``)
    rows_total: int | None = None
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_warned: int = 0
    reasons: tuple[str, ...] = ()
    rules_broken: tuple[RuleBroken, ...] = ()
    supersedes: str | None = None    # the accepted version it would replace
    already_received: bool = False   # the same bytes were already submitted for this slice
    report: Path | None = None
    report_json: Path | None = None
    quarantine_files: tuple[Path, ...] = ()
    snapshot_id: int | None = None   # the lake snapshot the file was checked against
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.verdict == Status.ACCEPTED

    def lines(self) -> list[str]:
        """A short summary for a terminal: verdict, rows, rules broken, where the report is."""
        if self.already_received:
            return [f"{self.file_name}: already submitted as {self.submission_id} ({self.verdict}); "
                    "submitting it again would change nothing. Nothing was recorded."]
        out = [f"{BANNER}. {self.file_name} would be {self.verdict.upper()} as {self.submission_id}"
               + (f" (replacing {self.supersedes})" if self.supersedes and self.accepted else "")]
        if self.rows_total is None:
            out.append("  rows: the file could not be read")
        else:
            out.append(f"  rows: {self.rows_total:,} in the file, {self.rows_accepted:,} would be published, "
                       f"{self.rows_quarantined:,} quarantined, {self.rows_warned:,} with warnings")
        if self.rules_broken:
            shown = ", ".join(f"{r.rule_id} ({r.severity}) {r.failed:,}" for r in self.rules_broken[:8])
            more = f" and {len(self.rules_broken) - 8} more" if len(self.rules_broken) > 8 else ""
            out.append(f"  rules broken: {len(self.rules_broken)}: {shown}{more}")
        elif self.rows_total is not None:
            out.append("  rules broken: none")
        out += [f"  why: {r}" for r in self.reasons]
        if self.report:
            out.append(f"  report: {self.report} (JSON: {self.report_json.name})")
        out.append("  Nothing was recorded: no submission, no lake snapshot, no audit entry, no archived file.")
        return out


def precheck(settings: Settings, path: Path, manifest: Manifest, *, out_dir: Path,
             file_name: str | None = None, today: dt.date | None = None,
             report: bool = True) -> PreCheck:
    """Check ``path`` as if it were submitted now with ``manifest``; write its report to ``out_dir``.

    Raises ``SubmissionError`` (the text intake would give) for a file or manifest that intake
    would refuse. ``file_name`` is the name the member gives the file (default: ``path``'s).
    """
    from pipelines.reports import ReportOptions

    path = Path(path)
    file_name = file_name or path.name
    problem = _not_regular(path)
    if problem:
        raise SubmissionError(f"File {file_name!r} {problem}; it was not read.",
                              hint="Check the file itself, as a regular file.", file=file_name)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    today = today or now.date()
    started = time.perf_counter()
    with claim(settings, f"precheck-{uuid.uuid4().hex[:12]}") as work:
        raw = work / ("raw." + (format_of(file_name) or "bin"))
        sha, size = _copy(path, raw)
        # the shadow's audit entries (intake and publishing append them) are keyed with a throwaway key
        # and thrown away with it; the audit key of the platform is never read
        with Lake(settings, read_only=True) as lake, _shadow(settings) as shadow, \
                audit.keyed(AuditKey("precheck", secrets.token_bytes(32)), may_upgrade=False):
            snapshot = store.current_snapshot(lake.con)
            _copy_lake(lake.con, shadow)
            version = check_manifest(settings, shadow, manifest, file_name, today, sha)
            contract = load_contract(manifest.dataset, version, settings.schemas_dir)
            contracts = [load_contract(d, None, settings.schemas_dir) for d in datasets(settings.schemas_dir)]
            store.ensure_tables(shadow, contracts)
            store.ensure_tables(shadow, [contract])   # columns an older contract version had
            period = parse_period(manifest.period).label
            got = _record(shadow, manifest, period, version, file_name, sha, size, Path("(pre-check)"), now)
            sub = got.submission
            if not got.created:
                raw.unlink(missing_ok=True)
                return PreCheck(file_name=file_name, verdict=sub.status, submission_id=sub.submission_id,
                                already_received=True, snapshot_id=snapshot)
            timings = _judge(settings, lake.con, shadow, sub, contract, raw, work)
            timings["total"] = time.perf_counter() - started
            result = _result(shadow, sub, file_name, got.supersedes, snapshot, timings)
            if not report:
                return result
            options = ReportOptions(today=today, gx_docs=False)
            return _write_report(settings, shadow, sub, contracts, options, out_dir, result)


# -- the steps of ingestion, into the shadow -------------------------------------------------

def _judge(settings: Settings, lake: duckdb.DuckDBPyConnection, shadow: duckdb.DuckDBPyConnection,
           sub: Submission, contract: DatasetContract, raw: Path, work: Path) -> dict[str, float]:
    """``ingest._run`` with the file at hand instead of the archive, publishing into ``shadow``."""
    from pipelines.ingest import _waiting_for, check_file, held_message

    sub_rules = load_submission_rules(settings.schemas_dir)
    key = load_key(settings)
    timings: dict[str, float] = {}

    def stage() -> StagedFile:
        t0 = time.perf_counter()
        try:
            return stage_file(st, raw, file_name=sub.file_name, file_format=sub.file_format,
                              contract=contract, work_dir=work, encoding=sub.manifest.get("encoding"))
        finally:
            raw.unlink(missing_ok=True)   # the copy lives no longer than the read
            timings["staging"] = time.perf_counter() - t0

    with staging_connection(settings, work) as st:
        checked = check_file(st, lake, settings, sub, contract, sub_rules, key, timings, stage)
        waiting = _waiting_for(shadow, contract, sub, checked.check)
        if waiting:   # what ingest._hold records
            rule_id, rows, dataset, rejected = waiting
            shadow.execute(f"UPDATE {L}.submissions SET status = {Status.HELD.sql}, verdict = 'held', "
                           "verdict_reasons = ?, rows_total = ?, processed_at = ? WHERE submission_id = ?",
                           [[held_message(rule_id, rows, dataset, rejected)], checked.check.rows,
                            dt.datetime.now(dt.UTC).replace(tzinfo=None), sub.submission_id])
            return timings
        t3 = time.perf_counter()
        publish(shadow, sub, contract, sub_rules, checked, timings, None)
        timings["publish"] = time.perf_counter() - t3
    return timings


def _result(shadow: duckdb.DuckDBPyConnection, sub: Submission, file_name: str, supersedes: str | None,
            snapshot: int, timings: dict[str, float]) -> PreCheck:
    row = shadow.execute(f"SELECT status, rows_total, rows_accepted, rows_quarantined, rows_warned, verdict_reasons "
                         f"FROM {L}.submissions WHERE submission_id = ?", [sub.submission_id]).fetchone()
    broken = shadow.execute(
        f"SELECT rule_id, severity, failed FROM {L}.rule_results WHERE submission_id = ? AND failed > 0 "
        "AND kind <> 'submission' ORDER BY CASE severity WHEN 'fatal' THEN 0 WHEN 'error' THEN 1 ELSE 2 END, "
        "failed DESC, rule_id", [sub.submission_id]).fetchall()
    return PreCheck(file_name=file_name, verdict=row[0], submission_id=sub.submission_id, rows_total=row[1],
                    rows_accepted=row[2] or 0, rows_quarantined=row[3] or 0, rows_warned=row[4] or 0,
                    reasons=tuple(row[5] or ()), rules_broken=tuple(RuleBroken(*r) for r in broken),
                    supersedes=supersedes, snapshot_id=snapshot, timings=timings)


# -- the report -------------------------------------------------------------------------------

def _write_report(settings: Settings, shadow: duckdb.DuckDBPyConnection, sub: Submission,
                  contracts: list[DatasetContract], options, out_dir: Path, result: PreCheck) -> PreCheck:
    """The submission report, built by the report code from the shadow, marked as a pre-check."""
    from dataclasses import replace

    from pipelines.reports.html import render, to_json
    from pipelines.reports.quarantine import csv_text, quarantine_rows, write_xlsx
    from pipelines.reports.scoring import prepare
    from pipelines.reports.submission import prepare_submissions, submission_facts

    shadow.execute(f"USE {L}")
    prepare(shadow, contracts, options.today, settings.schemas_dir)
    prepare_submissions(shadow, contracts, options.sample_rows)
    facts = submission_facts(shadow, sub.submission_id, options, settings.schemas_dir)
    # what the lake holds of this file now is nothing: the report's "in the lake now" and
    # "published now" say so (what would be published is in rows.accepted)
    facts["rows"]["in_lake_now"] = 0
    facts["reconciliation"]["row_count"]["published"] = None
    for item in facts["reconciliation"]["totals"]:
        item["published"] = None
    facts["precheck"] = {"submitted": False, "would_be": sub.submission_id, "verdict": result.verdict,
                         "note": "Nothing was recorded: no submission, no lake snapshot, no audit entry, "
                                 "no archived file."}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{sub.submission_id}.precheck"
    here = "#precheck"    # pages of the platform are not part of a pre-check: links lead to the banner
    links = {"dashboard": here, "scorecard": here, "previous": here,
             "versions": {v["submission_id"]: here for v in facts["versions"]},
             "quarantine_csv": None, "quarantine_xlsx": None, "gx_validation": None, "gx_suite": None}
    files: list[Path] = []
    if facts["rows"]["quarantined"]:
        contract = load_contract(sub.dataset, sub.contract_version, settings.schemas_dir)
        header, rows = quarantine_rows(shadow, sub.submission_id, contract, table="r_quarantine")
        csv_path, xlsx_path = out_dir / f"{stem}.quarantine.csv", out_dir / f"{stem}.quarantine.xlsx"
        csv_path.write_text(csv_text(header, rows), encoding="utf-8")
        write_xlsx(xlsx_path, header, rows, title=sub.submission_id)
        links["quarantine_csv"], links["quarantine_xlsx"] = csv_path.name, xlsx_path.name
        files += [csv_path, xlsx_path]
    meta = {"snapshot_id": result.snapshot_id, "today": str(options.today), "precheck": True}
    html, js = out_dir / f"{stem}.html", out_dir / f"{stem}.json"
    js.write_text(to_json({**facts, "meta": meta}), encoding="utf-8")
    html.write_text(render("submission.html.j2", f=facts, meta=meta, links=links), encoding="utf-8")
    return replace(result, report=html, report_json=js, quarantine_files=tuple(files))


# -- helpers ------------------------------------------------------------------------------------

class _shadow:
    """An in-memory database attached as ``lake``, with the lake's platform tables."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        self.con = store.new_connection(self.settings)
        self.con.execute(f"ATTACH ':memory:' AS {L}")
        store.ensure_tables(self.con, [])
        return self.con

    def __exit__(self, *exc: object) -> None:
        if self.con is not None:
            self.con.close()


def _copy_lake(lake: duckdb.DuckDBPyConnection, shadow: duckdb.DuckDBPyConnection) -> None:
    """Members and submissions (what intake's checks, the verdict's hold and the report read about
    other versions and periods) into the shadow; the rest starts empty."""
    have = store.lake_tables(lake)
    for table in ("members", "submissions"):
        if table not in have:
            continue
        data = lake.execute(f"SELECT * FROM {L}.{table}").to_arrow_table()
        shadow.register("_lake_rows", data)
        try:
            shadow.execute(f"INSERT INTO {L}.{table} BY NAME SELECT * FROM _lake_rows")
        finally:
            shadow.unregister("_lake_rows")


def _not_regular(path: Path) -> str | None:
    """Why ``path`` is not a regular file (None when it is); a link is not followed."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "does not exist"
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a folder, pipe, socket or device)"
    return None


def _copy(source: Path, dest: Path) -> tuple[str, int]:
    """Copy ``source`` to ``dest`` (owner-only) once; its sha256 and size as read."""
    digest, size = hashlib.sha256(), 0
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, open(source, "rb") as f:
        while chunk := f.read(COPY_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


__all__ = ["BANNER", "PreCheck", "RuleBroken", "precheck"]
