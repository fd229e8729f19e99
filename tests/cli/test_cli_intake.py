"""Submitting from the command line and from the landing zone: a typo on the command line is
reported before anything is recorded; a delivery that arrived is recorded, refused or not."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from pipelines import store
from pipelines.cli import main
from pipelines.landing import landing_dir
from tests.conftest import manifest_json, policy_row, write_csv


@pytest.fixture
def cli(settings):
    runner = CliRunner(env={"INSURSHARE_GX_MAX_ROWS": "0"})

    def invoke(*args: str):
        return runner.invoke(main, ["--home", str(settings.home), *args], catch_exceptions=False)
    return invoke


def _recorded(settings) -> dict:
    """Everything a submission could leave behind: snapshots, submissions, audit entries, archive."""
    con = store.connect(settings)
    try:
        counts = {name: con.execute(sql).fetchone()[0] for name, sql in {
            "snapshots": "SELECT count(*) FROM ducklake_snapshots('lake')",
            "submissions": "SELECT count(*) FROM lake.submissions",
            "audit": "SELECT count(*) FROM lake.audit_log"}.items()}
        statuses = con.execute("SELECT submission_id, status, member_id FROM lake.submissions ORDER BY ALL").fetchall()
    finally:
        con.close()
    archived = sorted(p.name for p in (settings.archive_dir / "sha256").rglob("*") if p.is_file()) \
        if (settings.archive_dir / "sha256").exists() else []
    return {**counts, "statuses": statuses, "archived": archived}


@pytest.mark.parametrize("args, message", [
    (["--member", "M001", "--period", "2024Q1"], "Missing --dataset (one of policy, claim): give it as an option"),
    (["--dataset", "policy"], "Missing --member (e.g. M001), --period (e.g. 2025Q4): give them as options"),
    (["--member", "M042", "--dataset", "policy", "--period", "2024Q1"], "Member 'M042' of file 'p.csv' is not registered"),
    (["--member", "m1", "--dataset", "policy", "--period", "2024Q1"], "Member id 'm1' of file 'p.csv' is not a member id"),
    (["--member", "M001", "--dataset", "polcy", "--period", "2024Q1"],
     "Dataset 'polcy' of file 'p.csv' is not one of policy, claim"),
    (["--member", "M001", "--dataset", "policy", "--period", "2024Q5"], "Period '2024Q5' is not a quarter"),
    (["--member", "M001", "--dataset", "policy", "--period", "2999Q1"], "Period '2999Q1' of file 'p.csv' has not started yet."),
    (["--member", "M001", "--dataset", "policy", "--period", "2024Q1", "--contract-version", "7.7"],
     "Contract version '7.7' of dataset 'policy' does not exist"),
    (["--member", "M001", "--dataset", "policy", "--period", "2024Q1", "--control", "paid_to_date=1"],
     "Control total(s) paid_to_date of file 'p.csv' are not defined for policy"),
    (["--member", "M001", "--dataset", "policy", "--period", "2024Q1", "--control", "written_premium"],
     "'written_premium' is not COLUMN=AMOUNT"),
], ids=["no dataset", "no member nor period", "unknown member", "malformed member", "unknown dataset",
        "bad period", "future period", "unknown contract version", "control of another dataset", "control without amount"])
def test_cli_submit_typo_fails_before_anything_is_recorded(cli, settings, tmp_path, args, message):
    path = write_csv(tmp_path / "p.csv", [policy_row()])
    before = _recorded(settings)
    result = cli("submit", str(path), *args)
    assert result.exit_code in (1, 2) and message in result.output, result.output
    assert "Nothing was recorded" in result.output or result.exit_code == 2    # usage errors record nothing either
    assert _recorded(settings) == before


def test_cli_submit_after_a_typo_is_version_1(cli, settings, tmp_path):
    """A corrected command receives the file as the slice's first version: the typo left no trace."""
    path = write_csv(tmp_path / "p.csv", [policy_row()])
    assert cli("submit", str(path), "--member", "M001", "--period", "2024Q1").exit_code == 2
    result = cli("submit", str(path), "--member", "M001", "--dataset", "policy", "--period", "2024Q1")
    assert result.exit_code == 0 and "received as M001-policy-2024Q1-v1" in result.output
    assert [s[:2] for s in _recorded(settings)["statuses"]] == [("M001-policy-2024Q1-v1", "received")]


