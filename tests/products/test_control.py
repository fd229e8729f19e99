"""Primary, secondary and derived suppression on a market whose every number is known.

Line MCOM, 2024 (a one-year policy each written 2024-01-01, and an endorsement of a tenth of
it on 2024-10-01): province 110000 has M001, M002 and M003 with 100 each; 310000 only M001
(50); 440000 M001 300, M002 20, M003 20 (M001 holds 88%); 510000 M002, M003 and M004 with 300
each. Claims (same amounts): M001 in 110000; M001, M002, M003 in 440000; M002, M003, M004 in 510000.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines import store
from pipelines.products import open_product
from pipelines.products.control import apply_control
from pipelines.products.disclosure import PROFILES
from tests.products.attack import attack, mart_cells, published_cells

PREMIUM = ("written_premium", "written_exposure", "earned_premium", "earned_exposure")


def _experience(settings, audience="public", grain="year"):
    con = open_product(settings, audience)
    try:
        frame = con.execute("SELECT * FROM industry_experience WHERE grain = ? AND line_of_business = 'MCOM'",
                            [grain]).df()
    finally:
        con.close()
    return {(r.period, r.region_code): r for r in frame.itertuples()}


def _reasons(row) -> dict[str, str]:
    return dict(part.split(": ") for part in row.suppression.split("; ")) if isinstance(row.suppression, str) else {}


@pytest.mark.parametrize("region, reason", [("310000", "members"), ("440000", "dominance"), ("110000", "secondary")],
                         ids=["one-member", "dominant-member", "complement"])
@pytest.mark.parametrize("grain, period, measures", [
    ("year", "2024", PREMIUM),
    ("quarter", "2024Q4", ("written_premium", "earned_premium", "earned_exposure"))], ids=["year", "quarter"])
def test_control_withholds_premium_cells_for_their_reason(small_market, region, reason, grain, period, measures):
    row = _experience(small_market, grain=grain)[(period, region)]
    assert row.suppressed
    if grain == "quarter":
        # the endorsements' exposure is zero: a zero of M001 alone is its value (``members``);
        # the zeros of three members may then be complements
        zero = _reasons(row).pop("written_exposure", None)
        assert zero == "members" if reason == "members" else zero in (None, "secondary")
        con = open_product(small_market, "regulator")
        try:
            assert con.execute("SELECT written_exposure FROM mart_experience WHERE scope = 'industry' AND grain = ? "
                               "AND period = ? AND line_of_business = 'MCOM' AND region_code = ?",
                               [grain, period, region]).fetchone()[0] == 0
        finally:
            con.close()
    assert {m: r for m, r in _reasons(row).items() if m in measures} == dict.fromkeys(measures, reason)
    assert all(pd.isna(getattr(row, m)) for m in measures)               # NULL, never 0
    assert pd.isna(row.loss_ratio) and pd.isna(row.members)


def test_control_publishes_cells_that_pass_and_totals(small_market):
    rows = _experience(small_market)
    assert float(rows[("2024", "510000")].written_premium) == 990.0
    total = rows[("2024", "ALL")]
    assert (float(total.written_premium), float(total.earned_premium)) == (1749.0, 1749.0)
    # M001 has premium but no claim in 310000: its zero claim count is its value, withheld
    # (``members``); the line's claim totals would give it away (ALL - 110000 - 440000 - 510000)
    assert _reasons(rows[("2024", "310000")])["claim_count"] == "members"
    assert _reasons(total) == {m: "secondary" for m in ("claim_count", "paid_loss", "incurred_loss")}
    assert pd.isna(total.claim_count) and pd.isna(total.loss_ratio) and pd.isna(total.members)


def _attack_as(settings, member):
    con = open_product(settings, f"member:{member}")
    try:
        cells, own = published_cells(con), mart_cells(con, "member")
    finally:
        con.close()
    regulator = open_product(settings, "regulator")
    try:
        truth = mart_cells(regulator, "member")
    finally:
        regulator.close()
    return cells, own, truth


def test_control_complement_stops_the_dominant_member_from_subtracting(small_market):
    """M001 knows its own 310000 (it is alone there); without the complement 110000 it would
    get 440000 as ALL - 110000 - 510000 - 310000 = 1749 - 330 - 990 - 55 = 374."""
    cells, own, truth = _attack_as(small_market, "M001")
    assert attack(cells, truth, own, "M001") == {}
    key = ("x", "written_premium", "year", "2024-01-01", "MCOM", "110000")
    cells.value[key] = 330.0                                             # publish the complement...
    cells.withheld.discard(key)
    found = attack(cells, truth, own, "M001")                            # ...and 440000 falls out
    assert found[("x", "written_premium", "year", "2024-01-01", "MCOM", "440000")] == pytest.approx(374.0)


def test_control_withholds_losses_of_a_single_member_and_the_derived_figures(small_market):
    """Paid triangle: 110000 is M001's alone; M001 would then get 440000 + 510000 from ALL, so
    both are withheld; ALL stays. Factors and ultimates of the withheld cells are withheld."""
    con = open_product(small_market, "public")
    try:
        cells = con.execute("SELECT region_code, value, suppression FROM industry_triangle WHERE grain = 'quarter' "
                            "AND measure = 'paid' AND origin = '2024Q1' AND age = 3 AND line_of_business = 'MCOM' "
                            "ORDER BY region_code").fetchall()
        factors = con.execute("SELECT region_code, ldf_volume, cdf_volume, ldf_suppressed, suppression "
                              "FROM industry_factors WHERE grain = 'quarter' AND measure = 'paid' AND age_from = 3 "
                              "AND line_of_business = 'MCOM' ORDER BY region_code").fetchall()
        ultimates = con.execute("SELECT region_code, latest, ultimate, suppression FROM industry_ultimates "
                                "WHERE grain = 'quarter' AND measure = 'paid' AND line_of_business = 'MCOM' "
                                "ORDER BY region_code").fetchall()
    finally:
        con.close()
    assert [(r, None if v is None else float(v), why) for r, v, why in cells] == [
        ("110000", None, "members"), ("440000", None, "secondary"), ("510000", None, "secondary"),
        ("ALL", 700.0, None)]
    assert factors == [("110000", None, None, True, "derived"), ("440000", None, None, True, "derived"),
                       ("510000", None, None, True, "derived"), ("ALL", 1.5, None, False, "derived")]
    assert [(r, latest is None, ult is None, why) for r, latest, ult, why in ultimates] == [
        ("110000", True, True, "members"), ("440000", True, True, "secondary"), ("510000", True, True, "secondary"),
        ("ALL", True, True, "secondary")]     # the latest diagonal protects M001's zero claims in 310000


def test_control_strict_profile_needs_five_members(small_market):
    con = store.connect(small_market, read_only=True)
    try:
        result = apply_control(con, PROFILES["strict"])
        reasons = dict(con.execute("""
            SELECT x.region_code, u.reason FROM dc_units u JOIN dc_xp x USING (row_id)
            WHERE u.mart = 'experience' AND u.measure = 'written_premium' AND x.grain = 'year'""").fetchall())
    finally:
        con.close()
    assert reasons == {"110000": "members", "310000": "members", "440000": "members", "510000": "members",
                       "ALL": "members"}
    assert result.withheld["members"] > 0 and "secondary" not in result.withheld


def test_control_benchmark_hides_the_industry_side_of_withheld_cells(small_market):
    con = open_product(small_market, "member:M002")
    try:
        rows = {r[0]: r[1:] for r in con.execute(
            "SELECT region_code, member_value, industry_value, rank, ranked_members, suppressed, suppression "
            "FROM mart_benchmark WHERE metric = 'loss_ratio' AND grain = 'year' AND period = '2024' "
            "AND line_of_business = 'MCOM'").fetchall()}
        published = con.execute("SELECT loss_ratio FROM industry_experience WHERE grain = 'year' AND period = '2024' "
                                "AND line_of_business = 'MCOM' AND region_code = 'ALL'").fetchone()[0]
    finally:
        con.close()
    assert rows["440000"] == (pytest.approx(300.0 / 22.0), None, None, None, True, "dominance")   # its own: 300 / 22
    # the line's losses are withheld (they would give M001's zero claims in 310000): so is the industry side
    assert published is None and rows["ALL"][1:] == (None, None, None, True, "secondary")
