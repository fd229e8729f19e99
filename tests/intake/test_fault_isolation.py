"""One bad file never stops the queue: every submission ends recorded (accepted, rejected or
refused with a message), never a traceback, never stuck in ``received``."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipelines import store
from pipelines.cli import main
from pipelines.errors import SubmissionError
from pipelines.ingest import ingest_all, pending, process_submission
from pipelines.intake import Manifest, receive
from tests.conftest import TODAY, claim_row, policy_row, submit, write_csv


def _status(settings, sid):
    con = store.connect(settings)
    try:
        return con.execute("SELECT status, verdict_reasons FROM lake.submissions WHERE submission_id = ?",
                           [sid]).fetchone()
    finally:
        con.close()


def _policy_file(tmp_path, name="p.csv", prefix="T", n=3):
    rows = [policy_row(transaction_id=f"{prefix}{i:04d}", policy_no=f"P{prefix}{i:04d}") for i in range(n)]
    return write_csv(tmp_path / name, rows)


def test_fault_refused_manifest_does_not_break_later_versions(settings, tmp_path):
    with pytest.raises(SubmissionError, match="version"):
        submit(settings, _policy_file(tmp_path, "a.csv", "A"), contract_version="9.9")
    got = submit(settings, _policy_file(tmp_path, "b.csv", "B"))       # crashed with NoneType + int before
    assert got.submission.submission_id == "M001-policy-2024Q1-v1"
    assert submit(settings, _policy_file(tmp_path, "c.csv", "C")).submission.version == 2


@pytest.mark.parametrize("field, value, words", [
    ("period", "9999Q4", "has not started yet"),
    ("period", "0000Q1", "calendar year"),
    ("control_totals", {"written_premium": "NaN"}, "is not an amount"),
    ("control_totals", {"written_premium": "Infinity"}, "is not an amount"),
    ("control_totals", {"written_premium": "1e999999"}, "is not an amount"),
    ("encoding", "rot13", "not a text encoding"),
    ("encoding", "hex", "not a text encoding"),
    ("encoding", "zip", "not a text encoding"),
    ("row_count", -5, "not a whole number"),
    ("sha256", "abc", "64 hexadecimal digits"),
])
def test_fault_bad_manifest_values_are_refused_with_a_message(settings, tmp_path, field, value, words):
    fields = {"member_id": "M001", "dataset": "policy", "period": "2024Q1", field: value}
    with pytest.raises(SubmissionError, match=words):
        receive(settings, _policy_file(tmp_path), Manifest.build(**fields), today=TODAY)


def test_fault_manifest_sha256_must_match_the_bytes(settings, tmp_path):
    path = _policy_file(tmp_path)
    import hashlib

    good = hashlib.sha256(path.read_bytes()).hexdigest()
    assert submit(settings, path, sha256=good.upper()).created
    with pytest.raises(SubmissionError, match="not the file its manifest describes"):
        submit(settings, _policy_file(tmp_path, "other.csv", "X"), period="2024Q2", sha256=good)


def test_fault_a_crash_is_recorded_against_its_submission_and_not_retried(settings, tmp_path):
    sid = submit(settings, _policy_file(tmp_path)).submission.submission_id
    broken = settings.with_(env={"INSURSHARE_FAULTS": "error@after-validation"})
    outcome = process_submission(broken, sid)
    assert outcome.failed and outcome.status == "rejected"
    status, reasons = _status(settings, sid)
    assert status == "rejected" and reasons[0].startswith("SUB-PROCESSING") and "InjectedFault" in reasons[0]
    assert sid not in pending(settings)                  # not stuck: no later run takes it again


def test_fault_a_crash_does_not_stop_the_others(settings, tmp_path):
    first = submit(settings, _policy_file(tmp_path, "a.csv", "A"), member="M001").submission.submission_id
    second = submit(settings, _policy_file(tmp_path, "b.csv", "B"), member="M002").submission.submission_id
    run = ingest_all(settings.with_(env={"INSURSHARE_FAULTS": "error@after-staging"}), [first])
    assert [o.submission_id for o in run.failed] == [first] and not run.ok
    run = ingest_all(settings)
    assert [o.status for o in run.outcomes] == ["accepted"] and run.outcomes[0].submission_id == second


def test_fault_cli_ingest_goes_on_reports_failures_and_retries_them(settings, tmp_path, monkeypatch):
    bad = submit(settings, _policy_file(tmp_path, "a.csv", "A"), member="M001").submission.submission_id
    good = submit(settings, _policy_file(tmp_path, "b.csv", "B"), member="M002").submission.submission_id
    monkeypatch.setenv("INSURSHARE_FAULTS", "error@after-validation")
    runner = CliRunner()
    result = runner.invoke(main, ["--home", str(settings.home), "ingest", bad])
    assert result.exit_code == 1 and "SUB-PROCESSING" in result.output and "Traceback" not in result.output
    monkeypatch.delenv("INSURSHARE_FAULTS")
    result = runner.invoke(main, ["--home", str(settings.home), "ingest"])
    assert result.exit_code == 0 and f"{good}: accepted" in result.output
    result = runner.invoke(main, ["--home", str(settings.home), "ingest", "--retry", bad])
    assert result.exit_code == 0, result.output
    assert f"queued again: {bad}" in result.output and f"{bad}: accepted" in result.output
    con = store.connect(settings)
    try:   # the failed attempt's rule results were removed, not doubled
        assert con.execute("SELECT count(*) FROM lake.rule_results WHERE submission_id = ? AND rule_id = "
                           "'SUB-FILE'", [bad]).fetchone()[0] == 1
        kinds = [r[0] for r in con.execute("SELECT kind FROM lake.audit_log WHERE subject = ? ORDER BY seq",
                                           [bad]).fetchall()]
    finally:
        con.close()
    assert kinds == ["received", "verdict", "requeued", "verdict", "publish"]


def test_fault_claims_of_a_member_still_wait_for_its_premium(settings, tmp_path):
    policy = submit(settings, _policy_file(tmp_path)).submission.submission_id
    claim = submit(settings, write_csv(tmp_path / "c.csv", [claim_row(policy_no="PT0000")]),
                   dataset="claim").submission.submission_id
    assert pending(settings) == [policy]
    process_submission(settings, policy)
    assert pending(settings) == [claim]
