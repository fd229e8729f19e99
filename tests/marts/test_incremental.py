"""Incremental builds: after a new submission a build reads only the slices it changed, and
publishes marts identical, row for row and in the same order, to a full build (``--force``)
from the same snapshot. Each case starts from the synthetic lake of three members built once.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines import store
from pipelines.lake import write_transaction
from pipelines.marts.build import MARTS, build_marts
from pipelines.marts.partials import TABLES
from pipelines.marts.reserving import triangle_report
from tests.marts.conftest import (
    claim_snapshots,
    insert_rows,
    policy,
    quarter_of,
    synthetic_claims,
    synthetic_policies,
)

D = dt.date
CLAIMS, POLICIES = synthetic_claims(), synthetic_policies()


def replace_slice(settings, table: str, member: str, period: str, rows: list[dict]) -> None:
    """What publishing an accepted submission does: the slice's rows give way to ``rows``."""
    import pandas as pd

    con = store.connect(settings, read_only=False)
    try:
        def work(c):
            c.execute(f"DELETE FROM lake.{table} WHERE member_id = ? AND period = ?", [member, period])
            if rows:
                c.register("incoming_rows", pd.DataFrame(rows))
                c.execute(f"INSERT INTO lake.{table} BY NAME SELECT * FROM incoming_rows")
        write_transaction(con, settings, work, message=f"replace {table} {member} {period}")
    finally:
        con.close()


def of_slice(rows: list[dict], member: str, period: str, **changes) -> list[dict]:
    return [{**r, **changes} for r in rows if r["member_id"] == member and r["period"] == period]


def bumped(rows: list[dict], factor: float) -> list[dict]:
    return [{**r, "paid_to_date": round(r["paid_to_date"] * factor, 2)} for r in rows]


def contents(settings) -> dict[str, list[tuple]]:
    """Every mart's rows as stored (order included); the partials sorted."""
    con = store.connect(settings, read_only=True)
    try:
        marts = {m: con.execute(f"SELECT * FROM lake.{m}").fetchall() for m in MARTS}
        return marts | {t: con.execute(f"SELECT * FROM lake.{t} ORDER BY ALL").fetchall() for t in TABLES.values()}
    finally:
        con.close()


@pytest.fixture
def built(fresh_home):
    insert_rows(fresh_home, "claim", CLAIMS)
    insert_rows(fresh_home, "policy", POLICIES)
    first = build_marts(fresh_home)
    assert first.changes == {"full": True, "reason": "no marts built before"}
    return fresh_home


def _resubmitted_claims(settings):
    replace_slice(settings, "claim", "M002", "2023Q3", bumped(of_slice(CLAIMS, "M002", "2023Q3"), 1.1))
    return {"claim": [["M002", "2023Q3"]]}


def _new_quarter(settings):
    """M001 sends the next quarter: claims valued 2025-03-31 and premium accounted in 2025Q1
    (the experience calendar grows by a quarter, so every member's experience changes)."""
    v = D(2025, 3, 31)
    carried = [{**r, "period": quarter_of(v), "valuation_date": v}
               for r in bumped(of_slice(CLAIMS, "M001", "2024Q4"), 1.05)]
    fresh = claim_snapshots("M001", "M001-new", D(2025, 2, 1), D(2025, 2, 3), [400], 900, None, valuations=[v])
    insert_rows(settings, "claim", carried + fresh)
    insert_rows(settings, "policy", [policy("M001", D(2025, 2, 1), D(2026, 2, 1), 1200.0)])
    return {"claim": [["M001", "2025Q1"]], "policy": [["M001", "2025Q1"]]}


