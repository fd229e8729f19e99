"""Writers on the SQLite catalog take turns: a marts build started during a bulk submit of many
small files gets the writer lock within a few of the submit's commits, and both finish."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

from pipelines.config import PROJECT_ROOT
from tests.conftest import manifest_json, policy_row, write_csv

FILES = 60

# the bulk submit, one file per commit: ``bulk.GROUP`` files share a commit (50), and the test
# needs a writer that commits many times in a row, as a submit of files one by one does
SUBMIT = r"""
import sys
from pipelines import bulk
from pipelines.cli import main

bulk.GROUP = 1
main(args=["submit", sys.argv[1]], prog_name="insurshare")
"""

MARTS = r"""
import contextlib, json, sqlite3, sys
from pipelines import store
from pipelines.config import Settings
from pipelines.marts.build import build_marts

settings = Settings.from_env()
turns, plain = [], store.writer_lock

def latest():
    db = sqlite3.connect(settings.catalog, timeout=30)
    try:
        return db.execute("SELECT max(snapshot_id) FROM ducklake_snapshot").fetchone()[0]
    finally:
        db.close()

@contextlib.contextmanager
def counted(s):
    asked = latest()
    with plain(s):
        turns.append([asked, latest()])
        yield

store.writer_lock = counted
result = build_marts(settings)
print("RESULT " + json.dumps({"turns": turns, "snapshot": result.snapshot, "skipped": result.skipped}))
"""


def _received(catalog: str) -> int:
    db = sqlite3.connect(catalog, timeout=30)
    try:
        return db.execute("SELECT count(*) FROM ducklake_snapshot WHERE snapshot_id IN "
                          "(SELECT snapshot_id FROM ducklake_snapshot_changes WHERE commit_message LIKE 'receive %')"
                          ).fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        db.close()


def test_marts_build_takes_its_turn_during_a_bulk_submit(settings, tmp_path):
    folder = tmp_path / "bulk"
    for n in range(FILES):
        member, year, q = f"M00{n % 3 + 1}", 2010 + n // 12, (n // 3) % 4 + 1
        month = f"{3 * q - 2:02d}"
        path = folder / member / f"policy_{year}Q{q}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_csv(path, [policy_row(policy_no=f"P{n:04d}{i}", transaction_id=f"T{n:04d}{i}",
                                    accounting_date=f"{year}-{month}-10", effective_date=f"{year}-{month}-10",
                                    expiry_date=f"{year + 1}-{month}-10") for i in range(3)])
        manifest_json(path.with_name(path.name + ".manifest.json"), member_id=member, dataset="policy",
                      period=f"{year}Q{q}")
    env = {**os.environ, "INSURSHARE_HOME": str(settings.home), "INSURSHARE_GX_MAX_ROWS": "0"}
    submit = subprocess.Popen([sys.executable, "-c", SUBMIT, str(folder)], env=env, cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while _received(settings.catalog) < 5 and submit.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    marts = subprocess.run([sys.executable, "-c", MARTS], env=env, cwd=PROJECT_ROOT, capture_output=True,
                           text=True, timeout=600)
    out, err = submit.communicate(timeout=600)
    assert submit.returncode == 0, err[-2000:]
    assert f"{FILES} file(s)" in out and f"{FILES} received" in out, out
    assert marts.returncode == 0, marts.stderr[-3000:]
    got = json.loads(next(line for line in marts.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert not got["skipped"] and got["snapshot"] is not None
    assert got["turns"], "the marts build never asked for the writer lock"
    # each time the build asked for the lock, at most the commit under way and one more went first
    assert all(acquired - asked <= 2 for asked, acquired in got["turns"]), got["turns"]
    # the submit was still committing after the build's turn: the build did not wait for its end
    assert _received(settings.catalog) == FILES
    db = sqlite3.connect(settings.catalog)
    later = db.execute("SELECT count(*) FROM ducklake_snapshot_changes WHERE commit_message LIKE 'receive %' "
                       "AND snapshot_id > ?", [got["snapshot"]]).fetchone()[0]
    db.close()
    assert later > 0, "the bulk submit had finished before the marts build asked: the test did not overlap"
