"""Bulk intake: many files received in one process, over one lake connection.

A batch is a list of ``BatchFile``: a data file and what is declared about it. Its manifest's
fields come, weakest first, from a manifest file (``FILE.manifest.json`` beside it, or the one a
listing names), from its entry in a listing (``read_listing``: CSV or JSON, one entry per file)
and from fields shared by the whole batch (the command line's options); a field given later wins
(control totals as a whole). ``submit_batch`` receives every file with ``intake.receive_many`` over
one connection, the records of up to ``GROUP`` files in one commit; one file's refusal never
stops the others, and the result says what was
received, what was already received and what was refused, and why.

``insurshare submit`` with several files, a folder or ``--listing``, and ``insurshare
submit-index`` (the generator's ``index.json`` is read as a listing) both go through here.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb

from pipelines.config import Settings
from pipelines.core.domain import format_of
from pipelines.errors import InsurShareError, SubmissionError
from pipelines.intake import MANIFEST_SUFFIX, Arrival, Manifest, Received, intake_connection, receive_many

LISTING_LIMIT = 64 << 20
GROUP = 50       # files whose records one commit holds (each file is archived before it)
# listing column -> Manifest.build keyword; control totals are ``control.<column>``
COLUMNS = {"member": "member_id", "member_id": "member_id", "dataset": "dataset", "period": "period",
           "rows": "row_count", "row_count": "row_count", "contract_version": "contract_version",
           "encoding": "encoding", "sha256": "sha256"}
OTHER_COLUMNS = ("file", "manifest", "received_at", "control_totals")
Kind = Literal["received", "already", "refused", "retry"]


@dataclass(frozen=True)
class BatchFile:
    """One file of a batch and what is declared about it."""

    path: Path
    name: str                                   # as lines and the summary name it
    manifest: Path | None = None                # a manifest file; its fields are the weakest
    fields: dict[str, object] = field(default_factory=dict)   # Manifest.build keywords over it
    received_at: dt.datetime | None = None


@dataclass(frozen=True)
class Taken:
    """What became of one file of a batch."""

    name: str
    kind: Kind
    submission_id: str | None = None
    detail: str = ""        # the reason of a refusal; the status or superseded version otherwise

    def line(self) -> str:
        if self.kind == "received":
            extra = f"; supersedes {self.detail} if accepted" if self.detail else ""
            return f"{self.name}: received as {self.submission_id}{extra}"
        if self.kind == "already":
            return f"{self.name}: already received as {self.submission_id} ({self.detail}); nothing to do"
        if self.kind == "retry":
            return f"{self.name}: not received now, submit it again - {self.detail}"
        return f"{self.name}: refused - {self.detail}"


@dataclass
class BatchResult:
    taken: list[Taken]
    seconds: float
    skipped: list[str] = field(default_factory=list)    # under folders: not data files

    def of(self, kind: Kind) -> list[Taken]:
        return [t for t in self.taken if t.kind == kind]

    @property
    def ok(self) -> bool:
        return not (self.of("refused") or self.of("retry"))

    def lines(self) -> list[str]:
        """The summary: counts, the throughput, then every refused file with its reason."""
        n = len(self.taken)
        rate = f" in {self.seconds:.1f} s ({n / self.seconds:.1f} files/s)" if self.seconds > 0 and n else ""
        out = [f"{n} file(s){rate}: {len(self.of('received'))} received, {len(self.of('already'))} already received, "
               f"{len(self.of('refused'))} refused" + (f", {len(self.of('retry'))} to submit again" if self.of("retry") else "")]
        if self.skipped:
            out.append(f"skipped {len(self.skipped)} file(s) that are not data (.csv, .txt, .parquet, .xlsx): "
                       + ", ".join(self.skipped[:5]) + (", ..." if len(self.skipped) > 5 else ""))
        out += [f"  {t.line()}" for t in self.taken if t.kind in ("refused", "retry")]
        return out


def submit_batch(settings: Settings, files: Sequence[BatchFile], *, shared: dict[str, object] | None = None,
                 received_at: dt.datetime | None = None, precheck: bool = True,
                 on_file: Callable[[int, Taken], None] | None = None) -> BatchResult:
    """Receive every file of ``files`` over one lake connection; ``shared`` fields (Manifest.build
    keywords, None where not given) and ``received_at`` apply to every file and win.

    ``precheck`` as in ``intake.receive``: a mistake in what is declared is reported and nothing is
    recorded for that file. ``on_file(n, taken)`` is called after each file (a progress bar)."""
    started = time.perf_counter()
    shared = {k: v for k, v in (shared or {}).items() if v is not None}
    taken: list[Taken] = []
    with intake_connection(settings) as con:
        for first in range(0, len(files), GROUP):
            for item in _take_group(settings, con, files[first:first + GROUP], shared, received_at, precheck):
                taken.append(item)
                if on_file:
                    on_file(len(taken), item)
    return BatchResult(taken, time.perf_counter() - started)


def _take_group(settings: Settings, con: duckdb.DuckDBPyConnection, items: Sequence[BatchFile], shared: dict,
                received_at: dt.datetime | None, precheck: bool) -> list[Taken]:
    """Receive ``items``, their records in one commit (``intake.receive_many``)."""
    arrivals: dict[int, Arrival] = {}
    taken: dict[int, Taken] = {}
    for n, item in enumerate(items):
        try:
            manifest = manifest_of(item, shared)
        except (InsurShareError, OSError) as exc:
            taken[n] = _taken(item, exc)
            continue
        when = received_at or item.received_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        arrivals[n] = Arrival(item.path, manifest, item.path.name, when, when.date())
    got = receive_many(settings, con, list(arrivals.values()), precheck=precheck)
    for n, result in zip(arrivals, got, strict=True):
        taken[n] = _taken(items[n], result)
    return [taken[n] for n in range(len(items))]


def _taken(item: BatchFile, result: Received | InsurShareError | OSError) -> Taken:
    if isinstance(result, InsurShareError):
        return Taken(item.name, "retry" if result.retryable else "refused", detail=str(result))
    if isinstance(result, OSError):      # unreadable (permissions, a folder): this file only
        return Taken(item.name, "refused", detail=f"{item.name!r} could not be read ({result.strerror or result}).")
    sub = result.submission
    if not result.created:
        return Taken(item.name, "already", sub.submission_id, sub.status)
    return Taken(item.name, "received", sub.submission_id, result.supersedes or "")


def manifest_of(item: BatchFile, shared: dict[str, object]) -> Manifest:
    """The manifest of ``item``: its manifest file, under its listing fields, under ``shared``."""
    given = {**{k: v for k, v in item.fields.items() if v not in (None, "")}, **shared}
    if item.manifest is not None and not item.manifest.is_file():
        raise SubmissionError(f"The manifest {item.manifest.name!r} of {item.name!r} does not exist.",
                              hint="Put it beside the file or correct the listing.")
    manifest = Manifest.from_file(item.manifest, **given) if item.manifest else Manifest.build(**{"member_id": None, "dataset": None, "period": None, **given})
    missing = [name for name, value in (("member", manifest.member_id), ("dataset", manifest.dataset),
                                        ("period", manifest.period)) if not value]
    if missing:
        raise SubmissionError(
            f"Nothing declares the {', '.join(missing)} of {item.name!r}.",
            hint=f"Put {item.path.name}{MANIFEST_SUFFIX} beside it, give a listing (--listing) or options "
                 f"({', '.join('--' + m for m in missing)}). Nothing was recorded for it.")
    return manifest


# -- what a batch is made of ------------------------------------------------------------------

def files_in(paths: Sequence[Path]) -> tuple[list[BatchFile], list[str]]:
    """Batch entries for files and folders, and the names skipped under folders.

    A folder gives every data file (.csv, .txt, .parquet, .xlsx) under it (hidden names left out), in name
    order; each file's manifest is ``FILE.manifest.json`` beside it when there is one. Manifest
    files themselves are never entries."""
    items, skipped = [], []
    for path in paths:
        if not path.is_dir():
            if not path.name.endswith(MANIFEST_SUFFIX):
                items.append(_entry(path, path.name))
            continue
        for folder, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(n for n in names if not n.startswith(".")):
                here = Path(folder) / name
                shown = (Path(path.name) / here.relative_to(path)).as_posix()
                if name.endswith(MANIFEST_SUFFIX):
                    continue
                if format_of(name) is None:
                    skipped.append(shown)
                else:
                    items.append(_entry(here, shown))
    return items, skipped


def _entry(path: Path, name: str) -> BatchFile:
    beside = path.with_name(path.name + MANIFEST_SUFFIX)
    return BatchFile(path, name, manifest=beside if beside.is_file() else None)


def read_listing(path: Path) -> list[BatchFile]:
    """The entries of a listing: a CSV file with a header, or a JSON list of objects (or an object
    whose ``files`` are that list). Columns: ``file`` (relative to the listing's folder),
    ``member``, ``dataset``, ``period``, ``rows``, ``control.<column>`` (one per control total),
    ``received_at`` (ISO date or time, UTC), ``contract_version``, ``encoding``, ``sha256`` and
    ``manifest`` (a manifest file whose fields the others override); empty cells declare nothing.

    The generator's ``index.json`` is a listing too: each of its ``submissions`` is declared by
    its ``manifest`` and arrives at its ``submitted_at``."""
    if path.stat().st_size > LISTING_LIMIT:
        raise SubmissionError(f"Listing {path.name!r} is larger than 64 MB.", hint="Split it into several listings.")
    rows = _rows(path)
    return [_listing_entry(path.parent, path.name, n, row) for n, row in enumerate(rows, 2 if _is_csv(path) else 1)]


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def _rows(path: Path) -> list[dict]:
    """The listing's entries as dicts (the generator's index: file, manifest and arrival only)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        if _is_csv(path):
            return list(csv.DictReader(text.splitlines()))
        raw = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise SubmissionError(f"Listing {path.name!r} cannot be read: {str(exc).splitlines()[0]}",
                              hint="Give a UTF-8 CSV file with a header row, or a JSON list of objects.") from None
    if isinstance(raw, dict) and isinstance(raw.get("submissions"), list):     # the generator's index.json
        return [{"file": e.get("file"), "manifest": e.get("manifest"), "received_at": e.get("submitted_at")}
                for e in raw["submissions"] if isinstance(e, dict)]
    entries = raw.get("files") if isinstance(raw, dict) else raw
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SubmissionError(f"Listing {path.name!r} is not a list of objects (one per file).",
                              hint='Write [{"file": "claims_2015.csv", "member": "M001", ...}, ...].')
    return entries


