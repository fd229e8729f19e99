"""Industry development when members go missing: matched members, completion, flags, tails.

A market of five members reporting at year ends 2021-2024 (one MCOM claim per member and
accident year; cumulative net paid at ages 12, 24, 36, 48; ``x`` no accepted file):

    A  2021: 100 180 200 205   2022: 110 200 225   2023: 120 215   2024: 130
    B  2021:  50  95 100 100   2022:  60 100 110   2023:  55 105   2024:  -5   (net of a recovery)
    C  2021:  80   x 170 168   2022:   x 160 176   2023:  85 160   2024:  95   (its 2022 file rejected)
    D                          2022:   x  30  33   2023:  40  70   2024:  45   (its first file, 2022, rejected)
    E  2021:  30  55  60   x   2022:  35  60   x   2023:  33   x   2024:   x   (its 2024 file is late)

The factors are checked against chainladder run, for each age, on the triangle of the matched
members' sums (computed here from the table above, not by the platform); the cells, the
completion and the flags by hand.
"""

from __future__ import annotations

import datetime as dt
import warnings

import chainladder as cl
import pandas as pd
import pytest

from pipelines import api
from pipelines.marts.build import build_marts
from tests.marts.conftest import insert_rows, query

D = dt.date
X = None
PAID = {  # member -> accident year -> cumulative paid at ages 12, 24, ... (X: no accepted file)
    "A": {2021: [100, 180, 200, 205], 2022: [110, 200, 225], 2023: [120, 215], 2024: [130]},
    "B": {2021: [50, 95, 100, 100], 2022: [60, 100, 110], 2023: [55, 105], 2024: [-5]},
    "C": {2021: [80, X, 170, 168], 2022: [X, 160, 176], 2023: [85, 160], 2024: [95]},
    "D": {2022: [X, 30, 33], 2023: [40, 70], 2024: [45]},
    "E": {2021: [30, 55, 60], 2022: [35, 60], 2023: [33]},
}
REJECTED = [("C", "2022Q4"), ("D", "2022Q4")]
F1, F2, F3 = 1240 / 685, 904 / 820, 473 / 470   # by hand: 12-24, 24-36, 36-48


def _claim_rows() -> list[dict]:
    rows = []
    for member, years in PAID.items():
        for year, paid in years.items():
            for k, amount in enumerate(paid):
                if amount is None:
                    continue
                v = D(year + k, 12, 31)
                rows.append({"member_id": member, "period": f"{v.year}Q4", "claim_no": f"{member}-{year}",
                             "valuation_date": v, "line_of_business": "MCOM", "region_code": "110000",
                             "accident_date": D(year, 6, 15), "report_date": D(year, 6, 20),
                             "claim_status": "OPEN", "paid_to_date": amount, "case_reserve": 0})
    return rows


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    from pipelines.config import Settings

    settings = Settings(home=tmp_path_factory.mktemp("incomplete") / "home")
    insert_rows(settings, "submissions", [
        {"submission_id": f"{m}-claim-{p}-v1", "member_id": m, "dataset": "claim", "period": p, "version": 1,
         "status": "rejected", "verdict": "rejected"} for m, p in REJECTED])
    insert_rows(settings, "claim", _claim_rows())
    build_marts(settings)
    return settings


def _industry_cells(settings) -> dict:
    frame = query(settings, "SELECT * FROM lake.mart_triangle WHERE scope = 'industry' AND grain = 'year' "
                  "AND line_of_business = 'MCOM' AND region_code = 'ALL' AND measure = 'paid'")
    return {(int(r.origin), r.age): r for r in frame.itertuples(index=False)}


def _matched_ldf_by_chainladder(age: int) -> float:
    """chainladder's volume-weighted factor from ``age`` on the triangle of, per accident year,
    the members with a known value at both ages."""
    k = age // 12 - 1
    rows = []
    for year in range(2021, 2025):
        both = [p for p in (y.get(year) for y in PAID.values())
                if p is not None and len(p) > k + 1 and p[k] is not None and p[k + 1] is not None]
        if both:  # placed at ages 12 and 24 (chainladder builds no triangle of one origin at later ages)
            rows += [{"origin": f"{year}-01-01", "valuation": f"{year}-12-31", "paid": sum(p[k] for p in both)},
                     {"origin": f"{year}-01-01", "valuation": f"{year + 1}-12-31", "paid": sum(p[k + 1] for p in both)}]
    rows.append({"origin": "2030-01-01", "valuation": "2030-12-31", "paid": 1})  # a newest row: a triangle shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tri = cl.Triangle(pd.DataFrame(rows), origin="origin", development="valuation", columns=["paid"],
                          cumulative=True).grain("OYDY")
        ldf = cl.Development().fit(tri).ldf_
    return float(ldf.values.ravel()[0])


def test_matched_factors_equal_chainladder_on_the_matched_members(market):
    rep = api.triangle("MCOM", "paid", settings=market)
    want = {f"{a}-{a + 12}": _matched_ldf_by_chainladder(a) for a in (12, 24, 36)}
    assert want == pytest.approx({"12-24": F1, "24-36": F2, "36-48": F3}, rel=1e-12)
    assert {k: rep.ldf[k] for k in want} == pytest.approx(want, rel=1e-12)


