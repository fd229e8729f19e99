"""The lake maintenance DAG: nightly, run by real Airflow (``insurshare run-dag``)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

from pipelines import store
from pipelines.config import PROJECT_ROOT, Settings
from pipelines.maintenance import lake_shape
from tests.audit.conftest import cli
from tests.marts.conftest import insert_rows, policy


def test_lake_maintenance_dag_run_expires_and_verifies(tmp_path):
    settings = Settings(home=tmp_path / "home")
    for n in range(4):
        insert_rows(settings, "policy", [policy(f"M00{n + 1}", dt.date(2024, 1, 1), dt.date(2025, 1, 1), 366.0)])
    con = store.connect(settings)
    before = lake_shape(con)
    con.close()
    env = {**os.environ, "INSURSHARE_HOME": str(settings.home), "INSURSHARE_SNAPSHOT_RETENTION_DAYS": "0"}
    run = subprocess.run([sys.executable, "-m", "pipelines", "run-dag", "lake_maintenance"], env=env,
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "DAG lake_maintenance finished: success" in run.stdout
    con = store.connect(settings)
    after = lake_shape(con)
    assert con.execute("SELECT count(*) FROM lake.policy").fetchone()[0] == 4
    con.close()
    assert after.snapshots < before.snapshots and after.inlined_rows < before.inlined_rows
    assert cli(settings, "audit", "verify").exit_code == 0
