"""Notices sent by the ingestion DAG's ``notify`` task, run by real Airflow (``insurshare run-dag``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from pipelines import notices
from pipelines.config import PROJECT_ROOT
from tests.conftest import manifest_json, policy_row, write_csv
from tests.notices.servers import WebhookServer, free_port


def test_the_ingest_dag_notifies_after_its_verdicts_and_a_dead_endpoint_does_not_fail_it(settings):
    bad = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}", region_code="999999") for i in range(6)]
    for member in ("M001", "M002"):
        landing = settings.home / "landing" / member
        landing.mkdir(parents=True)
        write_csv(landing / "policy_2024Q1.csv", bad)
        manifest_json(landing / "policy_2024Q1.csv.manifest.json", member_id=member, dataset="policy", period="2024Q1")
    (settings.home / "landing" / "M001" / "other.csv").write_text("a,b\n1,2\n")
    manifest_json(settings.home / "landing" / "M001" / "other.csv.manifest.json", member_id="M001",
                  dataset="nosuchdataset", period="2024Q1")
    dead = f"http://127.0.0.1:{free_port()}/hook"
    with WebhookServer() as hook:
        notices.configure(settings, "M001", "webhook", hook.url)
        notices.configure(settings, "M002", "webhook", dead)
        env = {**os.environ, "INSURSHARE_HOME": str(settings.home), "INSURSHARE_GX_MAX_ROWS": "0",
               "INSURSHARE_NOTICE_ATTEMPTS": "1"}
        run = subprocess.run([sys.executable, "-m", "pipelines", "run-dag", "ingest_submissions"], env=env,
                             cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "DAG ingest_submissions finished: success" in run.stdout
        got = sorted((json.loads(c.body)["event"], json.loads(c.body)["submission_id"]) for c in hook.calls)
    assert [kind for kind, _ in got] == ["refused", "rejected"]
    assert got[1][1] == "M001-policy-2024Q1-v1"
    log = {(r["member_id"], r["event"]): (r["status"], r["attempts"]) for r in notices.read_log(settings)}
    assert log == {("M001", "rejected"): ("sent", 1), ("M001", "refused"): ("sent", 1),
                   ("M002", "rejected"): ("failed", 1)}
    assert "notices: 2 sent, 1 failed, 0 skipped" in run.stdout
