import os
import stat

import pytest

from pipelines import archive
from pipelines.errors import SubmissionError
from tests.conftest import policy_row, submit, write_csv


def _status(lake, sid):
    con = lake()
    try:
        return con.execute("SELECT status FROM lake.submissions WHERE submission_id = ?", [sid]).fetchone()[0]
    finally:
        con.close()


def test_intake_archives_raw_bytes_encrypted_read_only_by_sha256(settings, tmp_path):
    path = write_csv(tmp_path / "p.csv", [policy_row()])
    got = submit(settings, path)
    target = archive.path_of(settings, got.submission.sha256)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o400          # read-only, owner-only
    assert b"P0001" not in target.read_bytes()          # encrypted at rest
    assert archive.restore(settings, got.submission.sha256, tmp_path / "back.csv").read_bytes() == path.read_bytes()
    assert got.submission.submission_id == "M001-policy-2024Q1-v1"
    assert got.submission.status == "received"


def test_intake_same_bytes_again_is_a_no_op(settings, tmp_path, lake):
    path = write_csv(tmp_path / "p.csv", [policy_row()])
    first = submit(settings, path)
    again = submit(settings, path)
    assert (again.created, again.submission.submission_id) == (False, first.submission.submission_id)
    con = lake()
    assert con.execute("SELECT count(*) FROM lake.submissions").fetchone()[0] == 1


def test_intake_other_bytes_are_a_new_version(settings, tmp_path):
    first = submit(settings, write_csv(tmp_path / "a.csv", [policy_row()]))
    second = submit(settings, write_csv(tmp_path / "b.csv", [policy_row(written_premium="1300.00")]))
    assert second.created and second.submission.version == 2
    assert second.submission.submission_id == "M001-policy-2024Q1-v2"
    assert first.submission.sha256 != second.submission.sha256


@pytest.mark.parametrize("field,value,message", [
    ("member", "M999", "Member 'M999' of file 'p.csv' is not registered"),
    ("member", "../x", "Member id '../x' of file 'p.csv' is not a member id"),
    ("dataset", "premium", "Dataset 'premium' of file 'p.csv' is not one of policy, claim"),
    ("period", "2024Q5", "Period '2024Q5' is not a quarter"),
    ("period", "2024", "Period '2024' of file 'p.csv' is not a quarter"),
    ("period", "2030Q1", "Period '2030Q1' of file 'p.csv' has not started yet"),
    ("contract_version", "9.9", "Contract version '9.9' of dataset 'policy' does not exist"),
], ids=["unknown member", "path-like member", "unknown dataset", "bad period", "annual period",
        "future period", "unknown contract version"])
def test_intake_refuses_bad_manifest_but_archives_the_file(settings, tmp_path, lake, field, value, message):
    path = write_csv(tmp_path / "p.csv", [policy_row()])
    with pytest.raises(SubmissionError) as err:
        submit(settings, path, **{field: value})
    assert message in str(err.value)
    con = lake()
    sha, status = con.execute("SELECT sha256, status FROM lake.submissions").fetchone()
    assert status == "refused"
    assert archive.restore(settings, sha, tmp_path / "back").read_bytes() == path.read_bytes()
    assert not (settings.home / "x").exists() and not (settings.home.parent / "x").exists()


def test_intake_refuses_unknown_control_total(settings, tmp_path):
    path = write_csv(tmp_path / "p.csv", [policy_row()])
    with pytest.raises(SubmissionError, match="paid_to_date"):
        submit(settings, path, control_totals={"paid_to_date": "1"})


def test_intake_refuses_unsupported_format(settings, tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{}")
    with pytest.raises(SubmissionError, match="is not .csv, .parquet or .xlsx"):
        submit(settings, path)


def test_intake_records_when_a_historical_file_arrived(settings, tmp_path, lake):
    import datetime as dt

    from pipelines.intake import Manifest, receive

    when = dt.datetime(2025, 5, 14, 9, 30)
    receive(settings, write_csv(tmp_path / "p.csv", [policy_row()]),
            Manifest.build(member_id="M001", dataset="policy", period="2025Q1"), received_at=when)
    assert lake().execute("SELECT received_at FROM lake.submissions").fetchone()[0] == when
