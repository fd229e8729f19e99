"""A ratio over the matched members' earned amounts is withheld while a member is missing from
the cell: with its published numerator it would give the matched amount, and the published
earned premium minus that is the missing member's exact premium."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.products import query_product
from pipelines.store import reader
from tests.marts.conftest import claim_snapshots, policy
from tests.products.conftest import built, small_rows

D = dt.date
LAST = D(2024, 12, 31)


@pytest.fixture(scope="module")
def one_missing(tmp_path_factory):
    policies, claims = small_rows()       # province 510000: M002, M003, M004 with a claim each
    policies += [policy("M001", D(2024, 1, 1), D(2025, 1, 1), 300.0, 3.0, region="510000"),
                 policy("M001", D(2024, 10, 1), D(2025, 1, 1), 30.0, 0.0, region="510000", kind="EN")]
    claims += claim_snapshots("M001", "C99", D(2024, 2, 1), D(2024, 2, 2), [100.0, 150.0], 300.0, None,
                              region="510000", valuations=[D(2024, m, 30 if m in (6, 9) else 31) for m in (3, 6, 9, 12)])
    claims = [c for c in claims if not (c["member_id"] == "M004" and c["valuation_date"] == LAST)]
    return built(tmp_path_factory.mktemp("missing") / "home", policies, claims)


def _lake(settings, region):
    with reader(settings) as con:
        return con.execute(
            "SELECT members_missing, earned_premium, earned_premium_matched, incurred_loss, loss_ratio "
            "FROM mart_experience WHERE scope = 'industry' AND grain = 'year' AND line_of_business = 'MCOM' "
            "AND region_code = ?", [region]).fetchone()


def _published(settings, region):
    out = query_product(settings, "public", "SELECT earned_premium, incurred_loss, loss_ratio, frequency, severity "
                        "FROM industry_experience WHERE grain = 'year' AND line_of_business = 'MCOM' "
                        f"AND region_code = '{region}'", fmt="json")
    import json

    return json.loads(out)[0]


def test_a_loss_ratio_that_would_give_a_missing_members_premium_is_withheld(one_missing):
    missing, earned, matched, incurred, ratio = _lake(one_missing, "ALL")
    assert missing == 1 and matched < earned and ratio is not None        # the scenario is real
    assert earned - matched == 330                                        # M004's premium in 510000
    row = _published(one_missing, "ALL")
    assert row["earned_premium"] is not None and row["incurred_loss"] is not None
    assert row["loss_ratio"] is None and row["frequency"] is None         # else earned - incurred/ratio = M004's
    assert row["severity"] is not None                                     # not over an earned amount


@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    """The small market with a claim of M001 in 310000 too (there, without it, M001's zero claim
    count is its own value, and the line's losses would give it away: they are withheld)."""
    policies, claims = small_rows()
    claims += claim_snapshots("M001", "C98", D(2024, 2, 1), D(2024, 2, 2), [100.0, 150.0], 300.0, None,
                              region="310000", valuations=[D(2024, m, 30 if m in (6, 9) else 31) for m in (3, 6, 9, 12)])
    return built(tmp_path_factory.mktemp("complete") / "home", policies, claims)


def test_ratios_are_published_where_no_member_is_missing(complete):
    assert _lake(complete, "ALL")[0] == 0
    row = _published(complete, "ALL")
    assert row["loss_ratio"] == pytest.approx(_lake(complete, "ALL")[4])
