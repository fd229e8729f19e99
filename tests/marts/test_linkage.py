"""Cross-company linkage: same claimant or vehicle at two or more members within 90 days."""

from __future__ import annotations

from pipelines import store
from pipelines.marts.build import build_marts
from tests.conftest import claim_row, policy_row, resident_id, submit_and_process, vin, write_csv

PERSON = resident_id("440105", "19820304", "211")
CAR = vin("LFV3A23C9J3")


def _member(settings, tmp_path, member, accident, claimant=None, car=None):
    policies = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}", vin=vin(f"LSV{member}{i:04d}"))
                for i in range(25)]
    if car:
        policies[0]["vin"] = car
    submit_and_process(settings, write_csv(tmp_path / f"{member}p.csv", policies), member=member)
    birth = f"1980010{member[-1]}"            # every member's other claimants are other people
    claims = [claim_row(claim_no=f"C{i:04d}", policy_no=f"P{i:04d}",
                        claimant_id=resident_id(birth=birth, seq=f"{i + 300:03d}")) for i in range(1, 21)]
    claims.append(claim_row(claim_no="CX001", policy_no="P0000", claimant_id=claimant or resident_id(birth=f"1970010{member[-1]}", seq="999"),
                            accident_date=accident, report_date=accident))
    submit_and_process(settings, write_csv(tmp_path / f"{member}c.csv", claims), member=member, dataset="claim")


def test_linkage_finds_claims_at_two_or_more_members_within_90_days(settings, tmp_path):
    _member(settings, tmp_path, "M001", "2024-01-05", claimant=PERSON, car=CAR)
    _member(settings, tmp_path, "M002", "2024-03-01", claimant=PERSON)           # 56 days later: linked
    _member(settings, tmp_path, "M003", "2024-03-20", car=CAR)                   # vehicle, 75 days: linked
    build_marts(settings)
    con = store.connect(settings)
    got = con.execute("SELECT link_kind, member_id, claim_no, other_members FROM lake.linked_claims "
                      "ORDER BY ALL").fetchall()
    assert got == [("claimant", "M001", "CX001", 1), ("claimant", "M002", "CX001", 1),
                   ("vehicle", "M001", "CX001", 1), ("vehicle", "M003", "CX001", 1)]
    # the rest of the claimants are different people at each member
    assert con.execute("SELECT count(DISTINCT link_id) FROM lake.linked_claims").fetchone()[0] == 2


def test_linkage_ignores_claims_more_than_90_days_apart(settings, tmp_path):
    _member(settings, tmp_path, "M001", "2024-01-01", claimant=PERSON)
    _member(settings, tmp_path, "M002", "2024-03-31", claimant=PERSON)           # 90 days: still linked
    _member(settings, tmp_path, "M003", "2024-01-01", claimant=resident_id("440105", "19820304", "213"))
    build_marts(settings)
    con = store.connect(settings)
    assert con.execute("SELECT count(*) FROM lake.linked_claims").fetchone()[0] == 2
