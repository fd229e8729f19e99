"""A grouped publishing commit (``publish.publish_many``) leaves the lake as publishing the same
submissions one after the other does: the same rows, quarantine, rule results, records and audit
entries, in fewer statements and one commit."""

from __future__ import annotations

import shutil

import pytest

from pipelines import ingest, publish
from pipelines.config import Settings
from pipelines.ingest import ingest_all, process_submission
from pipelines.keys import create_keys
from pipelines.members import add_members
from tests.conftest import lake_rows, policy_row, submit, write_csv


def _home(path, key_from: Settings | None = None) -> Settings:
    s = Settings(home=path, gx_max_rows=0)
    if key_from is not None:    # the same pseudonymisation key: the same tokens in both lakes
        s.key_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(key_from.key_file, s.key_file)
    create_keys(s)
    add_members(s, {"M001": "One", "M002": "Two", "M003": "Three"})
    return s


def _rows(member, n, bad=0, tag=""):
    return [policy_row(transaction_id=f"{member}{tag}T{i}", policy_no=f"{member}P{i}",
                       written_premium="abc" if i < bad else "1200.00") for i in range(n)]


def _scenario(settings: Settings, folder) -> list[str]:
    """M001: v2 published first, so v1 is superseded when its turn comes; M002: rejected; M003: a
    v2 with a quarantined row replaces its published v1. The last three are ingested together."""
    folder.mkdir()
    m1v1 = submit(settings, write_csv(folder / "m1v1.csv", _rows("M001", 3)), member="M001")
    m1v2 = submit(settings, write_csv(folder / "m1v2.csv", _rows("M001", 4, tag="X")), member="M001")
    m3v1 = submit(settings, write_csv(folder / "m3v1.csv", _rows("M003", 2)), member="M003")
    for got in (m1v2, m3v1):
        out = process_submission(settings, got.submission.submission_id)
        assert out.status == "accepted", out.reasons
    m2 = submit(settings, write_csv(folder / "m2.csv", _rows("M002", 5, bad=5)), member="M002")
    m3v2 = submit(settings, write_csv(folder / "m3v2.csv", _rows("M003", 6, bad=1, tag="X")), member="M003")
    run = ingest_all(settings)
    ids = [m1v1.submission.submission_id, m2.submission.submission_id, m3v2.submission.submission_id]
    assert [(o.submission_id, o.status) for o in run.outcomes] == list(zip(ids, ["superseded", "rejected", "accepted"], strict=True))
    return ids


def _contents(settings: Settings) -> dict[str, list]:
    return lake_rows(settings, {
        "records": "SELECT * EXCLUDE (processed_at, timings, snapshot_id, received_at, archive_path) "
                   "FROM lake.submissions ORDER BY submission_id",
        "policy": "SELECT * FROM lake.policy ORDER BY ALL",
        "quarantine": "SELECT * FROM lake.quarantine ORDER BY ALL",
        "rule_results": "SELECT * FROM lake.rule_results ORDER BY ALL",
        # a receipt's entry holds the time of receipt; the verdicts' and publishes' hold none
        "audit": "SELECT seq, kind, subject, details, content_sha256 FROM lake.audit_log "
                 "WHERE kind IN ('verdict', 'publish') ORDER BY seq",
        "publish commits": "SELECT count(*) FROM ducklake_snapshots('lake') "
                           "WHERE starts_with(commit_message, 'publish')",
    })


def test_a_grouped_commit_publishes_what_one_by_one_publishing_does(tmp_path, monkeypatch):
    grouped = _home(tmp_path / "grouped")
    calls = []
    real = ingest.publish_many

    def counted(con, items, *args):
        calls.append(len(items))
        return real(con, items, *args)

    with monkeypatch.context() as m:
        m.setattr(ingest, "publish_many", counted)
        ids = _scenario(grouped, tmp_path / "a")
    assert calls == [1, 1, 3]        # M001 v2 and M003 v1 alone, then the three together

    single = _home(tmp_path / "single", key_from=grouped)

    def one_by_one(con, items, sub_rules, key_id):
        return [publish.publish(con, i.sub, i.contract, sub_rules, i.checked, i.timings, key_id) for i in items]

    with monkeypatch.context() as m:
        m.setattr(ingest, "publish_many", one_by_one)
        assert _scenario(single, tmp_path / "b") == ids

    got, want = _contents(grouped), _contents(single)
    assert got["publish commits"] == want["publish commits"] == [(3,)]
    for table in ("records", "policy", "quarantine", "rule_results", "audit"):
        assert got[table] == want[table], table
    # and the values themselves: v2 of M001 (4 rows) and v2 of M003 (5 of 6 rows; 1 quarantined)
    assert {(r[0], r[2]) for r in got["policy"]} == {("M001", ids[0].replace("v1", "v2")), ("M003", ids[2])}
    assert sum(r[0] == "M001" for r in got["policy"]) == 4 and sum(r[0] == "M003" for r in got["policy"]) == 5
    assert sorted((r[0], r[4]) for r in got["quarantine"]) == [(ids[1], n) for n in range(1, 6)] + [(ids[2], 1)]
    status = {r[0]: r[6] for r in got["records"]}
    assert status[ids[0]] == "superseded" and status[ids[1]] == "rejected" and status[ids[2]] == "accepted"
    assert status[ids[2].replace("v2", "v1")] == "superseded"
    kinds = [(kind, subject) for _, kind, subject, _, _ in got["audit"] if kind in ("verdict", "publish")][-4:]
    assert kinds == [("verdict", ids[0]), ("verdict", ids[1]), ("verdict", ids[2]), ("publish", ids[2])]


def test_submissions_of_one_slice_are_published_one_after_the_other(settings, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(publish, "publish", lambda *a: calls.append(a[1].submission_id) or pytest.fail("stop"))
    items = [publish.ToPublish(sub, None, None, {}) for sub in (_Sub("A"), _Sub("B"))]
    with pytest.raises(pytest.fail.Exception):
        publish.publish_many(None, items, None, None)
    assert calls == ["A"]


class _Sub:
    def __init__(self, sid):
        self.submission_id, self.member_id, self.dataset, self.period = sid, "M001", "policy", "2024Q1"
