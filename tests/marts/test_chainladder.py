"""The marts' triangles and chain ladder against chainladder (CAS) on the same claim rows.

chainladder builds its triangles itself from the long table of claim snapshots (origin from
the accident date, development from the valuation date), so the check covers the marts'
aggregation as well as their factors. Every cell of the synthetic data is positive.
"""

from __future__ import annotations

import warnings

import chainladder as cl
import numpy as np
import pandas as pd
import pytest

from pipelines import api
from tests.marts.conftest import query

MEASURES = ["paid", "incurred", "reported", "closed"]
GRAINS = {"year": "OYDY", "quarter": "OQDQ"}
BY_LINE, ALL_LINES = "line_of_business <> 'ALL'", "line_of_business = 'ALL'"
VIEWS = {  # scope of the mart rows, chainladder index, which province and line rows
    "industry-by-line": ("industry", ["line_of_business"], f"region_code = 'ALL' AND {BY_LINE}"),
    "industry-by-line-and-province": ("industry", ["line_of_business", "region_code"],
                                      f"region_code <> 'ALL' AND {BY_LINE}"),
    "member-by-line": ("member", ["member_id", "line_of_business"], f"region_code = 'ALL' AND {BY_LINE}"),
    # line ALL: chainladder on the triangle of every line's claims summed (one line, "ALL")
    "industry-all-lines": ("industry", ["line_of_business"], f"region_code = 'ALL' AND {ALL_LINES}"),
    "industry-all-lines-by-province": ("industry", ["line_of_business", "region_code"],
                                       f"region_code <> 'ALL' AND {ALL_LINES}"),
    "member-all-lines": ("member", ["member_id", "line_of_business"], f"region_code = 'ALL' AND {ALL_LINES}"),
}
RTOL = 1e-9
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # chainladder tail fits


@pytest.fixture(scope="module")
def claims(mart_home) -> pd.DataFrame:
    frame = query(mart_home, """
        SELECT member_id, line_of_business, region_code, accident_date, valuation_date,
               paid_to_date::DOUBLE AS paid, (paid_to_date + case_reserve)::DOUBLE AS incurred,
               1 AS reported, (claim_status = 'CLOSED')::INTEGER AS closed FROM lake.claim""")
    frame["accident_date"] = pd.to_datetime(frame["accident_date"])
    frame["valuation_date"] = pd.to_datetime(frame["valuation_date"])
    return frame


def reference(claims: pd.DataFrame, view: str, grain: str) -> cl.Triangle:
    if ALL_LINES in VIEWS[view][2]:
        claims = claims.assign(line_of_business="ALL")     # summed over lines before any factor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tri = cl.Triangle(claims, origin="accident_date", development="valuation_date", columns=MEASURES,
                          index=VIEWS[view][1], cumulative=True)
        return tri.grain(GRAINS[grain])


def ours(settings, table: str, view: str, grain: str, value: str, column: str, ref: cl.Triangle) -> np.ndarray:
    """The mart's ``value`` arranged like chainladder's arrays: (index, measure, origin, ``column``)."""
    scope, index, where = VIEWS[view]
    frame = query(settings, f"SELECT * FROM lake.{table} WHERE scope = ? AND grain = ? AND {where}",
                  [scope, grain])
    keys = [tuple(r) for r in ref.index[index].itertuples(index=False)]
    labels = list(ref.development) if column != "origin" else [0]
    out = np.full((len(keys), len(MEASURES), len(ref.origin), len(labels)), np.nan)
    origins = {str(o): i for i, o in enumerate(ref.origin)}
    for row in frame.itertuples(index=False):
        k = keys.index(tuple(getattr(row, c) for c in index))
        col = 0 if column == "origin" else labels.index(getattr(row, column))
        o = origins[row.origin] if table != "mart_factors" else 0
        v = getattr(row, value)
        out[k, MEASURES.index(row.measure), o, col] = np.nan if v is None or pd.isna(v) else float(v)
    return out


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want)), "cells present in one and not the other"
    both = ~np.isnan(want)
    assert both.sum() > 0
    assert np.max(np.abs(got[both] - want[both]) / np.abs(want[both])) < RTOL


@pytest.mark.parametrize("grain", GRAINS)
@pytest.mark.parametrize("view", VIEWS)
def test_chainladder_triangle_cells_equal_reference(mart_home, claims, view, grain):
    ref = reference(claims, view, grain)
    assert_close(ours(mart_home, "mart_triangle", view, grain, "value", "age", ref), ref.values)


