"""A lake made by an older version gets the platform columns added since (no data lost)."""

from __future__ import annotations

from pipelines import store
from pipelines.ingest import pending, process_submission
from pipelines.lake import write_transaction
from tests.conftest import policy_row, submit, write_csv


def _columns(settings, table: str) -> list[str]:
    con = store.connect(settings)
    try:
        return [r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = 'lake' "
                                          "AND table_name = ? ORDER BY column_index", [table]).fetchall()]
    finally:
        con.close()


def test_older_lake_gets_rule_results_missing_column(settings, tmp_path):
    submit(settings, write_csv(tmp_path / "p1.csv", [policy_row(transaction_id="T1"),
                                                     policy_row(transaction_id="T2", channel=None)]))
    for sid in pending(settings):
        process_submission(settings, sid)
    con = store.connect(settings, read_only=False)
    try:   # what a lake from before ``missing`` was kept looks like
        write_transaction(con, settings, lambda c: c.execute("ALTER TABLE lake.rule_results DROP COLUMN missing"))
    finally:
        con.close()
    assert "missing" not in _columns(settings, "rule_results")

    submit(settings, write_csv(tmp_path / "p2.csv", [policy_row(transaction_id="T3")]), period="2024Q2")
    for sid in pending(settings):
        process_submission(settings, sid)

    assert _columns(settings, "rule_results")[-1] == "missing"
    con = store.connect(settings)
    try:
        by_period = dict(con.execute(
            "SELECT s.period, count(r.missing) FROM lake.rule_results r JOIN lake.submissions s USING (submission_id) "
            "GROUP BY 1").fetchall())
    finally:
        con.close()
    assert by_period["2024Q1"] == 0 and by_period["2024Q2"] > 0   # old rows NULL, new rows counted
