"""Publishing: one transaction per submission; slices replaced whole; history kept."""

from __future__ import annotations

import json

from pipelines.ingest import process_in_order, process_submission
from pipelines.lake import write_transaction
from tests.conftest import claim_row, policy_row, resident_id, submit, submit_and_process, vin, write_csv


def _rows(n: int, **overrides) -> list[dict]:
    return [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}", **overrides) for i in range(n)]


def test_publish_accepted_rows_with_platform_columns(settings, lake, tmp_path):
    out = submit_and_process(settings, write_csv(tmp_path / "p.csv", _rows(3)))
    con = lake()
    rows = con.execute("SELECT member_id, period, submission_id, source_row, written_premium, dq_warnings "
                       "FROM lake.policy ORDER BY source_row").fetchall()
    assert [r[3] for r in rows] == [1, 2, 3]
    assert rows[0][:3] == ("M001", "2024Q1", out.submission_id)
    assert str(rows[0][4]) == "1200.00" and rows[0][5] == []


def test_publish_records_verdict_counts_timings_and_snapshot(settings, lake, tmp_path):
    out = submit_and_process(settings, write_csv(tmp_path / "p.csv", _rows(3)))
    con = lake()
    rec = con.execute("SELECT status, verdict, rows_total, rows_accepted, rows_quarantined, snapshot_id, "
                      "timings, control_totals FROM lake.submissions").fetchone()
    assert rec[:5] == ("accepted", "accepted", 3, 3, 0)
    assert rec[5] == out.snapshot_id
    assert set(json.loads(rec[6])) >= {"staging", "validation", "publish"}
    assert json.loads(rec[7]) == {"written_premium": "3600.00", "written_exposure": "3.000000"}
    # the recorded snapshot is the one that published the rows
    before = lake(snapshot=rec[5] - 1).execute("SELECT count(*) FROM lake.policy").fetchone()[0]
    at = lake(snapshot=rec[5]).execute("SELECT count(*) FROM lake.policy").fetchone()[0]
    assert (before, at) == (0, 3)


def test_publish_new_version_replaces_slice_and_supersedes(settings, lake, tmp_path):
    v1 = submit_and_process(settings, write_csv(tmp_path / "a.csv", _rows(3)))
    v2 = submit_and_process(settings, write_csv(tmp_path / "b.csv", _rows(2, written_premium="99.00")))
    con = lake()
    assert con.execute("SELECT count(*), sum(written_premium) FROM lake.policy").fetchone() == (2, 198)
    statuses = dict(con.execute("SELECT submission_id, status FROM lake.submissions").fetchall())
    assert statuses == {v1.submission_id: "superseded", v2.submission_id: "accepted"}
    assert con.execute("SELECT superseded_by FROM lake.submissions WHERE submission_id = ?",
                       [v1.submission_id]).fetchone()[0] == v2.submission_id
    # time travel: the first version is still readable as of its snapshot
    old = lake(snapshot=v1.snapshot_id)
    assert old.execute("SELECT count(*) FROM lake.policy").fetchone()[0] == 3


def test_publish_rejected_version_leaves_slice_alone(settings, lake, tmp_path):
    submit_and_process(settings, write_csv(tmp_path / "a.csv", _rows(3)))
    bad = submit_and_process(settings, write_csv(tmp_path / "b.csv", _rows(3, region_code="999999")))
    assert bad.status == "rejected"
    con = lake()
    assert con.execute("SELECT count(*), min(region_code) FROM lake.policy").fetchone() == (3, "110000")
    assert con.execute("SELECT count(*) FROM lake.quarantine WHERE submission_id = ?",
                       [bad.submission_id]).fetchone()[0] == 3


def test_publish_older_version_processed_late_does_not_overwrite(settings, lake, tmp_path):
    v1 = submit(settings, write_csv(tmp_path / "a.csv", _rows(3)))
    v2 = submit(settings, write_csv(tmp_path / "b.csv", _rows(2)))
    assert process_submission(settings, v2.submission.submission_id).status == "accepted"
    assert process_submission(settings, v1.submission.submission_id).status == "superseded"
    con = lake()
    assert con.execute("SELECT count(*) FROM lake.policy").fetchone()[0] == 2


