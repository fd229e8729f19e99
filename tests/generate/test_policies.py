"""Premium transactions: a book that lives across quarters."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from pipelines.contracts import load_contract
from pipelines.core.domain import parse_period
from pipelines.generate.periods import add_years, window


@pytest.fixture(scope="module")
def book(tmp_path_factory, make_set, read_rows) -> list[tuple[str, dict]]:
    """Clean premium rows of one member over six quarters, with their period."""
    gen = make_set(tmp_path_factory.mktemp("book"), members=1, quarters=6, seed=5, scale=0.3,
                    scenarios=False)
    rows = []
    for s in gen.submissions(dataset="policy"):
        truth = gen.truth.get(s["file"], {})
        for n, row in enumerate(read_rows(gen.out_dir / s["file"]), start=1):
            if n not in truth:
                rows.append((s["period"], row))
    return rows


def test_window_ends_with_the_end_period():
    assert [p.label for p in window("2025Q2", 3)] == ["2024Q4", "2025Q1", "2025Q2"]


def test_add_years_keeps_the_day_or_uses_28_february():
    assert str(add_years(parse_period("2024Q1").start.replace(month=2, day=29), 1)) == "2025-02-28"


def test_policies_are_accounted_in_their_quarter(book):
    for period, row in book:
        p = parse_period(period)
        assert p.start <= row["accounting_date"] <= p.end
        assert row["expiry_date"] > row["effective_date"]
        assert row["sum_insured"] > 0


def test_policies_new_business_and_renewals_earn_term_days_over_365(book):
    kinds = Counter(row["transaction_type"] for _, row in book)
    assert set(kinds) == {"NB", "RN", "EN", "CN"} and kinds["NB"] > kinds["EN"] + kinds["CN"]
    for _, row in book:
        if row["transaction_type"] in ("NB", "RN"):
            days = (row["expiry_date"] - row["effective_date"]).days
            assert row["written_exposure"] == round(Decimal(days) / 365, 6)
            assert row["written_premium"] > 0
    days = Counter((r["expiry_date"] - r["effective_date"]).days for _, r in book if r["transaction_type"] == "NB")
    assert days[365] + days[366] > 0.7 * sum(days.values()) and days[1] > 0


def test_policies_cancellations_return_premium_and_exposure(book):
    cancels = [row for _, row in book if row["transaction_type"] == "CN"]
    assert cancels
    assert all(r["written_premium"] < 0 and r["written_exposure"] < 0 for r in cancels)
    endorsements = [row for _, row in book if row["transaction_type"] == "EN"]
    assert {r["written_premium"] > 0 for r in endorsements} == {True, False}


def test_policies_endorsements_and_cancellations_end_with_the_term(book):
    terms = {}
    for _, row in sorted(book, key=lambda pr: pr[1]["accounting_date"]):
        key = (row["policy_no"], row["coverage_code"])
        if row["transaction_type"] in ("NB", "RN"):
            terms[key] = row
        elif key in terms:
            term = terms[key]
            assert row["expiry_date"] == term["expiry_date"]
            assert term["effective_date"] < row["effective_date"] < term["expiry_date"]


def test_policies_renew_about_70_percent_with_the_same_number(book):
    last_day = max(row["accounting_date"] for _, row in book)
    starts = defaultdict(set)
    for _, row in book:
        if row["transaction_type"] in ("NB", "RN"):
            starts[row["policy_no"]].add(row["effective_date"])
    cancelled = {row["policy_no"] for _, row in book if row["transaction_type"] == "CN"}
    annual = [(row["policy_no"], row["expiry_date"]) for _, row in book
              if row["transaction_type"] in ("NB", "RN") and row["policy_no"] not in cancelled
              and row["expiry_date"] == add_years(row["effective_date"], 1) and row["expiry_date"] <= last_day]
    renewed = sum(expiry in starts[policy] for policy, expiry in annual)
    assert len(annual) > 50
    assert 0.55 < renewed / len(annual) < 0.85


def test_policies_motor_is_the_majority(book):
    motor = {c.code for c in load_contract("policy").code_lists["line_of_business"].codes
             if c.attributes.get("motor")}
    lines = Counter(row["line_of_business"] for _, row in book if row["transaction_type"] == "NB")
    assert sum(lines[m] for m in motor) > 0.5 * sum(lines.values())
    assert len(lines) >= 8


def test_policies_transaction_ids_are_unique_across_periods(small_set, read_rows):
    for member in ("M001", "M002", "M003", "M004", "M005"):
        ids = Counter()
        for s in small_set.submissions(member_id=member, dataset="policy", expect="accepted"):
            truth = small_set.truth.get(s["file"], {})
            rows = read_rows(small_set.out_dir / s["file"], small_set.manifest(s).get("encoding"))
            ids.update(r["transaction_id"] for n, r in enumerate(rows, start=1) if n not in truth)
        assert ids and ids.most_common(1)[0][1] == 1, member