def test_cli_submit_of_bytes_its_manifest_does_not_describe_is_recorded(cli, settings, tmp_path):
    """The file's own fault (not the typist's): it is archived and the refusal recorded."""
    path = write_csv(tmp_path / "p.csv", [policy_row()])
    manifest = manifest_json(tmp_path / "p.csv.manifest.json", member_id="M001", dataset="policy", period="2024Q1",
                             sha256=hashlib.sha256(b"other bytes").hexdigest())
    before = _recorded(settings)
    result = cli("submit", str(path), "--manifest", str(manifest))
    assert result.exit_code == 1 and "is not the file its manifest describes" in result.output
    after = _recorded(settings)
    assert (after["submissions"], after["audit"]) == (before["submissions"] + 1, before["audit"] + 1)
    assert after["snapshots"] > before["snapshots"]
    assert [s[1] for s in after["statuses"]] == ["refused"]
    assert after["archived"] == sorted([*before["archived"], hashlib.sha256(path.read_bytes()).hexdigest()])


def test_cli_ingest_takes_landed_files_and_records_refused_deliveries(cli, settings):
    """`insurshare ingest` takes what waits in landing/<member>/ as the DAG does: a good file is
    received and processed, a delivery whose manifest names another member is refused and recorded
    (archived, audited), and a file whose manifest is misnamed is left in place with a word why."""
    m1, m2 = landing_dir(settings) / "M001", landing_dir(settings) / "M002"
    m1.mkdir(parents=True)
    m2.mkdir(parents=True)
    good = write_csv(m1 / "premium.csv", [policy_row(transaction_id=f"T{i:04d}", policy_no=f"PT{i:04d}") for i in range(4)])
    manifest_json(m1 / "premium.csv.manifest.json", dataset="policy", period="2024Q1")
    stranger = write_csv(m2 / "theirs.csv", [policy_row(transaction_id="X1")])
    manifest_json(m2 / "theirs.csv.manifest.json", member_id="M003", dataset="policy", period="2024Q1")
    write_csv(m2 / "early.csv", [policy_row(transaction_id="E1")])
    manifest_json(m2 / "early.manifest.json", dataset="policy", period="2024Q1")
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (good, stranger)}
    before = _recorded(settings)

    result = cli("ingest")

    lines = result.output.splitlines()
    assert result.exit_code == 0, result.output
    assert lines[:5] == [
        "landing/M002/early.manifest.json: a manifest without its file 'early'; "
        "if it describes early.csv, name it early.csv.manifest.json",
        "premium.csv: received as M001-policy-2024Q1-v1",
        "theirs.csv: refused - The manifest of 'theirs.csv' in landing/M002/ names member 'M003'. "
        "A member submits only its own files, from its own folder.",
        "M001-policy-2024Q1-v1: accepted (4 rows)",
        "processed 1 submission(s)"]
    after = _recorded(settings)
    assert [(s[1], s[2]) for s in after["statuses"]] == [("accepted", "M001"), ("refused", "")]
    assert after["audit"] >= before["audit"] + 3          # received, refused, accepted
    assert set(after["archived"]) - set(before["archived"]) == set(digests.values())
    con = store.connect(settings)
    try:
        refused = con.execute("SELECT details FROM lake.audit_log WHERE kind = 'refused'").fetchall()
    finally:
        con.close()
    assert [json.loads(d)["file_name"] for (d,) in refused] == ["theirs.csv"]
    left = sorted(p.relative_to(landing_dir(settings)).as_posix() for p in landing_dir(settings).rglob("*") if p.is_file())
    assert left == ["M002/early.csv", "M002/early.manifest.json"]