def test_publish_versions_offered_last_first_are_judged_in_version_order(settings, lake, tmp_path):
    """The DAG's mapped tasks run in any order: the task of v3 first processes v1 and v2, so v1 is
    accepted, then superseded by v2, then v2 by v3; the log reads v1, v2, v3; the other tasks
    find their submission done and print nothing."""
    subs = [submit(settings, write_csv(tmp_path / f"{n}.csv", _rows(n))).submission.submission_id for n in (4, 3, 2)]
    other = submit(settings, write_csv(tmp_path / "o.csv", _rows(5)), period="2024Q2").submission.submission_id
    printed: list[str] = []
    outcomes = process_in_order(settings, subs[2], progress=printed.append)
    assert [o.submission_id for o in outcomes] == subs
    assert [line.split(":")[0] for line in printed] == subs
    assert [o.status for o in outcomes] == ["accepted", "accepted", "accepted"]   # each as it was judged
    assert [o.rows_accepted for o in outcomes] == [4, 3, 2]
    again = [process_in_order(settings, sid, progress=printed.append) for sid in subs[:2]]
    assert [[o.already_done for o in found] for found in again] == [[True], [True]] and len(printed) == 3
    con = lake()
    got = con.execute("SELECT submission_id, status, superseded_by FROM lake.submissions ORDER BY period, version").fetchall()
    assert got == [(subs[0], "superseded", subs[1]), (subs[1], "superseded", subs[2]), (subs[2], "accepted", None),
                   (other, "received", None)]    # another slice is not this task's business
    snaps = [s for (s,) in con.execute("SELECT snapshot_id FROM lake.submissions WHERE period = '2024Q1' "
                                       "ORDER BY version").fetchall()]
    assert snaps == sorted(snaps) and len(set(snaps)) == 3          # published in version order
    assert con.execute("SELECT count(*) FROM lake.policy").fetchone()[0] == 2


def test_publish_processing_twice_publishes_once(settings, lake, tmp_path):
    got = submit(settings, write_csv(tmp_path / "a.csv", _rows(3)))
    first = process_submission(settings, got.submission.submission_id)
    second = process_submission(settings, got.submission.submission_id)
    assert (first.already_done, second.already_done) == (False, True)
    con = lake()
    assert con.execute("SELECT count(*) FROM lake.policy").fetchone()[0] == 3
    assert con.execute("SELECT count(*) FROM lake.rule_results WHERE rule_id = 'POL-U01'").fetchone()[0] == 1


def test_publish_slices_of_other_members_and_periods_untouched(settings, lake, tmp_path):
    submit_and_process(settings, write_csv(tmp_path / "a.csv", _rows(3)))
    submit_and_process(settings, write_csv(tmp_path / "b.csv", _rows(2)), member="M002")
    q2 = [policy_row(transaction_id=f"Q{i:04d}", accounting_date="2024-04-02", effective_date="2024-04-02",
                     expiry_date="2025-04-02") for i in range(4)]
    submit_and_process(settings, write_csv(tmp_path / "c.csv", q2), period="2024Q2")
    submit_and_process(settings, write_csv(tmp_path / "d.csv", _rows(1)))
    con = lake()
    got = con.execute("SELECT member_id, period, count(*) FROM lake.policy GROUP BY ALL ORDER BY ALL").fetchall()
    assert got == [("M001", "2024Q1", 1), ("M001", "2024Q2", 4), ("M002", "2024Q1", 2)]


def test_publish_no_raw_identifier_reaches_the_lake(settings, lake, tmp_path):
    ids = [resident_id(birth="19800215"), vin(), "13812345678", "91350100M000100Y43"]
    rows = _rows(3) + [policy_row(transaction_id="TBAD", insured_id=ids[0][:-1] + "0")]
    submit_and_process(settings, write_csv(tmp_path / "p.csv", rows))
    claims = [claim_row(claimant_id=ids[3]), claim_row(claim_no="C0002", claimant_id="91350100M000100Y44")]
    submit_and_process(settings, write_csv(tmp_path / "c.csv", claims), dataset="claim")
    con = lake()
    for table in ("policy", "claim", "quarantine", "submissions", "rule_results", "validation_results"):
        text = " ".join(str(r) for r in con.execute(f"SELECT * FROM lake.{table}").fetchall())
        for raw in ids + [ids[0][:-1] + "0", "91350100M000100Y44"]:
            assert raw not in text, (table, raw)
    files = list(settings.data_path.rglob("*.parquet")) + [settings.home / "lake" / "catalog.sqlite"]
    for f in files:
        blob = f.read_bytes()
        for raw in ids:
            assert raw.encode() not in blob, (f, raw)


def test_publish_warnings_keep_the_row_and_flag_it(settings, lake, tmp_path):
    rows = _rows(2)
    rows[1]["phone"] = "12345"
    out = submit_and_process(settings, write_csv(tmp_path / "p.csv", rows))
    assert (out.rows_accepted, out.rows_quarantined) == (2, 0)
    con = lake()
    assert con.execute("SELECT source_row, dq_warnings FROM lake.policy WHERE len(dq_warnings) > 0"
                       ).fetchall() == [(2, ["POL-FMT-phone"])]


def test_publish_snapshot_id_is_repaired_after_a_crash_before_recording(settings, lake, tmp_path):
    from pipelines import store
    from pipelines.ingest import repair_snapshot_ids

    out = submit_and_process(settings, write_csv(tmp_path / "p.csv", _rows(2)))
    con = store.connect(settings, read_only=False)
    write_transaction(con, settings, lambda c: c.execute(
        "UPDATE lake.submissions SET snapshot_id = NULL"))
    con.close()
    assert repair_snapshot_ids(settings) == 1
    assert lake().execute("SELECT snapshot_id FROM lake.submissions").fetchone()[0] == out.snapshot_id
