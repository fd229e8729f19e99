"""What the portal shows of submissions, read from the lake with the platform's read-only reader.

Records (status, verdict, counts, timeliness), rule results, quarantined rows and the existing
HTML report (``pipelines.reports``), built on demand when the quality-reports run has not written
it yet or wrote it before the submission's last change. Nothing here decides who may see what:
the routes call ``web.own`` on the ``member_id`` these functions return first.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import threading
from pathlib import Path

from pipelines import store
from pipelines.config import Settings
from pipelines.contracts import load_contract
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.core.domain import parse_period
from pipelines.errors import InsurShareError, QueryError
from pipelines.reports.layout import Layout
from pipelines.reports.quarantine import FORMATS, csv_text, quarantine_rows, write_xlsx
from pipelines.store import shared_reader as reader

COLUMNS = ("submission_id", "member_id", "dataset", "period", "version", "contract_version", "status",
           "verdict", "verdict_reasons", "file_name", "file_format", "file_bytes", "sha256", "rows_total",
           "rows_accepted", "rows_quarantined", "rows_warned", "error_row_share", "received_at",
           "processed_at", "superseded_by")
LIST_LIMIT = 1000
_REPORT_LOCK = threading.Lock()


def _select(where: str) -> str:
    return f"SELECT {', '.join(COLUMNS)} FROM {store.LAKE}.submissions {where}"


def _due_days(settings: Settings, dataset: str, version: str | None, cache: dict) -> int | None:
    key = (dataset, version)
    if key not in cache:
        try:
            cache[key] = load_contract(dataset, version, settings.schemas_dir).due_days
        except InsurShareError:
            cache[key] = None
    return cache[key]


def timeliness(period: str | None, received_at: dt.datetime | None, due_days: int | None) -> dict | None:
    """Due date and lateness of one submission, as its report judges it: the period's end plus the
    contract's ``due_days``, against the day the file was received."""
    if not period or received_at is None or due_days is None:
        return None
    try:
        end = parse_period(period).end
    except InsurShareError:
        return None
    due = end + dt.timedelta(days=due_days)
    late = max(0, (received_at.date() - due).days)
    return {"period_end": end.isoformat(), "due_date": due.isoformat(),
            "received_on": received_at.date().isoformat(), "days_late": late, "on_time": late == 0}


def _record(settings: Settings, row: tuple, cache: dict) -> dict:
    rec = dict(zip(COLUMNS, row, strict=True))
    rec["verdict_reasons"] = list(rec["verdict_reasons"] or [])
    rec["timeliness"] = timeliness(rec["period"], rec["received_at"],
                                   _due_days(settings, rec["dataset"], rec["contract_version"], cache)
                                   if rec["dataset"] else None)
    for key in ("received_at", "processed_at"):
        rec[key] = rec[key].isoformat(sep=" ", timespec="seconds") if rec[key] else None
    return rec


_LISTS: dict[tuple, tuple[int, list[tuple]]] = {}
_LISTS_LOCK = threading.Lock()
LISTS_KEPT = 256


def list_submissions(settings: Settings, member_id: str | None, *, limit: int = LIST_LIMIT) -> list[dict]:
    """Submissions, newest first: ``member_id``'s only, or every member's with None.

    The status page is what members reload most, and a query on the lake costs tens of
    milliseconds: the rows are kept per (lake, member, limit) with the snapshot they were read
    at, and read again only once the lake has a newer snapshot (the snapshot is read before the
    rows, so a list is never older than the snapshot it is kept for).
    """
    where, args = ("WHERE member_id = ? ", [member_id]) if member_id is not None else ("", [])
    key = (settings.catalog, member_id, limit)
    with _LISTS_LOCK:
        kept = _LISTS.get(key)
    with reader(settings, use_lake=False) as con:
        snapshot = store.latest_snapshot(con)      # before the query: the rows are at least this new
        if kept is not None and kept[0] == snapshot:
            rows = kept[1]
        else:
            rows = con.execute(_select(where) + "ORDER BY received_at DESC, submission_id LIMIT ?",
                               [*args, limit]).fetchall()
            with _LISTS_LOCK:
                if len(_LISTS) >= LISTS_KEPT:
                    _LISTS.clear()
                _LISTS[key] = (snapshot, rows)
    cache: dict = {}
    return [_record(settings, row, cache) for row in rows]


def get_submission(settings: Settings, submission_id: str) -> dict | None:
    """One submission's record, or None when there is none with that id."""
    with reader(settings) as con:
        row = con.execute(_select("WHERE submission_id = ?"), [submission_id]).fetchone()
    return _record(settings, row, {}) if row else None


def rule_results(settings: Settings, submission_id: str) -> list[dict]:
    """The submission's rule results: each rule checked, how many rows it checked and failed."""
    cols = ("rule_id", "kind", "severity", "checked", "failed", "missing", "gx_expectation", "gx_unexpected")
    with reader(settings) as con:
        rows = con.execute(f"SELECT {', '.join(cols)} FROM rule_results WHERE submission_id = ? "
                           "ORDER BY failed DESC, rule_id", [submission_id]).fetchall()
    return [dict(zip(cols, r, strict=True)) for r in rows]


def quarantine_file(settings: Settings, sub: dict, fmt: str) -> tuple[bytes, int]:
    """The submission's quarantined rows as CSV or XLSX bytes (identifiers as the member's own
    pseudonyms, formula-like text neutralised: ``reports.quarantine``) and their count."""
    if fmt not in FORMATS:
        raise QueryError(f"Cannot export quarantined rows as {fmt!r}.", hint="Ask for format=csv or format=xlsx.")
    contract = load_contract(sub["dataset"], sub["contract_version"], settings.schemas_dir)
    with reader(settings) as con:
        header, rows = quarantine_rows(con, sub["submission_id"], contract, member=sub["member_id"])
    if fmt == "csv":
        return csv_text(header, rows).encode("utf-8"), len(rows)
    with tempfile.TemporaryDirectory(dir=_work(settings)) as tmp:
        path = Path(tmp) / "quarantine.xlsx"
        write_xlsx(path, header, rows, title=sub["submission_id"])
        return path.read_bytes(), len(rows)


def _work(settings: Settings) -> Path:
    path = settings.work_dir / "portal"
    path.mkdir(parents=True, exist_ok=True)
    return path


def has_report(sub: dict) -> bool:
    """Refused files have no report (nothing was read); every other submission has one."""
    return sub["status"] != Status.REFUSED


def report_path(settings: Settings, sub: dict, today: dt.date | None = None) -> Path:
    """The submission's HTML report, built (the member's submission pages) when missing or older
    than the submission's record."""
    from pipelines.reports import ReportOptions, build_reports
    from pipelines.store import file_lock

    layout = Layout(settings.reports_dir)
    page = layout.submission(sub["submission_id"])
    if _current(layout, sub):
        return page
    with _REPORT_LOCK, file_lock(settings, "portal-reports"):
        if not _current(layout, sub):
            options = ReportOptions(today=today or dt.datetime.now(dt.UTC).date())
            build_reports(settings, options, member=sub["member_id"], parts=("submissions",))
    return page


def _current(layout: Layout, sub: dict) -> bool:
    """Whether the report on disk shows the submission as the lake holds it now."""
    page, facts = layout.submission(sub["submission_id"]), layout.submission_json(sub["submission_id"])
    if not page.exists() or not facts.exists():
        return False
    try:
        shown = json.loads(facts.read_text(encoding="utf-8")).get("submission", {})
    except (OSError, ValueError):
        return False
    return (shown.get("status"), shown.get("superseded_by")) == (sub["status"], sub["superseded_by"])
