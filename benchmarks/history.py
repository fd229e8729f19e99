"""Lake history: does ingesting a small file cost more as the lake's history grows?

Many small premium files (``write_small_files``: five rows each, one per member and quarter) are submitted in one bulk call per chunk and ingested with ``ingest_all``, the way an
operator loads a long history; each file makes its receipt, its publish and its snapshot
record, three lake commits. After each chunk the lake's snapshots, live data files and the
chunk's ingestion seconds per file are recorded: the curve of per-file cost against the
number of earlier snapshots. The figure asked for is flat (the 10,000th file costs what the
100th does); ``last_over_first`` is the ratio of the last chunks' cost to the first chunks'.

Then ``insurshare lake maintain`` (``pipelines.maintenance``) is run once on the grown lake,
and its effect (snapshots and files before and after, seconds) recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.data import write_policy_csv
from pipelines.config import Settings

ROWS_PER_FILE = 5
_DATES = (3, 4, 5)      # the template's accounting, effective and expiry dates, moved into each file's quarter


def write_small_files(folder: Path, files: int) -> list[Path]:
    """``files`` small premium files with their manifests: members M001... by quarter from 2000Q1,
    each the rows of one template (``write_policy_csv``) with its own policy numbers and dates."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    header, *rows = [line.split(",") for line in write_policy_csv(folder / "template.csv", ROWS_PER_FILE)
                     .read_text(encoding="utf-8").splitlines()]
    (folder / "template.csv").unlink()
    members = max(1, -(-files // 100))
    written = []
    for n in range(files):
        member, quarter = f"M{n % members + 1:03d}", n // members
        year, q = 2000 + quarter // 4, quarter % 4 + 1
        shift = dt.date(year, 3 * q - 2, 1) - dt.date(2025, 1, 1)
        path = folder / member / f"policy_{year}Q{q}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [",".join(header)]
        for i, row in enumerate(rows):
            row = list(row)
            row[0], row[1] = f"P{n:07d}{i}", f"T{n:07d}{i}"
            for c in _DATES:
                row[c] = (dt.date.fromisoformat(row[c]) + shift).isoformat()
            lines.append(",".join(row))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        manifest = {"member_id": member, "dataset": "policy", "period": f"{year}Q{q}", "row_count": len(rows)}
        path.with_name(path.name + ".manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        written.append(path)
    return written


def _lake_shape(settings: Settings) -> dict:
    from pipelines.lake import Lake

    with Lake(settings) as lake:
        meta = "__ducklake_metadata_lake"
        snaps = lake.execute(f"SELECT count(*) FROM {meta}.ducklake_snapshot").fetchone()[0]
        files = lake.execute(f"SELECT count(*) FROM {meta}.ducklake_data_file WHERE end_snapshot IS NULL").fetchone()[0]
        all_files = lake.execute(f"SELECT count(*) FROM {meta}.ducklake_data_file").fetchone()[0]
    return {"snapshots": snaps, "live_data_files": files, "data_files_in_catalog": all_files}


def grow(settings: Settings, files: int, start: int) -> None:
    """Add ``files`` small submissions straight through DuckLake, each as ingestion makes it: a
    receipt commit (a ``submissions`` row and its audit entry), a publish commit (five premium
    rows, rule results, the verdict's audit entry, the row's status updated) and the commit that
    records the publish snapshot. Audit entries are keyed and chained as the platform's are; the
    commits are not sealed in the anchor (the growth is scaffolding, the probes are measured)."""
    from pipelines import audit
    from pipelines.audit.key import load_or_create_key
    from pipelines.lake import Lake, _set_commit_message

    key = load_or_create_key(settings)
    with Lake(settings, read_only=False) as lake, audit.keyed(key, may_upgrade=False):
        con = lake.con

        def commit(message: str, *statements: tuple[str, list]) -> None:
            con.execute("BEGIN TRANSACTION")
            for sql, args in statements:
                if sql == "audit":
                    audit.append(con, *args)
                else:
                    con.execute(sql, args)
            _set_commit_message(con, message, "{}")
            con.execute("COMMIT")

        for n in range(start, start + files):
            member, period, sid = f"G{n % 100:03d}", f"{1900 + n // 400}Q{n // 100 % 4 + 1}", f"G{n:07d}"
            commit(f"receive {sid}",
                   ("INSERT INTO lake.submissions (submission_id, member_id, dataset, period, version, status, "
                    "file_name, sha256, received_at) VALUES (?, ?, 'policy', ?, 1, 'received', ?, ?, now())",
                    [sid, member, period, f"{sid}.csv", f"{n:064d}"]),
                   ("audit", ["received", sid, {"member_id": member, "period": period}]))
            commit(f"publish {sid}",
                   (f"INSERT INTO lake.policy (member_id, period, submission_id, source_row, policy_no, "
                    f"transaction_id, written_premium) SELECT ?, ?, ?, i, 'P' || i, '{sid}-' || i, 100 "
                    f"FROM range(1, {ROWS_PER_FILE + 1}) t(i)", [member, period, sid]),
                   ("INSERT INTO lake.rule_results SELECT ?, 'policy', 'R' || i, 'row', 'error', 5, 0, NULL, NULL, 0 "
                    "FROM range(30) t(i)", [sid]),
                   ("audit", ["accepted", sid, {"rows_accepted": ROWS_PER_FILE}]),
                   ("UPDATE lake.submissions SET status = 'accepted', rows_accepted = ? WHERE submission_id = ?",
                    [ROWS_PER_FILE, sid]))
            commit(f"record snapshot of {sid}",
                   ("UPDATE lake.submissions SET snapshot_id = 1 WHERE submission_id = ?", [sid]))


def history_part(out: Path, probes: list[int], probe_files: int, say: Callable[[str], None], *,
                 maintain: bool = True) -> dict:
    """At each number of earlier snapshots in ``probes``, ingest ``probe_files`` real small files
    (one bulk submit, one ``ingest_all``) and time them; grow the lake in between (``grow``)."""
    from pipelines.bulk import files_in, submit_batch
    from pipelines.ingest import ingest_all
    from pipelines.keys import create_keys
    from pipelines.members import add_members

    paths = write_small_files(out / "history_files", probe_files * len(probes))
    home = out / "history_home"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings.from_env(home=home)
    create_keys(settings)
    add_members(settings, {m: f"History member {m}" for m in sorted({p.parent.name for p in paths})})
    items, _ = files_in([out / "history_files"])
    by_path = {i.path: i for i in items}
    ordered = [by_path[p] for p in paths]
    curve, grown = [], 0
    for k, target in enumerate(probes):
        shape = _lake_shape(settings)
        if target > shape["snapshots"]:
            t = time.perf_counter()
            more = (target - shape["snapshots"]) // 3
            grow(settings, more, grown)
            grown += more
            say(f"  grew the lake by {more:,} small submissions ({3 * more:,} commits) in {time.perf_counter() - t:.0f} s")
            shape = _lake_shape(settings)
        batch = ordered[k * probe_files:(k + 1) * probe_files]
        t = time.perf_counter()
        sent = submit_batch(settings, batch)
        submitted = time.perf_counter() - t
        t = time.perf_counter()
        run = ingest_all(settings)
        ingested = time.perf_counter() - t
        if not sent.ok or not run.ok or any(o.status != "accepted" for o in run.outcomes):
            raise RuntimeError(f"history: probe {k} failed: {sent.lines()[:3]} {[o.line() for o in run.outcomes[:2]]}")
        point = {"snapshots_before": shape["snapshots"], "live_data_files_before": shape["live_data_files"],
                 "files": len(batch), "submit_seconds_per_file": round(submitted / len(batch), 4),
                 "ingest_seconds_per_file": round(ingested / len(batch), 4)}
        curve.append(point)
        say(f"  snapshots {shape['snapshots']:>6,}  live data files {shape['live_data_files']:>5,}  "
            f"submit {point['submit_seconds_per_file']:.3f} s/file  ingest {point['ingest_seconds_per_file']:.3f} s/file")
    first, last = curve[0], curve[-1]
    result = {"probe_files": probe_files, "curve": curve,
              "ingest_last_over_first": round(last["ingest_seconds_per_file"] / first["ingest_seconds_per_file"], 2),
              "submit_last_over_first": round(last["submit_seconds_per_file"] / first["submit_seconds_per_file"], 2)}
    say(f"history: per-file ingestion at {last['snapshots_before']:,} snapshots over at "
        f"{first['snapshots_before']:,}: {result['ingest_last_over_first']}x; submission {result['submit_last_over_first']}x")
    if maintain:
        result["maintenance"] = _maintain(settings, say)
    return result


def _maintain(settings: Settings, say: Callable[[str], None]) -> dict:
    from pipelines.maintenance import maintain_lake

    before = _lake_shape(settings)
    t = time.perf_counter()
    report = maintain_lake(settings, retention_days=0)
    seconds = time.perf_counter() - t
    after = _lake_shape(settings)
    say(f"history: maintenance in {seconds:.1f} s: snapshots {before['snapshots']:,} -> {after['snapshots']:,}, "
        f"live data files {before['live_data_files']:,} -> {after['live_data_files']:,}; {report.line()}")
    return {"before": before, "after": after, "seconds": round(seconds, 1), "report": report.as_dict()}
