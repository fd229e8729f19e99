"""The landing zone: only regular files, only from the member's own folder, nothing lost in a race."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from pipelines import archive, store
from pipelines.landing import landing_dir, receive_landing
from tests.conftest import manifest_json, policy_row, write_csv


def _drop(settings, member: str, name: str, prefix: str = "T", **manifest) -> Path:
    folder = landing_dir(settings) / member
    folder.mkdir(parents=True, exist_ok=True)
    rows = [policy_row(transaction_id=f"{prefix}{i:04d}", policy_no=f"P{prefix}{i:04d}") for i in range(3)]
    path = write_csv(folder / name, rows)
    fields = {"member_id": member, "dataset": "policy", "period": "2024Q1", **manifest}
    manifest_json(folder / f"{name}.manifest.json", **{k: v for k, v in fields.items() if v is not None})
    return path


def _submissions(settings):
    con = store.connect(settings)
    try:
        return con.execute("SELECT submission_id, member_id, status, sha256, verdict_reasons FROM lake.submissions "
                           "ORDER BY received_at").fetchall()
    finally:
        con.close()


def _archived(settings, data: bytes) -> bool:
    return archive.path_of(settings, hashlib.sha256(data).hexdigest()).exists()


def test_landing_takes_a_members_file_from_its_folder(settings):
    _drop(settings, "M001", "p.csv")
    lines = receive_landing(settings)
    assert lines == ["p.csv: received as M001-policy-2024Q1-v1"]
    assert [p.name for p in landing_dir(settings).rglob("*") if p.is_file()] == []


def test_landing_symlink_to_another_members_file_is_not_read(settings, tmp_path):
    other = _drop(settings, "M002", "theirs.csv", prefix="S")
    secret = other.read_bytes()
    mine = landing_dir(settings) / "M001"
    mine.mkdir()
    (mine / "p.csv").symlink_to(other)
    manifest_json(mine / "p.csv.manifest.json", member_id="M001", dataset="policy", period="2024Q1")
    os.rename(other.with_name("theirs.csv.manifest.json"), tmp_path / "held.json")   # M002's not ready yet
    lines = receive_landing(settings)
    assert lines == ["p.csv: refused - is a symbolic link"]
    assert not _archived(settings, secret) and other.exists()           # the target was not touched
    assert [s[2] for s in _submissions(settings)] == ["refused"]
    assert not os.path.lexists(mine / "p.csv")


def test_landing_symlink_to_the_key_is_not_archived(settings):
    folder = landing_dir(settings) / "M001"
    folder.mkdir(parents=True)
    (folder / "k.csv").symlink_to(settings.key_file)
    manifest_json(folder / "k.csv.manifest.json", member_id="M001", dataset="policy", period="2024Q1")
    receive_landing(settings)
    assert not _archived(settings, Path(settings.key_file).read_bytes())
    assert Path(settings.key_file).exists()


def test_landing_fifo_is_refused_without_blocking(settings):
    folder = landing_dir(settings) / "M001"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "pipe.csv")
    manifest_json(folder / "pipe.csv.manifest.json", member_id="M001", dataset="policy", period="2024Q1")
    assert receive_landing(settings) == ["pipe.csv: refused - is not a regular file (a folder, pipe, socket or device)"]


def test_landing_manifest_naming_another_member_is_refused(settings):
    path = _drop(settings, "M001", "p.csv", member_id="M002")
    data = path.read_bytes()
    [line] = receive_landing(settings)
    assert "names member 'M002'" in line
    assert _archived(settings, data)                                     # refused, but kept
    assert [(s[1], s[2]) for s in _submissions(settings)] == [("", "refused")]


def test_landing_manifest_may_leave_the_member_to_the_folder(settings):
    _drop(settings, "M003", "p.csv", member_id=None)
    assert receive_landing(settings) == ["p.csv: received as M003-policy-2024Q1-v1"]


def test_landing_file_outside_a_member_folder_is_refused(settings):
    root = landing_dir(settings)
    root.mkdir(parents=True)
    write_csv(root / "loose.csv", [policy_row()])
    manifest_json(root / "loose.csv.manifest.json", member_id="M001", dataset="policy", period="2024Q1")
    [line] = receive_landing(settings)
    assert "not inside a member's folder" in line


def test_landing_file_re_uploaded_while_taken_is_kept_for_the_next_run(settings, monkeypatch):
    path = _drop(settings, "M001", "p.csv", prefix="A")
    first = path.read_bytes()
    real_store = archive.store

    def upload_meanwhile(s, source):      # the member uploads a corrected file during intake
        if not path.exists():
            _drop(settings, "M001", "p.csv", prefix="B")
        return real_store(s, source)

    monkeypatch.setattr(archive, "store", upload_meanwhile)
    assert receive_landing(settings) == ["p.csv: received as M001-policy-2024Q1-v1"]
    monkeypatch.setattr(archive, "store", real_store)
    assert _archived(settings, first) and path.exists() and path.read_bytes() != first
    assert receive_landing(settings) == ["p.csv: received as M001-policy-2024Q1-v2"]


def test_landing_file_that_changes_while_read_is_archived_and_put_back(settings, monkeypatch):
    path = _drop(settings, "M001", "p.csv")
    real_store = archive.store

    def still_uploading(s, source):
        got = real_store(s, source)
        with open(source, "ab") as f:
            f.write(b"\n")
        return got

    monkeypatch.setattr(archive, "store", still_uploading)
    [line] = receive_landing(settings)
    assert "changed while it was being taken" in line
    assert path.exists() and Path(f"{path}.manifest.json").exists() and _submissions(settings) == []
    monkeypatch.setattr(archive, "store", real_store)
    assert receive_landing(settings) == ["p.csv: received as M001-policy-2024Q1-v1"]


def test_landing_one_bad_file_does_not_stop_the_others(settings, monkeypatch):
    import pipelines.landing as landing

    _drop(settings, "M001", "a.csv", prefix="A")
    _drop(settings, "M002", "b.csv", prefix="B")
    real = landing._intake

    def crash_on_a(s, data, manifest, landed, archived):
        if landed.data.name == "a.csv":
            raise RuntimeError("a bug")
        return real(s, data, manifest, landed, archived)

    monkeypatch.setattr(landing, "_intake", crash_on_a)
    data = (landing_dir(settings) / "M001" / "a.csv").read_bytes()
    lines = []
    with pytest.raises(landing.LandingFailed, match="1 landed file"):
        receive_landing(settings, progress=lines.append)
    assert lines == ["a.csv: failed - recorded as refused (RuntimeError: a bug)",
                     "b.csv: received as M002-policy-2024Q1-v1"]
    assert _archived(settings, data) and list(landing_dir(settings).rglob("*.csv")) == []   # archived, not lost
    refused = [s for s in _submissions(settings) if s[2] == "refused"]
    assert len(refused) == 1 and "could not be taken in" in refused[0][4][0]     # and not taken every run


@pytest.mark.parametrize("name", ["..manifest.json", ".hidden.csv.manifest.json"])
def test_landing_hidden_and_odd_names_are_left_alone(settings, name):
    folder = landing_dir(settings) / "M001"
    folder.mkdir(parents=True)
    (folder / name).write_text(json.dumps({"member_id": "M001"}))
    assert receive_landing(settings) == []


def test_landing_names_files_it_cannot_take_yet_and_leaves_them(settings):
    folder = landing_dir(settings) / "M001"
    folder.mkdir(parents=True)
    (folder / "uploading.csv").write_text("policy_no\n")
    (folder / "later.xlsx.manifest.json").write_text(json.dumps({"dataset": "policy", "period": "2024Q1"}))
    (folder / "p.csv").write_text("policy_no\n")
    (folder / "p.manifest.json").write_text(json.dumps({"dataset": "policy", "period": "2024Q1"}))
    said = []
    assert receive_landing(settings, progress=said.append) == []
    assert said == [
        "landing/M001/later.xlsx.manifest.json: a manifest without its file 'later.xlsx'; "
        "the file is taken once both have arrived",
        "landing/M001/p.manifest.json: a manifest without its file 'p'; if it describes p.csv, "
        "name it p.csv.manifest.json",
        "landing/M001/uploading.csv: waiting for its manifest uploading.csv.manifest.json "
        "(a file is taken once its manifest has arrived)"]
    assert sorted(p.name for p in folder.iterdir()) == ["later.xlsx.manifest.json", "p.csv", "p.manifest.json",
                                                        "uploading.csv"]
    assert _submissions(settings) == []
