"""The raw archive: encrypted at rest, restored byte for byte, damage detected."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from pipelines import archive
from pipelines.cli import main
from tests.conftest import policy_row, submit, write_csv


@pytest.fixture
def archived(settings, tmp_path):
    path = write_csv(tmp_path / "p.csv", [policy_row(transaction_id=f"T{i:04d}") for i in range(12000)])
    got = submit(settings, path)
    return settings, path, got.submission


def test_archive_restore_gives_the_original_bytes(archived, tmp_path):
    settings, path, sub = archived
    result = CliRunner().invoke(main, ["--home", str(settings.home), "archive", "restore", sub.submission_id,
                                       "--to", str(tmp_path / "restored.csv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "restored.csv").read_bytes() == path.read_bytes()
    assert f"sha256 {sub.sha256} verified" in result.output


def test_archive_is_encrypted_and_multi_chunk(archived):
    settings, path, sub = archived
    blob = archive.path_of(settings, sub.sha256).read_bytes()
    assert path.stat().st_size > archive.CHUNK  # several chunks
    assert blob.startswith(archive.MAGIC) and b"T0001" not in blob and "机动车".encode() not in blob


@pytest.mark.parametrize("damage", ["flip a byte", "drop the last chunk", "swap two chunks"])
def test_archive_damage_is_detected(archived, tmp_path, damage):
    settings, _, sub = archived
    target = archive.path_of(settings, sub.sha256)
    blob = bytearray(target.read_bytes())
    head = len(archive.MAGIC) + 1 + blob[len(archive.MAGIC)]
    first_len = int.from_bytes(blob[head + 12: head + 16], "big")
    first_end = head + 16 + first_len
    if damage == "flip a byte":
        blob[first_end - 100] ^= 0xFF
    elif damage == "drop the last chunk":
        blob = blob[:first_end]
    else:
        second_len = int.from_bytes(blob[first_end + 12: first_end + 16], "big")
        second_end = first_end + 16 + second_len
        blob = blob[:head] + blob[first_end:second_end] + blob[head:first_end] + blob[second_end:]
    os.chmod(target, 0o644)
    target.write_bytes(bytes(blob))
    with pytest.raises(archive.ArchiveCorrupt):
        archive.restore(settings, sub.sha256, tmp_path / "out.csv")


def test_archive_key_never_appears_in_messages(settings, tmp_path):
    key = archive.load_key(settings)
    bad = settings.with_(env={"INSURSHARE_ARCHIVE_KEY_FILE": str(tmp_path / "other.key")})
    archive.create_key(tmp_path / "other.key", key_id="a9")
    path = write_csv(tmp_path / "p.csv", [policy_row()])
    sha, _, _ = archive.store(settings, path)
    with pytest.raises(archive.ArchiveCorrupt) as err:
        archive.restore(bad, sha, tmp_path / "x")
    assert f"'{key.key_id}'" in str(err.value) and key.key_id.startswith("a-")
    assert not (tmp_path / "x").exists()   # a wrong key leaves no output file, not even an empty one
    assert str(key.secret.hex()) not in str(err.value) and key.secret.hex() not in str(err.value)
    assert key.secret.hex() not in repr(key)
