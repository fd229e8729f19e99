"""Words from the contract and paths from the settings are text in SQL, never SQL: a quote in a
contract's pattern (or its words) or in INSURSHARE_HOME must not end a literal."""

from __future__ import annotations

import shutil

import duckdb

from pipelines.config import Settings
from pipelines.contracts import SCHEMAS_DIR, load_contract
from pipelines.ingest import process_submission
from pipelines.keys import create_keys
from pipelines.members import add_members
from pipelines.privacy.tokens import bind_key
from pipelines.staging import stage_file
from pipelines.validation.context import CheckContext, parse_period
from pipelines.validation.engine import check_rows
from pipelines.validation.rules_sql import reference_table
from tests.conftest import policy_row, submit, write_csv
from tests.validation.helpers import KEY


def test_a_quote_in_a_contract_pattern_stays_text(tmp_path):
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas)
    policy = schemas / "policy.yaml"
    old = r"{name: policy_no, type: string, required: true, pattern: '^[A-Z0-9][A-Z0-9/-]{3,39}$',"
    new = r"""{name: policy_no, type: string, required: true, pattern: "^[A-Z0-9'][A-Z0-9/'-]{3,39}$","""
    words = "pattern_words: '4 to 40 characters: capital letters A-Z, digits, / and -, starting with a letter or a digit'"
    quoted = "pattern_words: \"4 to 40 letters, digits, ' / or -\""
    assert old in policy.read_text(encoding="utf-8")
    text = policy.read_text(encoding="utf-8").replace(old, new)
    policy.write_text(text.replace(words, quoted, 1), encoding="utf-8")
    contract = load_contract("policy", schemas_dir=schemas)

    path = write_csv(tmp_path / "p.csv", [policy_row(policy_no="O'NEIL-1"), policy_row(policy_no="bad", transaction_id="T0002")])
    con = duckdb.connect()
    stage_file(con, path, file_name=path.name, file_format="csv", contract=contract, work_dir=tmp_path)
    for rule in contract.rules:
        if rule.kind in ("exists_in", "unique_across_periods"):
            con.execute(f"CREATE TABLE {reference_table(rule)} (value VARCHAR)")
    bind_key(con, KEY)
    check_rows(con, contract, CheckContext(member_id="M001", period=parse_period("2024Q1"), file_format="csv"))
    reasons = dict(con.execute("SELECT __row, __reasons FROM checked ORDER BY __row").fetchall())
    assert not any(r.startswith("POL-") and "policy_no" in r for r in reasons[min(reasons)])
    assert "POL-FMT-policy_no: policy_no 'bad' is not 4 to 40 letters, digits, ' / or -" in " ".join(reasons[max(reasons)])


def test_a_quote_in_the_platform_home_is_part_of_the_path(tmp_path):
    settings = Settings(home=tmp_path / "o'brien's home", gx_max_rows=0)
    create_keys(settings)
    add_members(settings, {"M001": "Member One"})
    got = submit(settings, write_csv(tmp_path / "p.csv", [policy_row()]))
    assert process_submission(settings, got.submission.submission_id).status == "accepted"
