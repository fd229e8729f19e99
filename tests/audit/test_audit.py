"""The audit log: an intact chain verifies; an edited, deleted or reordered entry is named."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipelines import store
from pipelines.cli import main
from tests.conftest import policy_row, submit_and_process, write_csv


@pytest.fixture
def audited(settings, tmp_path):
    rows = [policy_row(transaction_id=f"T{i:04d}") for i in range(30)]
    submit_and_process(settings, write_csv(tmp_path / "a.csv", rows))
    rows[0]["written_premium"] = "1.00"
    submit_and_process(settings, write_csv(tmp_path / "b.csv", rows))
    return settings


def _verify(settings):
    return CliRunner().invoke(main, ["--home", str(settings.home), "audit", "verify"])


def _tamper(settings, sql):
    con = store.connect(settings, read_only=False)
    try:
        con.execute(sql)   # outside write_transaction: an intruder does not update the head
    finally:
        con.close()


def test_audit_records_every_step_in_order(audited, lake):
    kinds = [r[0] for r in lake().execute("SELECT kind FROM lake.audit_log ORDER BY seq").fetchall()]
    assert kinds == ["member", "member", "member", "received", "verdict", "publish",
                     "received", "verdict", "publish"]


def test_audit_intact_chain_verifies(audited):
    result = _verify(audited)
    assert result.exit_code == 0 and "audit log intact: 9 entries" in result.output


def test_audit_detects_an_edited_entry(audited):
    _tamper(audited, "UPDATE lake.audit_log SET details = replace(details, '30', '31') WHERE seq = 8")
    result = _verify(audited)
    assert result.exit_code == 1
    assert "TAMPERED: entry 8 (verdict M001-policy-2024Q1-v2) was edited" in result.output


def test_audit_detects_a_deleted_entry(audited):
    _tamper(audited, "DELETE FROM lake.audit_log WHERE seq = 5")
    result = _verify(audited)
    assert result.exit_code == 1
    assert "entry 6 follows entry 4: an entry is missing" in result.output
    assert "entry 6 does not continue the chain" in result.output


def test_audit_detects_reordered_entries(audited):
    _tamper(audited, "UPDATE lake.audit_log SET seq = CASE seq WHEN 4 THEN 5 WHEN 5 THEN 4 END WHERE seq IN (4, 5)")
    result = _verify(audited)
    assert result.exit_code == 1
    assert "TAMPERED: entry 4 does not continue the chain" in result.output


def test_audit_detects_entries_cut_from_the_end(audited):
    _tamper(audited, "DELETE FROM lake.audit_log WHERE seq >= 8")
    result = _verify(audited)
    assert result.exit_code == 1
    assert "entries were removed from the end of the log" in result.output


def test_audit_publish_entry_vouches_for_the_rows(audited, lake):
    import json

    con = lake()
    details = json.loads(con.execute("SELECT details FROM lake.audit_log WHERE seq = 6").fetchone()[0])
    assert details == {"member_id": "M001", "period": "2024Q1", "rows": 30, "table": "policy"}
