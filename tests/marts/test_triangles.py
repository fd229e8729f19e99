"""Triangles, factors and ultimates against hand calculations: missing snapshots, zero bases.

The lake (quarterly snapshots of 2024, ``V1``..``V4``): member M001 reports every quarter;
M002's snapshot of 2024Q2 is missing (a rejected file) and its 2024Q3 snapshot arrives after
M001's, so at that snapshot (``at_s``) M002 lacks the latest valuation too.

MCOM claims, paid to date per valuation:
    M001 h  accident 2023-11-01  200 300 330 330   closed from V3
    M001 a  accident 2024-01-15  100 150 150 150   closed from V2
    M001 e  accident 2024-04-10   -   40  60  60   closed from V4
    M001 f  accident 2024-07-05   -   -   30  45
    M002 b  accident 2024-02-01   50  x  120 120   (x: no snapshot)
    M002 g  accident 2024-07-20   -   x   20  35
EPROP: M001 d accident 2024-01-10: 10 20 30 40; M002 c accident 2024-08-01: 10 at V3, and no
row at V4 although M002 reported then (as if the row had been quarantined).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pipelines import api
from pipelines.marts.build import build_marts
from pipelines.marts.formats import format_report
from tests.marts.conftest import insert_rows, quarter_of, query

D = dt.date
V1, V2, V3, V4 = D(2024, 3, 31), D(2024, 6, 30), D(2024, 9, 30), D(2024, 12, 31)
CLAIMS = {  # claim: member, line, accident, report, {valuation: paid}, closed from
    "h": ("M001", "MCOM", D(2023, 11, 1), D(2023, 11, 5), {V1: 200, V2: 300, V3: 330, V4: 330}, V3),
    "a": ("M001", "MCOM", D(2024, 1, 15), D(2024, 1, 20), {V1: 100, V2: 150, V3: 150, V4: 150}, V2),
    "e": ("M001", "MCOM", D(2024, 4, 10), D(2024, 4, 12), {V2: 40, V3: 60, V4: 60}, V4),
    "f": ("M001", "MCOM", D(2024, 7, 5), D(2024, 7, 6), {V3: 30, V4: 45}, None),
    "d": ("M001", "EPROP", D(2024, 1, 10), D(2024, 1, 12), {V1: 10, V2: 20, V3: 30, V4: 40}, None),
    "b": ("M002", "MCOM", D(2024, 2, 1), D(2024, 2, 5), {V1: 50, V3: 120, V4: 120}, None),
    "g": ("M002", "MCOM", D(2024, 7, 20), D(2024, 7, 25), {V3: 20, V4: 35}, None),
    "c": ("M002", "EPROP", D(2024, 8, 1), D(2024, 8, 10), {V3: 10}, None),  # row lost (quarantined) at V4
}
LOADS = [("M001", V1), ("M002", V1), ("M001", V2), ("M001", V3), ("M002", V3), ("M001", V4), ("M002", V4)]


def _rows(member: str, valuation: dt.date) -> list[dict]:
    out = []
    for no, (m, line, acc, rep, paid, closed_from) in CLAIMS.items():
        if m == member and valuation in paid:
            closed = closed_from is not None and valuation >= closed_from
            out.append({"member_id": m, "period": quarter_of(valuation), "claim_no": f"CLM-{no}",
                        "valuation_date": valuation, "line_of_business": line, "region_code": "110000",
                        "accident_date": acc, "report_date": rep, "claim_status": "CLOSED" if closed else "OPEN",
                        "close_date": valuation if closed else None, "paid_to_date": paid[valuation],
                        "case_reserve": 0 if closed else 10})
    return out


@pytest.fixture(scope="module")
def gappy(tmp_path_factory):
    """The lake above, built valuation by valuation; returns (settings, snapshot S)."""
    from pipelines.config import Settings

    settings = Settings(home=tmp_path_factory.mktemp("gappy") / "home")
    snaps = {load: insert_rows(settings, "claim", _rows(*load)) for load in LOADS}
    build_marts(settings)
    return settings, snaps[("M001", V3)]


def _cells(settings, measure: str, line: str = "MCOM", snapshot: int | None = None):
    frame = query(settings, "SELECT origin, age, value, members, missing_members, max_member_share, "
                  "observed_value, completed_value, completed_members, missing_share "
                  "FROM lake.mart_triangle WHERE scope = 'industry' AND grain = 'quarter' AND region_code = 'ALL' "
                  "AND line_of_business = ? AND measure = ? ORDER BY origin, age", [line, measure], snapshot)
    return {(r.origin, r.age): r for r in frame.itertuples(index=False)}


F36, F69, F912 = 290 / 190, 510 / 410, 600 / 570  # matched: b (M002 missing at V2) is left out of 3-6 and 6-9


def test_triangle_cell_with_a_missing_member_snapshot_is_completed(gappy):
    cells = _cells(gappy[0], "paid")
    assert float(cells[("2024Q1", 3)].value) == 150 and cells[("2024Q1", 3)].members == 2
    assert cells[("2024Q1", 3)].max_member_share == pytest.approx(100 / 150)
    gap = cells[("2024Q1", 6)]  # M002 had claim b by then: completed from its 50 at age 3
    assert (gap.members, gap.missing_members, gap.completed_members) == (1, 1, 1)
    assert float(gap.observed_value) == 150 and float(gap.completed_value) == round(50 * F36, 2)
    assert float(gap.value) == 150 + round(50 * F36, 2)
    assert gap.missing_share == pytest.approx(50 / 200)  # of the last known volume: b's 50, a's 150
    full = cells[("2024Q1", 9)]
    assert (float(full.value), full.missing_members, float(full.completed_value), full.missing_share) == (270, 0, 0, 0)


def test_triangle_cell_a_missing_member_would_not_feed_keeps_its_value(gappy):
    assert float(_cells(gappy[0], "paid")[("2024Q2", 3)].value) == 40     # M002 has no 2024Q2 claims
    eprop = _cells(gappy[0], "paid", line="EPROP")[("2024Q1", 6)]           # M002's EPROP claim came later
    assert (float(eprop.value), eprop.members, eprop.missing_members) == (20, 1, 0)


def test_triangle_member_view_has_no_cell_at_an_unreported_valuation(gappy):
    rep = api.triangle("MCOM", "paid", grain="quarter", member="M002", settings=gappy[0])
    assert rep.ages == [3, 6, 9, 12]
    assert dict(zip(rep.origins, rep.values, strict=True)) == {
        "2024Q1": [50, None, 120, 120], "2024Q3": [20, 35, None, None]}


def test_triangle_factors_use_matched_members_by_hand(gappy):
    rep = api.triangle("MCOM", "paid", grain="quarter", settings=gappy[0])
    assert rep.ldf == pytest.approx({"3-6": F36, "6-9": F69, "9-12": F912, "12-15": 1.0})
    simple = api.triangle("MCOM", "paid", grain="quarter", average="simple", settings=gappy[0])
    # per origin, the matched members' sums: 3-6 a 1.5, e 1.5, f+g 80/50; 6-9 h 1.5, a 1, e 1; 9-12 h 1.1, a+b 1
    assert simple.ldf == pytest.approx({"3-6": (1.5 + 1.5 + 1.6) / 3, "6-9": 3.5 / 3, "9-12": 1.05, "12-15": 1.0})
    assert rep.cdf == pytest.approx({"3-Ult": F36 * F69 * F912, "6-Ult": F69 * F912,
                                     "9-Ult": F912, "12-Ult": 1.0, "15-Ult": 1.0})
    assert rep.ultimate == pytest.approx({"2023Q4": 330, "2024Q1": 270, "2024Q2": 60 * F912,
                                          "2024Q3": 80 * F69 * F912})


def test_triangle_ultimate_uses_the_latest_existing_cell(gappy):
    settings, at_s = gappy
    rep = api.triangle("MCOM", "paid", grain="quarter", as_of=at_s, settings=settings)
    assert rep.snapshot == at_s
    # M002 (only V1 accepted) owes V2 and V3: b is completed from its 50; the quarters that began
    # after V1 may hold M002 claims nobody has seen (g did): NULL, flagged
    assert rep.ldf == pytest.approx({"3-6": 210 / 140, "6-9": 450 / 350, "9-12": 1.1})
    completed9 = round(50 * 1.5 * 450 / 350, 2)
    assert rep.values[rep.origins.index("2024Q1")] == [150, 225, 150 + completed9, None]
    assert rep.values[rep.origins.index("2024Q2")] == [None, None, None, None]
    assert rep.ultimate["2024Q1"] == pytest.approx((150 + completed9) * 1.1)
    assert rep.ibnr["2024Q1"] == pytest.approx((150 + completed9) * 0.1)
    assert rep.ultimate["2024Q2"] is None and rep.ultimate["2024Q3"] is None


def test_triangle_factor_on_a_zero_base_is_missing_not_infinite(gappy):
    rep = api.triangle("MCOM", "closed", grain="quarter", settings=gappy[0])
    assert rep.ldf == {"3-6": None, "6-9": 2.0, "9-12": 2.0, "12-15": 1.0}  # 3-6: nothing closed at 3
    assert api.triangle("MCOM", "closed", grain="quarter", average="simple", settings=gappy[0]).ldf["9-12"] == 1.0
    assert rep.cdf["3-Ult"] is None and rep.cdf["9-Ult"] == 2.0
    assert rep.cdf["6-Ult"] == 4.0 and rep.ultimate["2024Q3"] == 0.0  # nothing closed yet at age 6
    assert "Infinity" not in format_report(rep, "json") and "NaN" not in format_report(rep, "json")


def test_triangle_mart_factors_equal_the_on_demand_report(gappy):
    settings, _ = gappy
    marts = query(settings, "SELECT development, ldf_volume, cdf_volume, origins, members FROM lake.mart_factors "
                  "WHERE scope = 'industry' AND grain = 'quarter' AND line_of_business = 'MCOM' "
                  "AND region_code = 'ALL' AND measure = 'paid' ORDER BY age_from")
    rep = api.triangle("MCOM", "paid", grain="quarter", settings=settings)
    assert dict(zip(marts.development[:-1], marts.ldf_volume[:-1], strict=True)) == pytest.approx(rep.ldf)
    assert list(marts.origins) == [3, 3, 2, 1, 0]
    assert list(marts.members) == [2, 1, 2, 1, 0]  # 3-6 uses a, e, f, g; 6-9 h, a, e; 9-12 h, a, b; 12-15 h
    volume = query(settings, "SELECT volume FROM lake.mart_factors WHERE scope = 'industry' AND grain = 'quarter' "
                   "AND line_of_business = 'MCOM' AND region_code = 'ALL' AND measure = 'paid' ORDER BY age_from")
    assert [None if v != v else float(v) for v in volume.volume] == [190, 410, 570, 330, None]


def test_triangle_json_has_the_documented_shape(gappy):
    doc = json.loads(format_report(api.triangle("MCOM", "reported", settings=gappy[0]), "json"))
    assert {"line", "measure", "grain", "member", "snapshot", "origins", "ages", "values", "ldf", "cdf",
            "ultimate", "ibnr"} <= set(doc)
    assert (doc["line"], doc["measure"], doc["grain"], doc["member"]) == ("MCOM", "reported", "year", None)
    assert doc["origins"] == ["2023", "2024"] and doc["ages"] == [12, 24]
    assert doc["values"] == [[None, 1], [5, None]]  # 2023 had no year-end snapshot at age 12
    assert doc["ldf"] == {"12-24": None} and doc["cdf"] == {"12-Ult": None, "24-Ult": 1.0}


def test_triangle_on_demand_equals_the_mart_when_a_claim_row_is_lost(gappy):
    settings, _ = gappy
    rep = api.triangle("EPROP", "paid", grain="quarter", settings=settings)
    cells = _cells(settings, "paid", line="EPROP")
    assert rep.values[rep.origins.index("2024Q3")] == [10, 0, None, None]  # M002 reported at V4: not missing
    assert (cells[("2024Q3", 6)].members, cells[("2024Q3", 6)].missing_members) == (0, 0)
    for (origin, age), row in cells.items():
        assert rep.values[rep.origins.index(origin)][rep.ages.index(age)] == float(row.value)
