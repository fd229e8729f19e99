"""Intake: archive the raw file, check the manifest, and record the submission.

The raw bytes are archived first, addressed by their sha256 and never modified, so nothing a
member sends is ever lost, whatever happens next. Then the manifest is checked (member,
dataset, period, contract version, numbers) and the submission is recorded in the lake as
``received``. The same bytes again for the same slice are a no-op; other bytes are a new
version of the slice. A manifest that cannot be accepted is recorded as ``refused`` and
raised as ``SubmissionError``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb

from pipelines import archive, audit, store
from pipelines.config import Settings
from pipelines.contracts import datasets, load_contract
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.core.domain import format_of, parse_period, text_encoding
from pipelines.errors import ContractError, InsurShareError, SubmissionError
from pipelines.lake import Lake, write_transaction

MEMBER_RE = re.compile(r"[A-Z][A-Z0-9]{2,15}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
MANIFEST_SUFFIX = ".manifest.json"    # a file's manifest beside it: FILE.manifest.json


@dataclass(frozen=True)
class Manifest:
    """What the member declares about a file; numbers it leaves out are computed at staging."""

    member_id: str
    dataset: str
    period: str
    contract_version: str | None = None
    row_count: int | None = None
    control_totals: dict[str, str] = field(default_factory=dict)
    encoding: str | None = None
    sha256: str | None = None    # of the file as sent: intake refuses other bytes

    @classmethod
    def from_file(cls, path: Path, **overrides: object) -> Manifest:
        """Read a JSON manifest; keyword overrides (from the command line) win."""
        if path.stat().st_size > 1 << 20:
            raise SubmissionError(f"Manifest {path.name!r} is larger than 1 MB.",
                                  hint="A manifest holds a few fields; see the README.")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise SubmissionError(f"Manifest {path.name!r} is not valid JSON: {exc}".split("\n")[0],
                                  hint="See the manifest format in the README.") from None
        if not isinstance(raw, dict):
            raise SubmissionError(f"Manifest {path.name!r} must be a JSON object.")
        values = {k: raw.get(k) for k in ("member_id", "dataset", "period", "contract_version",
                                          "row_count", "control_totals", "encoding", "sha256")}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.build(**values)

    @classmethod
    def build(cls, *, member_id: object, dataset: object, period: object,
              contract_version: object = None, row_count: object = None,
              control_totals: object = None, encoding: object = None, sha256: object = None) -> Manifest:
        totals = control_totals or {}
        if sha256 is not None and not (isinstance(sha256, str) and SHA256_RE.fullmatch(sha256.lower())):
            raise SubmissionError(f"The manifest's sha256 {str(sha256)[:80]!r} is not 64 hexadecimal digits.")
        if not isinstance(totals, dict):
            raise SubmissionError("Control totals must be a mapping of column to amount.")
        if row_count is not None and not (isinstance(row_count, int) and not isinstance(row_count, bool)
                                          and row_count >= 0 or str(row_count).isdigit()):
            raise SubmissionError(f"Row count {str(row_count)[:40]!r} is not a whole number.")
        if encoding and text_encoding(str(encoding)) is None:
            raise SubmissionError(f"Encoding {str(encoding)[:40]!r} is not a text encoding the platform knows.",
                                  hint="Leave it out (UTF-8 and GB18030 are recognised) or name e.g. gb18030.")
        clean = {str(k)[:64]: _amount(k, v) for k, v in totals.items()}
        return cls(member_id=str(member_id or ""), dataset=str(dataset or ""), period=str(period or ""),
                   contract_version=str(contract_version) if contract_version else None,
                   row_count=int(row_count) if row_count is not None else None,
                   control_totals=clean, encoding=str(encoding) if encoding else None,
                   sha256=sha256.lower() if sha256 else None)


def _amount(column: object, value: object) -> str:
    """A control total as an exact decimal string: finite, at most 30 digits before the point."""
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, (bool, dict, list)) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or abs(amount) >= Decimal(10) ** 30 or amount.as_tuple().exponent < -12:
        raise SubmissionError(f"Control total {str(column)[:64]}={str(value)[:40]!r} is not an amount.",
                              hint="Give the sum as a plain decimal number, e.g. 1234567.89.")
    return str(amount)


@dataclass(frozen=True)
class Submission:
    submission_id: str
    member_id: str
    dataset: str
    period: str
    version: int
    contract_version: str
    status: str
    sha256: str
    file_name: str
    file_format: str
    archive_path: str
    manifest: dict


@dataclass(frozen=True)
class Received:
    submission: Submission
    created: bool            # False: the same bytes were already received for this slice
    supersedes: str | None   # the version this one will replace if accepted


# -- manifest checks ---------------------------------------------------------------------

def check_manifest(settings: Settings, con: duckdb.DuckDBPyConnection | None, manifest: Manifest,
                   file_name: str, today: dt.date, sha: str | None = "") -> str:
    """Raise ``SubmissionError`` naming the file when the manifest cannot be accepted.

    ``con`` None: there is no lake yet (so no member is registered); ``sha`` None: the file's
    bytes are not checked against the manifest's sha256 (``check_declared``).
    Returns the contract version the submission follows.
    """
    where = f"file {file_name!r}"
    if not MEMBER_RE.fullmatch(manifest.member_id):
        raise SubmissionError(
            f"Member id {manifest.member_id!r} of {where} is not a member id "
            "(an upper-case letter then 2-15 letters or digits).",
            hint="Use the id the platform gave you, e.g. M001.", file=file_name)
    known = con is not None and con.execute(f"SELECT 1 FROM {store.LAKE}.members WHERE member_id = ?",
                                            [manifest.member_id]).fetchone()
    if not known:
        raise SubmissionError(
            f"Member {manifest.member_id!r} of {where} is not registered.",
            hint="Ask the operator to register it (`insurshare members add`).",
            member=manifest.member_id, file=file_name)
    if manifest.dataset not in datasets(settings.schemas_dir):
        raise SubmissionError(
            f"Dataset {manifest.dataset!r} of {where} is not one of "
            f"{', '.join(datasets(settings.schemas_dir))}.", file=file_name)
    try:
        contract = load_contract(manifest.dataset, manifest.contract_version, settings.schemas_dir)
    except ContractError as exc:
        raise SubmissionError(f"{where}: {exc.message}", hint=exc.hint, file=file_name) from None
    period = parse_period(manifest.period)
    if period.grain != contract.grain:
        raise SubmissionError(f"Period {manifest.period!r} of {where} is not a {contract.grain}; "
                              f"{contract.dataset} data is reported per {contract.grain}.", file=file_name)
    if period.start > today:
        raise SubmissionError(f"Period {manifest.period!r} of {where} has not started yet.", file=file_name)
    earliest = settings.earliest_period
    if period.start < earliest.start:
        raise SubmissionError(f"Period {manifest.period!r} of {where} is before {earliest.label}, the earliest "
                              "period the platform accepts.",
                              hint="Check the period; for older history the operator lowers "
                                   "INSURSHARE_EARLIEST_PERIOD.", file=file_name)
    unknown = [k for k in manifest.control_totals if k not in contract.control_totals]
    if unknown:
        raise SubmissionError(
            f"Control total(s) {', '.join(unknown)} of {where} are not defined for {contract.dataset}; "
            f"use {', '.join(contract.control_totals)}.", file=file_name)
    if format_of(file_name) is None:
        raise SubmissionError(f"File {file_name!r} is not .csv, .parquet or .xlsx.",
                              hint="Name the file by its format.", file=file_name)
    if manifest.sha256 and sha is not None and manifest.sha256 != sha:
        raise SubmissionError(f"File {file_name!r} is not the file its manifest describes: its sha256 is "
                              f"{sha[:12]}..., the manifest says {manifest.sha256[:12]}...",
                              hint="The file was changed or damaged on the way; send it again.", file=file_name)
    return contract.version


# -- recording -----------------------------------------------------------------------------

def receive(settings: Settings, path: Path, manifest: Manifest, *, file_name: str | None = None,
            today: dt.date | None = None, received_at: dt.datetime | None = None,
            con: duckdb.DuckDBPyConnection | None = None,
            archived: tuple[str, int, Path] | None = None, precheck: bool = False) -> Received:
    """Archive ``path`` and record it as a submission; ``SubmissionError`` if refused.

    ``received_at`` (UTC, default now) lets an operator load historical submissions with the
    time they really arrived, which timeliness is measured against. ``con`` (a connection from
    ``intake_connection``) lets a batch of files share one connection; ``archived`` (what
    ``archive.store`` returned for ``path``) skips archiving it again.

    A refusal is recorded (archived file, ``refused`` submission, audit entry): a delivery that
    arrived is never lost. With ``precheck`` (the command line, where an operator types the
    manifest), what the manifest declares is checked first (``check_declared``), and a mistake
    there raises before anything is archived or recorded; only a refusal that needs the file (its
    sha256 is not the manifest's) is still recorded.
    """
    file_name = file_name or Path(path).name
    received_at = received_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    arrival = Arrival(Path(path), manifest, file_name, received_at, today or received_at.date())
    archived = _archive(settings, arrival, con, archived, precheck)
    with intake_connection(settings, con) as c:
        return _commit_records(c, settings, [_checked(settings, c, arrival, archived)])[0]


@dataclass(frozen=True)
class Arrival:
    """A file arriving, with what is declared about it (``receive_many``)."""

    path: Path
    manifest: Manifest
    file_name: str
    received_at: dt.datetime        # naive UTC
    today: dt.date


@dataclass(frozen=True)
class _Checked:
    """An archived file whose manifest passed the checks: what its record needs."""

    arrival: Arrival
    period: str
    version: str
    sha: str
    size: int
    archived: Path


def receive_many(settings: Settings, con: duckdb.DuckDBPyConnection, arrivals: list[Arrival], *,
                 precheck: bool = False) -> list[Received | InsurShareError | OSError]:
    """``receive`` for several files over ``con`` (from ``intake_connection``), their records in
    one commit: per file, what it was received as, or the error that refused it (recorded as
    ``receive`` records it; a precheck's mistake records nothing).

    Each file is archived before anything is recorded. When the one commit fails for another
    reason than a busy lake, each file is recorded in a commit of its own, so that one file's
    record never loses another's.
    """
    results: list[Received | InsurShareError | OSError | None] = [None] * len(arrivals)
    ready: list[tuple[int, _Checked]] = []
    for n, arrival in enumerate(arrivals):
        try:
            ready.append((n, _checked(settings, con, arrival, _archive(settings, arrival, con, None, precheck))))
        except (InsurShareError, OSError) as exc:
            results[n] = exc
    try:
        for (n, _), rec in zip(ready, _commit_records(con, settings, [c for _, c in ready]), strict=True):
            results[n] = rec
    except InsurShareError as exc:
        if not exc.retryable:
            raise
        for n, _ in ready:
            results[n] = exc
    except Exception:   # noqa: BLE001 - the files are recorded one by one, as ``receive`` does
        for n, checked in ready:
            try:
                results[n] = _commit_records(con, settings, [checked])[0]
            except InsurShareError as exc:
                results[n] = exc
    return results  # type: ignore[return-value]


def _archive(settings: Settings, arrival: Arrival, con: duckdb.DuckDBPyConnection | None,
             archived: tuple[str, int, Path] | None, precheck: bool) -> tuple[str, int, Path]:
    """The precheck (a mistake raises, nothing recorded), then the file archived."""
    if precheck:
        try:
            check_declared(settings, arrival.manifest, arrival.file_name, arrival.today, con=con)
        except SubmissionError as exc:
            raise SubmissionError(exc.message, hint=f"{exc.hint} Nothing was recorded: correct it and submit "
                                                    "again.".strip(), **exc.context) from None
    if archived is None:
        if not arrival.path.is_file():
            raise SubmissionError(f"File {str(arrival.path)!r} does not exist or is not a file.")
        archived = archive.store(settings, arrival.path)
    return archived


def _checked(settings: Settings, con: duckdb.DuckDBPyConnection, arrival: Arrival,
             archived: tuple[str, int, Path]) -> _Checked:
    """The manifest checked against the lake and the file; a refusal is recorded, then raised."""
    sha, size, path = archived
    manifest = arrival.manifest
    try:
        version = check_manifest(settings, con, manifest, arrival.file_name, arrival.today, sha)
    except InsurShareError as exc:
        _record_refusal(con, settings, manifest, arrival.file_name, sha, size, path, exc)
        raise
    return _Checked(arrival, parse_period(manifest.period).label, version, sha, size, path)


def _commit_records(con: duckdb.DuckDBPyConnection, settings: Settings, checked: list[_Checked]) -> list[Received]:
    """Record ``checked`` in one commit."""
    if not checked:
        return []
    first = checked[0].arrival.manifest
    message = (f"receive {first.member_id} {first.dataset} {checked[0].period}" if len(checked) == 1
               else f"receive {len(checked)} files")
    recs, _ = write_transaction(
        con, settings, lambda w: [_record(w, c.arrival.manifest, c.period, c.version, c.arrival.file_name, c.sha,
                                          c.size, c.archived, c.arrival.received_at) for c in checked],
        message=message)
    return recs


def check_declared(settings: Settings, manifest: Manifest, file_name: str, today: dt.date | None = None, *,
                   con: duckdb.DuckDBPyConnection | None = None) -> str:
    """The manifest's checks that need no file (member, dataset, contract, period, control total
    names, file format), reading the lake and writing nothing: raise ``SubmissionError``, or
    return the contract version."""
    today = today or dt.datetime.now(dt.UTC).date()
    if con is not None:
        return check_manifest(settings, con, manifest, file_name, today, sha=None)
    if not settings.catalog_is_postgres and not Path(settings.catalog).exists():
        return check_manifest(settings, None, manifest, file_name, today, sha=None)
    with Lake(settings, read_only=True) as lake:
        registered = "members" in store.lake_tables(lake.con)
        return check_manifest(settings, lake.con if registered else None, manifest, file_name, today, sha=None)


@contextmanager
def intake_connection(settings: Settings, con: duckdb.DuckDBPyConnection | None = None
                      ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write lake connection with the tables in place (``con`` itself when given)."""
    if con is not None:
        yield con
        return
    with Lake(settings, read_only=False) as lake:
        lake.ensure()
        yield lake.con


def _record(con: duckdb.DuckDBPyConnection, manifest: Manifest, period: str, version: str,
            file_name: str, sha: str, size: int, archived: Path, received_at: dt.datetime) -> Received:
    rows = con.execute(
        f"SELECT submission_id, version, sha256, status FROM {store.LAKE}.submissions "
        "WHERE member_id = ? AND dataset = ? AND period = ? AND version IS NOT NULL ORDER BY version",
        [manifest.member_id, manifest.dataset, period]).fetchall()
    for sid, _, digest, _ in rows:
        if digest == sha:
            return Received(load_submission(con, sid), created=False, supersedes=None)
    number = (rows[-1][1] + 1) if rows else 1
    sid = f"{manifest.member_id}-{manifest.dataset}-{period}-v{number}"
    current = next((r[0] for r in reversed(rows) if r[3] == Status.ACCEPTED), None)
    body = {**asdict(manifest), "period": period, "contract_version": version}
    con.execute(
        f"INSERT INTO {store.LAKE}.submissions (submission_id, member_id, dataset, period, version, "
        "contract_version, status, file_name, file_format, encoding, file_bytes, sha256, archive_path, "
        f"manifest, received_at) VALUES (?, ?, ?, ?, ?, ?, {Status.RECEIVED.sql}, ?, ?, ?, ?, ?, ?, ?, ?)",
        [sid, manifest.member_id, manifest.dataset, period, number, version, file_name,
         format_of(file_name), manifest.encoding, size, sha, str(archived), json.dumps(body),
         received_at])
    audit.append(con, "received", sid, {"member_id": manifest.member_id, "dataset": manifest.dataset,
                                        "period": period, "version": number, "file_name": file_name,
                                        "file_bytes": size, "sha256": sha, "received_at": received_at})
    sub = Submission(sid, manifest.member_id, manifest.dataset, period, number, version, Status.RECEIVED.value, sha,
                     file_name, format_of(file_name), str(archived), json.loads(json.dumps(body)))
    return Received(sub, created=True, supersedes=current)


def _record_refusal(con: duckdb.DuckDBPyConnection, settings: Settings, manifest: Manifest,
                    file_name: str, sha: str | None, size: int | None, archived: Path | None,
                    exc: InsurShareError) -> None:
    stamp = dt.datetime.now(dt.UTC)
    sid = f"refused-{(sha or 'unread')[:12]}-{stamp.strftime('%Y%m%dT%H%M%S%f')}"

    def work(c: duckdb.DuckDBPyConnection) -> None:
        c.execute(
            f"INSERT INTO {store.LAKE}.submissions (submission_id, member_id, dataset, period, "
            "contract_version, status, verdict, verdict_reasons, file_name, file_format, file_bytes, "
            "sha256, archive_path, manifest, received_at, processed_at) "
            f"VALUES (?, ?, ?, ?, ?, {Status.REFUSED.sql}, 'rejected', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [sid, manifest.member_id[:64], manifest.dataset[:64], manifest.period[:16],
             manifest.contract_version, [str(exc)], file_name[:255], format_of(file_name), size, sha,
             str(archived) if archived else None, json.dumps(asdict(manifest))[:4096], stamp.replace(tzinfo=None),
             stamp.replace(tzinfo=None)])
        audit.append(c, "refused", sid, {"file_name": file_name, "file_bytes": size, "sha256": sha,
                                         "reason": str(exc)})

    write_transaction(con, settings, work, message=f"refuse {file_name}")


