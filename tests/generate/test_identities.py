"""Identifiers of clean rows are valid and consistent; parties are shared across members."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections import defaultdict

import pytest

from pipelines.contracts import load_contract
from pipelines.generate.identities import credit_code, mobile, resident_id, vin
from pipelines.privacy.checkdigits import (
    is_valid_credit_code,
    is_valid_resident_id,
    is_valid_vin,
    resident_id_birth_date,
    resident_id_gender,
)

PHONE = re.compile(load_contract("policy").column("phone").pattern)


def _clean_rows(generated, read_rows, dataset):
    for s in generated.submissions(dataset=dataset):
        if "truncated in the middle of a line" in s["notes"]:
            continue
        truth = generated.truth.get(s["file"], {})
        rows = read_rows(generated.out_dir / s["file"], generated.manifest(s).get("encoding"))
        for n, row in enumerate(rows, start=1):
            if n not in truth:
                yield s, row


@pytest.mark.parametrize("seed", range(20))
def test_identities_builders_give_valid_identifiers(seed):
    r = random.Random(seed)
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=r.randrange(20000))
    number = resident_id("440000", birth, seed % 2 == 1, r)
    assert is_valid_resident_id(number) and number.startswith("44")
    assert resident_id_birth_date(number) == birth
    assert resident_id_gender(number) == ("M" if seed % 2 else "F")
    assert is_valid_credit_code(credit_code("310000", r))
    car = vin(r, 2020)
    assert is_valid_vin(car) and not set("IOQ") & set(car)
    assert PHONE.fullmatch(mobile(r))


def test_clean_premium_rows_have_valid_consistent_identifiers(small_set, read_rows):
    motor = {c.code for c in load_contract("policy").code_lists["line_of_business"].codes
             if c.attributes.get("motor")}
    checked = 0
    for s, row in _clean_rows(small_set, read_rows, "policy"):
        if row["insured_type"] == "P":
            assert is_valid_resident_id(row["insured_id"]), s["file"]
            assert row["insured_id"][:2] == row["region_code"][:2]
            assert resident_id_birth_date(row["insured_id"]) == row["birth_date"]
            assert resident_id_gender(row["insured_id"]) == row["gender"]
            assert row["phone"] is None or PHONE.fullmatch(row["phone"])
        else:
            assert is_valid_credit_code(row["insured_id"]), s["file"]
            assert row["birth_date"] is None and row["gender"] is None and row["phone"] is None
        assert (row["vin"] is not None) == (row["line_of_business"] in motor)
        assert row["vin"] is None or is_valid_vin(row["vin"])
        checked += 1
    assert checked > 1000


def test_clean_claim_rows_have_valid_claimants(small_set, read_rows):
    rows = [row for _, row in _clean_rows(small_set, read_rows, "claim")]
    assert rows
    assert all(is_valid_resident_id(r["claimant_id"]) or is_valid_credit_code(r["claimant_id"]) for r in rows)


def test_coverage_codes_belong_to_their_line(small_set, read_rows):
    for dataset in ("policy", "claim"):
        codes = load_contract(dataset).codes_of("coverage_code")
        for s, row in _clean_rows(small_set, read_rows, dataset):
            assert row["coverage_code"] in codes
            assert row["coverage_code"].split("-")[0] == row["line_of_business"], s["file"]


def test_some_people_and_vehicles_insure_with_several_members(small_set, read_rows):
    people, vehicles = defaultdict(set), defaultdict(set)
    for s, row in _clean_rows(small_set, read_rows, "policy"):
        if row["insured_type"] == "P":
            people[row["insured_id"]].add(s["member_id"])
        if row["vin"]:
            vehicles[row["vin"]].add(s["member_id"])
    for seen in (people, vehicles):
        shared = sum(len(members) > 1 for members in seen.values()) / len(seen)
        assert 0.02 < shared < 0.12
