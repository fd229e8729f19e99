"""The ingestion DAG, run by real Airflow (``dag.test()`` through ``insurshare run-dag``)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest

from pipelines import store
from pipelines.config import PROJECT_ROOT, Settings
from tests.conftest import claim_row, manifest_json, policy_row, submit, write_csv


def _insurshare(settings: Settings, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "INSURSHARE_HOME": str(settings.home), "INSURSHARE_GX_AT_INGEST": "on"}   # GX's result is kept
    return subprocess.run([sys.executable, "-m", "pipelines", *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dag_run(tmp_path_factory):
    """Files submitted by command and dropped in the landing zone, then one DAG run."""
    tmp = tmp_path_factory.mktemp("dag")
    settings = Settings(home=tmp / "home")
    from pipelines.keys import create_keys
    from pipelines.members import add_members

    create_keys(settings)
    add_members(settings, {"M001": "One", "M002": "Two"})
    policies = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}") for i in range(30)]
    policies.append(policy_row(transaction_id="T9999", region_code="999999"))
    submit(settings, write_csv(tmp / "pol.csv", policies))
    claims = [claim_row(claim_no=f"C{i:04d}", policy_no=f"P{i:04d}") for i in range(25)]
    claims.append(claim_row(claim_no="C9999", policy_no="PNOPE"))
    submit(settings, write_csv(tmp / "clm.csv", claims), dataset="claim")
    landing = settings.home / "landing" / "M002"
    landing.mkdir(parents=True)
    write_csv(landing / "policy_2024Q1.csv", policies[:10])
    manifest_json(landing / "policy_2024Q1.csv.manifest.json", member_id="M002", dataset="policy",
                  period="2024Q1", row_count=10)
    (landing / "garbage.csv").write_bytes(bytes(range(256)) * 4)
    manifest_json(landing / "garbage.csv.manifest.json", member_id="M002", dataset="claim", period="2024Q1")
    (landing / "broken.csv").write_text("x")
    (landing / "broken.csv.manifest.json").write_text("{not json")
    first = _insurshare(settings, "run-dag", "ingest_submissions")
    con = store.connect(settings)
    snapshot_after_first = store.current_snapshot(con)
    con.close()
    second = _insurshare(settings, "run-dag", "ingest_submissions")
    return settings, first, second, snapshot_after_first


def test_dag_run_succeeds_and_shows_progress(dag_run):
    _, first, _, _ = dag_run
    assert first.returncode == 0, first.stderr[-3000:]
    assert "DAG ingest_submissions finished: success" in first.stdout
    assert "M001-policy-2024Q1-v1: accepted (31 rows, 1 quarantined)" in first.stdout


def test_dag_run_publishes_policies_before_claims(dag_run):
    settings, *_ = dag_run
    con = store.connect(settings)
    got = dict(con.execute("SELECT submission_id, status FROM lake.submissions "
                           "WHERE status <> 'refused'").fetchall())
    assert got == {"M001-policy-2024Q1-v1": "accepted", "M001-claim-2024Q1-v1": "accepted",
                   "M002-policy-2024Q1-v1": "accepted", "M002-claim-2024Q1-v1": "rejected"}
    assert con.execute("SELECT member_id, count(*) FROM lake.policy GROUP BY 1 ORDER BY 1").fetchall() == [
        ("M001", 30), ("M002", 10)]
    # only the orphan claim is quarantined: every other claim found its policy
    assert con.execute("SELECT source_row, rule_ids FROM lake.quarantine WHERE dataset = 'claim'"
                       ).fetchall() == [(26, ["CLM-D01"])]


def test_dag_run_records_bad_files_as_verdicts_and_archives_them(dag_run):
    settings, *_ = dag_run
    con = store.connect(settings)
    reasons = con.execute("SELECT verdict_reasons FROM lake.submissions WHERE submission_id = "
                          "'M002-claim-2024Q1-v1'").fetchone()[0]
    assert reasons[0].startswith("SUB-FILE: File 'garbage.csv' is named as CSV but is a binary file")
    refused = con.execute("SELECT file_name, verdict_reasons, sha256 FROM lake.submissions "
                          "WHERE status = 'refused'").fetchall()
    assert [(r[0], "not valid JSON" in r[1][0]) for r in refused] == [("broken.csv", True)]
    from pipelines import archive

    assert archive.restore(settings, refused[0][2], settings.home / "back").read_bytes() == b"x"
    assert list((settings.home / "landing").rglob("*.*")) == []


def test_dag_run_uses_gx_and_keeps_its_result(dag_run):
    settings, *_ = dag_run
    con = store.connect(settings)
    rows = con.execute("SELECT submission_id, engine, evaluated > 20 FROM lake.validation_results "
                       "ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == ["M001-claim-2024Q1-v1", "M001-policy-2024Q1-v1", "M002-policy-2024Q1-v1"]
    assert all(r[1] == "gx-pandas" and r[2] for r in rows)
    mismatch = con.execute("SELECT count(*) FROM lake.rule_results WHERE gx_unexpected IS NOT NULL "
                           "AND gx_unexpected <> failed").fetchone()[0]
    assert mismatch == 0


def test_dag_run_emits_the_lake_asset(dag_run):
    settings, *_ = dag_run
    db = sqlite3.connect(settings.airflow_home / "airflow.db")
    events = db.execute("SELECT count(*) FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                        "WHERE a.uri = 'insurshare://lake/'").fetchone()[0]
    assert events >= 3


def test_dag_second_run_changes_nothing(dag_run):
    settings, _, second, snapshot_after_first = dag_run
    assert second.returncode == 0, second.stderr[-3000:]
    con = store.connect(settings)
    assert store.current_snapshot(con) == snapshot_after_first


@pytest.fixture(scope="module")
def generated_run(tmp_path_factory):
    """A small generated data set (every member format, the resubmission scenarios), submitted
    with `insurshare submit-index` and ingested by one DAG run."""
    import csv

    tmp = tmp_path_factory.mktemp("generated")
    settings = Settings(home=tmp / "home")
    out = tmp / "incoming"
    steps = [("keygen",), ("generate", "--members", "4", "--quarters", "2", "--seed", "11", "--scale", "0.05",
                          "--out", str(out)),
             ("members", "add", "--from-index", str(out / "index.json")),
             ("submit-index", str(out / "index.json")), ("run-dag", "ingest_submissions")]
    for step in steps:
        res = _insurshare(settings, *step)
        assert res.returncode == 0, (step, res.stdout[-2000:], res.stderr[-2000:])
    index = json.loads((out / "index.json").read_text())
    with open(out / "ground_truth.csv", encoding="utf-8") as f:
        truth = list(csv.DictReader(f))
    return settings, index, truth, res.stdout


def test_dag_generated_verdicts_match_the_generator(generated_run):
    settings, index, *_ = generated_run
    con = store.connect(settings)
    got = dict(con.execute("SELECT submission_id, status FROM lake.submissions").fetchall())
    expected = {f"{s['member_id']}-{s['dataset']}-{s['period']}-v{s['version']}": s["expect"]
                for s in index["submissions"]}
    assert got == expected
    assert {"accepted", "rejected", "superseded"} <= set(got.values())


def test_dag_generated_versions_of_a_slice_are_processed_and_printed_in_order(generated_run):
    """The run's log names each submission once, a slice's versions in version order (v1's verdict
    before v2's), and the lake published them in that order."""
    settings, index, _, log = generated_run
    slices: dict[tuple, list[str]] = {}
    for s in sorted(index["submissions"], key=lambda s: s["version"]):
        slices.setdefault((s["member_id"], s["dataset"], s["period"]), []).append(
            f"{s['member_id']}-{s['dataset']}-{s['period']}-v{s['version']}")
    resubmitted = {k: ids for k, ids in slices.items() if len(ids) > 1}
    assert resubmitted, "the generator's resubmission scenarios are gone"
    printed = [line.split(": ")[0] for line in log.splitlines()
               if re.match(r"M\d{3}-\w+-\d{4}(Q\d)?-v\d+: \w+", line)]
    assert sorted(printed) == sorted(i for ids in slices.values() for i in ids)     # each once
    con = store.connect(settings)
    snapshot = dict(con.execute("SELECT submission_id, snapshot_id FROM lake.submissions").fetchall())
    for ids in resubmitted.values():
        assert [printed.index(i) for i in ids] == sorted(printed.index(i) for i in ids), ids
        assert [snapshot[i] for i in ids] == sorted(snapshot[i] for i in ids), ids


def test_dag_generated_quarantine_holds_the_ground_truth_errors(generated_run):
    from pipelines.contracts import load_contract

    settings, index, truth, _ = generated_run
    con = store.connect(settings)
    by_file = {s["file"]: f"{s['member_id']}-{s['dataset']}-{s['period']}-v{s['version']}"
               for s in index["submissions"]}
    expected = set()
    for t in truth:
        contract = load_contract(t["dataset"])
        if any(contract.rule(r).severity != "warn" for r in t["rule_ids"].split(";")):
            expected.add((by_file[t["file"]], int(t["source_row"])))
    got = set(con.execute("SELECT submission_id, source_row FROM lake.quarantine").fetchall())
    assert got == expected and len(got) >= 5


def test_dag_generated_lake_holds_only_current_versions(generated_run):
    settings, *_ = generated_run
    con = store.connect(settings)
    stale = con.execute("""
        SELECT count(*) FROM (SELECT submission_id FROM lake.policy UNION ALL SELECT submission_id FROM lake.claim) d
        JOIN lake.submissions s USING (submission_id) WHERE s.status <> 'accepted'""").fetchone()[0]
    assert stale == 0
    rows = con.execute("SELECT sum(rows_accepted) FROM lake.submissions WHERE status = 'accepted'").fetchone()[0]
    held = con.execute("SELECT (SELECT count(*) FROM lake.policy) + (SELECT count(*) FROM lake.claim)").fetchone()[0]
    assert rows == held > 0


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory):
    """One submission the platform fails to process and one landed file it fails to take (both
    injected faults), beside two good files: one DAG run."""
    tmp = tmp_path_factory.mktemp("failing")
    settings = Settings(home=tmp / "home")
    from pipelines.keys import create_keys
    from pipelines.members import add_members

    create_keys(settings)
    add_members(settings, {"M001": "One", "M002": "Two", "M003": "Three"})
    rows = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}") for i in range(5)]
    submit(settings, write_csv(tmp / "pol.csv", rows))
    for member in ("M002", "M003"):
        landing = settings.home / "landing" / member
        landing.mkdir(parents=True)
        write_csv(landing / f"{member}.csv", rows)
        manifest_json(landing / f"{member}.csv.manifest.json", member_id=member, dataset="policy", period="2024Q1")
    env = {**os.environ, "INSURSHARE_HOME": str(settings.home),
           "INSURSHARE_FAULTS": "error@after-validation:M001-policy-2024Q1-v1,error@landing-take:M003.csv"}
    run = subprocess.run([sys.executable, "-m", "pipelines", "run-dag", "ingest_submissions"], env=env,
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    return settings, run


def test_dag_run_with_failures_is_not_a_success(failing_run):
    _, run = failing_run
    assert run.returncode == 1 and "DAG ingest_submissions finished: failed" in run.stdout, run.stdout[-2000:]


def test_dag_run_with_failures_still_processes_the_others(failing_run):
    settings, _ = failing_run
    con = store.connect(settings)
    got = {r[0]: (r[1], (r[2] or [""])[0][:40]) for r in con.execute(
        "SELECT coalesce(nullif(member_id, ''), file_name), status, verdict_reasons FROM lake.submissions").fetchall()}
    assert got == {"M001": ("rejected", "SUB-PROCESSING: file 'pol.csv' could not"),
                   "M002": ("accepted", ""),
                   "M003.csv": ("refused", "Landed file 'M003.csv' could not be take")}
    assert list((settings.home / "landing").rglob("*.csv")) == []
