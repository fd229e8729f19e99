"""Backup and restore of the many-machines profile: ``pg_dump`` of the PostgreSQL catalog and a copy of
the S3 prefix (``insurshare storage copy``), then a disaster (the database dropped, every object
deleted, the home lost) and a restore into an empty platform, checked by ``audit verify`` and by
marts that equal the ones before (as restored, and built again from the restored data)."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest
from click.testing import CliRunner

from pipelines import objects
from pipelines.airflow.trial import psql, services_missing
from pipelines.cli import main
from pipelines.config import Settings
from tests.conftest import lake_rows

QUERIES = {
    "verdicts": "SELECT submission_id, status, verdict, rows_accepted, sha256 FROM lake.submissions ORDER BY ALL",
    "policy": "SELECT * FROM lake.policy ORDER BY ALL",
    "claim": "SELECT * FROM lake.claim ORDER BY ALL",
    "triangle": "SELECT * EXCLUDE (source_snapshot) FROM lake.mart_triangle ORDER BY ALL",
    "experience": "SELECT * EXCLUDE (source_snapshot) FROM lake.mart_experience ORDER BY ALL",
    "audit": "SELECT seq, kind, subject, entry_sha256 FROM lake.audit_log ORDER BY seq",
}


def _cli(home, *args):
    result = CliRunner().invoke(main, ["--home", str(home), *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_a_dump_and_a_bucket_copy_restore_an_empty_platform(tmp_path, s3_env, monkeypatch):
    if (missing := services_missing()) is not None:
        pytest.skip(missing)
    db = f"insurshare_lake_{uuid.uuid4().hex[:8]}"
    assert psql(f"CREATE DATABASE {db}").returncode == 0
    try:
        monkeypatch.setenv("INSURSHARE_STORAGE", s3_env)
        monkeypatch.setenv("INSURSHARE_CATALOG", f"postgres:dbname={db} host=127.0.0.1 user=postgres")
        home = tmp_path / "home"
        incoming = tmp_path / "incoming"
        _cli(home, "keygen")
        _cli(home, "generate", "--members", "3", "--quarters", "2", "--seed", "5", "--scale", "0.05",
             "--out", str(incoming))
        _cli(home, "members", "add", "--from-index", str(incoming / "index.json"))
        _cli(home, "submit-index", str(incoming / "index.json"))
        _cli(home, "ingest")
        _cli(home, "build-marts")
        before = lake_rows(Settings.from_env(home=home), QUERIES)
        assert before["policy"] and before["triangle"]

        # the backup: the catalog first, then the objects (written once: the copy holds every file the dump names)
        dump = tmp_path / "backup" / "lake.dump"
        dump.parent.mkdir()
        subprocess.run(["pg_dump", "-Fc", "-h", "127.0.0.1", "-U", "postgres", "-f", str(dump), db], check=True, timeout=120)
        backup = f"{s3_env}-backup"
        out = _cli(home, "storage", "copy", s3_env, backup)
        settings = Settings.from_env(home=home)
        stored = len(list(objects.list_urls(settings, s3_env)))
        assert f"copied {stored:,} object(s)" in out
        assert "copied 0 object(s)" in _cli(home, "storage", "copy", s3_env, backup)   # again: nothing new
        shutil.copytree(home / "secrets", tmp_path / "backup" / "secrets")   # keys: offline, apart from the data

        # the disaster
        assert psql(f"DROP DATABASE {db} WITH (FORCE)").returncode == 0
        for url in list(objects.list_urls(settings, s3_env)):
            objects.delete(settings, url)
        shutil.rmtree(home)

        # the restore into an empty platform: same database name and prefix, a new home with the keys
        assert psql(f"CREATE DATABASE {db}").returncode == 0
        subprocess.run(["pg_restore", "-h", "127.0.0.1", "-U", "postgres", "-d", db, str(dump)], check=True, timeout=120)
        new_home = tmp_path / "restored"
        shutil.copytree(tmp_path / "backup" / "secrets", new_home / "secrets")
        _cli(new_home, "storage", "copy", backup, s3_env)
        verify = _cli(new_home, "audit", "verify")
        assert "TAMPERED" not in verify
        restored = Settings.from_env(home=new_home)
        assert lake_rows(restored, QUERIES) == before
        _cli(new_home, "build-marts", "--force")   # built again from the restored rows: the same marts
        again = lake_rows(restored, QUERIES)
        assert (again["triangle"], again["experience"]) == (before["triangle"], before["experience"])
        sub = before["verdicts"][0][0]
        _cli(new_home, "archive", "restore", sub, "--to", str(tmp_path / "raw.csv"))   # decrypts, checks the sha256
        assert (tmp_path / "raw.csv").stat().st_size > 0
    finally:
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
