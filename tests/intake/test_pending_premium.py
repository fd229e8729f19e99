"""A claim whose policy's premium file was rejected is held, not failed, and is released when the
corrected premium is accepted (issue: one group's -1 of premium rejected its whole claim history)."""

from __future__ import annotations

from pipelines import store
from pipelines.ingest import ingest_all, pending, process_submission
from tests.conftest import claim_row, policy_row, submit, write_csv


def _premium(tmp_path, name, n=3):
    rows = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}") for i in range(n)]
    return write_csv(tmp_path / name, rows)


def _claims(tmp_path, name, policies):
    rows = [claim_row(claim_no=f"C{i:04d}", policy_no=p) for i, p in enumerate(policies)]
    return write_csv(tmp_path / name, rows)


def _row(settings, sql, args=()):
    con = store.connect(settings)
    try:
        return con.execute(sql, list(args)).fetchone()
    finally:
        con.close()


def test_claims_wait_for_a_rejected_premium_file_and_are_released_when_it_is_replaced(settings, tmp_path):
    bad = submit(settings, _premium(tmp_path, "p1.csv"), row_count=99).submission.submission_id
    assert process_submission(settings, bad).status == "rejected"
    claims = submit(settings, _claims(tmp_path, "c.csv", ["P0000", "P0001"]), dataset="claim").submission
    outcome = process_submission(settings, claims.submission_id)

    assert outcome.status == "held", outcome
    assert outcome.reasons[0].startswith("SUB-HELD: 2 row(s) fail CLM-D01") and bad in outcome.reasons[0]
    assert _row(settings, "SELECT count(*) FROM lake.claim")[0] == 0
    assert _row(settings, "SELECT count(*) FROM lake.quarantine")[0] == 0
    assert _row(settings, "SELECT status, rows_total FROM lake.submissions WHERE submission_id = ?",
                [claims.submission_id]) == ("held", 2)
    assert claims.submission_id not in pending(settings)          # nothing has changed yet
    assert _row(settings, "SELECT count(*) FROM lake.audit_log WHERE kind = 'held'")[0] == 1

    fixed = submit(settings, _premium(tmp_path, "p2.csv", n=4)).submission.submission_id
    run = ingest_all(settings)                                     # premium first, then the claims again
    assert [(o.submission_id, o.status) for o in run.outcomes] == [
        (fixed, "accepted"), (claims.submission_id, "accepted")]
    assert _row(settings, "SELECT count(*), sum(paid_to_date) FROM lake.claim") == (2, 1000)
    assert run.ok


def test_a_claim_naming_an_unknown_policy_is_still_judged_when_no_premium_was_rejected(settings, tmp_path):
    assert process_submission(settings, submit(settings, _premium(tmp_path, "p.csv")).submission.submission_id
                              ).status == "accepted"
    outcome = process_submission(
        settings, submit(settings, _claims(tmp_path, "c.csv", ["P0000", "P0001", "P9999"]),
                         dataset="claim").submission.submission_id)
    assert outcome.status == "accepted" and outcome.rows_quarantined == 1     # 1 row: under the minimum count


def test_a_premium_rejection_that_was_later_replaced_holds_nothing(settings, tmp_path):
    bad = submit(settings, _premium(tmp_path, "p1.csv"), row_count=99).submission.submission_id
    good = submit(settings, _premium(tmp_path, "p2.csv", n=4)).submission.submission_id
    assert [o.status for o in ingest_all(settings, [bad, good]).outcomes] == ["rejected", "accepted"]
    outcome = process_submission(
        settings, submit(settings, _claims(tmp_path, "c.csv", ["P0000", "P0777"]),
                         dataset="claim").submission.submission_id)
    assert outcome.status == "accepted" and outcome.rows_quarantined == 1


def test_a_later_periods_rejected_premium_holds_no_earlier_claims(settings, tmp_path):
    assert process_submission(settings, submit(settings, _premium(tmp_path, "p.csv")).submission.submission_id
                              ).status == "accepted"
    later = submit(settings, _premium(tmp_path, "q2.csv", n=5), period="2024Q2", row_count=99)
    assert process_submission(settings, later.submission.submission_id).status == "rejected"
    outcome = process_submission(
        settings, submit(settings, _claims(tmp_path, "c.csv", ["P0000", "P0777"]),
                         dataset="claim").submission.submission_id)      # claims of 2024Q1
    assert outcome.status == "accepted" and outcome.rows_quarantined == 1
