"""The quality-reports DAG: scheduled on the lake asset or daily, run by real Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipelines import store
from pipelines.config import DAGS_DIR, PROJECT_ROOT, Settings
from tests.conftest import policy_row, submit, write_csv

PROBE = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags["quality_reports"]
tt = dag.timetable
print("RESULT" + json.dumps({
    "errors": {k: str(v)[:300] for k, v in bag.import_errors.items()},
    "timetable": type(tt).__name__, "cron": getattr(getattr(tt, "timetable", None), "expression", None),
    "assets": sorted(a.uri for a in getattr(getattr(tt, "asset_condition", None), "objects", [])),
    "tasks": sorted(t.task_id for t in dag.tasks), "retries": sorted({t.retries for t in dag.tasks}),
    "tags": sorted(dag.tags), "params": {k: dag.params[k] for k in dag.params}}))
"""


def _insurshare(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "INSURSHARE_HOME": str(settings.home), "INSURSHARE_GX_MAX_ROWS": "0"}
    return subprocess.run([sys.executable, "-m", "pipelines", *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=600)


def test_quality_reports_dag_runs_on_the_lake_asset_or_daily(tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR", "INSURSHARE_HOME": str(tmp_path / "never")}
    res = subprocess.run([sys.executable, "-c", PROBE, str(DAGS_DIR)], env=env, cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=300)
    line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, res.stderr[-3000:]
    got = json.loads(line[len("RESULT"):])
    assert got["errors"] == {}
    assert (got["timetable"], got["cron"], got["assets"]) == ("AssetOrTimeSchedule", "30 6 * * *",
                                                             ["insurshare://lake/"])
    assert got["tasks"] == ["dashboard", "pin_snapshot", "scorecards", "submission_reports"]
    assert got["retries"] == [2] and {"insurshare", "reports"} <= set(got["tags"])
    assert got["params"] == {"movement_band": 0.25}
    assert not (tmp_path / "never").exists()


@pytest.fixture(scope="module")
def dag_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qr")
    settings = Settings(home=tmp / "home", gx_max_rows=0)
    from pipelines.ingest import process_submission
    from pipelines.keys import create_keys
    from pipelines.members import add_members

    create_keys(settings)
    add_members(settings, {"M001": "One", "M002": "Two"})
    rows = [policy_row(transaction_id=f"T{i:03d}", policy_no=f"P{i:03d}") for i in range(30)]
    rows.append(policy_row(transaction_id="TBAD", region_code="999999"))
    got = submit(settings, write_csv(tmp / "p.csv", rows))
    process_submission(settings, got.submission.submission_id)
    return settings, _insurshare(settings, "run-dag", "quality_reports")


def test_quality_reports_dag_run_writes_every_report(dag_run):
    settings, run = dag_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert "DAG quality_reports finished: success" in run.stdout
    reports = settings.reports_dir
    assert f"dashboard: {reports / 'index.html'}" in run.stdout
    assert (reports / "submissions" / "M001-policy-2024Q1-v1" / "report.html").exists()
    assert (reports / "submissions" / "M001-policy-2024Q1-v1" / "quarantine.xlsx").exists()
    assert sorted(p.name for p in (reports / "members").iterdir()) == ["M001", "M002"]


def test_quality_reports_dag_run_reads_one_snapshot_and_shows_the_missing_member(dag_run):
    settings, _ = dag_run
    dashboard = json.loads((settings.reports_dir / "dashboard.json").read_text())
    con = store.connect(settings)
    assert dashboard["meta"]["snapshot_id"] == store.current_snapshot(con)
    rows = {r["member_id"]: [c["status"] for c in r["cells"]] for r in dashboard["grids"][0]["rows"]}
    assert rows["M002"] == ["missing"] and rows["M001"][0] in ("accepted", "late")
    report = json.loads((settings.reports_dir / "submissions" / "M001-policy-2024Q1-v1" / "report.json").read_text())
    assert report["meta"]["snapshot_id"] == dashboard["meta"]["snapshot_id"]
    assert report["rows"]["quarantined"] == con.execute("SELECT count(*) FROM lake.quarantine").fetchone()[0] == 1
