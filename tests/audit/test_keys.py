"""Issue 10, finding 12: a lost key is never silently replaced; key ids are fingerprints; a wrong
archive key leaves no output file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipelines import archive
from pipelines.audit import key as audit_key
from pipelines.config import Settings
from pipelines.privacy import tokens
from tests.audit.conftest import cli
from tests.conftest import policy_row, submit_and_process, write_csv


def _fingerprint(prefix: str, path: Path) -> tuple[str, str]:
    """(the id in the key file, the id its secret should have), computed here from the file."""
    key_id, secret = path.read_text().strip().split(":")
    return key_id, f"{prefix}-{hashlib.sha256(b'insurshare key id:' + bytes.fromhex(secret)).hexdigest()[:8]}"


def test_keygen_gives_each_key_its_fingerprint_as_id(tmp_path):
    settings = Settings(home=tmp_path / "home")
    result = cli(settings, "keygen", "--if-missing")
    assert result.exit_code == 0, result.output
    for prefix, path in (("k", settings.key_file), ("a", archive.key_file(settings)),
                         ("au", audit_key.key_file(settings))):
        key_id, expected = _fingerprint(prefix, Path(path))
        assert key_id == expected and f"{expected} at {path}" in result.output
        assert Path(path).stat().st_mode & 0o777 == 0o600
    assert cli(settings, "keygen", "--if-missing").output.strip() == "keys exist"


@pytest.mark.parametrize("which", ["pseudonymisation", "archive", "audit"])
def test_keygen_refuses_to_replace_a_lost_key_the_lake_depends_on(lake_home, which):
    path = {"pseudonymisation": Path(lake_home.key_file), "archive": archive.key_file(lake_home),
            "audit": audit_key.key_file(lake_home)}[which]
    old_id = path.read_text().split(":")[0]
    path.unlink()
    result = cli(lake_home, "keygen", "--if-missing")
    assert result.exit_code == 1
    assert f"No {which} key at {path}" in result.output and f"made with key {old_id}" in result.output
    assert "Restore the key file from backup" in result.output and "--force-new" in result.output
    assert not path.exists()
    forced = cli(lake_home, "keygen", "--force-new")
    assert forced.exit_code == 0 and path.exists()
    assert path.read_text().split(":")[0] not in (old_id, "")      # a new key never takes the old id


def test_lost_archive_key_after_force_new_names_the_key_it_needs(lake_home, tmp_path):
    old_id = archive.load_key(lake_home).key_id
    archive.key_file(lake_home).unlink()
    assert cli(lake_home, "keygen", "--force-new").exit_code == 0
    out = tmp_path / "restored" / "p.csv"
    result = cli(lake_home, "archive", "restore", "M001-policy-2024Q1-v1", "--to", str(out))
    assert result.exit_code == 1 and f"was encrypted with archive key {old_id!r}" in result.output
    assert not out.exists() and list(out.parent.iterdir()) == []   # no empty file, no temporary file left


def test_wrong_archive_key_leaves_no_output_and_the_right_one_restores(lake_home, tmp_path):
    wrong = tmp_path / "wrong.key"
    archive.create_key(wrong, key_id=archive.load_key(lake_home).key_id)  # same id, other secret
    out = tmp_path / "out" / "p.csv"
    bad = lake_home.with_(env={"INSURSHARE_ARCHIVE_KEY_FILE": str(wrong)})
    from pipelines import store

    con = store.connect(lake_home)
    digest = con.execute("SELECT sha256 FROM lake.submissions WHERE submission_id = 'M001-policy-2024Q1-v1'"
                         ).fetchone()[0]
    con.close()
    with pytest.raises(archive.ArchiveCorrupt, match="fails authentication at chunk 0"):
        archive.restore(bad, digest, out)
    assert not out.exists() and list(out.parent.iterdir()) == []
    archive.restore(lake_home, digest, out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest and list(out.parent.iterdir()) == [out]


def test_keys_with_the_old_ids_stay_readable(settings, tmp_path):
    """Homes made before fingerprint ids keep their 'k1'/'a1' keys: tokens and archives still work."""
    Path(settings.key_file).unlink()
    archive.key_file(settings).unlink()
    old = tokens.create_key(Path(settings.key_file), "k1")
    archive.create_key(archive.key_file(settings), "a1")
    rows = [policy_row(transaction_id=f"T{i:04d}") for i in range(3)]
    outcome = submit_and_process(settings, write_csv(tmp_path / "p.csv", rows))
    assert outcome.status == "accepted"
    from pipelines import store

    con = store.connect(settings)
    insured = {r[0] for r in con.execute("SELECT insured_id FROM lake.policy").fetchall()}
    sha = con.execute("SELECT sha256 FROM lake.submissions").fetchone()[0]
    con.close()
    assert insured == {old.token(rows[0]["insured_id"])} and next(iter(insured)).startswith("k1:")
    restored = archive.restore(settings, sha, tmp_path / "back.csv")
    assert hashlib.sha256(restored.read_bytes()).hexdigest() == sha
