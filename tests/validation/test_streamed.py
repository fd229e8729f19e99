"""Large files are checked with streamed intermediates instead of materialised ones: the same
rows, flags, reasons and quarantine records either way."""

from __future__ import annotations

import pytest

from pipelines.contracts import load_contract
from pipelines.validation.context import CheckContext, parse_period
from pipelines.validation.engine import checked_sql, quarantine_select
from pipelines.validation.rules_sql import reference_table
from tests.validation.helpers import run_rules
from tests.validation.test_gx_agreement import REFS, _batch


@pytest.mark.parametrize("dataset", ["policy", "claim"])
def test_streamed_check_equals_materialised_check(tmp_path, dataset):
    contract = load_contract(dataset)
    con, check, _ = run_rules(tmp_path, dataset, _batch(dataset, 3), references=REFS)
    assert check.quarantined_rows > 0
    ctx = CheckContext(member_id="M001", period=parse_period("2024Q1"), file_format="csv",
                       references={r.id: reference_table(r) for r in contract.rules
                                   if r.kind in ("exists_in", "unique_across_periods")})
    results = {}
    for materialise in (True, False):
        con.execute("DROP TABLE checked")
        sql = checked_sql(contract, ctx, materialise=materialise)
        assert ("typed AS MATERIALIZED" in sql) == materialise
        con.execute(sql)
        results[materialise] = (con.execute("SELECT * FROM checked ORDER BY __row").fetchall(),
                                con.execute(f"{quarantine_select(contract)} ORDER BY source_row").fetchall())
    assert results[True] == results[False]
    records = results[False][1]
    assert len(records) == check.quarantined_rows and all(r[3].startswith("{") for r in records)
