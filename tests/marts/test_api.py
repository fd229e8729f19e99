"""The notebook API: marts as DataFrames, triangles as chainladder objects."""

from __future__ import annotations

import warnings

import chainladder as cl
import numpy as np
import pandas as pd
import pytest

from pipelines import api
from pipelines.errors import NotFound
from tests.marts.conftest import query


def test_api_mart_filters_return_the_matching_rows(mart_home):
    frame = api.experience(scope="industry", grain="year", line_of_business="MCOM", region_code="ALL",
                           settings=mart_home)
    want = query(mart_home, "SELECT period, earned_premium FROM lake.mart_experience WHERE scope = 'industry' "
                 "AND grain = 'year' AND line_of_business = 'MCOM' AND region_code = 'ALL' ORDER BY period")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.period) == ["2022", "2023", "2024"] == list(want.period)
    assert list(frame.earned_premium) == list(want.earned_premium)


def test_api_benchmark_is_one_members_rows(mart_home):
    frame = api.benchmark("M003", metric="ldf_paid", grain="year", settings=mart_home)
    assert set(frame.member_id) == {"M003"} and len(frame) == 3 * 3 * 2  # lines (+ALL) x provinces (+ALL) x ages


def test_api_chainladder_triangle_equals_one_built_from_the_claims(mart_home):
    tri = api.chainladder_triangle(grain="quarter", settings=mart_home)
    claims = query(mart_home, "SELECT line_of_business, accident_date, valuation_date, "
                   "paid_to_date::DOUBLE AS paid, (claim_status = 'CLOSED')::INTEGER AS closed FROM lake.claim")
    claims["accident_date"] = pd.to_datetime(claims["accident_date"])
    claims["valuation_date"] = pd.to_datetime(claims["valuation_date"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cl.Triangle(claims, origin="accident_date", development="valuation_date", columns=["paid", "closed"],
                          index=["line_of_business"], cumulative=True).grain("OQDQ")
    assert list(tri.columns) == ["paid", "incurred", "reported", "closed"]
    assert list(tri.index.line_of_business) == list(ref.index.line_of_business) == ["EPROP", "MCOM"]
    np.testing.assert_allclose(tri[["paid", "closed"]].values, ref.values, rtol=1e-12)


def test_api_triangle_of_an_unknown_member_says_what_exists(mart_home):
    with pytest.raises(NotFound, match="No claims of line MCOM of member M009 in the lake at snapshot"):
        api.triangle("MCOM", member="M009", settings=mart_home)
