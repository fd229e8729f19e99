"""``insurshare lake maintain``: fewer snapshots and files, the same data, an audit that still verifies."""

from __future__ import annotations

import pytest

from pipelines import store
from pipelines.errors import QueryError
from pipelines.maintenance import lake_shape, maintain_lake, ranges
from tests.audit.conftest import cli
from tests.conftest import policy_row, submit_and_process, write_csv


@pytest.fixture
def grown(lake_home, tmp_path):
    """The two submissions of ``lake_home``, then six small premium files (rows inlined in the catalog)."""
    for q in range(6):
        year, quarter = 2023 + q // 4, q % 4 + 1
        day = f"{year}-{3 * quarter - 2:02d}-10"
        rows = [policy_row(transaction_id=f"T5{q}{i:02d}", policy_no=f"P5{q}{i:02d}", accounting_date=day,
                           effective_date=day, expiry_date=f"{year + 1}{day[4:]}") for i in range(2)]
        got = submit_and_process(lake_home, write_csv(tmp_path / f"s{q}.csv", rows), member="M002",
                                 period=f"{year}Q{quarter}")
        assert got.status == "accepted", got.line()
    return lake_home


def _policy(settings):
    con = store.connect(settings)
    try:
        return sorted(con.execute("SELECT submission_id, policy_no, written_premium FROM lake.policy").fetchall())
    finally:
        con.close()


def test_maintain_expires_flushes_and_keeps_the_data_and_the_audit(grown):
    con = store.connect(grown)
    before, old = lake_shape(con), store.current_snapshot(con)
    con.close()
    data = _policy(grown)
    report = maintain_lake(grown, retention_days=0)
    assert report.before == before
    assert report.expired == before.snapshots                 # every one older than the maintenance
    assert report.after.snapshots == 3                        # its flush, merge and expiry commits
    assert report.after.inlined_rows == 2                     # the expiry's audit entry and audit head
    assert report.after.live_files < before.live_files
    assert _policy(grown) == data
    result = cli(grown, "audit", "verify")
    assert result.exit_code == 0, result.output
    con = store.connect(grown)
    entry = con.execute("SELECT kind, subject FROM lake.audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    con.close()
    assert entry[0] == "lake-maintenance"
    with pytest.raises(QueryError, match=f"Snapshot {old} does not exist"):
        store.connect(grown, snapshot=old)


def test_maintain_keeps_the_retention_and_commits_go_on(grown, tmp_path):
    con = store.connect(grown)
    before = lake_shape(con)
    con.close()
    report = maintain_lake(grown, retention_days=30)
    assert report.expired == 0 and report.after.snapshots == before.snapshots + 3
    rows = [policy_row(transaction_id="T9001", policy_no="P9001")]      # 2024Q1, as policy_row
    assert submit_and_process(grown, write_csv(tmp_path / "n.csv", rows), member="M003").status == "accepted"
    assert cli(grown, "audit", "verify").exit_code == 0


def test_maintain_keeps_the_snapshots_since_the_marts_source(grown):
    from pipelines.marts.build import build_marts

    source = build_marts(grown).source_snapshot
    report = maintain_lake(grown, retention_days=0)
    assert report.kept_from == source
    con = store.connect(grown, snapshot=source)     # still readable: the next marts build reads since it
    con.close()
    assert cli(grown, "audit", "verify").exit_code == 0


def test_cli_lake_maintain_reports_what_it_did(grown):
    result = cli(grown, "lake", "maintain", "--retention-days", "0")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("lake maintained in ") and "expired, older than 0 days" in result.output


@pytest.mark.parametrize("ids, expected", [([], []), ([3], [[3, 3]]), ([1, 2, 3, 7, 9, 10], [[1, 3], [7, 7], [9, 10]])])
def test_ranges_of_snapshot_ids(ids, expected):
    assert ranges(ids) == expected


def test_a_bad_retention_setting_is_named(settings):
    from dataclasses import replace

    from pipelines.errors import ConfigError
    from pipelines.maintenance import retention_days

    assert retention_days(settings) == 30
    with pytest.raises(ConfigError, match="INSURSHARE_SNAPSHOT_RETENTION_DAYS='a week'"):
        retention_days(replace(settings, env={"INSURSHARE_SNAPSHOT_RETENTION_DAYS": "a week"}))
