"""Several writers and readers on a PostgreSQL catalog: no lost update, no partial slice,
no lock error reaching anyone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from pipelines import store
from pipelines.config import PROJECT_ROOT
from tests.conftest import claim_row, policy_row, submit, write_csv

READER = r"""
import json, sys, time
from pathlib import Path
from pipelines.config import Settings
from pipelines import store
settings = Settings.from_env()
stop = Path(sys.argv[1])
checks = violations = errors = 0
problems = []
while not stop.exists() or checks == 0:
    try:
        con = store.connect(settings, read_only=True)
        rows = con.execute('''
            SELECT s.submission_id, s.rows_accepted, count(p.submission_id)
            FROM lake.submissions s LEFT JOIN lake.policy p USING (submission_id)
            WHERE s.status = 'accepted' AND s.dataset = 'policy' GROUP BY ALL''').fetchall()
        mixed = con.execute('''SELECT member_id, period FROM lake.policy GROUP BY ALL
                               HAVING count(DISTINCT submission_id) > 1''').fetchall()
        orphans = con.execute('''SELECT count(*) FROM lake.policy p LEFT JOIN lake.submissions s USING (submission_id)
                                 WHERE s.status IS DISTINCT FROM 'accepted' ''').fetchone()[0]
        con.close()
        checks += 1
        bad = [r for r in rows if r[1] != r[2]]
        if bad or mixed or orphans:
            violations += 1
            problems.append(str((bad[:2], mixed[:2], orphans)))
    except Exception as exc:
        errors += 1
        problems.append(type(exc).__name__ + ": " + str(exc)[:200])
    time.sleep(0.05)
print(json.dumps({"checks": checks, "violations": violations, "errors": errors, "problems": problems[:5]}))
"""


def _env(settings):
    return {**os.environ, "INSURSHARE_HOME": str(settings.home), "INSURSHARE_CATALOG": settings.catalog,
            "INSURSHARE_GX_MAX_ROWS": "0"}


def _files(settings, tmp_path) -> dict[str, list[str]]:
    """Per member: three quarters of premium data and one claim file, received and waiting."""
    ids: dict[str, list[str]] = {}
    for m in range(1, 5):
        member = f"M00{m}"
        ids[member] = []
        for q, month in enumerate(("01", "04", "07"), 1):
            rows = [policy_row(transaction_id=f"T{q}{i:04d}", policy_no=f"P{i:04d}", accounting_date=f"2024-{month}-10",
                               effective_date=f"2024-{month}-10", expiry_date=f"2025-{month}-10") for i in range(60)]
            got = submit(settings, write_csv(tmp_path / f"{member}_{q}.csv", rows), member=member, period=f"2024Q{q}")
            ids[member].append(got.submission.submission_id)
        claims = [claim_row(claim_no=f"C{i:04d}", policy_no=f"P{i:04d}") for i in range(40)]
        got = submit(settings, write_csv(tmp_path / f"{member}_c.csv", claims), member=member, dataset="claim")
        ids[member].append(got.submission.submission_id)
    return ids


def test_four_writers_and_four_readers_on_postgres(pg_settings, tmp_path):
    settings = pg_settings
    ids = _files(settings, tmp_path)
    stop = tmp_path / "stop"
    env = _env(settings)
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(stop)], env=env, cwd=PROJECT_ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    started = time.perf_counter()
    writers = [subprocess.Popen([sys.executable, "-m", "pipelines", "ingest", *member_ids], env=env,
                                cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for member_ids in ids.values()]
    outs = [w.communicate(timeout=600) for w in writers]
    stop.touch()
    reads = [json.loads(r.communicate(timeout=120)[0].strip().splitlines()[-1]) for r in readers]
    elapsed = time.perf_counter() - started
    for w, (out, err) in zip(writers, outs, strict=True):
        assert w.returncode == 0, err[-2000:]
        assert "Error" not in out + err and "busy" not in (out + err).lower(), (out, err)
    for r in reads:
        assert r["violations"] == 0 and r["errors"] == 0, r["problems"]
        assert r["checks"] >= 3
    con = store.connect(settings)
    statuses = dict(con.execute("SELECT submission_id, status FROM lake.submissions").fetchall())
    assert statuses == {sid: "accepted" for member_ids in ids.values() for sid in member_ids}
    assert con.execute("SELECT count(*) FROM lake.policy").fetchone()[0] == 4 * 3 * 60
    assert con.execute("SELECT count(*) FROM lake.claim").fetchone()[0] == 4 * 40
    from pipelines import audit

    n, problems = audit.verify(con)
    assert problems == [] and n == 4 + 16 * 3     # members, then received, verdict, publish per submission
    print(f"4 writers x 4 submissions, 4 readers: {elapsed:.1f} s, {sum(r['checks'] for r in reads)} reads")