def _first_submission(settings):
    """M004 joins: its premium and two snapshots of claims, in lines and provinces others have."""
    insert_rows(settings, "policy", [policy("M004", D(2024, 1, 15), D(2025, 1, 15), 800.0, region="310000"),
                                     policy("M004", D(2024, 4, 1), D(2025, 4, 1), 600.0, line="EPROP")])
    valuations = [D(2024, 9, 30), D(2024, 12, 31)]
    insert_rows(settings, "claim",
                claim_snapshots("M004", "M004-1", D(2024, 2, 10), D(2024, 3, 1), [100, 250], 500, 1,
                                region="310000", valuations=valuations)
                + claim_snapshots("M004", "M004-2", D(2024, 8, 1), D(2024, 8, 5), [70], 90, None, line="EPROP",
                                  valuations=valuations))
    return {"claim": [["M004", "2024Q3"], ["M004", "2024Q4"]], "policy": [["M004", "2024Q1"], ["M004", "2024Q2"]]}


def _withdrawn_latest_slice(settings):
    """M003's latest snapshot goes (its file rejected on appeal): an older one becomes its latest."""
    replace_slice(settings, "claim", "M003", "2024Q4", [])
    return {"claim": [["M003", "2024Q4"]]}


def _premium_only(settings):
    replace_slice(settings, "policy", "M002", "2022Q2",
                  [{**r, "written_premium": r["written_premium"] + 10} for r in of_slice(POLICIES, "M002", "2022Q2")])
    return {"policy": [["M002", "2022Q2"]]}


CHANGES = {"resubmitted claim slice": _resubmitted_claims, "new quarter": _new_quarter,
           "member's first submission": _first_submission, "withdrawn latest slice": _withdrawn_latest_slice,
           "premium slice only": _premium_only}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_incremental_build_reads_the_changed_slices_and_equals_a_full_build(built, change):
    before = contents(built)
    expected_slices = change(built)
    result = build_marts(built)
    assert result.changes["full"] is False and result.changes["slices"] == expected_slices
    incremental = contents(built)
    assert incremental != before
    full = build_marts(built, force=True)
    assert full.changes == {"full": True, "reason": "--force"} and full.source_snapshot == result.source_snapshot
    assert contents(built) == incremental
    assert full.rows == result.rows


def test_incremental_build_after_a_superseded_then_restored_version_returns_the_first_marts(built):
    def without_snapshot(c: dict) -> dict:
        return {t: [r[:-1] for r in rows] if t in MARTS else rows for t, rows in c.items()}

    original = contents(built)
    _resubmitted_claims(built)
    superseded = build_marts(built)
    assert superseded.changes["slices"] == {"claim": [["M002", "2023Q3"]]}
    replace_slice(built, "claim", "M002", "2023Q3", of_slice(CLAIMS, "M002", "2023Q3")[::-1])
    restored = build_marts(built)
    assert restored.changes == {"full": False, "since": superseded.source_snapshot,
                                "slices": {"claim": [["M002", "2023Q3"]]}}
    assert without_snapshot(contents(built)) == without_snapshot(original)
    build_marts(built, force=True)
    assert without_snapshot(contents(built)) == without_snapshot(original)


def test_incremental_build_as_of_an_older_snapshot_reads_back_the_changed_slices(built):
    original = contents(built)
    first_source = build_marts(built, force=True).source_snapshot
    _first_submission(built)
    build_marts(built)
    older = build_marts(built, as_of=first_source)
    assert older.changes["full"] is False and older.changes["since"] > first_source
    assert contents(built) == original


def test_incremental_build_line_names_the_slices_read(built):
    _resubmitted_claims(built)
    line = build_marts(built).line()
    assert "(published as snapshot" in line and "; 1 changed slice read since snapshot " in line


def test_triangle_report_from_partials_equals_the_claim_rows(built):
    _new_quarter(built)
    build_marts(built)
    for member in (None, "M001"):
        for grain in ("year", "quarter"):
            kwargs = dict(member=member, grain=grain, region="110000")
            fast = triangle_report(built, "MCOM", "incurred", **kwargs)
            slow = triangle_report(built, "MCOM", "incurred", partials=False, **kwargs)
            assert fast == slow and fast.values and fast.ultimate
