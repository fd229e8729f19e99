"""The platform on many machines, with no shared disk: a real Airflow scheduler and API server in
one home, two Celery workers in two other homes, an intake machine in a fourth, and everything
shared going through PostgreSQL (Airflow's metadata, the lake catalog), Redis (the task queue) and
S3 (SeaweedFS: the lake's files, the archive, the audit anchor, products and reports).

The demo-sized data set is submitted on the intake machine and ingested through the real scheduler;
the lake, the marts and the audit trail must equal a run of the same files on one machine, both
workers must have taken tasks, and no worker's home may hold a durable file afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipelines import objects
from pipelines.airflow.scheduler import recorded, session_members
from pipelines.airflow.trial import Trial, services_missing
from pipelines.config import PROJECT_ROOT, Settings
from tests.conftest import lake_rows

SCRATCH = {"secrets", "work", "locks", "airflow"}   # what a worker's home may hold: keys, scratch, locks, Airflow's logs

QUERIES = {
    "verdicts": "SELECT submission_id, status, verdict, rows_total, rows_accepted, rows_quarantined, sha256 "
                "FROM lake.submissions ORDER BY submission_id",
    "policy": "SELECT * FROM lake.policy ORDER BY ALL",
    "claim": "SELECT * FROM lake.claim ORDER BY ALL",
    "quarantine": "SELECT * FROM lake.quarantine ORDER BY ALL",
    # the marts name the lake snapshot they were built from: the two lakes number their commits differently
    "triangle": "SELECT * EXCLUDE (source_snapshot) FROM lake.mart_triangle ORDER BY ALL",
    "experience": "SELECT * EXCLUDE (source_snapshot) FROM lake.mart_experience ORDER BY ALL",
    # two workers commit in their own order: the entries are compared as a set, not by seq
    "audit": "SELECT kind, subject, content_sha256 FROM lake.audit_log WHERE kind IN ('verdict', 'publish') "
             "ORDER BY ALL",
}


@dataclass
class Platform:
    trial: Trial
    single: Path
    index: dict
    runs: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, list[dict]] = field(default_factory=dict)
    killed: str = ""     # the submission the first worker was publishing when it was SIGKILLed

    @property
    def workers(self) -> list[Path]:
        return self.trial.workers


def _kill_when_hung(worker: Path, timeout: float = 300) -> str:
    """SIGKILL every process of the worker (Celery, its task runner, the task) once its task hangs
    before a publish commits; return the submission it was publishing."""
    marker = worker / "work" / "faults" / "publish-before-commit.waiting"
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert time.monotonic() < deadline, "the first worker never reached a publish"
        time.sleep(0.5)
    (component,) = recorded(Settings(home=worker))
    for pid in session_members(component.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return marker.read_text().split()[1]


@pytest.fixture(scope="module")
def platform(tmp_path_factory, s3_server):
    if (missing := services_missing()) is not None:
        pytest.skip(missing)
    tmp = tmp_path_factory.mktemp("machines")
    # a task whose worker died is failed (and retried) after 30 s without a heartbeat, not 300
    trial = Trial.create(tmp, workers=2, AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="30")
    incoming = tmp / "incoming"
    trial.cli(trial.intake, "generate", "--members", "3", "--quarters", "2", "--seed", "11", "--scale", "0.05",
              "--out", str(incoming))
    p = Platform(trial, tmp / "single", json.loads((incoming / "index.json").read_text()))
    shutil.copytree(trial.intake / "secrets", p.single / "secrets")
    try:
        trial.cli(trial.intake, "members", "add", "--from-index", str(incoming / "index.json"))
        trial.cli(trial.intake, "submit-index", str(incoming / "index.json"))
        # the first worker hangs in its first publish, to be killed there
        trial.start(worker_env={0: {"INSURSHARE_FAULTS": "wait@publish-before-commit"}})

        def kill_the_first_worker() -> None:
            p.killed = _kill_when_hung(p.workers[0])

        for dag_id, during in (("ingest_submissions", kill_the_first_worker), ("build_marts", None)):
            p.runs[dag_id], p.tasks[dag_id] = trial.run(dag_id, during)
    finally:
        trial.stop()
    # the same files on one machine: local disk, SQLite catalog, no Airflow
    local = {k: v for k, v in trial.env.items() if not k.startswith(("INSURSHARE_", "AIRFLOW"))}
    for step in (("members", "add", "--from-index", str(incoming / "index.json")),
                 ("submit-index", str(incoming / "index.json")), ("ingest",), ("build-marts",)):
        subprocess.run([sys.executable, "-m", "pipelines", "--home", str(p.single), *step], env=local,
                       cwd=PROJECT_ROOT, check=True, capture_output=True, timeout=900)
    print("\nmany machines (s): " + ", ".join(f"{k} {v:.0f}" for k, v in trial.seconds.items()))
    yield p
    trial.drop()


def _settings(p: Platform, home: Path) -> Settings:
    return Settings.from_env({**p.trial.env, "INSURSHARE_HOME": str(home)})


def test_the_real_scheduler_ingested_everything_on_the_two_workers(platform):
    assert platform.runs == {"ingest_submissions": "success", "build_marts": "success"}
    ran = [t for tasks in platform.tasks.values() for t in tasks if t["state"] == "success"]
    assert len(ran) >= len(platform.index["submissions"])
    # the task whose worker was killed mid-publish was retried, on the other worker, and succeeded
    (retried,) = [t for t in platform.tasks["ingest_submissions"] if t.get("rendered_map_index") == platform.killed]
    assert retried["state"] == "success" and retried["try_number"] == 2, retried
    second_try = {w.name: list(w.rglob(f"task_id={retried['task_id']}/map_index={retried['map_index']}/attempt=2.log"))
                  for w in platform.workers}
    assert not second_try["worker-1"] and len(second_try["worker-2"]) == 1, second_try
    # each worker ran tasks: it wrote their logs into its own home
    logs = {w.name: len(list((w / "airflow" / "logs").rglob("attempt=*.log"))) for w in platform.workers}
    assert all(n > 0 for n in logs.values()) and sum(logs.values()) >= len(ran), logs


def test_the_lake_marts_and_audit_trail_equal_a_single_machine_run(platform):
    ours = lake_rows(_settings(platform, platform.trial.scheduler), QUERIES)
    theirs = lake_rows(Settings(home=platform.single), QUERIES)
    expected = {f"{s['member_id']}-{s['dataset']}-{s['period']}-v{s['version']}": s["expect"]
                for s in platform.index["submissions"]}
    assert {r[0]: r[1] for r in ours["verdicts"]} == expected
    for name in QUERIES:
        assert ours[name] == theirs[name], name
    assert ours["policy"] and ours["triangle"] and ours["audit"]


def test_every_machine_sealed_into_one_anchor_that_verifies(platform):
    out = platform.trial.cli(platform.trial.scheduler, "audit", "verify")   # raises unless it exits 0
    assert "TAMPERED" not in out
    lines = list(objects.list_urls(_settings(platform, platform.trial.scheduler), f"{platform.trial.prefix}/audit/anchor"))
    assert len(lines) > len(platform.index["submissions"])


def test_no_durable_file_is_left_in_a_workers_home(platform):
    for worker in platform.workers:
        assert {p.name for p in worker.iterdir()} <= SCRATCH, worker
        durable = [p for p in worker.rglob("*") if p.is_file() and "work" not in p.relative_to(worker).parts
                   and p.suffix in (".parquet", ".duckdb", ".sqlite", ".jsonl", ".csv", ".xlsx", ".html")]
        assert durable == [], durable
