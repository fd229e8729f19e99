"""Declarative cases: one row in, the exact set of rules it must fail out."""

from __future__ import annotations

import pytest

from tests.conftest import claim_row, credit_code, policy_row, resident_id, vin
from tests.validation.helpers import run_rules

ORG = {"insured_type": "O", "insured_id": credit_code(), "birth_date": None, "gender": None, "phone": None}

POLICY_CASES = {
    "clean": ({}, set()),
    "iso date with slashes": ({"accounting_date": "2024/01/10", "effective_date": "2024/01/10"}, set()),
    "compact date": ({"effective_date": "20240110"}, set()),
    "lower-case x check char": ({"insured_id": resident_id("110105", "19491231", "002").lower(),
                                 "birth_date": "1949-12-31", "gender": "F"}, set()),
    "missing transaction id": ({"transaction_id": None}, {"POL-REQ-transaction_id"}),
    "impossible calendar date": ({"effective_date": "2024-02-30"}, {"POL-TYPE-effective_date"}),
    "too many decimals": ({"written_premium": "12.345"}, {"POL-TYPE-written_premium"}),
    "text amount": ({"written_premium": "abc"}, {"POL-TYPE-written_premium"}),
    "empty amount": ({"written_premium": None}, {"POL-REQ-written_premium"}),
    "unknown region": ({"region_code": "999999"}, {"POL-CODE-region_code"}),
    "unknown coverage": ({"coverage_code": "MCOM-XX"}, {"POL-CODE-coverage_code"}),
    "formula in free text": ({"product_name": "=cmd|' /C calc'!A0"}, {"POL-SAFE-product_name"}),
    "formula in policy number": ({"policy_no": "=1+1"}, {"POL-FMT-policy_no"}),
    "over-long product name": ({"product_name": "车" * 101}, {"POL-LEN-product_name"}),
    "mobile in product name (warning)": ({"product_name": "团险13812345678"}, {"POL-PII-product_name"}),
    "expiry before effective": ({"expiry_date": "2024-01-09"}, {"POL-X01"}),
    "expiry equals effective": ({"expiry_date": "2024-01-10"}, {"POL-X01"}),
    "one-day policy": ({"expiry_date": "2024-01-11", "written_exposure": "0.002740"}, set()),
    "accounted outside period": ({"accounting_date": "2024-04-01"}, {"POL-X02"}),
    "negative new business": ({"written_premium": "-1.00"}, {"POL-X03"}),
    "negative endorsement": ({"transaction_type": "EN", "written_premium": "-50.00",
                              "written_exposure": "0"}, set()),
    "positive cancellation": ({"transaction_type": "CN", "written_premium": "10.00",
                               "written_exposure": "-0.5"}, {"POL-X04"}),
    "negative renewal exposure": ({"transaction_type": "RN", "written_exposure": "-1"}, {"POL-X05"}),
    "negative sum insured": ({"sum_insured": "-1"}, {"POL-X06"}),
    "bad resident id check char": ({"insured_id": resident_id()[:-1] + "0"}, {"POL-ID01"}),
    "organisation with credit code": (ORG, set()),
    "organisation with resident id": ({**ORG, "insured_id": resident_id()}, {"POL-ID02"}),
    "birth date disagrees": ({"birth_date": "1980-02-16"}, {"POL-ID03"}),
    "gender disagrees": ({"gender": "F"}, {"POL-ID03"}),
    "bad vin": ({"vin": vin()[:8] + ("1" if vin()[8] != "1" else "2") + vin()[9:]}, {"POL-ID04"}),
    "motor without vin": ({"vin": None}, {"POL-REQ-vin"}),
    "property without vin": ({"vin": None, "line_of_business": "EPROP", "coverage_code": "EPROP-ALL"}, set()),
    "malformed phone (warning)": ({"phone": "12345"}, {"POL-FMT-phone"}),
    "phone with country code": ({"phone": "+8613812345678"}, set()),
    "person without birth date": ({"birth_date": None}, {"POL-REQ-birth_date"}),
    "unknown transaction type": ({"transaction_type": "XX", "written_premium": "-5"},
                                 {"POL-CODE-transaction_type"}),
}

CLAIM_CASES = {
    "clean": ({}, set()),
    "valuation not period end (fatal)": ({"valuation_date": "2024-03-30"}, {"CLM-V01"}),
    "reported before accident": ({"report_date": "2024-01-31"}, {"CLM-X01"}),
    "accident after valuation": ({"accident_date": "2024-04-05", "report_date": "2024-04-06"},
                                 {"CLM-X02", "CLM-X03"}),
    "closed without close date": ({"claim_status": "CLOSED", "case_reserve": "0"}, {"CLM-REQ-close_date"}),
    "closed before report": ({"claim_status": "CLOSED", "case_reserve": "0", "close_date": "2024-02-02"},
                             {"CLM-X04"}),
    "closed after valuation": ({"claim_status": "CLOSED", "case_reserve": "0", "close_date": "2024-04-02"},
                               {"CLM-X05"}),
    "closed with reserve (warning)": ({"claim_status": "CLOSED", "close_date": "2024-03-01"}, {"CLM-X08"}),
    "negative paid (net, warning)": ({"paid_to_date": "-1"}, {"CLM-X06"}),
    "negative reserve (net, warning)": ({"case_reserve": "-1"}, {"CLM-X07"}),
    "organisation claimant": ({"claimant_id": credit_code()}, set()),
    "bad claimant id": ({"claimant_id": "91350100M000100Y44"}, {"CLM-ID01"}),
    "orphan claim": ({"policy_no": "P9999"}, {"CLM-D01"}),
    "unknown cause (warning)": ({"cause_code": "ALIENS"}, {"CLM-CODE-cause_code"}),
    "formula description": ({"loss_description": "@SUM(A1:A9)"}, {"CLM-SAFE-loss_description"}),
    "resident id in description (warning)": ({"loss_description": f"伤者{resident_id()}"},
                                             {"CLM-PII-loss_description"}),
    "formula and vin in description": ({"loss_description": f"=车架号{vin()}"},
                                       {"CLM-SAFE-loss_description", "CLM-PII-loss_description"}),
    "missing accident date": ({"accident_date": None}, {"CLM-REQ-accident_date"}),
}


