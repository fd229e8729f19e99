"""The platform on many machines, with no shared disk: a real Airflow scheduler and API server in
one home, two Celery workers in two other homes, an intake machine in a fourth, and everything
shared going through PostgreSQL (Airflow's metadata, the lake catalog), Redis (the task queue) and
S3 (SeaweedFS: the lake's files, the archive, the audit anchor, products and reports).

The demo-sized data set is submitted on the intake machine and ingested through the real scheduler;
the lake, the marts and the audit trail must equal a run of the same files on one machine, both
workers must have taken tasks, and no worker's home may hold a durable file afterwards."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipelines import objects, seaweed
from pipelines.airflow.client import AirflowClient
from pipelines.airflow.scheduler import free_port
from pipelines.config import PROJECT_ROOT, Settings
from tests.conftest import lake_rows
from tests.store.conftest import _psql

SCRATCH = {"secrets", "work", "locks", "airflow"}   # what a worker's home may hold: keys, scratch, locks, Airflow's logs


def _services_or_skip() -> None:
    if shutil.which("psql") is None or _psql("SELECT 1").returncode != 0:
        pytest.skip("PostgreSQL is not running on 127.0.0.1 (scripts/start-services.sh starts it)")
    try:
        import redis

        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
    except Exception:   # noqa: BLE001 - any failure means no broker
        pytest.skip("Redis is not running on 127.0.0.1:6379 (scripts/start-services.sh starts it)")


def _cli(home: Path, env: dict[str, str], *args: str, timeout: float = 900) -> str:
    res = subprocess.run([sys.executable, "-m", "pipelines", "--home", str(home), *args], env={**env, "INSURSHARE_HOME": str(home)},
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, (args, res.stdout[-3000:], res.stderr[-3000:])
    return res.stdout


@dataclass
class Platform:
    env: dict[str, str]
    scheduler: Path
    workers: list[Path]
    intake: Path
    single: Path
    index: dict
    prefix: str
    url: str = ""
    runs: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, list[dict]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


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


@pytest.fixture(scope="module")
def platform(tmp_path_factory, s3_server):
    _services_or_skip()
    tmp = tmp_path_factory.mktemp("machines")
    tag = uuid.uuid4().hex[:8]
    lake_db, meta_db = f"insurshare_lake_{tag}", f"insurshare_airflow_{tag}"
    for db in (lake_db, meta_db):
        assert _psql(f"CREATE DATABASE {db}").returncode == 0
    prefix = f"s3://{seaweed.BUCKET}/machines-{tag}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INSURSHARE_", "AIRFLOW"))}
    env.update(seaweed.env())
    env.update({
        "INSURSHARE_STORAGE": prefix,
        "INSURSHARE_CATALOG": f"postgres:dbname={lake_db} host=127.0.0.1 user=postgres",
        "INSURSHARE_INGEST_SCHEDULE": "none",
        "INSURSHARE_PORTAL_PORT": str(free_port()),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{meta_db}",
        "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://postgres@127.0.0.1:5432/{meta_db}",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"insurshare-{tag}",   # this test's own queue on the shared Redis
    })
    homes = {name: tmp / name for name in ("intake", "scheduler", "worker-1", "worker-2", "single")}
    incoming = tmp / "incoming"
    _cli(homes["intake"], env, "keygen")
    _cli(homes["intake"], env, "generate", "--members", "3", "--quarters", "2", "--seed", "11", "--scale", "0.05",
         "--out", str(incoming))
    for name in ("scheduler", "worker-1", "worker-2", "single"):   # every machine is given the same keys
        shutil.copytree(homes["intake"] / "secrets", homes[name] / "secrets")
    p = Platform(env, homes["scheduler"], [homes["worker-1"], homes["worker-2"]], homes["intake"], homes["single"],
                 json.loads((incoming / "index.json").read_text()), prefix)
    clock = time.monotonic()
    try:
        _cli(p.intake, env, "members", "add", "--from-index", str(incoming / "index.json"))
        _cli(p.intake, env, "submit-index", str(incoming / "index.json"))
        started = _cli(p.scheduler, env, "airflow", "start", "--paused", "--no-worker")
        p.url = re.search(r"at (http://\S+)", started).group(1)
        user, password = re.search(r"login: (\S+) / (\S+)", started).groups()
        for worker in p.workers:
            _cli(worker, env, "airflow", "worker", p.url, "--concurrency", "1")
        p.seconds["start"] = time.monotonic() - clock
        client = AirflowClient(p.url, user, password)
        for dag_id in ("ingest_submissions", "build_marts"):
            client.wait_for_dag(dag_id, timeout=180)
            client.set_paused(dag_id, False)
            clock = time.monotonic()
            out = _cli(p.scheduler, env, "airflow", "trigger", dag_id, "--wait", "--timeout", "600", timeout=700)
            p.seconds[dag_id] = time.monotonic() - clock
            run_id = re.search(r"run (\S+)", out).group(1)
            p.runs[dag_id] = client.dag_run(dag_id, run_id)["state"]
            p.tasks[dag_id] = client.task_instances(dag_id, run_id)
    finally:
        for home in (p.scheduler, *p.workers):
            subprocess.run([sys.executable, "-m", "pipelines", "--home", str(home), "airflow", "stop", "--grace", "20"],
                           env={**env, "INSURSHARE_HOME": str(home)}, cwd=PROJECT_ROOT, capture_output=True, timeout=300)
    # the same files on one machine: local disk, SQLite catalog, no Airflow
    local = {k: v for k, v in env.items() if not k.startswith(("INSURSHARE_", "AIRFLOW"))}
    _cli(p.single, local, "members", "add", "--from-index", str(incoming / "index.json"))
    _cli(p.single, local, "submit-index", str(incoming / "index.json"))
    _cli(p.single, local, "ingest")
    _cli(p.single, local, "build-marts")
    print("\nmany machines (s): " + ", ".join(f"{k} {v:.0f}" for k, v in p.seconds.items()))
    yield p
    for db in (lake_db, meta_db):
        _psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def _settings(p: Platform, home: Path) -> Settings:
    return Settings.from_env({**p.env, "INSURSHARE_HOME": str(home)})


def test_the_real_scheduler_ingested_everything_on_the_two_workers(platform):
    assert platform.runs == {"ingest_submissions": "success", "build_marts": "success"}
    ran = [t for tasks in platform.tasks.values() for t in tasks if t["state"] == "success"]
    assert len(ran) >= len(platform.index["submissions"])
    # each worker ran tasks: it wrote their logs into its own home
    logs = {w.name: len(list((w / "airflow" / "logs").rglob("attempt=*.log"))) for w in platform.workers}
    assert all(n > 0 for n in logs.values()) and sum(logs.values()) >= len(ran), logs


def test_the_lake_marts_and_audit_trail_equal_a_single_machine_run(platform):
    ours = lake_rows(_settings(platform, platform.scheduler), QUERIES)
    theirs = lake_rows(Settings(home=platform.single), QUERIES)
    expected = {f"{s['member_id']}-{s['dataset']}-{s['period']}-v{s['version']}": s["expect"]
                for s in platform.index["submissions"]}
    assert {r[0]: r[1] for r in ours["verdicts"]} == expected
    for name in QUERIES:
        assert ours[name] == theirs[name], name
    assert ours["policy"] and ours["triangle"] and ours["audit"]


def test_every_machine_sealed_into_one_anchor_that_verifies(platform):
    out = _cli(platform.scheduler, platform.env, "audit", "verify")
    assert "TAMPERED" not in out
    lines = list(objects.list_urls(_settings(platform, platform.scheduler), f"{platform.prefix}/audit/anchor"))
    assert len(lines) > len(platform.index["submissions"])


def test_no_durable_file_is_left_in_a_workers_home(platform):
    for worker in platform.workers:
        assert {p.name for p in worker.iterdir()} <= SCRATCH, worker
        durable = [p for p in worker.rglob("*") if p.is_file() and "work" not in p.relative_to(worker).parts
                   and p.suffix in (".parquet", ".duckdb", ".sqlite", ".jsonl", ".csv", ".xlsx", ".html")]
        assert durable == [], durable