def test_matched_factors_show_their_members_and_volume(market):
    frame = query(market, "SELECT development, members, origins, volume FROM lake.mart_factors "
                  "WHERE scope = 'industry' AND grain = 'year' AND line_of_business = 'MCOM' "
                  "AND region_code = 'ALL' AND measure = 'paid' AND age_to IS NOT NULL ORDER BY age_from")
    assert [(r.development, r.members, r.origins, float(r.volume)) for r in frame.itertuples()] == [
        ("12-24", 5, 3, 685.0), ("24-36", 5, 2, 820.0), ("36-48", 3, 1, 470.0)]


CELLS = [  # (accident year, age): observed, completed by hand, missing, completed members
    ((2021, 12), 260, 0, 0, 0),
    ((2021, 24), 330, 80 * F1, 1, 1),            # C's rejected 2022: from its 80 at 12
    ((2021, 48), 473, 60 * F3, 1, 1),            # E late: from its 60 at 36
    ((2022, 12), 205, 160 / F1 + 30 / F1, 2, 2),  # C and D rejected, no earlier value: from their 24
    ((2022, 36), 544, 60 * F2, 1, 1),
    ((2023, 24), 550, 33 * F1, 1, 1),
]


@pytest.mark.parametrize("cell, observed, completed, missing, done", CELLS, ids=[str(c[0]) for c in CELLS])
def test_industry_cell_is_completed_with_its_parts_shown(market, cell, observed, completed, missing, done):
    row = _industry_cells(market)[cell]
    assert (float(row.observed_value), row.missing_members, row.completed_members) == (observed, missing, done)
    assert float(row.completed_value) == pytest.approx(completed, abs=0.006)
    assert float(row.value) == pytest.approx(observed + completed, abs=0.006)


def test_cell_of_a_member_never_seen_there_is_null_with_count_and_share(market):
    row = _industry_cells(market)[(2024, 12)]        # E's 2024 file is late: its 2024 claims unseen
    assert row.value is None or row.value != row.value
    assert (float(row.observed_value), row.missing_members, row.completed_members) == (265, 1, 0)
    assert row.missing_share == pytest.approx(33 / (33 + 130 + 5 + 95 + 45))  # E's 2023 at 12; B's -5 counts


def test_ultimates_start_from_completed_cells(market):
    rep = api.triangle("MCOM", "paid", settings=market)
    latest = {2021: 473 + round(60 * F3, 2), 2022: 544 + round(60 * F2, 2), 2023: 550 + round(33 * F1, 2)}
    cdf = {2021: 1.0, 2022: F3, 2023: F2 * F3}
    assert {int(o): rep.ultimate[o] for o in rep.origins if rep.ultimate[o] is not None} == pytest.approx(
        {y: latest[y] * cdf[y] for y in latest}, rel=1e-12)
    assert rep.ultimate["2024"] is None   # no cell to start from: not understated, absent


def test_member_triangle_cut_short_takes_the_industry_tail(market):
    rep = api.triangle("MCOM", "paid", member="D", settings=market)
    assert rep.ages == [12, 24, 36] and rep.cdf["36-Ult"] == pytest.approx(F3, rel=1e-12)
    assert rep.ultimate["2022"] == pytest.approx(33 * F3, rel=1e-12)          # not 33 with a tail of 1.0
    assert rep.ultimate["2024"] == pytest.approx(45 * 70 / 40 * 33 / 30 * F3, rel=1e-12)
    basis = query(market, "SELECT tail_basis FROM lake.mart_factors WHERE scope = 'member' AND member_id = 'D' "
                  "AND grain = 'year' AND line_of_business = 'MCOM' AND region_code = 'ALL' AND measure = 'paid' "
                  "AND age_to IS NULL")
    assert list(basis.tail_basis) == ["industry"]
    full = query(market, "SELECT DISTINCT tail_basis FROM lake.mart_factors WHERE scope = 'member' AND "
                 "member_id = 'A' AND grain = 'year' AND measure = 'paid' AND age_to IS NULL")
    assert list(full.tail_basis) == ["selected"]


def test_member_triangle_shows_its_missing_cells(market):
    frame = query(market, "SELECT origin, age, value, missing_members FROM lake.mart_triangle WHERE scope = 'member' "
                  "AND member_id = 'C' AND grain = 'year' AND line_of_business = 'MCOM' AND region_code = 'ALL' "
                  "AND measure = 'paid' "
                  "AND missing_members > 0 ORDER BY origin, age")
    assert [(r.origin, r.age) for r in frame.itertuples()] == [("2021", 24), ("2022", 12)]
    assert frame.value.isna().all()


def test_report_lists_the_flagged_cells(market):
    from pipelines.marts.formats import format_report

    rep = api.triangle("MCOM", "paid", settings=market)
    text = format_report(rep, "table")
    assert f"2021 at 24: 1 member(s) missing (19.5% of the last known volume), completed {80 * F1:,.2f}" in text
    assert "2024 at 12: 1 member(s) missing (10.7% of the last known volume), not shown: 265.00 observed" in text
    flagged = {(c["origin"], c["age"]): c for c in rep.to_dict()["flagged"]}
    assert set(flagged) == {("2021", 24), ("2021", 48), ("2022", 12), ("2022", 36), ("2023", 24), ("2024", 12)}
    assert flagged[("2022", 12)]["missing_members"] == 2 and flagged[("2022", 12)]["completed_members"] == 2