@pytest.mark.parametrize("grain", GRAINS)
@pytest.mark.parametrize("view", VIEWS)
def test_chainladder_factors_and_ultimates_equal_reference(mart_home, claims, view, grain):
    ref = reference(claims, view, grain)
    dev = cl.Development().fit(ref)
    ldf = ours(mart_home, "mart_factors", view, grain, "ldf_volume", "age_from", ref)
    assert_close(ldf[:, :, :1, : ref.shape[3] - 1], dev.ldf_.values)
    cdf = ours(mart_home, "mart_factors", view, grain, "cdf_volume", "age_from", ref)
    assert_close(cdf[:, :, :1, : ref.shape[3] - 1], dev.cdf_.values)
    ult = ours(mart_home, "mart_ultimates", view, grain, "ultimate", "origin", ref)
    assert_close(ult, cl.Chainladder().fit(ref).ultimate_.values)


OPTIONS = [  # grain, member, average, diagonals, tail
    ("year", None, "simple", None, 1.0),
    ("quarter", None, "volume", 3, 1.0),
    ("quarter", "M002", "simple", 5, 1.0),
    ("quarter", None, "volume", None, 1.05),
    ("year", "M003", "volume", 1, 1.1),
]


@pytest.mark.parametrize("option", OPTIONS, ids=["-".join(map(str, o)) for o in OPTIONS])
@pytest.mark.parametrize("measure", ["paid", "closed"])
def test_chainladder_options_equal_reference(mart_home, claims, option, measure):
    grain, member, average, diagonals, tail = option
    rep = api.triangle("EPROP", measure, grain=grain, member=member, average=average, diagonals=diagonals,
                       tail=tail, settings=mart_home)
    rows = claims[(claims.line_of_business == "EPROP") & ((claims.member_id == member) if member else True)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cl.Triangle(rows, origin="accident_date", development="valuation_date", columns=[measure],
                          cumulative=True).grain(GRAINS[grain])
        dev = cl.Development(average=average, n_periods=diagonals or -1).fit(ref)
        fitted = cl.TailConstant(tail=tail).fit_transform(dev.transform(ref)) if tail != 1.0 else dev.transform(ref)
        ultimate = cl.Chainladder().fit(fitted).ultimate_.values.ravel()
    pairs = [f"{a}-{b}" for a, b in zip(ref.development[:-1], ref.development[1:], strict=True)]
    np.testing.assert_allclose([rep.ldf[k] for k in pairs], dev.ldf_.values.ravel(), rtol=RTOL)
    cdf_keys = [f"{a}-Ult" for a in ref.development]
    want_cdf = fitted.cdf_.values.ravel()[: len(cdf_keys) - 1]
    np.testing.assert_allclose([rep.cdf[k] for k in cdf_keys[:-1]], want_cdf, rtol=RTOL)
    assert rep.cdf[cdf_keys[-1]] == pytest.approx(tail, rel=RTOL)
    np.testing.assert_allclose([rep.ultimate[o] for o in rep.origins], ultimate, rtol=RTOL)
    np.testing.assert_allclose(rep.to_chainladder().values, ref.values, rtol=RTOL)


@pytest.mark.parametrize("grain, member", [("year", None), ("quarter", "M002")], ids=["industry-year", "M002-quarter"])
def test_chainladder_all_lines_report_equals_reference_on_summed_triangle(mart_home, claims, grain, member):
    """``insurshare triangle --line ALL`` (``api.triangle("ALL")``): the chain ladder of every
    line's claims summed, not a combination of the lines' own factors."""
    rep = api.triangle("ALL", "incurred", grain=grain, member=member, settings=mart_home)
    rows = claims[(claims.member_id == member) if member else claims.member_id.notna()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cl.Triangle(rows, origin="accident_date", development="valuation_date", columns=["incurred"],
                          cumulative=True).grain(GRAINS[grain])
        dev = cl.Development().fit(ref)
        ultimate = cl.Chainladder().fit(ref).ultimate_.values.ravel()
    pairs = [f"{a}-{b}" for a, b in zip(ref.development[:-1], ref.development[1:], strict=True)]
    np.testing.assert_allclose([rep.ldf[k] for k in pairs], dev.ldf_.values.ravel(), rtol=RTOL)
    np.testing.assert_allclose([rep.ultimate[o] for o in rep.origins], ultimate, rtol=RTOL)
    np.testing.assert_allclose(rep.to_chainladder().values, ref.values, rtol=RTOL)
    by_line = [api.triangle(line, "incurred", grain=grain, member=member, settings=mart_home).ldf["12-24" if grain == "year" else "3-6"]
               for line in ("MCOM", "EPROP")]
    assert rep.ldf["12-24" if grain == "year" else "3-6"] not in by_line   # not one line's factor
