"""The experience mart against hand calculations on the edge cases of earning.

Premium transactions (MCOM; written premium chosen so that one day earns 1.00, or 2.00 for B):
    A  M001 110000  2024-01-01 -> 2025-01-01   366.00  leap year
    B  M001 110000  2024-12-01 -> 2025-12-01   730.00  across a year end
    D  M001 110000  2024-03-01 -> 2024-03-11   -50.00  negative endorsement, booked 2024-03-06
    E  M002 110000  2024-02-29 -> 2024-03-01    10.00  one-day policy
    F  M001 110000  2023-10-01 -> 2025-10-01   731.00  many quarters
    C  M002 310000  2024-07-01 -> 2025-07-01   365.00  cancelled from 2024-10-01 by
    CN M002 310000  2024-10-01 -> 2025-07-01  -273.00  (exposure -0.75)
Claims at the latest snapshot (2024-12-31): M001 MCOM 110000 accident 2024-02-10 incurred 150;
M002 MCOM 110000 accident 2024-03-15 incurred 40; M002 MCOM 310000 accident 2024-11-01 incurred
500; M001 EPROP 110000 accident 2024-05-01 incurred 70 (a line without premium).
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from pipelines.marts.build import build_marts
from tests.marts.conftest import insert_rows, policy, query

D = dt.date
POLICIES = [
    policy("M001", D(2024, 1, 1), D(2025, 1, 1), 366.00, 1.0),
    policy("M001", D(2024, 12, 1), D(2025, 12, 1), 730.00, 2.0),
    policy("M001", D(2024, 3, 1), D(2024, 3, 11), -50.00, 0.0, acc=D(2024, 3, 6), kind="EN"),
    policy("M002", D(2024, 2, 29), D(2024, 3, 1), 10.00, 1.0),
    policy("M001", D(2023, 10, 1), D(2025, 10, 1), 731.00, 2.0),
    policy("M002", D(2024, 7, 1), D(2025, 7, 1), 365.00, 1.0, region="310000"),
    policy("M002", D(2024, 10, 1), D(2025, 7, 1), -273.00, -0.75, region="310000", kind="CN"),
]
CLAIMS = [  # member, line, region, accident, paid, reserve
    ("M001", "MCOM", "110000", D(2024, 2, 10), 100, 50),
    ("M002", "MCOM", "110000", D(2024, 3, 15), 0, 40),
    ("M002", "MCOM", "310000", D(2024, 11, 1), 200, 300),
    ("M001", "EPROP", "110000", D(2024, 5, 1), 70, 0),
]
# (grain, period, region): earned premium, written premium, by hand
EARNED = [
    ("quarter", "2023Q4", "110000", 92.00, 731.00),       # F: October to December 2023
    ("quarter", "2024Q1", "110000", 142.00, 326.00),      # A 91 + D -50 + E 10 + F 91
    ("quarter", "2024Q2", "110000", 182.00, 0.00),        # A 91 + F 91
    ("quarter", "2024Q3", "110000", 184.00, 0.00),        # A 92 + F 92
    ("quarter", "2024Q4", "110000", 246.00, 730.00),      # A 92 + B 31 x 2 + F 92
    ("quarter", "2024Q3", "310000", 92.00, 365.00),       # C 92
    ("quarter", "2024Q4", "310000", 0.00, -273.00),       # C 92 - CN 92
    ("year", "2024", "110000", 754.00, 1056.00),          # A 366 + B 62 - 50 + 10 + F 366
    ("year", "2024", "310000", 92.00, 92.00),             # C 184 - CN 92
]


@pytest.fixture(scope="module")
def experience(tmp_path_factory):
    from pipelines.config import Settings

    settings = Settings(home=tmp_path_factory.mktemp("experience") / "home")
    insert_rows(settings, "policy", POLICIES)
    insert_rows(settings, "claim", [
        {"member_id": m, "period": "2024Q4", "claim_no": f"C{i}", "valuation_date": D(2024, 12, 31),
         "line_of_business": line, "region_code": region, "accident_date": acc, "report_date": acc,
         "claim_status": "OPEN", "paid_to_date": paid, "case_reserve": reserve}
        for i, (m, line, region, acc, paid, reserve) in enumerate(CLAIMS)])
    build_marts(settings)
    frame = query(settings, "SELECT * FROM lake.mart_experience")
    return {(r.scope, r.member_id if isinstance(r.member_id, str) else None, r.grain, r.period,
             r.line_of_business, r.region_code): r for r in frame.itertuples(index=False)}


def _industry(rows, grain, period, line="MCOM", region="110000"):
    return rows[("industry", None, grain, period, line, region)]


@pytest.mark.parametrize("case", EARNED, ids=[f"{c[1]}-{c[2]}" for c in EARNED])
def test_experience_earned_and_written_premium_equal_hand_calculation(experience, case):
    grain, period, region, earned, written = case
    row = _industry(experience, grain, period, region=region)
    assert (float(row.earned_premium), float(row.written_premium)) == (earned, written)


def test_experience_periods_are_the_whole_quarters_and_years_of_the_premium_data(experience):
    periods = {(k[2], k[3]) for k in experience}
    assert periods == {("quarter", q) for q in ("2023Q4", "2024Q1", "2024Q2", "2024Q3", "2024Q4")} | {("year", "2024")}


def test_experience_earned_exposure_pro_rata(experience):
    row = _industry(experience, "quarter", "2024Q1")
    assert float(row.earned_exposure) == round(91 / 366 + 2 * 91 / 731 + 1.0, 6)


def test_experience_ratios_by_hand(experience):
    row = _industry(experience, "quarter", "2024Q1")
    exposure = float(row.earned_exposure)
    assert (row.claim_count, float(row.incurred_loss), float(row.paid_loss)) == (2, 190.0, 100.0)
    assert row.loss_ratio == pytest.approx(190 / 142, rel=1e-12)
    assert row.frequency == pytest.approx(2 / exposure, rel=1e-12)
    assert row.severity == pytest.approx(95.0, rel=1e-12)
    assert row.pure_premium == pytest.approx(190 / exposure, rel=1e-12)


def test_experience_members_and_largest_share(experience):
    row = _industry(experience, "quarter", "2024Q1")
    assert row.members == 2
    assert row.max_member_share == pytest.approx(max(132 / 142, 150 / 190))  # M001's premium share
    member = experience[("member", "M002", "quarter", "2024Q1", "MCOM", "110000")]
    assert (float(member.earned_premium), member.members, member.max_member_share) == (10.0, 1, 1.0)


def test_experience_rollups_over_provinces_and_lines(experience):
    line = _industry(experience, "year", "2024", region="ALL")
    assert (float(line.earned_premium), float(line.incurred_loss), line.claim_count) == (846.0, 690.0, 3)
    every = _industry(experience, "year", "2024", line="ALL", region="ALL")
    assert (float(every.earned_premium), float(every.incurred_loss), every.claim_count) == (846.0, 760.0, 4)


@pytest.mark.parametrize("where, missing", [
    (("quarter", "2024Q4", "MCOM", "310000"), {"loss_ratio", "frequency", "pure_premium"}),  # net zero / negative base
    (("quarter", "2024Q2", "EPROP", "110000"), {"loss_ratio", "frequency", "pure_premium"}),  # no premium at all
    (("quarter", "2024Q3", "MCOM", "110000"), {"severity"}),                                 # no claims
], ids=["cancelled-to-zero", "no-premium", "no-claims"])
def test_experience_ratio_without_a_base_is_missing(experience, where, missing):
    row = experience[("industry", None, *where)]
    ratios = {name: getattr(row, name) for name in ("loss_ratio", "frequency", "severity", "pure_premium")}
    assert {k for k, v in ratios.items() if v is None or math.isnan(v)} == missing
    assert all(math.isfinite(v) for k, v in ratios.items() if k not in missing)
    if "severity" in missing:
        assert ratios["loss_ratio"] == 0.0  # a real zero: premium earned, nothing incurred
