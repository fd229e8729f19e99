"""Defects: injected at the rate asked, within the error budget, each with its exact truth."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from decimal import Decimal

import pytest

from pipelines.contracts import load_contract
from pipelines.generate.defect_kinds import (
    claim_kinds,
    policy_kinds,
    rule_id,
    wrong_credit_code,
    wrong_resident_id,
    wrong_vin,
)
from pipelines.generate.defects import (
    DefectContext,
    Marked,
    Truth,
    defect_count,
    error_budget,
    error_rows,
    impossible_date,
    inject,
    is_error,
)
from pipelines.generate.identities import credit_code, resident_id, vin
from pipelines.privacy.checkdigits import is_valid_credit_code, is_valid_resident_id, is_valid_vin

POLICY = load_contract("policy")


def _ctx(seed: int, file_format: str = "csv", dataset: str = "policy") -> DefectContext:
    return DefectContext(load_contract(dataset), file_format, random.Random(seed),
                         orphan_policy_no=lambda day, region: f"PX{day.year}{region[:2]}9000001")


def _policy_row(seed: int) -> dict:
    r = random.Random(seed)
    birth = dt.date(1980, 5, 17)
    return {"policy_no": f"PA2025110000{seed:04d}", "transaction_id": f"T{seed:08d}",
            "transaction_type": "NB", "accounting_date": dt.date(2025, 10, 3),
            "effective_date": dt.date(2025, 10, 5), "expiry_date": dt.date(2026, 10, 5),
            "line_of_business": "MCOM", "coverage_code": "MCOM-OD", "region_code": "110000",
            "written_premium": 2500, "written_exposure": 1, "sum_insured": 150000,
            "insured_id": resident_id("110000", birth, True, r), "insured_type": "P",
            "birth_date": birth, "gender": "M", "vin": vin(r, 2020), "phone": "13812345678",
            "channel": "AGENT", "product_name": "机动车商业保险（2020版）"}


def _claim_row() -> dict:
    return {"claim_no": "RA2025110000001", "policy_no": "PA20251100000001",
            "valuation_date": dt.date(2025, 12, 31), "line_of_business": "MCOM",
            "coverage_code": "MCOM-OD", "region_code": "110000", "accident_date": dt.date(2025, 10, 1),
            "report_date": dt.date(2025, 10, 3), "claim_status": "CLOSED", "close_date": dt.date(2025, 11, 1),
            "paid_to_date": Decimal("100.00"), "case_reserve": Decimal("0.00"),
            "claimant_id": resident_id("110000", dt.date(1970, 3, 3), False, random.Random(1)),
            "cause_code": "COLL", "loss_description": "追尾事故，车辆后部受损"}


@pytest.mark.parametrize("day, expected", [(dt.date(2025, 2, 10), "2025-02-30"),
                                           (dt.date(2025, 7, 1), "2025-06-31"),
                                           (dt.date(2024, 12, 31), "2024-11-31")])
def test_impossible_date_is_near_and_does_not_exist(day, expected):
    assert impossible_date(day) == expected
    with pytest.raises(ValueError):
        dt.date.fromisoformat(expected)


@pytest.mark.parametrize("seed", range(30))
def test_wrong_identifiers_fail_every_scheme(seed):
    r = random.Random(seed)
    ctx = _ctx(seed)
    person = wrong_resident_id(resident_id("320000", dt.date(1990, 1, 2), seed % 2 == 0, r), ctx)
    org = wrong_credit_code(credit_code("320000", r), ctx)
    for bad in (person, org):
        assert not is_valid_resident_id(bad) and not is_valid_credit_code(bad)
    assert not is_valid_vin(wrong_vin(vin(r, 2018), ctx))


def test_rule_id_finds_rules_by_what_they_check():
    assert rule_id(POLICY, "check_digit", "insured_id", scheme="credit_code") == "POL-ID02"
    assert rule_id(POLICY, "required", "vin") == "POL-REQ-vin"
    with pytest.raises(LookupError):
        rule_id(POLICY, "check_digit", "insured_id")


@pytest.mark.parametrize("seed", range(40))
def test_inject_gives_one_defect_per_row_within_the_budget(seed):
    rows = [Marked(_policy_row(i)) for i in range(60)]
    ctx = _ctx(seed, file_format=("csv", "parquet", "xlsx")[seed % 3])
    out = inject(rows, policy_kinds(), ctx, count=10, max_errors=3,
                 protected=lambda row: row["policy_no"].endswith("0007"))
    defective = [m for m in out if m.truth]
    assert error_rows(out, POLICY) <= 3
    assert all(m.truth is None for m in out if m.row["policy_no"].endswith("0007"))
    assert len(out) - 60 == sum(m.truth.defect == "duplicate_key" for m in defective) / 2
    assert len(defective) <= 10 + (len(out) - 60)
    if ctx.file_format == "parquet":
        assert all(not isinstance(m.row["effective_date"], str) for m in out)
    assert all(m.truth is None for m in rows)      # the input is left as it was


def test_inject_duplicates_repeat_the_row_with_the_same_truth():
    kinds = [k for k in policy_kinds() if k.duplicate]
    out = inject([Marked(_policy_row(i)) for i in range(10)], kinds, _ctx(1), count=2, max_errors=10)
    repeated = Counter(m.row["transaction_id"] for m in out if m.truth)
    assert len(out) == 12 and sorted(repeated.values()) == [2, 2]
    assert {m.truth.rule_ids for m in out if m.truth} == {frozenset({"POL-U01"})}


@pytest.mark.parametrize("dataset", ["policy", "claim"])
def test_defect_kinds_flag_warnings_as_the_contract_does(dataset):
    contract = load_contract(dataset)
    row = _policy_row(3) if dataset == "policy" else _claim_row()
    tried = 0
    for kind in policy_kinds() if dataset == "policy" else claim_kinds():
        ctx = _ctx(2, dataset=dataset)
        if kind.applies(row, ctx):
            changed = dict(row)
            truth = kind.apply(changed, ctx)
            assert is_error(truth, contract) is not kind.warning, kind.name
            assert kind.duplicate or changed != row, kind.name
            tried += 1
    assert tried >= 10


def test_error_budget_and_defect_count():
    assert error_budget(100, POLICY) == 4 and error_budget(19, POLICY) == 0
    r = random.Random(0)
    counts = [defect_count(r, 10, 0.015) for _ in range(2000)]
    assert set(counts) == {0, 1} and 0.1 < sum(counts) / 2000 < 0.2


def test_defect_share_is_near_the_rate(default_rate_set):
    rows = defects = 0
    for s in default_rate_set.submissions(version=1, expect="accepted"):
        n = default_rate_set.manifest(s)["row_count"]
        rows, defects = rows + n, defects + len(default_rate_set.truth.get(s["file"], {}))
    assert rows > 5000
    assert 0.012 < defects / rows < 0.024


def test_files_meant_to_be_accepted_stay_under_the_error_share(small_set):
    for s in small_set.index["submissions"]:
        if s["expect"] == "rejected":
            continue
        contract = load_contract(s["dataset"])
        errors = sum(is_error(Truth(ids, d), contract) for ids, d in small_set.truth.get(s["file"], {}).values())
        assert errors <= contract.max_error_row_share * small_set.manifest(s)["row_count"], s["file"]


def test_policies_with_claims_keep_a_clean_premium_row(small_set, read_rows):
    for member in ("M001", "M002", "M003", "M004", "M005"):
        clean_policies = set()
        for s in small_set.final("policy"):
            if s["member_id"] != member:
                continue
            truth = small_set.truth.get(s["file"], {})
            rows = read_rows(small_set.out_dir / s["file"], small_set.manifest(s).get("encoding"))
            clean_policies |= {r["policy_no"] for n, r in enumerate(rows, start=1) if n not in truth}
        for s in small_set.final("claim"):
            if s["member_id"] != member:
                continue
            truth = small_set.truth.get(s["file"], {})
            rows = read_rows(small_set.out_dir / s["file"], small_set.manifest(s).get("encoding"))
            assert all(r["policy_no"] in clean_policies for n, r in enumerate(rows, start=1) if n not in truth)


def test_ground_truth_covers_the_defect_catalogue(small_set, default_rate_set):
    defects = {d.split(":")[0] for generated in (small_set, default_rate_set)
               for rows in generated.truth.values() for _, d in rows.values()}
    assert defects >= {"bad_code", "bad_check_digit", "missing_required", "duplicate_key", "orphan_claim",
                       "impossible_dates", "nonexistent_date", "disagrees_with_id", "formula",
                       "negative_paid", "malformed", "closed_with_reserve", "identifier_in_text"}
