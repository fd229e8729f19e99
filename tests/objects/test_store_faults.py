"""The object store stops in the middle of a publish, then starts again.

Ingestion must fail with a clear error after its retries, publish nothing of the slice and lose
nothing: once the store is back, the next run publishes the submission, and the audit trail
verifies. Two moments are tried: before the slice's data files are written (the store is gone
when the transaction writes them), and between the commit and its seal (the store is gone when
the new files are read back to be sealed), and just after the seal."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipelines import ingest, store
from pipelines.audit import anchor
from pipelines.cli import main
from pipelines.config import Settings
from tests.conftest import policy_row, write_csv


def _cli(home, *args):
    return CliRunner().invoke(main, ["--home", str(home), *args])


def _published(settings: Settings) -> tuple:
    con = store.connect(settings, read_only=True)
    try:
        status = con.execute("SELECT status FROM lake.submissions").fetchall()
        rows = con.execute("SELECT count(*) FROM lake.policy").fetchone()[0] if "policy" in store.lake_tables(con) else 0
        return [s for (s,) in status], rows
    finally:
        con.close()


@pytest.mark.parametrize("point", ["after-staging", "publish-before-commit", "after-publish-commit"])
def test_the_store_stopping_mid_publish_loses_nothing_and_the_next_run_publishes(point, tmp_path, s3_env, flaky_store,
                                                                                  monkeypatch):
    monkeypatch.setenv("INSURSHARE_STORAGE", s3_env)
    monkeypatch.setenv("INSURSHARE_S3_ATTEMPTS", "2")
    home = tmp_path / "home"
    assert _cli(home, "keygen").exit_code == 0
    assert _cli(home, "members", "add", "M001", "--name", "One").exit_code == 0
    data = write_csv(tmp_path / "p.csv", [policy_row(policy_no=f"P{n:04d}", transaction_id=f"T{n:04d}") for n in range(50)])
    got = _cli(home, "submit", str(data), "--member", "M001", "--dataset", "policy", "--period", "2024Q1")
    assert got.exit_code == 0, got.output
    settings = Settings.from_env(home=home)

    real = ingest.checkpoint

    def store_stops(settings_, name, subject=None):
        if name == point:
            flaky_store.down()
        real(settings_, name, subject)

    monkeypatch.setattr(ingest, "checkpoint", store_stops)
    failed = _cli(home, "ingest")
    flaky_store.up()
    monkeypatch.setattr(ingest, "checkpoint", real)
    assert failed.exception is None or isinstance(failed.exception, SystemExit), failed.output   # no traceback
    statuses, rows = _published(settings)
    if point == "after-staging":   # the slice's files could not be written: nothing was committed
        assert failed.exit_code == 1 and "could not be reached" in failed.output, failed.output
        assert rows == 0 and "accepted" not in statuses, (statuses, rows)
    else:                          # committed whole (and sealed, or its seal could not be written)
        assert (statuses, rows) == (["accepted"], 50), failed.output

    again = _cli(home, "ingest")
    assert again.exit_code == 0, again.output
    assert _cli(home, "members", "add", "M002", "--name", "Two").exit_code == 0   # a later commit, with the store back
    assert _published(settings) == (["accepted"], 50)
    verify = _cli(home, "audit", "verify")
    assert verify.exit_code == 0, verify.output
    late = [line["snapshot"] for line in anchor.read_lines(settings) if line.get("late")]
    # the commit whose seal failed (the store went between its commit and its seal) was sealed late;
    # at the other points no commit began without the store (each write looks up the anchor first)
    assert bool(late) == (point == "publish-before-commit"), late


def test_a_commit_made_outside_the_platform_is_never_sealed_late(tmp_path, s3_env, monkeypatch):
    """A late seal needs the commit's seal token: a change made with DuckLake directly has none
    (or a copied one), so the next seal leaves it unsealed and `audit verify` reports it."""
    monkeypatch.setenv("INSURSHARE_STORAGE", s3_env)
    home = tmp_path / "home"
    assert _cli(home, "keygen").exit_code == 0
    assert _cli(home, "members", "add", "M001", "--name", "One").exit_code == 0
    settings = Settings.from_env(home=home)
    con = store.connect(settings, read_only=False)
    try:
        stolen = con.execute("SELECT commit_extra_info FROM ducklake_snapshots('lake') ORDER BY snapshot_id DESC "
                             "LIMIT 1").fetchone()[0]
        con.execute("BEGIN")
        con.execute("UPDATE lake.members SET name = 'Someone else' WHERE member_id = 'M001'")
        con.execute("CALL lake.set_commit_message('insurshare', 'members', extra_info => ?)", [stolen])
        con.execute("COMMIT")
    finally:
        con.close()
    assert _cli(home, "members", "add", "M002", "--name", "Two").exit_code == 0
    assert not any(line.get("late") for line in anchor.read_lines(settings))
    verify = _cli(home, "audit", "verify")
    assert verify.exit_code == 1 and "was committed outside the platform" in verify.output, verify.output
