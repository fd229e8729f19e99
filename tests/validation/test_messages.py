"""One message per real problem: for every column of each contract, a wrong value fails exactly
one rule, and the member reads what is wrong and how to fix it.

Each case: the column's wrong value, the one rule it fails, words of the row's reason that name
the problem, and words of the fix (in the reason or in the rule's ``fix``, which the submission
report prints next to it). A value that is present but malformed is a type failure, never
"required" (``rules_sql.empty_sql``); an empty value is the required rule's alone.
"""

from __future__ import annotations

import pytest

from pipelines.contracts import load_contract
from pipelines.core.checked import REASONS
from tests.conftest import claim_row, policy_row
from tests.validation.helpers import run_rules

POLICY = {
    "policy_no": ("P 1", "POL-FMT-policy_no", "'P 1' is not 4 to 40 characters", "Write policy_no as"),
    "transaction_id": ("t#1", "POL-FMT-transaction_id", "is not 4 to 40 characters", "as plain text"),
    "transaction_type": ("XX", "POL-CODE-transaction_type", "'XX' is not in code list transaction_type",
                         "use one of"),
    "accounting_date": ("2024-01-32", "POL-TYPE-accounting_date", "there is no such day", "check the month and day"),
    "effective_date": ("10.01.2024", "POL-TYPE-effective_date", "'10.01.2024' is not a date",
                       "write it as YYYY-MM-DD"),
    "expiry_date": ("2025-02-29", "POL-TYPE-expiry_date", "there is no such day", "check the month and day"),
    "line_of_business": ("MOTOR", "POL-CODE-line_of_business", "is not in code list line_of_business", "Use a code of"),
    "coverage_code": ("MCOM-XX", "POL-CODE-coverage_code", "is not in code list coverage", "Use a code of"),
    "region_code": ("999999", "POL-CODE-region_code", "'999999' is not in code list region", "Use a code of"),
    "written_premium": ("1200.005", "POL-TYPE-written_premium", "'1200.005' has 3 decimals; at most 2", "round it"),
    "written_exposure": ("1,0", "POL-TYPE-written_exposure", "'1,0' is not a number", "no thousands separators"),
    "sum_insured": ("12345678901234567", "POL-TYPE-sum_insured", "has 17 digits before the decimal point; at most 16",
                    "Write sum_insured as a number"),
    "insured_id": ("", "POL-REQ-insured_id", "insured_id is empty; it is required", "Fill in insured_id"),
    "insured_type": ("X", "POL-CODE-insured_type", "'X' is not in code list insured_type", "use one of"),
    "birth_date": ("", "POL-REQ-birth_date", "birth_date is empty; it is required when insured_type is P",
                   "Fill in birth_date"),
    "gender": ("Q", "POL-CODE-gender", "'Q' is not in code list gender", "use one of"),
    "vin": ("", "POL-REQ-vin", "vin is empty; it is required when line_of_business is MTPL/MCOM", "Fill in vin"),
    "phone": ("12345", "POL-FMT-phone", "phone is not a mainland mobile number", "Write phone as"),
    "channel": ("TV", "POL-CODE-channel", "'TV' is not in code list channel", "use one of"),
    "product_name": ("=1+1", "POL-SAFE-product_name", "starts with '=' (a spreadsheet formula)",
                     "Remove the leading formula character"),
}

CLAIM = {
    "claim_no": ("c 1", "CLM-FMT-claim_no", "is not 4 to 40 characters", "Write claim_no as"),
    "policy_no": ("P9999", "CLM-D01", "'P9999' is not in the member's accepted policy data",
                  "Submit (or correct) the premium transactions"),
    "valuation_date": ("2024-03-32", "CLM-TYPE-valuation_date", "there is no such day", "check the month and day"),
    "line_of_business": ("MOTOR", "CLM-CODE-line_of_business", "is not in code list line_of_business", "Use a code of"),
    "coverage_code": ("XX", "CLM-CODE-coverage_code", "'XX' is not in code list coverage", "Use a code of"),
    "region_code": ("999999", "CLM-CODE-region_code", "is not in code list region", "Use a code of"),
    "accident_date": ("2024-02-30", "CLM-TYPE-accident_date", "there is no such day", "check the month and day"),
    "report_date": ("03.02.2024", "CLM-TYPE-report_date", "'03.02.2024' is not a date", "write it as YYYY-MM-DD"),
    "claim_status": ("DONE", "CLM-CODE-claim_status", "'DONE' is not in code list claim_status", "use one of"),
    "close_date": ("yesterday", "CLM-TYPE-close_date", "'yesterday' is not a date", "write it as YYYY-MM-DD"),
    "paid_to_date": ("500.123", "CLM-TYPE-paid_to_date", "'500.123' has 3 decimals; at most 2", "round it"),
    "case_reserve": ("1 500.00", "CLM-TYPE-case_reserve", "is not a number", "write digits with a decimal point"),
    "claimant_id": ("", "CLM-REQ-claimant_id", "claimant_id is empty; it is required", "Fill in claimant_id"),
    "cause_code": ("ALIENS", "CLM-CODE-cause_code", "'ALIENS' is not in code list cause", "Use a code of"),
    "loss_description": ("车" * 201, "CLM-LEN-loss_description", "has 201 characters, more than 200",
                         "Shorten loss_description"),
}

CASES = [("policy", c, *v) for c, v in POLICY.items()] + [("claim", c, *v) for c, v in CLAIM.items()]


def test_messages_corpus_covers_every_column():
    for dataset, corpus in (("policy", POLICY), ("claim", CLAIM)):
        assert set(corpus) == {c.name for c in load_contract(dataset).columns}


@pytest.mark.parametrize("dataset, column, value, rule_id, problem, fix", CASES,
                         ids=[f"{d}-{c}" for d, c, *_ in CASES])
def test_messages_a_wrong_value_fails_one_rule_saying_what_and_how(tmp_path, dataset, column, value, rule_id,
                                                                   problem, fix):
    row = (policy_row if dataset == "policy" else claim_row)(**{column: value})
    con, _, failures = run_rules(tmp_path, dataset, [row], references={"CLM-D01": ["P0001"]})
    assert failures[1] == {rule_id}
    [reason] = con.execute(f"SELECT {REASONS} FROM checked").fetchone()[0]
    assert reason.startswith(f"{rule_id}: {column}") or column in reason
    assert problem in reason, reason
    rule = load_contract(dataset).rule(rule_id)
    assert fix in f"{reason} {rule.fix}", (reason, rule.fix)


@pytest.mark.parametrize("value, rule_ids", [("", {"CLM-REQ-paid_to_date"}), ("500.123", {"CLM-TYPE-paid_to_date"}),
                                             ("abc", {"CLM-TYPE-paid_to_date"})], ids=["empty", "decimals", "text"])
def test_messages_completeness_counts_only_empty_values(tmp_path, value, rule_ids):
    _, check, failures = run_rules(tmp_path, "claim", [claim_row(paid_to_date=value)],
                                   references={"CLM-D01": ["P0001"]})
    assert failures[1] == rule_ids
    assert check.failed("CLM-REQ-paid_to_date") == (1 if value == "" else 0)
