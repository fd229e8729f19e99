"""PostgreSQL everywhere: the lake catalog and Airflow's metadata DB, with a DAG run through Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from pipelines import store
from pipelines.airflow.trial import psql
from pipelines.config import PROJECT_ROOT


def test_ingest_dag_with_postgres_metadata_and_catalog(pg_settings, tmp_path):
    settings = pg_settings
    meta = f"insurshare_airflow_{uuid.uuid4().hex[:8]}"
    assert psql(f"CREATE DATABASE {meta}").returncode == 0
    try:
        env = {**os.environ, "INSURSHARE_HOME": str(settings.home), "INSURSHARE_CATALOG": settings.catalog,
               "INSURSHARE_GX_MAX_ROWS": "0",
               "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{meta}"}
        out = tmp_path / "incoming"
        for step in (("generate", "--members", "2", "--quarters", "2", "--scale", "0.03", "--seed", "3",
                      "--out", str(out)),
                     ("members", "add", "--from-index", str(out / "index.json")),
                     ("submit-index", str(out / "index.json")),
                     ("run-dag", "ingest_submissions")):
            res = subprocess.run([sys.executable, "-m", "pipelines", *step], env=env, cwd=PROJECT_ROOT,
                                 capture_output=True, text=True, timeout=900)
            assert res.returncode == 0, (step, res.stdout[-2000:], res.stderr[-2000:])
        index = json.loads((out / "index.json").read_text())
        con = store.connect(settings)
        got = dict(con.execute("SELECT submission_id, status FROM lake.submissions").fetchall())
        assert got == {f"{s['member_id']}-{s['dataset']}-{s['period']}-v{s['version']}": s["expect"]
                       for s in index["submissions"]}
        runs = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", meta, "-tA", "-c",
                               "SELECT dag_id, state FROM dag_run"], capture_output=True, text=True, timeout=60)
        assert runs.stdout.split() == ["ingest_submissions|success"]
        assert not (settings.airflow_home / "airflow.db").exists()
    finally:
        psql(f"DROP DATABASE IF EXISTS {meta} WITH (FORCE)")
