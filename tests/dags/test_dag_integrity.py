"""Every DAG file imports cleanly, cheaply and declares what operators rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipelines.config import DAGS_DIR, PROJECT_ROOT

DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))

PROBE = r"""
import json, sys, time
t = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: str(v)[:500] for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "tags": sorted(dag.tags), "schedule": str(getattr(dag.timetable, "expression", dag.timetable)),
        "retries": {t.task_id: t.retries for t in dag.tasks},
        "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
        "outlets": sorted({str(getattr(o, "uri", o)) for t in dag.tasks for o in t.outlets}),
        "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
        "owners": sorted({t.owner for t in dag.tasks}),
        "retry_delays": sorted({t.retry_delay.total_seconds() for t in dag.tasks}),
        "backoff": sorted({bool(t.retry_exponential_backoff) for t in dag.tasks}),   # mapped tasks: 2.0
    }
heavy = [m for m in ("pipelines.ingest", "duckdb", "great_expectations", "pandas.io.parquet")
         if m in sys.modules]
out["heavy_modules_imported"] = heavy
print("RESULT" + json.dumps(out))
"""


def _parse(tmp_path_factory, **extra_env: str) -> dict:
    home = tmp_path_factory.mktemp("airflow")
    missing_home = tmp_path_factory.mktemp("x") / "never-created"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSURSHARE_")}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR), "INSURSHARE_HOME": str(missing_home),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR", **extra_env})
    res = subprocess.run([sys.executable, "-c", PROBE, str(DAGS_DIR)], env=env, cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=300)
    line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, res.stderr[-3000:]
    out = json.loads(line[len("RESULT"):])
    out["home_created"] = missing_home.exists()
    return out


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> dict:
    return _parse(tmp_path_factory)


# The DAGs the README and the operators know; a DAG file added or removed changes this list.
DAG_IDS = ["build_marts", "build_products", "ingest_submissions", "lake_maintenance", "quality_reports"]


def test_dag_files_exist():
    """Every file in dags/ is a DAG: what they share lives in pipelines/airflow/dags.py, since
    Airflow's dag-processor parses every .py file of the folder."""
    assert [p.name for p in DAG_FILES] == [f"{d}.py" for d in DAG_IDS]
    assert sorted(p.name for p in DAGS_DIR.glob("*.py")) == [p.name for p in DAG_FILES]


def test_dag_files_import_without_errors(dagbag):
    assert dagbag["errors"] == {}
    assert sorted(dagbag["dags"]) == DAG_IDS


def test_dag_import_does_no_work(dagbag):
    assert dagbag["heavy_modules_imported"] == []
    assert dagbag["home_created"] is False


def test_dags_have_tags_retries_and_no_catchup(dagbag):
    for dag_id, dag in dagbag["dags"].items():
        assert "insurshare" in dag["tags"], dag_id
        assert all(r >= 1 for r in dag["retries"].values()), dag_id
        assert dag["catchup"] is False, dag_id


def test_ingest_dag_schedule_and_asset(dagbag):
    dag = dagbag["dags"]["ingest_submissions"]
    assert "*/15 * * * *" in dag["schedule"]
    assert dag["max_active_runs"] == 1
    assert dag["outlets"] == ["insurshare://lake/"]
    assert set(dag["retries"]) >= {"intake_landing", "pending_policy", "process_policy",
                                   "pending_claim", "process_claim"}


def test_ingest_dag_processes_the_datasets_in_the_contracts_order(dagbag):
    """Claims are looked up only once policies are processed (claim.yaml's CLM-D01 reads them)."""
    assert dagbag["dags"]["ingest_submissions"]["upstream"] == {
        "intake_landing": [], "pending_policy": ["intake_landing"], "process_policy": ["pending_policy"],
        "pending_claim": ["process_policy"], "process_claim": ["pending_claim"],
        "check_run": ["intake_landing", "process_claim", "process_policy"],
        "notify": ["intake_landing", "process_claim", "process_policy"]}


def test_dags_share_their_owner_and_retry_policy(dagbag):
    retries = {dag_id: (dag["owners"], sorted(set(dag["retries"].values())), dag["retry_delays"], dag["backoff"])
               for dag_id, dag in dagbag["dags"].items()}
    assert retries == {"build_marts": (["insurshare"], [3], [20.0], [True]),
                       "build_products": (["insurshare"], [3], [20.0], [True]),
                       "ingest_submissions": (["insurshare"], [3], [20.0], [True]),
                       "lake_maintenance": (["insurshare"], [3], [20.0], [True]),
                       "quality_reports": (["insurshare"], [2], [30.0], [True])}


@pytest.mark.parametrize("value, schedule", [("none", "NullTimetable"), ("0 * * * *", "0 * * * *")])
def test_ingest_dag_schedule_is_configurable(tmp_path_factory, value, schedule):
    dag = _parse(tmp_path_factory, INSURSHARE_INGEST_SCHEDULE=value)["dags"]["ingest_submissions"]
    assert schedule in dag["schedule"] and "*/15" not in dag["schedule"]


def test_dag_retry_policy_spends_retries_only_on_transient_errors():
    from pipelines.errors import LakeBusy, SubmissionError, is_retryable

    assert is_retryable(LakeBusy("busy")) and is_retryable(TimeoutError())
    assert not is_retryable(SubmissionError("bad member")) and not is_retryable(ValueError("bug"))
    assert not is_retryable(FileNotFoundError("gone"))
