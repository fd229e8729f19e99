"""Several files received over one connection, their records in one commit (``intake.receive_many``)."""

import datetime as dt

import duckdb

from pipelines import intake
from pipelines.intake import Arrival, Manifest, intake_connection, receive_many
from tests.conftest import policy_row, write_csv

WHEN = dt.datetime(2024, 4, 20, 9)


def _arrivals(tmp_path, periods):
    return [Arrival(write_csv(tmp_path / f"p_{p}.csv", [policy_row(transaction_id=f"T{p}")]),
                    Manifest.build(member_id="M001", dataset="policy", period=p), f"p_{p}.csv", WHEN, WHEN.date())
            for p in periods]


def _snapshots(con):
    return [r[0] for r in con.execute("SELECT commit_message FROM ducklake_snapshots('lake') "
                                      "WHERE starts_with(commit_message, 'receive') ORDER BY snapshot_id").fetchall()]


def test_receive_many_records_the_files_in_one_commit_and_refuses_one_alone(settings, tmp_path):
    arrivals = _arrivals(tmp_path, ["2023Q3", "2023Q4", "2024Q1"])
    arrivals[1] = Arrival(arrivals[1].path, Manifest.build(member_id="M404", dataset="policy", period="2023Q4"),
                          arrivals[1].file_name, WHEN, WHEN.date())
    with intake_connection(settings) as con:
        got = receive_many(settings, con, arrivals)
        assert [type(g).__name__ for g in got] == ["Received", "SubmissionError", "Received"]
        assert [g.submission.submission_id for g in (got[0], got[2])] == ["M001-policy-2023Q3-v1",
                                                                          "M001-policy-2024Q1-v1"]
        assert _snapshots(con) == ["receive 2 files"]
        assert con.execute("SELECT count(*) FROM lake.submissions WHERE status = 'refused'").fetchone()[0] == 1


def test_receive_many_falls_back_to_one_commit_per_file_when_the_group_fails(settings, tmp_path, monkeypatch):
    record, failed = intake._record, []

    def fail_once(con, manifest, period, *args):
        if period == "2023Q4" and not failed:      # the grouped commit fails on the second file
            failed.append(period)
            raise duckdb.ConstraintException("simulated")
        return record(con, manifest, period, *args)

    monkeypatch.setattr(intake, "_record", fail_once)
    with intake_connection(settings) as con:
        got = receive_many(settings, con, _arrivals(tmp_path, ["2023Q3", "2023Q4", "2024Q1"]))
        assert [g.submission.submission_id for g in got] == [
            "M001-policy-2023Q3-v1", "M001-policy-2023Q4-v1", "M001-policy-2024Q1-v1"]
        assert _snapshots(con) == ["receive M001 policy 2023Q3", "receive M001 policy 2023Q4",
                                   "receive M001 policy 2024Q1"]
        assert con.execute("SELECT count(*) FROM lake.submissions").fetchone()[0] == 3