def _listing_entry(base: Path, listing: str, line: int, row: dict) -> BatchFile:
    where = f"{listing} entry {line}" if not listing.lower().endswith(".csv") else f"{listing} line {line}"
    unknown = [k for k in row if k not in COLUMNS and k not in OTHER_COLUMNS and not str(k).startswith("control.")]
    if unknown or not row.get("file"):
        raise SubmissionError(
            f"{where}: " + (f"unknown column(s) {', '.join(map(str, unknown))}" if unknown else "no file named"),
            hint="Columns: file, member, dataset, period, rows, control.<column>, received_at, contract_version, "
                 "encoding, sha256, manifest.")
    fields = {COLUMNS[k]: v for k, v in row.items() if k in COLUMNS and v not in (None, "")}
    totals = {k.split(".", 1)[1]: v for k, v in row.items() if str(k).startswith("control.") and v not in (None, "")}
    totals.update(row.get("control_totals") or {})
    if totals:
        fields["control_totals"] = totals
    if isinstance(fields.get("row_count"), str) and fields["row_count"].strip().isdigit():
        fields["row_count"] = int(fields["row_count"])
    manifest = base / str(row["manifest"]) if row.get("manifest") else None
    path = base / str(row["file"])
    if manifest is None and path.with_name(path.name + MANIFEST_SUFFIX).is_file():
        manifest = path.with_name(path.name + MANIFEST_SUFFIX)
    return BatchFile(path, str(row["file"]), manifest, fields, _when(row.get("received_at"), where))


def _when(value: object, where: str) -> dt.datetime | None:
    """An arrival time as naive UTC (a time with an offset is converted)."""
    if value in (None, ""):
        return None
    try:
        when = dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise SubmissionError(f"{where}: received_at {str(value)[:40]!r} is not an ISO date or time.",
                              hint="Write e.g. 2016-04-28 or 2016-04-28T09:30:00 (UTC).") from None
    return when.astimezone(dt.UTC).replace(tzinfo=None) if when.tzinfo else when