def refuse_file(settings: Settings, path: Path, error: InsurShareError,
                file_name: str | None = None, *, manifest: Manifest | None = None,
                archived: tuple[str, int, Path] | None = None) -> None:
    """Archive a file whose manifest could not even be read (or that a check outside intake
    refused: ``manifest`` then names its slice), and record the refusal."""
    file_name = file_name or path.name
    sha, size, archived = archived or archive.store(settings, path)
    with intake_connection(settings) as con:
        _record_refusal(con, settings, manifest or Manifest(member_id="", dataset="", period=""), file_name,
                        sha, size, archived, error)


def refuse_unread(settings: Settings, file_name: str, error: InsurShareError) -> None:
    """Record the refusal of something that must not be read (a link, a device): nothing is archived."""
    with intake_connection(settings) as con:
        _record_refusal(con, settings, Manifest(member_id="", dataset="", period=""), file_name,
                        None, None, None, error)


def load_submission(con: duckdb.DuckDBPyConnection, submission_id: str) -> Submission:
    row = con.execute(
        f"SELECT submission_id, member_id, dataset, period, version, contract_version, status, sha256, "
        f"file_name, file_format, archive_path, manifest FROM {store.LAKE}.submissions "
        "WHERE submission_id = ?", [submission_id]).fetchone()
    if row is None:
        from pipelines.errors import NotFound

        raise NotFound(f"Submission {submission_id!r} does not exist.",
                       hint="List submissions with `insurshare status`.")
    return Submission(*row[:11], manifest=json.loads(row[11] or "{}"))


