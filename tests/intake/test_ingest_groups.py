"""One ingestion run publishes the verdicts of several members' small files in one commit, and
falls back to one commit per file when that commit fails (``ingest.Session``)."""

from __future__ import annotations

from pipelines import ingest, store
from pipelines.ingest import _groups, ingest_all, repair_snapshot_ids
from tests.conftest import policy_row, submit, write_csv


def _three_members(settings, tmp_path):
    ids = []
    for member in ("M001", "M002", "M003"):
        rows = [policy_row(transaction_id=f"{member}T{i}", policy_no=f"{member}P{i}") for i in range(3)]
        ids.append(submit(settings, write_csv(tmp_path / f"{member}.csv", rows), member=member).submission.submission_id)
    return ids


def _lake(settings, sql):
    con = store.connect(settings)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_groups_take_one_file_per_member_in_queue_order():
    queue = ["M001-policy-2024Q1-v1", "M001-policy-2024Q2-v1", "M002-policy-2024Q1-v1", "M003-claim-2024Q1-v1"]
    assert _groups(queue) == [["M001-policy-2024Q1-v1", "M002-policy-2024Q1-v1", "M003-claim-2024Q1-v1"],
                              ["M001-policy-2024Q2-v1"]]


def test_ingest_all_publishes_independent_files_in_one_commit_and_records_their_snapshot(settings, tmp_path):
    ids = _three_members(settings, tmp_path)
    run = ingest_all(settings)
    assert [(o.submission_id, o.status) for o in run.outcomes] == [(sid, "accepted") for sid in ids]
    publishes = _lake(settings, "SELECT snapshot_id FROM ducklake_snapshots('lake') "
                                "WHERE starts_with(commit_message, 'publish')")
    assert len(publishes) == 1
    recorded = _lake(settings, "SELECT DISTINCT snapshot_id FROM lake.submissions")
    assert recorded == publishes


def test_repair_finds_the_snapshot_of_a_grouped_commit(settings, tmp_path, monkeypatch):
    ids = _three_members(settings, tmp_path)
    with monkeypatch.context() as m:
        m.setattr(ingest.Session, "flush", lambda self: None)    # as a crash before the record
        ingest_all(settings)
    assert _lake(settings, "SELECT count(*) FROM lake.submissions WHERE snapshot_id IS NULL")[0][0] == len(ids)
    assert repair_snapshot_ids(settings) == len(ids)
    publishes = _lake(settings, "SELECT snapshot_id FROM ducklake_snapshots('lake') "
                                "WHERE starts_with(commit_message, 'publish')")
    assert _lake(settings, "SELECT DISTINCT snapshot_id FROM lake.submissions") == publishes


def test_a_file_that_fails_to_publish_in_a_group_loses_no_other_verdict(settings, tmp_path, monkeypatch):
    ids = _three_members(settings, tmp_path)
    real = ingest.publish_many

    def publish_many(con, items, *args):
        if any(i.sub.member_id == "M002" and i.checked.check is not None for i in items):
            raise RuntimeError("simulated failure of one file")    # its failure is still recorded
        return real(con, items, *args)

    monkeypatch.setattr(ingest, "publish_many", publish_many)
    run = ingest_all(settings)
    got = {o.submission_id: (o.status, o.failed) for o in run.outcomes}
    assert got == {ids[0]: ("accepted", False), ids[1]: ("rejected", True), ids[2]: ("accepted", False)}
    assert _lake(settings, "SELECT count(*) FROM lake.policy")[0][0] == 6
