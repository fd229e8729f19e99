"""The README's order on a real Airflow: `make demo` (here its steps on a small data set), then
`make airflow` (`insurshare airflow start`), then a member drops a file and its manifest into
landing/. Nobody triggers anything: the scheduled ingestion takes the file, the lake asset starts
build_marts and quality_reports, the marts asset starts build_products, and the reports show the
new file. Ingestion is polled every minute here (INSURSHARE_INGEST_SCHEDULE) to keep it short."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipelines import store
from pipelines.airflow.client import AirflowClient
from pipelines.config import Settings
from pipelines.landing import landing_dir
from pipelines.products import open_product
from tests.ops.conftest import demo_steps, insurshare, when

DAGS = ("build_marts", "build_products", "ingest_submissions", "quality_reports")
EVERY_MINUTE = {"INSURSHARE_INGEST_SCHEDULE": "* * * * *"}


@dataclass
class Flow:
    settings: Settings
    paused_after_demo: dict[str, int] = field(default_factory=dict)
    started: str = ""
    paused_after_start: dict[str, bool] = field(default_factory=dict)
    dropped_at: dt.datetime | None = None
    old_id: str = ""
    new_id: str = ""
    runs: dict[str, list[dict]] = field(default_factory=dict)
    stopped: str = ""


def _ok(res, step):
    assert res.returncode == 0, (step, res.stdout[-3000:], res.stderr[-3000:])
    return res.stdout


def _drop_a_corrected_file(settings: Settings, incoming: Path) -> tuple[str, str]:
    """A member re-sends an accepted CSV claim file with its last two rows removed, into its own
    landing folder, file first and manifest last; return the ids of the version it replaces and
    of the version it will be."""
    index = json.loads((incoming / "index.json").read_text())
    entry = next(s for s in index["submissions"]
                 if s["dataset"] == "claim" and s["expect"] == "accepted" and s["file"].endswith(".csv"))
    manifest = json.loads((incoming / entry["manifest"]).read_text())
    raw = (incoming / entry["file"]).read_bytes().splitlines(keepends=True)
    folder = landing_dir(settings) / entry["member_id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "claims_corrected.csv").write_bytes(b"".join(raw[:-2]))
    (folder / "claims_corrected.csv.manifest.json").write_text(json.dumps(
        {k: manifest[k] for k in ("dataset", "period", "encoding") if manifest.get(k)}))
    last = max(s["version"] for s in index["submissions"]
               if (s["member_id"], s["dataset"], s["period"]) == (entry["member_id"], "claim", entry["period"]))
    stem = f"{entry['member_id']}-claim-{entry['period']}"
    return f"{stem}-v{entry['version']}", f"{stem}-v{last + 1}"


def _settled(client: AirflowClient, after: dt.datetime) -> dict[str, list[dict]] | None:
    """Every DAG's runs once each has a successful run that started after ``after`` and none is
    queued or running, nor waiting on a queued asset event; else None."""
    runs = {d: client.dag_runs(d) for d in DAGS}
    for found in runs.values():
        if any(r["state"] in ("queued", "running") for r in found):
            return None
        if not any(r["state"] == "success" and r["start_date"] and when(r["start_date"]) >= after for r in found):
            return None
    for dag_id in ("build_marts", "build_products", "quality_reports"):
        if client.request("GET", f"dags/{dag_id}/assets/queuedEvents")["total_entries"]:
            return None
    return runs


@pytest.fixture(scope="module")
def flow(tmp_path_factory) -> Flow:
    settings = Settings(home=tmp_path_factory.mktemp("readme") / "home")
    incoming = settings.home / "incoming"
    for step in demo_steps(incoming / "index.json"):
        _ok(insurshare(settings, *step), step)
    fl = Flow(settings)
    with sqlite3.connect(settings.airflow_home / "airflow.db") as db:
        fl.paused_after_demo = dict(db.execute("SELECT dag_id, is_paused FROM dag").fetchall())
    try:
        fl.started = _ok(insurshare(settings, "airflow", "start", env=EVERY_MINUTE), "start")
        url = re.search(r"at (http://\S+)", fl.started).group(1)
        client = AirflowClient(url, *re.search(r"login: (\S+) / (\S+)", fl.started).groups())
        fl.paused_after_start = {d: client.dag(d)["is_paused"] for d in DAGS}
        fl.dropped_at = dt.datetime.now(dt.UTC)
        fl.old_id, fl.new_id = _drop_a_corrected_file(settings, incoming)
        deadline = time.monotonic() + 480
        while (runs := _settled(client, fl.dropped_at)) is None:
            assert time.monotonic() < deadline, {d: client.dag_runs(d)[:3] for d in DAGS}
            time.sleep(3)
        fl.runs = runs
    finally:
        fl.stopped = insurshare(settings, "airflow", "stop").stdout
    return fl


def _after(fl: Flow, dag_id: str, moment: dt.datetime) -> list[dict]:
    return [r for r in fl.runs[dag_id] if r["start_date"] and when(r["start_date"]) >= moment]


def test_demo_leaves_the_dags_paused_and_start_unpauses_them(flow):
    # what `run-dag` (dag.test) registers: every DAG of the bundle, paused, also the nightly maintenance
    assert flow.paused_after_demo == dict.fromkeys((*DAGS, "lake_maintenance"), 1)
    # start unpauses every platform DAG, also the nightly maintenance that the demo did not run
    assert f"unpaused: {', '.join(sorted((*DAGS, 'lake_maintenance')))}" in flow.started
    assert flow.paused_after_start == dict.fromkeys(DAGS, False)


def test_a_landed_file_is_taken_by_a_scheduled_run_without_any_trigger(flow):
    con = store.connect(flow.settings)
    try:
        got = dict(con.execute("SELECT submission_id, status FROM lake.submissions WHERE submission_id IN (?, ?)",
                               [flow.old_id, flow.new_id]).fetchall())
    finally:
        con.close()
    assert got == {flow.old_id: "superseded", flow.new_id: "accepted"}
    assert [p for p in landing_dir(flow.settings).rglob("*") if p.is_file()] == []
    # the demo's own runs (dag.test) are manual; every run since the drop was started by Airflow
    assert {r["run_type"] for d in DAGS for r in _after(flow, d, flow.dropped_at)} <= {"scheduled", "asset_triggered"}
    assert all(r["run_type"] == "scheduled" for r in _after(flow, "ingest_submissions", flow.dropped_at))


def test_marts_then_products_were_rebuilt_from_the_new_file(flow):
    con = store.connect(flow.settings)
    try:
        published = con.execute("SELECT snapshot_id FROM lake.submissions WHERE submission_id = ?",
                                [flow.new_id]).fetchone()[0]
        marts_from = con.execute("SELECT source_snapshot FROM lake.mart_builds ORDER BY built_at DESC LIMIT 1").fetchone()[0]
    finally:
        con.close()
    assert marts_from == published
    product = open_product(flow.settings, "regulator")
    try:
        assert product.execute("SELECT marts_source_snapshot FROM product_info").fetchone()[0] == published
    finally:
        product.close()
    marts = [r for r in _after(flow, "build_marts", flow.dropped_at) if r["run_type"] == "asset_triggered"]
    products = [r for r in _after(flow, "build_products", flow.dropped_at) if r["run_type"] == "asset_triggered"]
    assert marts and products and all(r["state"] == "success" for r in marts + products)
    # the products run was started by the marts run's asset event (the run itself ends a moment later)
    assert when(min(r["start_date"] for r in marts)) < when(max(r["start_date"] for r in products))


def test_reports_are_fresh(flow):
    reports = _after(flow, "quality_reports", flow.dropped_at)
    assert any(r["run_type"] == "asset_triggered" and r["state"] == "success" for r in reports)
    dashboard = json.loads((flow.settings.reports_dir / "dashboard.json").read_text())
    statuses = {s["submission_id"]: s["status"] for s in dashboard["submissions"]}
    assert (statuses[flow.old_id], statuses[flow.new_id]) == ("superseded", "accepted")
    assert (flow.settings.reports_dir / "submissions" / flow.new_id / "report.html").exists()


def test_airflow_was_stopped(flow):
    assert "stopped scheduler (pids" in flow.stopped
