"""Bulk submission: ``insurshare submit FOLDER`` (one process, one lake connection) against one
``insurshare submit FILE`` process per file, for many small files.

The files are small premium files (a few rows each, every file's bytes its own), one per member
and quarter from 2000Q1, each with its ``FILE.manifest.json``. The per-process figure is measured
on a sample (``sample`` files, each its own ``insurshare submit`` process) and extrapolated to
all the files; the bulk figure is one ``insurshare submit`` of the whole folder. Both are wall
times of the command line, start-up included, each into a fresh platform home.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pipelines.config import PROJECT_ROOT

COLUMNS = ("policy_no", "transaction_id", "transaction_type", "accounting_date", "written_premium")
ROWS_PER_FILE = 5


def write_files(folder: Path, files: int) -> list[Path]:
    """``files`` small premium files with their manifests: members M001... by quarter from 2000Q1."""
    shutil.rmtree(folder, ignore_errors=True)
    members = max(1, -(-files // 100))
    written = []
    for n in range(files):
        member, quarter = f"M{n % members + 1:03d}", n // members
        period = f"{2000 + quarter // 4}Q{quarter % 4 + 1}"
        path = folder / member / f"policy_{period}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as f:
            out = csv.writer(f)
            out.writerow(COLUMNS)
            out.writerows((f"P{n:06d}{i}", f"T{n:06d}{i}", "NB", f"{2000 + quarter // 4}-{3 * (quarter % 4) + 1:02d}-15",
                           "1200.00") for i in range(ROWS_PER_FILE))
        manifest = {"member_id": member, "dataset": "policy", "period": period, "row_count": ROWS_PER_FILE}
        path.with_name(path.name + ".manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        written.append(path)
    return written


def _home(path: Path, members: list[str]) -> dict:
    """A fresh platform home with keys and the members; the environment to run commands in it."""
    from pipelines.config import Settings
    from pipelines.keys import create_keys
    from pipelines.members import add_members

    shutil.rmtree(path, ignore_errors=True)
    settings = Settings(home=path)
    create_keys(settings)
    add_members(settings, {m: f"Benchmark member {m}" for m in members})
    return {**os.environ, "INSURSHARE_HOME": str(path)}


def _insurshare(env: dict, *args: str, show_progress: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "pipelines", *args], cwd=PROJECT_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=None if show_progress else subprocess.PIPE)
    if result.returncode != 0:
        raise RuntimeError(f"insurshare {' '.join(args[:2])} failed:\n{result.stdout[-2000:]}{result.stderr or ''}")
    return result


def bulk_figures(out: Path, files: int, sample: int, say: Callable[[str], None]) -> dict:
    """Files per second of one bulk ``submit`` against one process per file (extrapolated)."""
    say(f"bulk: writing {files:,} small files with their manifests ...")
    paths = write_files(out / "bulk_files", files)
    members = sorted({p.parent.name for p in paths})
    env = _home(out / "bulk_home_single", members)
    chosen = paths[:: max(1, len(paths) // sample)][:sample]
    say(f"bulk: one `insurshare submit FILE` process per file, {len(chosen)} files ...")
    started = time.perf_counter()
    for n, path in enumerate(chosen, 1):
        _insurshare(env, "submit", str(path), "--manifest", str(path.with_name(path.name + ".manifest.json")))
        say(f"  per-process {n}/{len(chosen)}")
    per_file = (time.perf_counter() - started) / len(chosen)
    env = _home(out / "bulk_home_batch", members)
    say(f"bulk: one `insurshare submit FOLDER` of {files:,} files (progress on stderr) ...")
    started = time.perf_counter()
    summary = _insurshare(env, "submit", str(out / "bulk_files"), show_progress=True).stdout.splitlines()[0]
    batch = time.perf_counter() - started
    result = {"files": files, "sample": len(chosen), "per_process_seconds_per_file": round(per_file, 3),
              "per_process_files_per_second": round(1 / per_file, 2),
              "per_process_seconds_extrapolated": round(per_file * files, 1),
              "bulk_seconds": round(batch, 1), "bulk_files_per_second": round(files / batch, 1),
              "bulk_over_per_process": round(per_file * files / batch, 1), "bulk_summary": summary}
    say(f"bulk submission of {files:,} small files: {result['bulk_files_per_second']} files/s in one process "
        f"({batch:.1f} s) against {result['per_process_files_per_second']} files/s one process per file "
        f"({per_file:.2f} s each on {len(chosen)} files, {per_file * files:.0f} s extrapolated): "
        f"{result['bulk_over_per_process']}x")
    return result
