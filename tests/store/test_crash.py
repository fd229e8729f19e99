"""Crash safety: ingestion and mart builds killed with SIGKILL at 50+ points, then restarted.

After every kill, each slice is at its old or its new version (never a mix, never half), a
submission is either untouched or fully done, nothing is published twice; after the restart
the submission completes, its raw file is intact and the audit log verifies.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from pipelines import archive, audit, store
from pipelines.config import PROJECT_ROOT, Settings
from pipelines.ingest import pending, process_submission, repair_snapshot_ids
from pipelines.marts.build import build_marts
from tests.conftest import claim_row, policy_row, submit, write_csv

POINTS = ["after-staging", "after-validation", "publish-before-commit", "after-publish-commit",
          "marts-before-commit"]
TRIALS = 52          # kills wanted: 35 at named points, the rest by a timer at a random moment
MAX_TRIALS = 120     # a timer may fire after the child finished; then another trial is added

CHILD = r"""
import sys
from pipelines.config import Settings
settings = Settings.from_env()
if sys.argv[1] == "marts":
    from pipelines.marts.build import build_marts
    build_marts(settings, force=True)
else:
    from pipelines.ingest import process_submission
    process_submission(settings, sys.argv[1])
"""


def _invariants(settings: Settings) -> dict:
    con = store.connect(settings)
    try:
        per_slice = con.execute("""
            SELECT member_id, period, count(DISTINCT submission_id), any_value(submission_id), count(*)
            FROM lake.policy GROUP BY ALL""").fetchall()
        for member, period, versions, sid, rows in per_slice:
            assert versions == 1, f"slice {member} {period} mixes versions"
            status, accepted = con.execute("SELECT status, rows_accepted FROM lake.submissions WHERE submission_id = ?",
                                           [sid]).fetchone()
            assert status == "accepted" and accepted == rows, (sid, status, accepted, rows)
        accepted = con.execute("SELECT count(*) FROM lake.submissions WHERE status = 'accepted' AND dataset = 'policy'"
                               ).fetchone()[0]
        assert accepted == len(per_slice), "an accepted submission is not the slice's version"
        half = con.execute("SELECT count(*) FROM lake.submissions WHERE status NOT IN ('received', 'refused') "
                           "AND processed_at IS NULL").fetchone()[0]
        assert half == 0
        quarantined = con.execute("SELECT submission_id, count(*), count(DISTINCT source_row) FROM lake.quarantine "
                                  "GROUP BY 1").fetchall()
        assert all(n == distinct for _, n, distinct in quarantined), "a quarantined row was published twice"
        return dict(con.execute("SELECT submission_id, status FROM lake.submissions").fetchall())
    finally:
        con.close()


def _rows(trial: int) -> list[dict]:
    n = 25 + trial % 13
    rows = [policy_row(transaction_id=f"T{trial:03d}{i:04d}", policy_no=f"P{i:04d}",
                       written_premium=f"{100 + trial}.{i % 100:02d}") for i in range(n)]
    rows.append(policy_row(transaction_id=f"TX{trial:03d}", region_code="999999"))
    return rows


@pytest.fixture
def base(settings, tmp_path):
    submit(settings, write_csv(tmp_path / "p0.csv", _rows(0)))
    submit(settings, write_csv(tmp_path / "c0.csv", [claim_row(claim_no=f"C{i:04d}") for i in range(20)]),
           dataset="claim")
    while ids := pending(settings):
        for sid in ids:
            process_submission(settings, sid)
    build_marts(settings)
    return settings


def _run_child(target: str, env: dict, kill_after: float | None = None) -> subprocess.CompletedProcess:
    child = subprocess.Popen([sys.executable, "-c", CHILD, target], env=env, cwd=PROJECT_ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if kill_after is not None:             # a kill from outside at a random moment
        try:
            child.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
    _, err = child.communicate(timeout=300)
    return subprocess.CompletedProcess(child.args, child.returncode, "", err)


def test_crash_at_52_points_then_restart(base, tmp_path):
    settings = base
    rng = random.Random(2024)
    env = {**os.environ, "INSURSHARE_HOME": str(settings.home), "INSURSHARE_GX_MAX_ROWS": "0"}
    # how long one ingestion child lives here (start-up included): the timer fires within it
    got = submit(settings, write_csv(tmp_path / "calibrate.csv", _rows(999)), member="M002")
    began = time.monotonic()
    assert _run_child(got.submission.submission_id, env).returncode == 0
    lifetime = time.monotonic() - began
    killed = {"fault": 0, "timer": 0, "finished": 0}
    for trial in range(1, MAX_TRIALS + 1):
        if killed["fault"] + killed["timer"] >= TRIALS:
            break
        member = ("M001", "M002")[trial % 2]
        got = submit(settings, write_csv(tmp_path / f"p{trial}.csv", _rows(trial)), member=member)
        sid = got.submission.submission_id
        point = POINTS[trial % len(POINTS)] if trial % 3 else None
        target = "marts" if point == "marts-before-commit" else sid
        child_env = {**env, "INSURSHARE_FAULTS": point} if point else env
        child = _run_child(target, child_env, None if point else rng.uniform(0.2, 0.98) * lifetime)
        if child.returncode == -signal.SIGKILL:
            killed["fault" if point else "timer"] += 1
        else:
            assert child.returncode == 0, child.stderr[-2000:]
            killed["finished"] += 1
        before = _invariants(settings)
        assert before[sid] in ("received", "accepted")
        repair_snapshot_ids(settings)          # restart: what the next DAG run does
        while ids := pending(settings):
            for pid in ids:
                process_submission(settings, pid)
        if point == "marts-before-commit":
            build_marts(settings, force=True)
        after = _invariants(settings)
        assert after[sid] == "accepted"
        restored = archive.restore(settings, got.submission.sha256, tmp_path / "restored.csv")
        assert restored.read_bytes() == (tmp_path / f"p{trial}.csv").read_bytes()
    con = store.connect(settings)
    n, problems = audit.verify(con)
    assert problems == [], problems
    assert con.execute("SELECT count(*) FROM lake.submissions WHERE snapshot_id IS NULL "
                       "AND status NOT IN ('received', 'refused')").fetchone()[0] == 0
    assert killed["fault"] + killed["timer"] >= 50 and killed["timer"] >= 10, killed
    print(f"crash trials: {killed}, child lifetime {lifetime:.1f} s, audit entries {n}")
