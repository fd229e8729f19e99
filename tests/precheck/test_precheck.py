"""The pre-check judges a file exactly as ingestion then does, and records nothing.

Every test pre-checks a generated file, asserts that the lake, the archive and the audit log are
unchanged, then submits and ingests the same file for real and compares what ingestion
recorded with what the pre-check said. The defects are checked against the generator's ground
truth, which is independent of the validator.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines import store
from pipelines.cli import main
from pipelines.config import Settings
from pipelines.errors import SubmissionError
from pipelines.generate import generate
from pipelines.ingest import process_submission
from pipelines.intake import Manifest, receive
from pipelines.precheck import BANNER, precheck

L = store.LAKE


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One member (M001), two quarters: a clean premium file (2025Q3), a claim file with one
    warning (2025Q3), a premium file with too many defects (2025Q4) and a truncated claim file."""
    out = tmp_path_factory.mktemp("generated") / "out"
    generate(out, members=1, quarters=2, seed=3, scale=0.05, defect_rate=0.0)
    return out


def manifest(files: Path, name: str) -> Manifest:
    return Manifest.from_file(files / "M001" / f"{name}.manifest.json")


def truth(files: Path, name: str) -> dict[int, set[str]]:
    """Ground truth: source row -> rule ids the generator broke on purpose in file ``name``."""
    with open(files / "ground_truth.csv", encoding="utf-8", newline="") as f:
        return {int(r["source_row"]): set(r["rule_ids"].split(";")) for r in csv.DictReader(f)
                if r["file"] == f"M001/{name}"}


