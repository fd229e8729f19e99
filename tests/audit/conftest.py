"""A small lake whose policy and claim rows are in Parquet data files, and helpers to tamper with it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipelines import store
from pipelines.audit.anchor import catalog_files
from pipelines.cli import main
from tests.conftest import claim_row, policy_row, submit_and_process, write_csv


@pytest.fixture
def lake_home(settings, tmp_path):
    """Two accepted submissions, each large enough to be written as a Parquet data file."""
    rows = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}") for i in range(40)]
    assert submit_and_process(settings, write_csv(tmp_path / "p.csv", rows)).status == "accepted"
    claims = [claim_row(claim_no=f"C{i:04d}", policy_no=f"P{i:04d}") for i in range(40)]
    assert submit_and_process(settings, write_csv(tmp_path / "c.csv", claims), dataset="claim").status == "accepted"
    return settings


def cli(settings, *args):
    return CliRunner().invoke(main, ["--home", str(settings.home), *args])


def verify(settings):
    return cli(settings, "audit", "verify")


def write_raw(settings, *sql):
    """An intruder's writes: straight through DuckLake, outside the platform's write path."""
    con = store.connect(settings, read_only=False)
    try:
        for s in sql:
            con.execute(s)
    finally:
        con.close()


def lake_files(settings, table):
    """The live data files of one lake table (absolute paths)."""
    con = store.connect(settings)
    try:
        return [settings.data_path / f.path for f in catalog_files(con, settings)
                if not table or f"/{table}/" in f.path]
    finally:
        con.close()


def policy_file(settings):
    files = lake_files(settings, "policy")
    assert len(files) == 1
    return files[0]
