"""Parallel `insurshare submit` processes on the embedded SQLite catalog: no hang, no lost
receipt, no lock error, and the same file twice is still one submission.

(Before the catalog was put in WAL mode, four parallel submits hung for minutes in three
trials out of three, and two submits of the same file ended in "database is locked".)
"""

from __future__ import annotations

import os
import subprocess
import sys

from pipelines import store
from pipelines.config import PROJECT_ROOT
from tests.conftest import policy_row, submit, write_csv

HANG_GUARD = 300   # seconds: a guard against a hang, far above the few seconds a submit takes


def _files(tmp_path, n):
    out = []
    for i in range(n):
        rows = [policy_row(transaction_id=f"T{i}{j:03d}", policy_no=f"P{i}{j:03d}") for j in range(3)]
        out.append(write_csv(tmp_path / f"p{i}.csv", rows))
    return out


def _submit_all(settings, jobs):
    env = {**os.environ, "INSURSHARE_HOME": str(settings.home)}
    procs = [subprocess.Popen([sys.executable, "-m", "pipelines", "submit", str(path), "--member", member,
                               "--dataset", "policy", "--period", period],
                              cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for path, member, period in jobs]
    results = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=HANG_GUARD)
            results.append((p.returncode, out))
    finally:
        for p in procs:
            p.kill()
    return results


def _receipts(settings):
    con = store.connect(settings)
    try:
        return con.execute("SELECT submission_id, sha256 FROM lake.submissions ORDER BY 1").fetchall()
    finally:
        con.close()


def test_concurrent_submits_of_different_files_all_land(settings, tmp_path):
    submit(settings, _files(tmp_path, 1)[0], period="2023Q4")   # the lake exists, as on a live platform
    files = _files(tmp_path, 4)
    results = _submit_all(settings, [(f, member, "2024Q1") for f, member in zip(files, ["M001", "M002", "M003", "M001"], strict=True)])
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    assert all("Traceback" not in out and "locked" not in out for _, out in results)
    ids = [sid for sid, _ in _receipts(settings)]
    assert sorted(ids) == sorted(["M001-policy-2023Q4-v1", "M001-policy-2024Q1-v1", "M001-policy-2024Q1-v2",
                                  "M002-policy-2024Q1-v1", "M003-policy-2024Q1-v1"])


def test_concurrent_submits_of_the_same_file_make_one_submission(settings, tmp_path):
    submit(settings, _files(tmp_path, 1)[0], period="2023Q4")
    path = _files(tmp_path, 2)[1]
    results = _submit_all(settings, [(path, "M001", "2024Q1")] * 3)
    assert [code for code, _ in results] == [0, 0, 0], results
    outputs = "".join(out for _, out in results)
    assert outputs.count(": received as M001-policy-2024Q1-v1") == 1
    assert outputs.count(": already received as M001-policy-2024Q1-v1") == 2
    assert [sid for sid, _ in _receipts(settings)] == ["M001-policy-2023Q4-v1", "M001-policy-2024Q1-v1"]
