"""The products DAG: scheduled on the marts asset, run by real Airflow (``insurshare run-dag``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from pipelines import store
from pipelines.cli import main
from pipelines.config import DAGS_DIR, PROJECT_ROOT, Settings
from pipelines.keys import create_keys
from pipelines.marts.build import build_marts
from pipelines.products import open_product, product_path, products_dir
from tests.marts.conftest import insert_rows
from tests.products.conftest import small_rows

PROBE = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=sys.argv[1]).dags["build_products"]
print("RESULT" + json.dumps({
    "schedule": [a.uri for a in dag.timetable.asset_condition.objects],
    "outlets": {t.task_id: [o.uri for o in t.outlets] for t in dag.tasks},
    "retries": {t.task_id: t.retries for t in dag.tasks}, "tags": sorted(dag.tags),
    "catchup": dag.catchup, "params": sorted(dag.params)}))
"""


def _run(settings: Settings, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "INSURSHARE_HOME": str(settings.home), **(env or {})}
    return subprocess.run([sys.executable, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=600)


def test_build_products_dag_is_scheduled_on_the_marts_asset(tmp_path):
    res = _run(Settings(home=tmp_path / "never"), "-c", PROBE, str(DAGS_DIR / "build_products.py"),
               env={"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, res.stderr[-3000:]
    assert json.loads(line[len("RESULT"):]) == {
        "schedule": ["insurshare://marts/"], "outlets": {"build": ["insurshare://products/"]},
        "retries": {"build": 3}, "tags": ["disclosure", "insurshare", "products"], "catchup": False,
        "params": ["max_share", "min_members", "profile"]}


def _products_audited(settings: Settings) -> int:
    lake = store.connect(settings)
    try:
        return lake.execute("SELECT count(*) FROM lake.audit_log WHERE kind = 'products'").fetchone()[0]
    finally:
        lake.close()


def test_build_products_dag_run_builds_the_products_with_the_configured_rules(tmp_path):
    """The DAG builds with INSURSHARE_DISCLOSURE=strict and drops a gone member's product;
    then the command rebuilds with its options and replaces every file."""
    settings = Settings(home=tmp_path / "home")
    create_keys(settings)
    policies, claims = small_rows()
    insert_rows(settings, "policy", policies)
    insert_rows(settings, "claim", claims)
    build_marts(settings)
    products_dir(settings).mkdir(parents=True)
    product_path(settings, "member_M999").write_bytes(b"a member that left")
    res = _run(settings, "-m", "pipelines", "run-dag", "build_products", env={"INSURSHARE_DISCLOSURE": "strict"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "DAG build_products finished: success" in res.stdout
    assert sorted(p.name for p in products_dir(settings).iterdir()) == [
        "member_M001.duckdb", "member_M002.duckdb", "member_M003.duckdb", "member_M004.duckdb", "public.duckdb",
        "regulator.duckdb"]
    con = open_product(settings, "member:M001")
    try:
        assert con.execute("SELECT disclosure_profile, min_members FROM product_info").fetchone() == ("strict", 5)
    finally:
        con.close()
    assert _products_audited(settings) == 1
    before = product_path(settings, "public").stat().st_ino
    result = CliRunner().invoke(main, ["--home", str(settings.home), "products", "build", "--profile", "strict",
                                       "--max-share", "0.4"])
    assert result.exit_code == 0, result.output
    assert "disclosure custom: at least 5 members per cell, largest member's share at most 40%" in result.output
    assert product_path(settings, "public").stat().st_ino != before and _products_audited(settings) == 2
