"""Run the contract's rules over a few rows, the way ingestion does, without a lake."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.contracts import load_contract
from pipelines.privacy.tokens import PseudonymKey, bind_key
from pipelines.staging import stage_file
from pipelines.validation.context import CheckContext, parse_period
from pipelines.validation.engine import check_rows
from pipelines.validation.rules_sql import reference_table
from tests.conftest import write_csv

KEY = PseudonymKey("t1", bytes(range(32)))


def run_rules(tmp_path: Path, dataset: str, rows: list[dict], period: str = "2024Q1",
              references: dict[str, list[str]] | None = None):
    """Stage ``rows`` as a CSV and check them; return (connection, RowCheck, failures by row)."""
    contract = load_contract(dataset)
    path = write_csv(tmp_path / f"{dataset}.csv", rows)
    con = duckdb.connect()
    stage_file(con, path, file_name=path.name, file_format="csv", contract=contract, work_dir=tmp_path)
    refs = references or {}
    for rule in contract.rules:
        if rule.kind in ("exists_in", "unique_across_periods"):
            con.execute(f"CREATE TABLE {reference_table(rule)} (value VARCHAR)")
            for v in refs.get(rule.id, []):
                con.execute(f"INSERT INTO {reference_table(rule)} VALUES (?)", [v])
    ctx = CheckContext(member_id="M001", period=parse_period(period), file_format="csv")
    bind_key(con, KEY)
    check = check_rows(con, contract, ctx)
    failures = {row: set(ids) for row, ids in con.execute(
        "SELECT __row, __errors || __fatal || __warnings FROM checked ORDER BY __row").fetchall()}
    return con, check, failures
