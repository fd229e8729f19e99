"""A DuckLake catalog on the local PostgreSQL, one fresh database per test."""

from __future__ import annotations

import shutil
import uuid

import pytest

from pipelines.airflow.trial import psql
from pipelines.config import Settings
from pipelines.keys import create_keys
from pipelines.members import add_members


@pytest.fixture
def pg_settings(tmp_path):
    if shutil.which("psql") is None or psql("SELECT 1").returncode != 0:
        pytest.skip("PostgreSQL is not running on 127.0.0.1 (start it: see .ci/run)")
    name = f"insurshare_test_{uuid.uuid4().hex[:10]}"
    assert psql(f"CREATE DATABASE {name}").returncode == 0
    settings = Settings(home=tmp_path / "home", catalog=f"postgres:dbname={name} host=127.0.0.1 user=postgres",
                        gx_max_rows=0)
    create_keys(settings)
    add_members(settings, {f"M00{i}": f"Member {i}" for i in range(1, 5)})
    yield settings
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
