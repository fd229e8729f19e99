"""The marts DAG: scheduled on the lake asset, run by real Airflow (``insurshare run-dag``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from pipelines import store
from pipelines.config import DAGS_DIR, PROJECT_ROOT, Settings
from tests.marts.conftest import claim_snapshots, insert_rows, policy

PROBE = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=sys.argv[1]).dags["build_marts"]
print("RESULT" + json.dumps({
    "schedule": [a.uri for a in dag.timetable.asset_condition.objects],
    "outlets": {t.task_id: [o.uri for o in t.outlets] for t in dag.tasks},
    "retries": {t.task_id: t.retries for t in dag.tasks}, "tags": sorted(dag.tags)}))
"""


def _run(settings: Settings, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "INSURSHARE_HOME": str(settings.home), **(env or {})}
    return subprocess.run([sys.executable, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def dag_runs(tmp_path_factory):
    """A small lake, then two runs of the DAG (the second finds nothing new)."""
    settings = Settings(home=tmp_path_factory.mktemp("marts-dag") / "home")
    insert_rows(settings, "policy", [policy("M001", dt.date(2024, 1, 1), dt.date(2025, 1, 1), 366.0)])
    data_snapshot = insert_rows(settings, "claim", claim_snapshots(
        "M001", "A1", dt.date(2024, 2, 1), dt.date(2024, 2, 2), [100, 150], 300, None,
        valuations=[dt.date(2024, 3, 31), dt.date(2024, 6, 30)]))
    first = _run(settings, "-m", "pipelines", "run-dag", "build_marts")
    con = store.connect(settings)
    after_first = store.current_snapshot(con)
    con.close()
    second = _run(settings, "-m", "pipelines", "run-dag", "build_marts")
    return settings, data_snapshot, first, second, after_first


def test_build_marts_dag_is_scheduled_on_the_lake_asset(tmp_path):
    res = _run(Settings(home=tmp_path / "never"), "-c", PROBE, str(DAGS_DIR / "build_marts.py"),
               env={"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, res.stderr[-3000:]
    got = json.loads(line[len("RESULT"):])
    assert got == {"schedule": ["insurshare://lake/"], "outlets": {"build": ["insurshare://marts/"]},
                   "retries": {"build": 3}, "tags": ["insurshare", "marts"]}


def test_build_marts_dag_run_builds_the_marts(dag_runs):
    settings, data_snapshot, first, _, _ = dag_runs
    assert first.returncode == 0, first.stderr[-3000:]
    assert "DAG build_marts finished: success" in first.stdout
    assert f"built marts from snapshot {data_snapshot}" in first.stdout
    con = store.connect(settings)
    cells = con.execute("SELECT age, value, source_snapshot FROM lake.mart_triangle WHERE scope = 'industry' "
                        "AND grain = 'quarter' AND line_of_business <> 'ALL' AND region_code = 'ALL' AND measure = 'paid' "
                        "ORDER BY age").fetchall()
    assert [(a, float(v), s) for a, v, s in cells] == [(3, 100.0, data_snapshot), (6, 150.0, data_snapshot)]


def test_build_marts_dag_second_run_changes_nothing(dag_runs):
    settings, data_snapshot, _, second, after_first = dag_runs
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"marts are up to date: built from snapshot {data_snapshot}" in second.stdout
    con = store.connect(settings)
    assert store.current_snapshot(con) == after_first
