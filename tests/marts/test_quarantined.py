"""A claim quarantined at one valuation keeps its last accepted row there: no dip, and a flag.

M001 reports MCOM claims at the quarter ends of 2024 (``V1``..``V4``), accident quarter 2024Q1:
    p  paid 100 200 300 400
    q  paid 500 600   x 800   (x: its row of the V3 snapshot quarantined; the snapshot accepted)
Without carrying, the V3 cell would be 300 (a dip from 800 to 300, a factor below 1).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pipelines import api
from pipelines.marts.build import build_marts
from tests.marts.conftest import insert_rows, quarter_of, query

D = dt.date
VALUATIONS = [D(2024, 3, 31), D(2024, 6, 30), D(2024, 9, 30), D(2024, 12, 31)]
PAID = {"p": [100, 200, 300, 400], "q": [500, 600, None, 800]}


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    from pipelines.config import Settings

    settings = Settings(home=tmp_path_factory.mktemp("quarantined") / "home")
    rows = [{"member_id": "M001", "period": quarter_of(v), "submission_id": f"M001-claim-{quarter_of(v)}-v1",
             "claim_no": no, "valuation_date": v, "line_of_business": "MCOM", "region_code": "110000",
             "accident_date": D(2024, 1, 10), "report_date": D(2024, 1, 12), "claim_status": "OPEN",
             "paid_to_date": paid[k], "case_reserve": 50}
            for no, paid in PAID.items() for k, v in enumerate(VALUATIONS) if paid[k] is not None]
    insert_rows(settings, "quarantine", [{
        "submission_id": "M001-claim-2024Q3-v1", "member_id": "M001", "dataset": "claim", "period": "2024Q3",
        "source_row": 2, "rule_ids": ["CLM-D01"], "reasons": ["report date after valuation"],
        "record": json.dumps({"claim_no": "q", "paid_to_date": "700"})}])
    insert_rows(settings, "claim", rows)
    build_marts(settings)
    return settings


def test_quarantined_claim_is_carried_forward_with_a_flag(lake):
    frame = query(lake, "SELECT scope, age, value, carried_claims, carried_value FROM lake.mart_triangle "
                  "WHERE grain = 'quarter' AND region_code = 'ALL' AND measure = 'paid' ORDER BY scope, age")
    cells = {(r.scope, r.age): (float(r.value), r.carried_claims, float(r.carried_value))
             for r in frame.itertuples()}
    for scope in ("industry", "member"):
        assert [cells[(scope, a)][0] for a in (3, 6, 9, 12)] == [600, 800, 900, 1200]
        assert cells[(scope, 9)][1:] == (1, 600.0)          # q's V2 row, carried into V3
        assert cells[(scope, 6)][1:] == (0, 0.0) and cells[(scope, 12)][1:] == (0, 0.0)


def test_quarantined_claim_makes_no_factor_below_one(lake):
    rep = api.triangle("MCOM", "paid", grain="quarter", settings=lake)
    assert rep.ldf == pytest.approx({"3-6": 800 / 600, "6-9": 900 / 800, "9-12": 1200 / 900})
    incurred = api.triangle("MCOM", "reported", grain="quarter", settings=lake)
    assert incurred.values == [[2, 2, 2, 2]]
