"""Claim snapshots are cumulative and consistent across quarters."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from pipelines.core.domain import parse_period
from pipelines.generate.claims import Claim, snapshot_rows

D = dt.date


def _claim(**changes) -> Claim:
    values = dict(claim_no="C1", policy_no="P1", line="MCOM", coverage="MCOM-OD", region="110000",
                  accident=D(2025, 1, 5), report=D(2025, 1, 10), claimant_id="X", cause="COLL",
                  description="追尾", payments=((D(2025, 2, 1), 100_000), (D(2025, 3, 1), 50_000)),
                  closes=(D(2025, 3, 1),), reopened=None, estimate=200_000, extra_estimate=0)
    return Claim(**{**values, **changes})


def test_claim_state_moves_from_open_to_closed_with_reserve_released():
    claim = _claim()
    status, closed, paid, reserve = claim.state(D(2025, 1, 31))
    assert (status, closed, paid) == ("OPEN", None, 0) and 150_000 <= reserve <= 200_000
    assert claim.state(D(2025, 2, 28))[:3] == ("OPEN", None, 100_000)
    assert claim.state(D(2025, 3, 31)) == ("CLOSED", D(2025, 3, 1), 150_000, 0)


def test_claim_state_of_a_reopened_claim_keeps_its_first_close_date():
    claim = _claim(payments=((D(2025, 3, 1), 150_000), (D(2025, 8, 1), 30_000)),
                   closes=(D(2025, 3, 1), D(2025, 8, 1)), reopened=D(2025, 6, 1), extra_estimate=40_000)
    status, closed, paid, reserve = claim.state(D(2025, 6, 30))
    assert (status, closed, paid) == ("REOPENED", D(2025, 3, 1), 150_000) and reserve > 0
    assert claim.state(D(2025, 9, 30)) == ("CLOSED", D(2025, 8, 1), 180_000, 0)


def test_snapshot_rows_hold_only_claims_reported_by_the_valuation_date():
    claims = [_claim(), _claim(claim_no="C2", report=D(2025, 4, 2))]
    assert [r["claim_no"] for r in snapshot_rows(claims, D(2025, 3, 31))] == ["C1"]
    rows = snapshot_rows(claims, D(2025, 6, 30))
    assert [r["claim_no"] for r in rows] == ["C1", "C2"]
    assert {r["valuation_date"] for r in rows} == {D(2025, 6, 30)}
    assert str(rows[0]["paid_to_date"]) == "1500.00" and str(rows[0]["case_reserve"]) == "0.00"


def _final_snapshots(generated, read_rows):
    """member -> [(period, clean rows by claim_no, all claim_nos, truth of the file)] in order."""
    out = defaultdict(list)
    for s in sorted(generated.final("claim"), key=lambda s: s["period"]):
        truth = generated.truth.get(s["file"], {})
        rows = read_rows(generated.out_dir / s["file"], generated.manifest(s).get("encoding"))
        clean = {r["claim_no"]: r for n, r in enumerate(rows, start=1) if n not in truth}
        out[s["member_id"]].append((s["period"], clean, {r["claim_no"] for r in rows}, truth))
    return out


def test_claim_rows_are_valued_at_the_quarter_end_and_dated_consistently(small_set, read_rows):
    for snapshots in _final_snapshots(small_set, read_rows).values():
        for period, clean, _, _ in snapshots:
            end = parse_period(period).end
            for r in clean.values():
                assert r["valuation_date"] == end
                assert r["accident_date"] <= r["report_date"] <= end
                if r["claim_status"] == "OPEN":
                    assert r["close_date"] is None and r["case_reserve"] > 0
                elif r["claim_status"] == "CLOSED":
                    assert r["report_date"] <= r["close_date"] <= end and r["case_reserve"] == 0
                else:
                    assert r["claim_status"] == "REOPENED" and r["close_date"] <= end


def test_claim_snapshots_are_cumulative(small_set, read_rows):
    increased = 0
    for member, snapshots in _final_snapshots(small_set, read_rows).items():
        for (_, before, _, _), (period, after, present, truth) in zip(snapshots, snapshots[1:], strict=False):
            blanked = sum(d == "missing_required:claim_no" for _, d in truth.values())
            assert len(set(before) - present) <= blanked, (member, period)
            for claim_no, old in before.items():
                new = after.get(claim_no)
                if new is None:
                    continue
                assert new["paid_to_date"] >= old["paid_to_date"], (member, period, claim_no)
                assert (new["accident_date"], new["report_date"]) == (old["accident_date"], old["report_date"])
                increased += new["paid_to_date"] > old["paid_to_date"]
    assert increased > 10


def test_claims_arise_on_the_members_own_policies(small_set, read_rows):
    for s in small_set.final("claim"):
        policies = set()
        for p in small_set.submissions(member_id=s["member_id"], dataset="policy"):
            policies |= {r["policy_no"] for r in read_rows(small_set.out_dir / p["file"],
                                                           small_set.manifest(p).get("encoding"))}
        truth = small_set.truth.get(s["file"], {})
        rows = read_rows(small_set.out_dir / s["file"], small_set.manifest(s).get("encoding"))
        orphans = {n for n, r in enumerate(rows, start=1) if r["policy_no"] not in policies}
        assert orphans == {n for n, (_, d) in truth.items() if d in ("orphan_claim", "missing_required:policy_no")}
