"""The marts do not depend on how the data arrived: order, split resubmissions, superseded and
restored versions. Two lakes receive the same final data through real intake and ingestion:

- ``reference``: each member's premium file, then its claim snapshots of 2024Q1 and 2024Q2;
- ``shuffled``: M002 first with its 2024Q2 claims before 2024Q1; M001's premium data first
  in part (v1) and then whole (v2); M001's 2024Q2 claims sent, replaced by a corrected file
  (v2, different amounts), then restored (v3: the first version's rows in another order).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import store
from pipelines.config import Settings
from pipelines.marts.build import MARTS, build_marts
from tests.conftest import claim_row, policy_row, submit_and_process, write_csv


def premium_rows(member: str) -> list[dict]:
    n = member[-1]
    return [policy_row(transaction_id=f"T{n}{i:03d}", policy_no=f"P{n}{i:03d}",
                       effective_date=f"2024-01-{5 + i:02d}", expiry_date=f"2025-01-{5 + i:02d}",
                       accounting_date=f"2024-01-{5 + i:02d}", written_premium=f"{1000 + 100 * i}.00",
                       region_code="110000" if i % 2 else "310000") for i in range(6)]


def claim_rows(member: str, period: str, bump: int = 0) -> list[dict]:
    n, q2 = member[-1], period == "2024Q2"
    rows = []
    for i in range(4 if q2 else 3):
        closed = q2 and i == 0
        rows.append(claim_row(
            claim_no=f"C{n}{i:03d}", policy_no=f"P{n}{i:03d}", valuation_date="2024-06-30" if q2 else "2024-03-31",
            accident_date="2024-05-01" if i == 3 else f"2024-02-0{1 + i}",
            report_date="2024-05-03" if i == 3 else f"2024-02-0{3 + i}",
            claim_status="CLOSED" if closed else "OPEN", close_date="2024-06-15" if closed else None,
            paid_to_date=f"{100 * (i + 1) + (60 + bump if q2 else 0)}.00", case_reserve="0.00" if closed else "50.00",
            region_code="110000" if i % 2 else "310000"))
    return rows


def _home(path: Path) -> Settings:
    from pipelines.keys import create_keys
    from pipelines.members import add_members

    settings = Settings(home=path / "home", gx_max_rows=0)
    create_keys(settings)
    add_members(settings, {"M001": "One", "M002": "Two"})
    return settings


def _send(settings: Settings, folder: Path, name: str, rows: list[dict], member: str, dataset: str,
          period: str = "2024Q1") -> str:
    outcome = submit_and_process(settings, write_csv(folder / name, rows), member=member, dataset=dataset,
                                 period=period)
    assert outcome.status == "accepted" and outcome.rows_quarantined == 0, outcome
    return outcome.submission_id


def contents(settings: Settings) -> dict[str, list[tuple]]:
    """Every mart's rows; linked claims without their tokens (each lake has its own key)."""
    con = store.connect(settings, read_only=True)
    drop = {"linked_claims": ", token, link_id"}
    try:
        return {m: con.execute(f"SELECT * EXCLUDE (source_snapshot{drop.get(m, '')}) FROM lake.{m} "
                               "ORDER BY ALL").fetchall()
                for m in MARTS}
    finally:
        con.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    settings = _home(folder)
    for member in ("M001", "M002"):
        _send(settings, folder, f"{member}-pol.csv", premium_rows(member), member, "policy")
        _send(settings, folder, f"{member}-c1.csv", claim_rows(member, "2024Q1"), member, "claim")
        _send(settings, folder, f"{member}-c2.csv", claim_rows(member, "2024Q2"), member, "claim", "2024Q2")
    build_marts(settings)
    return contents(settings)


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory):
    """The shuffled lake and its marts after each step that matters."""
    folder = tmp_path_factory.mktemp("shuffled")
    settings = _home(folder)
    _send(settings, folder, "M002-pol.csv", premium_rows("M002"), "M002", "policy")
    _send(settings, folder, "M002-c2.csv", claim_rows("M002", "2024Q2"), "M002", "claim", "2024Q2")
    _send(settings, folder, "M002-c1.csv", claim_rows("M002", "2024Q1"), "M002", "claim")
    _send(settings, folder, "M001-pol-part.csv", premium_rows("M001")[:3], "M001", "policy")
    _send(settings, folder, "M001-pol-whole.csv", premium_rows("M001"), "M001", "policy")
    _send(settings, folder, "M001-c1.csv", claim_rows("M001", "2024Q1"), "M001", "claim")
    _send(settings, folder, "M001-c2.csv", claim_rows("M001", "2024Q2"), "M001", "claim", "2024Q2")
    steps = {"sent": _built(settings)}
    _send(settings, folder, "M001-c2-corrected.csv", claim_rows("M001", "2024Q2", bump=25), "M001", "claim", "2024Q2")
    steps["superseded"] = _built(settings)
    restored = _send(settings, folder, "M001-c2-restored.csv", claim_rows("M001", "2024Q2")[::-1], "M001", "claim",
                     "2024Q2")
    steps["restored"] = _built(settings)
    assert restored == "M001-claim-2024Q2-v3"
    return steps


def _built(settings: Settings) -> dict[str, list[tuple]]:
    build_marts(settings)
    return contents(settings)


def test_reproducible_marts_do_not_depend_on_order_or_split_resubmissions(reference, shuffled):
    assert all(reference[m] for m in MARTS)
    for mart in MARTS:
        assert shuffled["sent"][mart] == reference[mart], mart


def test_reproducible_marts_follow_a_superseding_version(reference, shuffled):
    assert shuffled["superseded"]["mart_triangle"] != reference["mart_triangle"]
    assert shuffled["superseded"]["mart_experience"] != reference["mart_experience"]


def test_reproducible_marts_return_when_the_first_version_is_restored(reference, shuffled):
    for mart in MARTS:
        assert shuffled["restored"][mart] == reference[mart], mart
