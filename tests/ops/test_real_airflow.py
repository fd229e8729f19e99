"""The platform on a real Airflow: api-server, scheduler and dag-processor started by
`insurshare airflow start` (what `make airflow` runs) with the portal beside them, ingestion
triggered through the REST API, the quality reports scheduled by the lake asset, and
`insurshare airflow stop`."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

import pytest

from pipelines import store
from pipelines.airflow.client import AirflowClient
from pipelines.airflow.scheduler import free_port, pids_dir, recorded
from pipelines.config import Settings
from tests.ops.conftest import (
    cmdline,
    insurshare,
    listening_hosts,
    most_at_once,
    processes_of,
    still_alive,
    wait_for_reports,
    wait_until_idle,
    when,
)

PLATFORM_DAGS = ("quality_reports", "ingest_submissions")


@dataclass
class Scenario:
    """Everything the real run showed, gathered once; the tests below judge it."""

    settings: Settings
    index: dict
    started: str = ""
    started_again: str = ""
    url: str = ""
    username: str = ""
    password: str = ""
    hosts: set[str] = field(default_factory=set)
    dag_ids: set[str] = field(default_factory=set)
    triggered: str = ""
    run: dict = field(default_factory=dict)
    run_tasks: list[dict] = field(default_factory=list)
    all_tasks: list[dict] = field(default_factory=list)
    reports_runs: list[dict] = field(default_factory=list)
    last_lake_event: str = ""
    workers: int = 0
    processes: dict[int, int | None] = field(default_factory=dict)
    leaders: list[int] = field(default_factory=list)
    stopped: str = ""
    left_alive: set[int] = field(default_factory=set)
    decoy_alive: bool = False
    pid_files_left: list[str] = field(default_factory=list)
    hosts_after_stop: set[str] = field(default_factory=set)
    portal_url: str = ""
    portal_login_status: int = 0
    portal_hosts_after_stop: set[str] = field(default_factory=set)
    seconds: dict[str, float] = field(default_factory=dict)


def _ok(res, step):
    assert res.returncode == 0, (step, res.stdout[-3000:], res.stderr[-3000:])
    return res.stdout


# Ingestion on demand only: a scheduled run falling between `submit` and the REST trigger would
# take the submissions first and leave the triggered run nothing to do.
ON_DEMAND = {"INSURSHARE_INGEST_SCHEDULE": "none"}


def _run_on_airflow(sc: Scenario, incoming, clock) -> None:
    portal = {"INSURSHARE_PORTAL_PORT": str(free_port())}   # not 8300: another portal may run there
    sc.started = _ok(insurshare(sc.settings, "airflow", "start", "--paused", env={**ON_DEMAND, **portal}), "start")
    clock("start")
    sc.url = re.search(r"at (http://\S+)", sc.started).group(1)
    sc.portal_url = re.search(r"portal at (http://\S+)", sc.started).group(1)
    with urllib.request.urlopen(f"{sc.portal_url}/login", timeout=10) as answer:
        sc.portal_login_status = answer.status
    sc.username, sc.password = re.search(r"login: (\S+) / (\S+)", sc.started).groups()
    sc.hosts = listening_hosts(int(sc.url.rsplit(":", 1)[1]))
    sc.started_again = _ok(insurshare(sc.settings, "airflow", "start"), "start again")
    client = AirflowClient(sc.url, sc.username, sc.password)
    sc.dag_ids = {d["dag_id"] for d in client.request("GET", "dags")["dags"]}
    for dag_id in PLATFORM_DAGS:  # quality_reports must be unpaused to be queued by lake events
        client.wait_for_dag(dag_id, timeout=120)
        client.set_paused(dag_id, False)
    wait_until_idle(client, PLATFORM_DAGS, timeout=240)
    clock("unpause and settle")
    _ok(insurshare(sc.settings, "submit-index", str(incoming / "index.json")), "submit")
    sc.triggered = _ok(insurshare(sc.settings, "airflow", "trigger", "ingest_submissions", "--wait",
                                  "--timeout", "420", timeout=480), "trigger")
    clock("ingestion")
    run_id = re.search(r"run (\S+)", sc.triggered).group(1)
    sc.run = client.dag_run("ingest_submissions", run_id)
    sc.run_tasks = client.task_instances("ingest_submissions", run_id)
    events = client.request("GET", "assets/events", source_dag_id="ingest_submissions", source_run_id=run_id,
                            order_by="-timestamp", limit=1)["asset_events"]
    sc.last_lake_event = events[0]["timestamp"] if events else ""
    if events:
        sc.reports_runs = wait_for_reports(client, when(sc.last_lake_event), timeout=240)
    clock("reports")
    sc.all_tasks = client.request("GET", "dags/~/dagRuns/~/taskInstances", limit=100)["task_instances"]


def _stop(sc: Scenario, decoy, clock) -> None:
    sc.leaders = [c.pid for c in recorded(sc.settings)]
    sc.processes = processes_of(sc.leaders)
    sc.workers = sum(cmdline(pid).startswith("airflow worker -- LocalExecutor") for pid in sc.processes)
    sc.stopped = _ok(insurshare(sc.settings, "airflow", "stop"), "stop")
    clock("stop")
    sc.left_alive = still_alive(sc.processes)
    sc.decoy_alive = decoy.poll() is None
    sc.pid_files_left = sorted(p.name for p in pids_dir(sc.settings).glob("*"))
    if sc.url:
        sc.hosts_after_stop = listening_hosts(int(sc.url.rsplit(":", 1)[1]))
    if sc.portal_url:
        sc.portal_hosts_after_stop = listening_hosts(int(sc.portal_url.rsplit(":", 1)[1]))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, decoy) -> Scenario:
    """Generate a small data set, start Airflow, submit, trigger ingestion through the REST API,
    wait for it and for the reports it schedules, then stop Airflow (also when a step failed)."""
    tmp = tmp_path_factory.mktemp("ops")
    incoming = tmp / "incoming"
    settings = Settings(home=tmp / "home")
    for step in [("keygen",),
                 ("generate", "--members", "3", "--quarters", "2", "--seed", "11", "--scale", "0.05",
                  "--out", str(incoming)),
                 ("members", "add", "--from-index", str(incoming / "index.json"))]:
        _ok(insurshare(settings, *step), step)
    sc = Scenario(settings, json.loads((incoming / "index.json").read_text()))
    began = last = time.monotonic()

    def clock(name: str) -> None:
        nonlocal last
        sc.seconds[name], last = time.monotonic() - last, time.monotonic()

    try:
        _run_on_airflow(sc, incoming, clock)
    finally:
        _stop(sc, decoy, clock)
        sc.seconds["total"] = time.monotonic() - began
        print("\nreal Airflow timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in sc.seconds.items()))
    return sc


def _expected_status(sc: Scenario) -> dict[str, str]:
    return {f"{s['member_id']}-{s['dataset']}-{s['period']}-v{s['version']}": s["expect"]
            for s in sc.index["submissions"]}


def test_airflow_start_prints_url_and_a_login_that_works(scenario):
    assert re.search(r"at http://127\.0\.0\.1:\d+ ", scenario.started)
    assert "LocalExecutor, parallelism 2" in scenario.started
    assert scenario.username == "admin" and len(scenario.password) >= 12
    # the login got a token, and the API lists exactly the project's DAGs (no examples)
    assert scenario.dag_ids == {"build_marts", "build_products", "ingest_submissions", "lake_maintenance",
                                "quality_reports"}


def test_airflow_listens_on_localhost_only(scenario):
    assert scenario.hosts == {"127.0.0.1"}


def test_airflow_start_again_reports_the_running_one(scenario):
    assert "already running" in scenario.started_again
    assert f"at {scenario.url} " in scenario.started_again
    assert f"login: {scenario.username} / {scenario.password}" in scenario.started_again


def test_airflow_runs_two_tasks_at_a_time_with_the_local_executor(scenario):
    assert scenario.workers == 2
    assert most_at_once(scenario.all_tasks) == 2


def test_ingestion_triggered_through_the_api_succeeds(scenario):
    assert scenario.run["state"] == "success"
    assert (scenario.run["run_type"], scenario.run["triggered_by"]) == ("manual", "rest_api")
    assert "ingest_submissions" in scenario.triggered and ": success" in scenario.triggered


def test_triggered_run_processed_every_submission(scenario):
    done = Counter(t["task_id"] for t in scenario.run_tasks if t["state"] == "success" and t["map_index"] >= 0)
    wanted = Counter(f"process_{s['dataset']}" for s in scenario.index["submissions"])
    assert done == wanted and sum(done.values()) == len(scenario.index["submissions"])


def test_lake_holds_the_generated_verdicts(scenario):
    con = store.connect(scenario.settings)
    got = dict(con.execute("SELECT submission_id, status FROM lake.submissions").fetchall())
    assert got == _expected_status(scenario)
    assert {"accepted", "rejected", "superseded"} <= set(got.values())


def test_quality_reports_ran_after_the_lake_update(scenario):
    after_ingestion = [r for r in scenario.reports_runs if r["run_type"] == "asset_triggered"
                       and when(r["start_date"]) >= when(scenario.last_lake_event)]
    assert after_ingestion and all(r["state"] == "success" for r in scenario.reports_runs)


def test_reports_show_the_lake_as_ingested(scenario):
    reports = scenario.settings.reports_dir
    dashboard = json.loads((reports / "dashboard.json").read_text())
    con = store.connect(scenario.settings)
    assert dashboard["meta"]["snapshot_id"] == store.current_snapshot(con)
    assert {s["submission_id"]: s["status"] for s in dashboard["submissions"]} == _expected_status(scenario)
    assert "<html" in (reports / "index.html").read_text().lower()
    assert all((reports / "submissions" / sid / "report.html").exists() for sid in _expected_status(scenario))


def test_airflow_start_starts_the_portal_and_says_how_to_begin(scenario):
    assert scenario.portal_login_status == 200
    assert "insurshare users add admin --role operator" in scenario.started
    assert f"portal at {scenario.portal_url} " in scenario.started_again   # the same one, still running


def test_stop_ends_exactly_the_started_processes(scenario):
    assert len(scenario.leaders) == 4 and set(scenario.leaders) <= set(scenario.processes)
    assert scenario.left_alive == set()
    assert scenario.decoy_alive, "stop must not touch processes it did not start"
    assert scenario.pid_files_left == [] and scenario.hosts_after_stop == set()
    assert scenario.portal_hosts_after_stop == set()
    for name in ("portal", "scheduler", "dag-processor", "api-server"):
        assert f"stopped {name} (pids" in scenario.stopped