def data_rows(path: Path) -> int:
    with open(path, encoding="utf-8", newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def column_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def recorded(settings: Settings) -> dict:
    """Everything a submission leaves behind: submissions, snapshots, audit entries and anchor,
    rule results, quarantine, archived files and the lake's data files."""
    con = store.connect(settings, read_only=True)
    try:
        state = {
            "submissions": con.execute(f"SELECT * FROM {L}.submissions ORDER BY submission_id").fetchall(),
            "snapshots": con.execute(f"SELECT snapshot_id FROM ducklake_snapshots('{L}') ORDER BY 1").fetchall(),
            "audit": con.execute(f"SELECT count(*), max(seq) FROM {L}.audit_log").fetchone(),
            "rule_results": con.execute(f"SELECT count(*) FROM {L}.rule_results").fetchone(),
            "quarantine": con.execute(f"SELECT count(*) FROM {L}.quarantine").fetchone(),
        }
    finally:
        con.close()

    def listing(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []

    anchor = Path(settings.audit_anchor_file)
    state["anchor"] = anchor.read_bytes() if anchor.exists() else None
    state["archive"] = listing(settings.archive_dir)
    state["data"] = listing(Path(settings.data_path))
    return state


def ingest(settings: Settings, path: Path, m: Manifest):
    """Submit and ingest ``path`` for real; the outcome and the lake's rule results of it."""
    got = receive(settings, path, m)
    outcome = process_submission(settings, got.submission.submission_id)
    con = store.connect(settings, read_only=True)
    try:
        rules = dict(con.execute(f"SELECT rule_id, failed FROM {L}.rule_results WHERE submission_id = ? "
                                 "AND kind <> 'submission' AND failed > 0", [outcome.submission_id]).fetchall())
        checked = sorted(con.execute(f"SELECT rule_id, checked, failed FROM {L}.rule_results "
                                     "WHERE submission_id = ?", [outcome.submission_id]).fetchall())
        reasons = con.execute(f"SELECT verdict_reasons FROM {L}.submissions WHERE submission_id = ?",
                              [outcome.submission_id]).fetchone()[0]
    finally:
        con.close()
    return outcome, rules, checked, reasons


def test_clean_file_would_be_accepted_as_ingestion_then_records(settings: Settings, files: Path,
                                                                tmp_path: Path) -> None:
    path = files / "M001" / "policy_2025Q3.csv"
    before = recorded(settings)
    pc = precheck(settings, path, manifest(files, "policy_2025Q3.csv"), out_dir=tmp_path / "out")
    assert recorded(settings) == before

    n = data_rows(path)
    assert (pc.verdict, pc.submission_id, pc.rows_total, pc.rows_accepted, pc.rows_quarantined) == \
        ("accepted", "M001-policy-2025Q3-v1", n, n, 0)
    assert pc.rules_broken == () and pc.reasons == ()
    html = pc.report.read_text(encoding="utf-8")
    assert BANNER in html and "M001-policy-2025Q3-v1" in html
    facts = json.loads(pc.report_json.read_text(encoding="utf-8"))
    assert facts["precheck"]["submitted"] is False and facts["meta"]["precheck"] is True
    assert facts["verdict"]["status"] == "accepted" and facts["rows"]["total"] == n
    assert facts["rows"]["accepted"] == n and facts["rows"]["in_lake_now"] == 0   # would be, is not
    assert facts["reconciliation"]["row_count"] == {"given": n, "computed": n, "matches": True, "published": None}
    assert not pc.quarantine_files

    outcome, rules, checked, _ = ingest(settings, path, manifest(files, "policy_2025Q3.csv"))
    assert (outcome.status, outcome.submission_id, outcome.rows_total, outcome.rows_accepted,
            outcome.rows_quarantined) == (pc.verdict, pc.submission_id, pc.rows_total, pc.rows_accepted,
                                          pc.rows_quarantined)
    shown = sorted((r["id"], r["checked"], r["failed"]) for r in facts["rules"])
    assert shown == sorted(r for r in checked if not r[0].startswith("SUB-"))

    again = precheck(settings, path, manifest(files, "policy_2025Q3.csv"), out_dir=tmp_path / "again")
    assert again.already_received and again.submission_id == outcome.submission_id and again.accepted
    assert again.report is None


def test_cross_dataset_rules_read_the_members_accepted_data(settings: Settings, files: Path,
                                                            tmp_path: Path) -> None:
    claims = files / "M001" / "claim_2025Q3.csv"
    n = data_rows(claims)
    before = precheck(settings, claims, manifest(files, "claim_2025Q3.csv"), out_dir=tmp_path / "a")
    # no premium data accepted yet: every claim's policy is unknown (CLM-D01), the file is rejected
    assert before.verdict == "rejected"
    assert {r.rule_id: r.failed for r in before.rules_broken}["CLM-D01"] == n

    ingest(settings, files / "M001" / "policy_2025Q3.csv", manifest(files, "policy_2025Q3.csv"))
    state = recorded(settings)
    pc = precheck(settings, claims, manifest(files, "claim_2025Q3.csv"), out_dir=tmp_path / "b")
    assert recorded(settings) == state
    expected = Counter(rule for rules in truth(files, "claim_2025Q3.csv").values() for rule in rules)
    # CLM-D01 (the claim's policy is in the member's accepted premium data), counted from the files
    policies = {r["policy_no"] for r in column_rows(files / "M001" / "policy_2025Q3.csv")}
    unknown = sum(r["policy_no"] not in policies for r in column_rows(claims))
    assert unknown < n
    expected.update({"CLM-D01": unknown} if unknown else {})
    assert {r.rule_id: r.failed for r in pc.rules_broken} == dict(expected)
    assert pc.rows_quarantined == unknown and pc.rows_accepted == n - unknown

    outcome, rules, _, _ = ingest(settings, claims, manifest(files, "claim_2025Q3.csv"))
    assert (outcome.status, outcome.rows_total, outcome.rows_accepted) == (pc.verdict, pc.rows_total, pc.rows_accepted)
    assert rules == {r.rule_id: r.failed for r in pc.rules_broken}


def test_defective_file_breaks_the_same_rules_as_at_ingestion(settings: Settings, files: Path,
                                                             tmp_path: Path) -> None:
    path = files / "M001" / "policy_2025Q4.csv"
    before = recorded(settings)
    pc = precheck(settings, path, manifest(files, "policy_2025Q4.csv"), out_dir=tmp_path / "out")
    assert recorded(settings) == before

    bad = truth(files, "policy_2025Q4.csv")
    expected = Counter(rule for rules in bad.values() for rule in rules)
    assert {r.rule_id: r.failed for r in pc.rules_broken} == dict(expected)
    assert pc.verdict == "rejected" and pc.rows_quarantined == len(bad) and pc.rows_accepted == 0
    assert pc.reasons and pc.reasons[0].startswith("SUB-ERROR-SHARE")
    # the quarantined rows, as the member downloads them, are the defective rows of the file
    csv_file = next(p for p in pc.quarantine_files if p.suffix == ".csv")
    with open(csv_file, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {int(r["source_row"]) for r in rows} == set(bad)
    assert "Pre-check: not submitted" in pc.report.read_text(encoding="utf-8")

    outcome, rules, _, reasons = ingest(settings, path, manifest(files, "policy_2025Q4.csv"))
    assert outcome.status == pc.verdict and outcome.rows_quarantined == pc.rows_quarantined
    assert rules == {r.rule_id: r.failed for r in pc.rules_broken}
    assert tuple(reasons) == pc.reasons


def test_unreadable_file_gets_the_verdict_ingestion_records(settings: Settings, files: Path,
                                                            tmp_path: Path) -> None:
    path = files / "M001" / "claim_2025Q4.csv"
    before = recorded(settings)
    pc = precheck(settings, path, manifest(files, "claim_2025Q4.csv"), out_dir=tmp_path / "out")
    assert recorded(settings) == before
    assert pc.verdict == "rejected" and pc.rows_total is None and pc.reasons[0].startswith("SUB-FILE: ")
    assert BANNER in pc.report.read_text(encoding="utf-8")

    garbage = tmp_path / "claim_2025Q4.csv"
    garbage.write_bytes(bytes(range(256)) * 40)
    binary = precheck(settings, garbage, manifest(files, "claim_2025Q4.csv"), out_dir=tmp_path / "out")
    assert binary.verdict == "rejected" and "is named as CSV but is a binary file" in binary.reasons[0]
    assert recorded(settings) == before

    outcome, _, _, reasons = ingest(settings, path, manifest(files, "claim_2025Q4.csv"))
    assert outcome.status == "rejected" and tuple(reasons) == pc.reasons


def test_what_intake_refuses_is_refused_with_the_same_text(settings: Settings, files: Path,
                                                           tmp_path: Path) -> None:
    path = files / "M001" / "policy_2025Q3.csv"
    before = recorded(settings)
    stranger = Manifest.build(member_id="M999", dataset="policy", period="2025Q3")
    with pytest.raises(SubmissionError) as pre:
        precheck(settings, path, stranger, out_dir=tmp_path / "out")
    link = tmp_path / "link.csv"
    link.symlink_to(path)
    with pytest.raises(SubmissionError, match="'link.csv' is a symbolic link; it was not read"):
        precheck(settings, link, manifest(files, "policy_2025Q3.csv"), out_dir=tmp_path / "out")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(SubmissionError, match="is not a regular file"):
        precheck(settings, fifo, manifest(files, "policy_2025Q3.csv"), out_dir=tmp_path / "out")
    assert recorded(settings) == before
    assert not (tmp_path / "out").exists()

    with pytest.raises(SubmissionError) as real:
        receive(settings, path, stranger)
    assert str(pre.value) == str(real.value)


def test_cli_exit_codes_and_summary(settings: Settings, files: Path, tmp_path: Path) -> None:
    runner = CliRunner(env={"INSURSHARE_GX_MAX_ROWS": "0"})
    home = ["--home", str(settings.home)]
    out = tmp_path / "reports"

    def check(name: str, *extra: str):
        m = files / "M001" / f"{name}.manifest.json"
        return runner.invoke(main, [*home, "check", str(files / "M001" / name), "--manifest", str(m),
                                    "--out", str(out), *extra])

    before = recorded(settings)
    ok = check("policy_2025Q3.csv")
    assert ok.exit_code == 0, ok.output
    assert "would be ACCEPTED as M001-policy-2025Q3-v1" in ok.output and "rules broken: none" in ok.output
    assert (out / "M001-policy-2025Q3-v1.precheck.html").exists()

    bad = check("policy_2025Q4.csv")
    assert bad.exit_code == 1 and "would be REJECTED" in bad.output
    assert "rules broken: 7:" in bad.output and "SUB-ERROR-SHARE" in bad.output
    # a malformed date is one problem: its type rule, not also "missing" (issue 15)
    assert "POL-TYPE-expiry_date" in bad.output and "POL-REQ-expiry_date" not in bad.output
    assert f"report: {out / 'M001-policy-2025Q4-v1.precheck.html'}" in bad.output

    wrong = check("policy_2025Q3.csv", "--rows", "7")
    assert wrong.exit_code == 1 and "SUB-ROW-COUNT" in wrong.output

    refused = runner.invoke(main, [*home, "check", str(tmp_path / "missing.csv"), "--member", "M001",
                                   "--dataset", "policy", "--period", "2025Q3", "--out", str(tmp_path / "none")])
    assert refused.exit_code == 1 and not (tmp_path / "none").exists() and "would be refused - File 'missing.csv' does not exist" in refused.output
    assert "Traceback" not in refused.output

    usage = runner.invoke(main, [*home, "check", str(files / "M001" / "policy_2025Q3.csv"), "--member", "M001"])
    assert usage.exit_code == 2 and "Missing --period (e.g. 2025Q4), --dataset (one of policy, claim)" in usage.output
    control = runner.invoke(main, [*home, "check", str(files / "M001" / "policy_2025Q3.csv"), "--member", "M001",
                                   "--dataset", "policy", "--period", "2025Q3", "--control", "premium"])
    assert control.exit_code == 2 and "COLUMN=AMOUNT" in control.output
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    nowhere = runner.invoke(main, [*home, "check", str(files / "M001" / "policy_2025Q3.csv"), "--manifest",
                                   str(files / "M001" / "policy_2025Q3.csv.manifest.json"),
                                   "--out", str(blocked / "reports")])
    assert nowhere.exit_code == 2 and "cannot create folder" in nowhere.output
    assert recorded(settings) == before


def test_claim_waiting_for_a_rejected_premium_file_would_be_held(settings: Settings, files: Path,
                                                                  tmp_path: Path) -> None:
    for name in ("policy_2025Q3.csv", "policy_2025Q4.csv"):    # the second is rejected
        ingest(settings, files / "M001" / name, manifest(files, name))
    path = files / "M001" / "claim_2025Q4_v2.csv"
    before = recorded(settings)
    pc = precheck(settings, path, manifest(files, "claim_2025Q4_v2.csv"), out_dir=tmp_path / "out")
    assert recorded(settings) == before
    assert pc.verdict == "held" and pc.reasons[0].startswith("SUB-HELD: ")
    assert "M001-policy-2025Q4-v1" in pc.reasons[0] and pc.rows_total == data_rows(path)
    assert "Held:" in pc.report.read_text(encoding="utf-8")

    outcome, _, _, reasons = ingest(settings, path, manifest(files, "claim_2025Q4_v2.csv"))
    assert outcome.status == "held" and tuple(reasons) == pc.reasons