@pytest.mark.parametrize("case", POLICY_CASES, ids=list(POLICY_CASES))
def test_rules_policy_row_fails_exactly(tmp_path, case):
    overrides, expected = POLICY_CASES[case]
    _, _, failures = run_rules(tmp_path, "policy", [policy_row(**overrides)])
    assert failures[1] == expected


@pytest.mark.parametrize("case", CLAIM_CASES, ids=list(CLAIM_CASES))
def test_rules_claim_row_fails_exactly(tmp_path, case):
    overrides, expected = CLAIM_CASES[case]
    _, _, failures = run_rules(tmp_path, "claim", [claim_row(**overrides)],
                               references={"CLM-D01": ["P0001"]})
    assert failures[1] == expected


def test_rules_duplicate_keys_flag_every_copy(tmp_path):
    rows = [policy_row(), policy_row(policy_no="P0002"), policy_row(transaction_id="T0002")]
    _, check, failures = run_rules(tmp_path, "policy", rows)
    assert failures == {1: {"POL-U01"}, 2: {"POL-U01"}, 3: set()}
    assert check.failed("POL-U01") == 2 and check.error_rows == 2


def test_rules_claim_key_includes_valuation_date(tmp_path):
    rows = [claim_row(), claim_row(), claim_row(claim_no="C0002")]
    _, _, failures = run_rules(tmp_path, "claim", rows, references={"CLM-D01": ["P0001"]})
    assert failures == {1: {"CLM-U01"}, 2: {"CLM-U01"}, 3: set()}


def test_rules_transaction_already_published_elsewhere(tmp_path):
    _, _, failures = run_rules(tmp_path, "policy", [policy_row(), policy_row(transaction_id="T0002")],
                               references={"POL-U02": ["T0002"]})
    assert failures == {1: set(), 2: {"POL-U02"}}


def test_rules_reasons_never_show_identifier_values(tmp_path):
    bad_id = resident_id()[:-1] + "0"
    con, _, _ = run_rules(tmp_path, "policy", [policy_row(insured_id=bad_id, phone="12345", vin="BADVIN")])
    reasons = con.execute("SELECT __reasons FROM checked").fetchone()[0]
    assert len(reasons) == 3
    joined = " ".join(reasons)
    assert bad_id not in joined and "12345" not in joined and "BADVIN" not in joined


def test_rules_identifiers_are_tokens_after_checking(tmp_path):
    con, _, _ = run_rules(tmp_path, "policy", [policy_row()])
    insured, vin_token, phone = con.execute("SELECT insured_id, vin, phone FROM checked").fetchone()
    from tests.validation.helpers import KEY

    assert insured == KEY.token(resident_id()) and vin_token == KEY.token(vin())
    assert phone == KEY.token("13812345678")


def test_rules_counts_rows_each_rule_applies_to(tmp_path):
    rows = [policy_row(), policy_row(transaction_id="T2", **ORG), policy_row(transaction_id="T3", gender="F")]
    _, check, _ = run_rules(tmp_path, "policy", rows)
    by_id = {c.rule.id: c for c in check.counts}
    assert (by_id["POL-ID01"].checked, by_id["POL-ID02"].checked) == (2, 1)
    assert (by_id["POL-ID03"].checked, by_id["POL-ID03"].failed) == (2, 1)
    assert by_id["POL-U01"].checked == 3


@pytest.mark.parametrize("rule, code", [("CLM-X06", "NET-RECOVERY"), ("CLM-X07", "NET-RESERVE")])
def test_rules_negative_net_amounts_are_warnings_with_a_reason(tmp_path, rule, code):
    """Net of recoveries and reinsurance, negative paid and reserves are legitimate: the row is kept."""
    from pipelines.contracts import load_contract

    assert (load_contract("claim").rule(rule).severity, load_contract("claim").rule(rule).params["reason_code"]) == (
        "warn", code)
    column = "paid_to_date" if rule == "CLM-X06" else "case_reserve"
    _, check, failures = run_rules(tmp_path, "claim", [claim_row(**{column: "-1"})], references={"CLM-D01": ["P0001"]})
    assert failures[1] == {rule} and check.error_rows == 0


def test_rules_net_premium_adjustment_may_be_negative(tmp_path):
    _, check, failures = run_rules(tmp_path, "policy", [policy_row(transaction_type="NT", written_premium="-1.00",
                                                                   written_exposure="0")])
    assert failures[1] == set() and check.error_rows == 0
