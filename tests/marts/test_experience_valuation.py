"""Experience on one valuation: a member whose losses are not valued then is out of the
numerator and the denominator alike, and the cell says so. By hand:

Premium (MCOM, 110000, cover 2024-01-01 -> 2025-01-01): M001 366.00 (1.00 a day, exposure 1),
M002 732.00 (2.00 a day, exposure 2), M003 366.00 (exposure 1); an EPROP policy booked in
December makes 2024 a whole year of the calendar.
Claims (snapshots 2024-09-30 ``V3`` and 2024-12-31 ``V4``; paid + reserve):
    M001  accident 2024-02-01   V3 100 + 50    V4 150 + 0
    M002  accident 2024-05-01   V3 200 + 100   V4 250 + 100
    M002  accident 2024-11-01                  V4   0 + 80
    M003  accident 2024-03-01   V3 400 + 0     (its V4 file is late)
The common valuation is V4; M003 has none there, so its 400 (valued a quarter earlier) and its
premium both stay out: loss ratio 2024 = (150 + 350 + 80) / (366 + 732), not 980 / 1464.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipelines.marts.build import build_marts
from tests.marts.conftest import insert_rows, policy, quarter_of, query

D = dt.date
V3, V4 = D(2024, 9, 30), D(2024, 12, 31)
CLAIMS = [  # member, claim, accident, {valuation: (paid, reserve)}
    ("M001", "a", D(2024, 2, 1), {V3: (100, 50), V4: (150, 0)}),
    ("M002", "b", D(2024, 5, 1), {V3: (200, 100), V4: (250, 100)}),
    ("M002", "c", D(2024, 11, 1), {V4: (0, 80)}),
    ("M003", "d", D(2024, 3, 1), {V3: (400, 0)}),
]


@pytest.fixture(scope="module")
def experience(tmp_path_factory):
    from pipelines.config import Settings

    settings = Settings(home=tmp_path_factory.mktemp("xp-valuation") / "home")
    insert_rows(settings, "policy", [policy("M001", D(2024, 1, 1), D(2025, 1, 1), 366.0, 1.0),
                                     policy("M002", D(2024, 1, 1), D(2025, 1, 1), 732.0, 2.0),
                                     policy("M003", D(2024, 1, 1), D(2025, 1, 1), 366.0, 1.0),
                                     policy("M001", D(2024, 12, 1), D(2025, 12, 1), 10.0, line="EPROP")])
    insert_rows(settings, "claim", [
        {"member_id": m, "period": quarter_of(v), "claim_no": no, "valuation_date": v, "line_of_business": "MCOM",
         "region_code": "110000", "accident_date": acc, "report_date": acc, "claim_status": "OPEN",
         "paid_to_date": paid, "case_reserve": reserve}
        for m, no, acc, values in CLAIMS for v, (paid, reserve) in values.items()])
    build_marts(settings)
    frame = query(settings, "SELECT * FROM lake.mart_experience WHERE line_of_business = 'MCOM' "
                  "AND region_code = '110000'")
    return settings, {(r.scope, r.member_id if isinstance(r.member_id, str) else None, r.period): r
                      for r in frame.itertuples(index=False)}


def test_loss_ratio_pairs_premium_with_losses_at_the_common_valuation(experience):
    row = experience[1][("industry", None, "2024")]
    assert row.valuation_date.date() == V4
    assert (float(row.incurred_loss), row.claim_count, row.members_missing) == (580.0, 3, 1)
    assert (float(row.earned_premium), float(row.earned_premium_matched)) == (1464.0, 1098.0)
    assert row.loss_ratio == pytest.approx(580 / 1098, rel=1e-12)
    assert row.frequency == pytest.approx(3 / 3, rel=1e-12) and row.pure_premium == pytest.approx(580 / 3)
    quarter = experience[1][("industry", None, "2024Q1")]   # M001's claim only; M003's March claim is out
    assert quarter.loss_ratio == pytest.approx(150 / (91 + 182), rel=1e-12) and quarter.members_missing == 1


def test_member_without_the_valuation_shows_no_losses_and_is_not_ranked(experience):
    settings, rows = experience
    own = rows[("member", "M003", "2024")]
    assert own.members_missing == 1 and float(own.earned_premium) == 366.0
    assert pd.isna(own.incurred_loss) and pd.isna(own.claim_count)
    assert pd.isna(own.loss_ratio)                                        # not 0.0, not ranked best
    bench = query(settings, "SELECT member_id, member_value, rank, ranked_members FROM lake.mart_benchmark "
                  "WHERE metric = 'loss_ratio' AND period = '2024' AND line_of_business = 'MCOM' "
                  "AND region_code = '110000' ORDER BY member_id")
    ranks = {r.member_id: (r.rank, r.ranked_members) for r in bench.itertuples()}
    assert ranks["M001"] == (1, 2) and ranks["M002"] == (2, 2)         # 150/366 < 430/732
    assert pd.isna(ranks["M003"][0])
