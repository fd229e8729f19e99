"""Many small files, the way an operator loads them: one bulk ``insurshare submit FOLDER`` and one
``insurshare ingest`` run, on the embedded defaults (SQLite catalog, local files).

The files are premium files of ``ROWS`` rows each (``benchmarks.data.write_policy_csv``, every
file's rows its own), from ``MEMBERS`` members, one file per member and quarter from 2024Q1, each
with its ``FILE.manifest.json``. Both commands are timed as subprocesses, start-up included, into
a fresh platform home. The per-file ingestion cost of the first and of the last 100 files comes
from the submissions' ``processed_at`` (the time each file's verdict was published).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.bulk import _home, _insurshare
from benchmarks.data import write_policy_csv

ROWS = 200
MEMBERS = 200
WINDOW = 100     # files at the start and at the end whose per-file ingestion cost is compared


def write_small_files(folder: Path, files: int, rows: int = ROWS, members: int = MEMBERS) -> list[Path]:
    """``files`` premium files of ``rows`` rows, member by member within each quarter from 2024Q1."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    members = min(members, files)
    quarters = -(-files // members)
    written: list[Path] = []
    for q in range(quarters):
        year, quarter = 2024 + q // 4, q % 4 + 1
        period = f"{year}Q{quarter}"
        start = dt.date(year, 3 * quarter - 2, 1).isoformat()
        count = min(members, files - len(written))
        whole = write_policy_csv(folder / f"_all_{period}.csv", rows * count, seed=q + 1, period_start=start)
        with open(whole, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            tid = header.index("transaction_id")
            lines = [[*r[:tid], f"T{q:02d}{r[tid][1:]}", *r[tid + 1:]] for r in reader]   # once across periods
        whole.unlink()
        for m in range(count):
            member = f"M{m + 1:03d}"
            path = folder / member / f"policy_{period}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="") as f:
                out = csv.writer(f)
                out.writerow(header)
                out.writerows(lines[m * rows:(m + 1) * rows])
            manifest = {"member_id": member, "dataset": "policy", "period": period, "row_count": rows}
            path.with_name(path.name + ".manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
            written.append(path)
    return written


def _per_file(home: Path) -> tuple[list[float], dict]:
    """Seconds between consecutive published verdicts, in the order they were published."""
    from pipelines.config import Settings
    from pipelines.lake import Lake

    with Lake(Settings(home=home), read_only=True) as lake:
        rows = lake.con.execute("SELECT processed_at, status FROM lake.submissions "
                                "WHERE processed_at IS NOT NULL ORDER BY processed_at").fetchall()
    times = [r[0] for r in rows]
    counts: dict[str, int] = {}
    for _, status in rows:
        counts[status] = counts.get(status, 0) + 1
    return [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)], counts


def small_part(out: Path, files: int, say: Callable[[str], None]) -> dict:
    """Files per second of the bulk submit, of the ingestion run, and end to end."""
    say(f"small: writing {files:,} files of {ROWS} rows from {min(MEMBERS, files)} members ...")
    paths = write_small_files(out / "small_files", files)
    home = out / "small_home"
    env = _home(home, sorted({p.parent.name for p in paths}))
    say("small: one `insurshare submit FOLDER` ...")
    started = time.perf_counter()
    submitted = _insurshare(env, "submit", str(out / "small_files")).stdout.splitlines()[0]
    submit = time.perf_counter() - started
    say(f"  {submitted}")
    say("small: one `insurshare ingest` run ...")
    started = time.perf_counter()
    ingested = _insurshare(env, "ingest").stdout.splitlines()[-1]
    ingest = time.perf_counter() - started
    say(f"  {ingested}")
    gaps, statuses = _per_file(home)
    window = min(WINDOW, max(1, len(gaps) // 2))
    first = sum(gaps[:window]) / window if gaps else None
    last = sum(gaps[-window:]) / window if gaps else None
    result = {"files": files, "rows_per_file": ROWS, "members": min(MEMBERS, files), "statuses": statuses,
              "submit_seconds": round(submit, 1), "submit_files_per_second": round(files / submit, 1),
              "ingest_seconds": round(ingest, 1), "ingest_files_per_second": round(files / ingest, 1),
              "end_to_end_files_per_second": round(files / (submit + ingest), 1),
              "ingest_seconds_per_file_first": round(first, 3) if first is not None else None,
              "ingest_seconds_per_file_last": round(last, 3) if last is not None else None,
              "window": window}
    say(f"small files ({files:,} x {ROWS} rows, {result['members']} members): submit "
        f"{result['submit_files_per_second']} files/s ({submit:.1f} s), ingest {result['ingest_files_per_second']} "
        f"files/s ({ingest:.1f} s), end to end {result['end_to_end_files_per_second']} files/s; per file at "
        f"ingestion {result['ingest_seconds_per_file_first']} s (first {window}) and "
        f"{result['ingest_seconds_per_file_last']} s (last {window}); {statuses}")
    return result
