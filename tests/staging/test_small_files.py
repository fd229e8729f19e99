"""A small file is checked on a staging database planned without the optimizers that only pay on
large files (``staging.SMALL_FILE_OPTIMIZERS_OFF``); what it publishes is the same either way."""

from __future__ import annotations

import shutil

from pipelines import ingest, store
from pipelines.config import Settings
from pipelines.ingest import process_submission
from pipelines.keys import create_keys
from pipelines.members import add_members
from pipelines.staging import SMALL_FILE_OPTIMIZERS_OFF, staging_connection
from tests.conftest import policy_row, submit, write_csv


def _optimizers_off(con) -> str:
    return con.execute("SELECT current_setting('disabled_optimizers')").fetchone()[0]


def test_only_a_small_files_staging_database_leaves_out_optimizers(tmp_path):
    settings = Settings(home=tmp_path / "home")
    with staging_connection(settings, tmp_path / "a", small=True) as con:
        assert set(_optimizers_off(con).split(",")) == set(SMALL_FILE_OPTIMIZERS_OFF.split(","))
    with staging_connection(settings, tmp_path / "b") as con:
        assert _optimizers_off(con) == ""


def _published(tmp_path, name: str, small_up_to: int, monkeypatch, key_from: Settings | None = None):
    s = Settings(home=tmp_path / name, gx_max_rows=0)
    if key_from is not None:
        s.key_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(key_from.key_file, s.key_file)
    create_keys(s)
    add_members(s, {"M001": "One"})
    rows = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}",
                       written_premium="abc" if i % 50 == 0 else f"{100 + i}.50",
                       phone="12345" if i % 67 == 1 else "13812345678", gender="X" if i % 90 == 3 else "M")
            for i in range(200)]   # 4 + 3 + 3 rows of 200 break a rule: quarantined, the file accepted
    got = submit(s, write_csv(tmp_path / f"{name}.csv", rows))
    monkeypatch.setattr(ingest, "SMALL_FILE_BYTES", small_up_to)
    out = process_submission(s, got.submission.submission_id)
    con = store.connect(s, read_only=True)
    try:
        return s, out, {t: con.execute(f"SELECT * EXCLUDE (submission_id) FROM lake.{t} ORDER BY ALL").fetchall()
                        for t in ("policy", "quarantine", "rule_results")}
    finally:
        con.close()


def test_a_small_file_publishes_the_same_rows_with_and_without_those_optimizers(tmp_path, monkeypatch):
    small, out_small, got = _published(tmp_path, "small", 1 << 20, monkeypatch)
    _, out_large, want = _published(tmp_path, "large", 0, monkeypatch, key_from=small)
    assert (out_small.status, out_small.rows_accepted, out_small.rows_quarantined) == \
        (out_large.status, out_large.rows_accepted, out_large.rows_quarantined)
    assert out_small.rows_quarantined > 0 and out_small.rows_accepted > 0, [r for r in got["rule_results"] if r[5]]
    assert got == want
