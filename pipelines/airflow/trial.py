"""The many-machines profile tried on one host: what the test and the benchmark of it start.

A ``Trial`` has a home per machine (an intake machine, the scheduler's with the API server, and
one per Celery worker), each a separate folder with the same keys, and shares nothing through the
disk: Airflow's metadata and the lake catalog are two fresh PostgreSQL databases, the task queue is
a queue of its own on Redis, and every durable file goes under a fresh prefix of the S3 store
(SeaweedFS from ``pipelines.seaweed``). Each command runs as a subprocess with the machine's home,
as it would on its own host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import seaweed
from pipelines.airflow.client import AirflowClient
from pipelines.airflow.scheduler import free_port
from pipelines.config import PROJECT_ROOT


def psql(sql: str, database: str = "postgres") -> subprocess.CompletedProcess:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1",
                           "-c", sql], capture_output=True, text=True, timeout=60)


def services_missing() -> str | None:
    """Why the trial cannot run here (PostgreSQL or Redis not answering), or None."""
    if shutil.which("psql") is None or psql("SELECT 1").returncode != 0:
        return "PostgreSQL is not running on 127.0.0.1 (scripts/start-services.sh starts it)"
    try:
        import redis

        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
    except Exception:   # noqa: BLE001 - any failure means no broker
        return "Redis is not running on 127.0.0.1:6379 (scripts/start-services.sh starts it)"
    return None


@dataclass
class Trial:
    root: Path
    env: dict[str, str]
    workers: list[Path]
    prefix: str
    databases: tuple[str, str]
    url: str = ""
    login: tuple[str, str] = ("", "")
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def scheduler(self) -> Path:
        return self.root / "scheduler"

    @property
    def intake(self) -> Path:
        return self.root / "intake"

    @classmethod
    def create(cls, root: Path, workers: int = 2, **env: str) -> Trial:
        """New databases, a new S3 prefix and a queue of its own; the intake machine's keys given
        to every machine. ``env`` adds settings (``INSURSHARE_*``, ``AIRFLOW__*``) to all."""
        tag = uuid.uuid4().hex[:8]
        databases = (f"insurshare_lake_{tag}", f"insurshare_airflow_{tag}")
        for db in databases:
            done = psql(f"CREATE DATABASE {db}")
            if done.returncode != 0:
                raise RuntimeError(f"CREATE DATABASE {db} failed: {done.stderr}")
        lake_db, meta_db = databases
        prefix = f"s3://{seaweed.BUCKET}/trial-{tag}"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("INSURSHARE_", "AIRFLOW"))}
        base.update(seaweed.env())
        base.update({
            "INSURSHARE_STORAGE": prefix,
            "INSURSHARE_CATALOG": f"postgres:dbname={lake_db} host=127.0.0.1 user=postgres",
            "INSURSHARE_INGEST_SCHEDULE": "none",
            "INSURSHARE_PORTAL_PORT": str(free_port()),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",         # tasks in flight: one per worker
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{meta_db}",
            "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://postgres@127.0.0.1:5432/{meta_db}",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"insurshare-{tag}",   # this trial's own queue on a shared Redis
            **env,
        })
        trial = cls(root, base, [root / f"worker-{n}" for n in range(1, workers + 1)], prefix, databases)
        trial.cli(trial.intake, "keygen")
        for home in (trial.scheduler, *trial.workers):
            shutil.copytree(trial.intake / "secrets", home / "secrets")
        return trial

    def cli(self, home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> str:
        """``insurshare ARGS`` on the machine whose home is ``home``; its output (raises on failure)."""
        res = subprocess.run([sys.executable, "-m", "pipelines", "--home", str(home), *args],
                             env={**self.env, **(env or {}), "INSURSHARE_HOME": str(home)}, cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"insurshare {' '.join(args)} failed on {home.name}:\n{res.stdout[-3000:]}\n"
                               f"{res.stderr[-3000:]}")
        return res.stdout

    def start(self, worker_env: dict[int, dict[str, str]] | None = None) -> None:
        """The scheduler, API server and DAG processor (no worker) on the scheduler's machine, then
        one Celery worker (concurrency 1) on each worker's machine; ``worker_env`` adds settings
        to the worker of that index."""
        clock = time.monotonic()
        started = self.cli(self.scheduler, "airflow", "start", "--paused", "--no-worker")
        self.url = re.search(r"at (http://\S+)", started).group(1)
        self.login = re.search(r"login: (\S+) / (\S+)", started).groups()
        for n, worker in enumerate(self.workers):
            self.cli(worker, "airflow", "worker", self.url, "--concurrency", "1", env=(worker_env or {}).get(n))
        self.seconds["start"] = time.monotonic() - clock

    def client(self) -> AirflowClient:
        return AirflowClient(self.url, *self.login)

    def run(self, dag_id: str, while_running=None, timeout: float = 900) -> tuple[str, list[dict]]:
        """Trigger ``dag_id`` and wait for its run; its state and task instances. ``while_running``
        is called once the run was triggered."""
        client = self.client()
        client.wait_for_dag(dag_id, timeout=180)
        clock = time.monotonic()
        run_id = re.search(r"run (\S+)", self.cli(self.scheduler, "airflow", "trigger", dag_id)).group(1)
        if while_running is not None:
            while_running()
        run = client.wait_for_run(dag_id, run_id, timeout=timeout)
        self.seconds[dag_id] = time.monotonic() - clock
        return run["state"], client.task_instances(dag_id, run_id)

    def stop(self) -> None:
        for home in (self.scheduler, *self.workers):
            subprocess.run([sys.executable, "-m", "pipelines", "--home", str(home), "airflow", "stop", "--grace", "20"],
                           env={**self.env, "INSURSHARE_HOME": str(home)}, cwd=PROJECT_ROOT, capture_output=True,
                           timeout=300)

    def drop(self) -> None:
        for db in self.databases:
            psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
