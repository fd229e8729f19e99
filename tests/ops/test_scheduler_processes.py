"""What `insurshare airflow start/stop` promise about processes and settings, checked quickly on
stand-in processes (the real Airflow is in test_real_airflow.py)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.airflow.scheduler import (
    logs_dir,
    pids_dir,
    process_start_ticks,
    recorded,
    server_environment,
    spawn,
    stop,
)
from pipelines.cli import main
from pipelines.config import Settings
from tests.ops.conftest import still_alive

# A component that ignores SIGTERM and starts a child in a process group of its own (as Airflow's
# task runners do); the child ignores SIGTERM too. Prints the child's pid.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import os, signal, time; os.setpgid(0, 0); "
                          "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


@pytest.fixture
def home(tmp_path) -> Settings:
    settings = Settings(home=tmp_path / "home")
    for folder in (pids_dir(settings), logs_dir(settings)):
        folder.mkdir(parents=True)
    return settings


def _child_pid(settings: Settings, name: str) -> int:
    log = logs_dir(settings) / f"{name}.log"
    for _ in range(100):
        if log.read_text().strip():
            return int(log.read_text().split()[0])
        time.sleep(0.1)
    raise AssertionError(f"{name} printed no child pid")


def test_stop_kills_a_component_and_its_regrouped_children_that_ignore_sigterm(home, decoy):
    component = spawn(home, "scheduler", [sys.executable, "-c", STUBBORN], {}, {"url": ""})
    child = _child_pid(home, "scheduler")
    procs = {component.pid: component.start_ticks, child: process_start_ticks(child)}

    stopped = stop(home, grace=1)

    left = still_alive(procs)
    for pid in left:  # never leave stand-ins behind, even when stop failed
        os.kill(pid, signal.SIGKILL)
    assert left == set()
    # both were still there after the grace period, so both got SIGKILL
    assert stopped.pids == {"scheduler": sorted(procs)} and sorted(stopped.killed) == sorted(procs)
    assert decoy.poll() is None
    assert list(pids_dir(home).iterdir()) == []


def test_stop_leaves_a_process_that_took_over_a_recorded_pid(home, decoy):
    """A pid file whose pid now belongs to another process (pid reuse) is stale: nothing is signalled."""
    (pids_dir(home) / "scheduler.json").write_text(json.dumps(
        {"pid": decoy.pid, "start_ticks": 1, "log": str(logs_dir(home) / "scheduler.log"), "info": {}}))

    stopped = stop(home, grace=1)

    assert stopped.stale == ["scheduler"] and stopped.pids == {} and stopped.killed == []
    assert decoy.poll() is None
    assert recorded(home) == []


@pytest.mark.parametrize("overrides", [
    {},
    {"catalog": "postgres:dbname=lake host=127.0.0.1", "gx_max_rows": 5, "duckdb_memory_limit": "1GB"},
    {"data_path": Path("/srv/lake/files"), "key_file": Path("/srv/keys/p.key"), "gx_max_rows": 0,
     "query_timeout": 2.5, "query_memory": "700MB", "query_temp": "1GiB"},
], ids=["defaults", "postgres-catalog", "every-field"])
def test_server_environment_gives_tasks_the_same_settings(tmp_path, monkeypatch, overrides):
    # the starting process's own variables say otherwise: the settings win
    for var, text in {"INSURSHARE_CATALOG": str(tmp_path / "other.sqlite"), "INSURSHARE_GX_MAX_ROWS": "7",
                      "INSURSHARE_QUERY_TIMEOUT": "9", "INSURSHARE_QUERY_TEMP": "9GB"}.items():
        monkeypatch.setenv(var, text)
    settings = Settings(home=tmp_path / "home", **overrides)
    env = server_environment(settings, 8799)
    assert Settings.from_env(env) == settings
    assert (env["AIRFLOW__CORE__EXECUTOR"], env["AIRFLOW__CORE__PARALLELISM"]) == ("LocalExecutor", "2")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8799/execution/"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{settings.airflow_home / 'airflow.db'}"


def test_server_environment_takes_the_metadata_db_and_executor_from_the_settings(tmp_path):
    conn = "postgresql+psycopg2://airflow:secret@db.example/airflow"
    settings = Settings.from_env({"INSURSHARE_HOME": str(tmp_path), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn,
                                  "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", "AIRFLOW__CORE__PARALLELISM": "8"})
    env = server_environment(settings, 8799)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == conn
    assert (env["AIRFLOW__CORE__EXECUTOR"], env["AIRFLOW__CORE__PARALLELISM"]) == ("CeleryExecutor", "8")


@pytest.mark.parametrize("args, message", [
    (["airflow", "status"], "Airflow is not (fully) running for"),
    (["airflow", "trigger", "ingest_submissions"], "Error: Airflow is not running for"),
    (["airflow", "stop"], "no Airflow recorded for"),
], ids=["status", "trigger", "stop"])
def test_airflow_commands_say_what_to_do_when_airflow_is_not_running(tmp_path, args, message):
    result = CliRunner().invoke(main, ["--home", str(tmp_path), *args])
    assert message in result.output
    assert result.exit_code == (0 if args[1] == "stop" else 1)
    if args[1] != "stop":
        assert "make airflow" in result.output

