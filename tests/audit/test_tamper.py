"""Issue 10, finding 11: a writer to the lake cannot rewrite the audit trail unnoticed.

Each test tampers with the lake as someone who can write its catalog and data files, but does not
hold the audit key, would; the old plain-hash chain let every one of these pass ``audit verify``.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
import sqlite3

import duckdb
import pytest

from pipelines import audit, store
from pipelines.audit.key import anchor_file, key_file
from tests.audit.conftest import cli as _cli
from tests.audit.conftest import policy_file as _policy_file
from tests.audit.conftest import verify as _verify
from tests.audit.conftest import write_raw as _write_raw
from tests.conftest import policy_row, submit_and_process, write_csv


def test_intact_lake_verifies_and_names_its_anchor(lake_home):
    result = _verify(lake_home)
    assert result.exit_code == 0, result.output
    assert "audit log intact: 9 entries" in result.output and "data files match their seals" in result.output
    lines = [json.loads(t) for t in anchor_file(lake_home).read_text().splitlines()]
    assert lines[0]["baseline"] is True and all(line["mac"].startswith("au-") for line in lines)
    sealed = {path: (size, sha) for line in lines for path, size, sha in line["files"]}
    policy = _policy_file(lake_home)
    rel = str(policy.relative_to(lake_home.data_path))
    # the seal is the file's real size and sha256 (computed here independently of the platform)
    assert sealed[rel] == (policy.stat().st_size, hashlib.sha256(policy.read_bytes()).hexdigest())


def test_entry_edited_with_recomputed_plain_hashes_is_detected(lake_home):
    """The old attack: edit entry 8, recompute every later hash and the head (old verify passed)."""
    con = store.connect(lake_home, read_only=False)
    try:
        rows = con.execute("SELECT seq, recorded_at, kind, subject, details, content_sha256 FROM lake.audit_log "
                           "WHERE seq >= 8 ORDER BY seq").fetchall()
        prev = con.execute("SELECT entry_sha256 FROM lake.audit_log WHERE seq = 7").fetchone()[0]
        for seq, at, kind, subject, details, content in rows:
            if seq == 8:
                details = details.replace("40", "41")
            h = audit.entry_hash(seq, at.isoformat(timespec="microseconds"), kind, subject, details, content, prev)
            con.execute("UPDATE lake.audit_log SET details = ?, prev_sha256 = ?, entry_sha256 = ? WHERE seq = ?",
                        [details, prev, h, seq])
            prev = h
        con.execute("UPDATE lake.audit_head SET entry_sha256 = ?", [prev])
    finally:
        con.close()
    result = _verify(lake_home)
    assert result.exit_code == 1, result.output
    assert "entry 8 (verdict M001-claim-2024Q1-v1) has a plain hash after keyed entries" in result.output
    assert "the audit log no longer holds the head the anchor sealed" in result.output
    assert "unaudited change to the lake at snapshot" in result.output


def test_entry_edited_with_a_guessed_keyed_hash_is_detected(lake_home):
    con = store.connect(lake_home, read_only=False)
    try:
        stored = con.execute("SELECT entry_sha256 FROM lake.audit_log WHERE seq = 5").fetchone()[0]
        forged = stored.split(":")[0] + ":" + hashlib.sha256(b"forged").hexdigest()
        con.execute("UPDATE lake.audit_log SET details = replace(details, 'accepted', 'rejected'), "
                    "entry_sha256 = ? WHERE seq = 5", [forged])
        con.execute("UPDATE lake.audit_log SET prev_sha256 = ? WHERE seq = 6", [forged])
    finally:
        con.close()
    result = _verify(lake_home)
    assert result.exit_code == 1
    assert "TAMPERED: entry 5 (verdict M001-policy-2024Q1-v1) was edited" in result.output


def test_policy_row_edited_through_ducklake_is_an_unaudited_change(lake_home):
    _write_raw(lake_home, "UPDATE lake.policy SET written_premium = written_premium * 10 WHERE policy_no = 'P0001'")
    con = store.connect(lake_home)
    snap = store.current_snapshot(con)
    con.close()
    result = _verify(lake_home)
    assert result.exit_code == 1
    assert f"TAMPERED: unaudited change to the lake at snapshot {snap}:" in result.output
    assert "committed outside the platform" in result.output


def test_catalog_rolled_back_to_an_older_copy_is_detected(lake_home, tmp_path):
    copy = tmp_path / "catalog-copy.sqlite"
    with sqlite3.connect(lake_home.catalog) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)                      # a consistent copy, as a backup would take
    rows = [policy_row(transaction_id=f"T{i:04d}", written_premium="999.00") for i in range(40)]
    submit_and_process(lake_home, write_csv(tmp_path / "p2.csv", rows))    # a correction, later rolled back
    assert _verify(lake_home).exit_code == 0
    for suffix in ("-wal", "-shm"):
        pathlib.Path(lake_home.catalog + suffix).unlink(missing_ok=True)
    shutil.copyfile(copy, lake_home.catalog)
    result = _verify(lake_home)
    assert result.exit_code == 1, result.output
    assert "the lake's catalog was rolled back or replaced" in result.output
    assert "the audit log no longer holds the head the anchor sealed" in result.output


def test_data_file_deleted_is_detected(lake_home):
    path = _policy_file(lake_home)
    path.unlink()
    result = _verify(lake_home)
    assert result.exit_code == 1
    assert f"TAMPERED: data file {path.relative_to(lake_home.data_path)} of table policy is missing" in result.output


def test_data_file_damaged_is_detected(lake_home):
    path = _policy_file(lake_home)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF             # one flipped byte, same size
    path.write_bytes(bytes(data))
    result = _verify(lake_home)
    assert result.exit_code == 1
    assert "was rewritten or damaged: its sha256" in result.output


def test_data_file_rewritten_with_other_values_is_detected(lake_home, tmp_path):
    """A valid Parquet file with the premiums multiplied by 10 replaces the sealed one."""
    path = _policy_file(lake_home)
    con = duckdb.connect()
    forged = tmp_path / "forged.parquet"
    con.execute(f"COPY (SELECT * REPLACE (written_premium * 10 AS written_premium) FROM read_parquet('{path}')) "
                f"TO '{forged}' (FORMAT parquet)")
    con.close()
    shutil.copyfile(forged, path)
    result = _verify(lake_home)
    assert result.exit_code == 1
    assert f"data file {path.relative_to(lake_home.data_path)} of table policy is damaged or rewritten" in result.output


def test_anchor_line_edited_is_detected(lake_home):
    path = anchor_file(lake_home)
    lines = path.read_text().splitlines()
    line = json.loads(lines[-1])
    line["at"] = "2020-01-01T00:00:00+00:00"
    lines[-1] = json.dumps(line)
    path.write_text("\n".join(lines) + "\n")
    result = _verify(lake_home)
    assert result.exit_code == 1 and f"anchor line {len(lines)} (snapshot {line['snapshot']}) was edited" \
        in result.output


def test_missing_anchor_refuses_writes_and_fails_verify(lake_home, tmp_path):
    anchor_file(lake_home).unlink()
    assert "the anchor file" in _verify(lake_home).output
    with pytest.raises(Exception, match="audit anchor .* is missing"):
        submit_and_process(lake_home, write_csv(tmp_path / "p3.csv", [policy_row()]))


def test_a_log_that_predates_the_audit_key_is_upgraded_then_frozen(lake_home, tmp_path):
    """Rewrite the log as the old code wrote it (plain SHA-256) with no anchor nor audit key: the next
    write vouches for it, after which editing a plain entry is detected."""
    _rewrite_plain(lake_home)
    anchor_file(lake_home).unlink()
    key_file(lake_home).unlink()
    assert "predate the audit key and nothing vouches" in _verify(lake_home).output
    made = _cli(lake_home, "keygen", "--if-missing")
    assert made.exit_code == 0 and "created audit key au-" in made.output, made.output
    upgraded = _cli(lake_home, "audit", "upgrade")
    assert upgraded.exit_code == 0 and "entries 1-9 vouched for" in upgraded.output, upgraded.output
    assert _verify(lake_home).exit_code == 0
    _rewrite_plain(lake_home, edit_seq=6, every=False)
    result = _verify(lake_home)
    assert result.exit_code == 1
    assert "entries 1-9 were edited after entry 10 vouched for them" in result.output
    assert "entry 10 does not continue the chain" in result.output


def _rewrite_plain(settings, edit_seq=None, every=True):
    """Recompute the plain SHA-256 chain without a key: of every entry (a log as the old code wrote
    it), or of the plain entries only (editing one of them)."""
    con = store.connect(settings, read_only=False)
    try:
        rows = con.execute("SELECT seq, recorded_at, kind, subject, details, content_sha256, entry_sha256 "
                           "FROM lake.audit_log ORDER BY seq").fetchall()
        prev = audit.GENESIS
        for seq, at, kind, subject, details, content, stored in rows:
            if audit.is_keyed(stored) and not every:
                break
            if seq == edit_seq:
                details = details.replace("40", "4")
            h = audit.entry_hash(seq, at.isoformat(timespec="microseconds"), kind, subject, details, content, prev)
            con.execute("UPDATE lake.audit_log SET details = ?, prev_sha256 = ?, entry_sha256 = ? WHERE seq = ?",
                        [details, prev, h, seq])
            prev = h
    finally:
        con.close()


def test_inlined_row_edited_straight_in_the_catalog_is_detected(lake_home, tmp_path):
    """Small inserts live in the catalog (no data file, no snapshot when edited with SQLite itself)."""
    small = write_csv(tmp_path / "small.csv", [policy_row()])
    assert submit_and_process(lake_home, small, member="M002").status == "accepted"
    assert _verify(lake_home).exit_code == 0
    con = store.connect(lake_home)
    inlined = con.execute("SELECT table_name FROM __ducklake_metadata_lake.ducklake_inlined_data_tables").fetchall()
    con.close()
    db = sqlite3.connect(lake_home.catalog)
    edited = 0
    for (table,) in inlined:
        cols = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        if "written_premium" in cols:
            edited += db.execute(f"UPDATE {table} SET written_premium = written_premium * 10 "
                                 "WHERE member_id = 'M002'").rowcount
    db.commit()
    db.close()
    assert edited == 1
    result = _verify(lake_home)
    assert result.exit_code == 1
    assert "the catalog was edited outside DuckLake after snapshot" in result.output
