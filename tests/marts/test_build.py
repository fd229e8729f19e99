"""Building the marts: one transaction, reproducible as of a snapshot, disclosure columns, benchmarks."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines import store
from pipelines.errors import QueryError
from pipelines.marts.build import MARTS, build_marts
from tests.marts.conftest import claim_snapshots, insert_rows, policy, query

D = dt.date


def contents(settings, snapshot: int | None = None) -> dict[str, list[tuple]]:
    """Every mart's rows, sorted (the lake as now, or at ``snapshot``)."""
    con = store.connect(settings, read_only=True, snapshot=snapshot)
    try:
        return {m: con.execute(f"SELECT * FROM lake.{m} ORDER BY ALL").fetchall() for m in MARTS}
    finally:
        con.close()


def current(settings) -> int:
    con = store.connect(settings, read_only=True)
    try:
        return store.current_snapshot(con)
    finally:
        con.close()


@pytest.fixture
def small_lake(fresh_home):
    insert_rows(fresh_home, "policy", [policy("M001", D(2024, 1, 1), D(2025, 1, 1), 366.0),
                                       policy("M002", D(2024, 4, 1), D(2025, 4, 1), 730.0, 2.0)])
    first = insert_rows(fresh_home, "claim",
                        claim_snapshots("M001", "A1", D(2024, 2, 1), D(2024, 2, 2), [100, 150, 175, 180], 300, 3)
                        + claim_snapshots("M002", "B1", D(2024, 5, 1), D(2024, 5, 3), [50, 90, 90], 100, None))
    return fresh_home, first


def test_build_again_without_new_data_is_skipped(small_lake):
    settings, data_snapshot = small_lake
    built = build_marts(settings)
    assert (built.source_snapshot, built.skipped, built.snapshot) == (data_snapshot, False, data_snapshot + 1)
    again = build_marts(settings)
    assert again.skipped and again.source_snapshot == data_snapshot
    assert current(settings) == built.snapshot
    assert "up to date" in again.line()


def test_build_forced_from_the_same_snapshot_is_identical(small_lake):
    settings, data_snapshot = small_lake
    first = build_marts(settings)
    before = contents(settings)
    second = build_marts(settings, as_of=first.snapshot, force=True)
    assert second.source_snapshot == data_snapshot and second.snapshot > first.snapshot
    assert contents(settings) == before
    assert all(before[m] for m in MARTS if m != "linked_claims")   # no claimant claims at two members here


def test_build_as_of_an_older_snapshot_reproduces_the_older_marts(small_lake):
    settings, data_snapshot = small_lake
    build_marts(settings)
    old = contents(settings)
    insert_rows(settings, "claim", claim_snapshots("M002", "B2", D(2024, 8, 1), D(2024, 8, 1), [500], 900, None,
                                                   valuations=[D(2024, 9, 30)]))
    newer = build_marts(settings)
    assert newer.source_snapshot > data_snapshot and contents(settings) != old
    rebuilt = build_marts(settings, as_of=str(data_snapshot))
    assert rebuilt.source_snapshot == data_snapshot
    assert contents(settings) == old
    paid = query(settings, "SELECT value FROM lake.mart_triangle WHERE scope = 'industry' AND grain = 'quarter' "
                 "AND line_of_business = 'MCOM' AND region_code = 'ALL' AND measure = 'paid' AND origin = '2024Q3'")
    assert paid.empty  # the claim of 2024Q3 came after the snapshot the marts were rebuilt from


def test_build_as_of_a_snapshot_that_does_not_exist_says_so(small_lake):
    with pytest.raises(QueryError, match="Snapshot 9999 does not exist"):
        build_marts(small_lake[0], as_of=9999)


def test_build_every_mart_row_carries_disclosure_columns(mart_home):
    data_snapshot = query(mart_home, "SELECT max(source_snapshot) AS s FROM lake.mart_builds").s[0]
    for mart in (m for m in MARTS if m.startswith("mart_")):   # linked_claims is for the regulator only
        got = query(mart_home, f"""
            SELECT count(*) AS n, count(DISTINCT source_snapshot) AS snaps, min(source_snapshot) AS snap,
                   count(*) FILTER (WHERE members IS NULL OR members < 0) AS bad_members,
                   count(*) FILTER (WHERE max_member_share < 0 OR max_member_share > 1) AS bad_share
            FROM lake.{mart}""").iloc[0]
        assert got.n > 0 and (got.snaps, got.snap) == (1, data_snapshot), mart
        assert (got.bad_members, got.bad_share) == (0, 0), mart


def test_build_marts_hold_no_infinite_or_nan_numbers(mart_home):
    for mart in MARTS:
        cols = query(mart_home, "SELECT column_name FROM duckdb_columns() WHERE database_name = 'lake' "
                     "AND table_name = ? AND data_type = 'DOUBLE'", [mart]).column_name
        checks = " + ".join(f"count(*) FILTER (WHERE isinf({c}) OR isnan({c}))" for c in cols) or "count(*) * 0"
        assert query(mart_home, f"SELECT {checks} AS bad FROM lake.{mart}").bad[0] == 0, mart


def test_build_benchmark_places_a_member_among_the_members(mart_home):
    cell = "grain = 'year' AND period = '2023' AND line_of_business = 'MCOM' AND region_code = 'ALL'"
    members = query(mart_home, f"SELECT member_id, loss_ratio FROM lake.mart_experience WHERE scope = 'member' "
                    f"AND {cell} ORDER BY loss_ratio")
    industry = query(mart_home, f"SELECT loss_ratio FROM lake.mart_experience WHERE scope = 'industry' AND {cell}")
    bench = query(mart_home, f"SELECT * FROM lake.mart_benchmark WHERE metric = 'loss_ratio' AND {cell} "
                  "ORDER BY rank")
    assert list(bench.member_id) == list(members.member_id) and list(bench["rank"]) == [1, 2, 3]
    assert list(bench.percentile) == [0.0, 0.5, 1.0] and set(bench.ranked_members) == {3}
    assert list(bench.member_value) == pytest.approx(list(members.loss_ratio))
    assert list(bench.industry_value) == pytest.approx([industry.loss_ratio[0]] * 3)
    assert list(bench.relativity) == pytest.approx(list(members.loss_ratio / industry.loss_ratio[0]))


def test_build_benchmark_names_no_other_member(mart_home):
    bench = query(mart_home, "SELECT * FROM lake.mart_benchmark WHERE member_id = 'M001'")
    assert {"ldf_paid", "loss_ratio", "frequency", "severity", "pure_premium"} <= set(bench.metric)
    text = bench.astype(str).to_csv()
    assert "M002" not in text and "M003" not in text
    assert set(bench.columns) >= {"member_value", "industry_value", "rank", "percentile", "members"}
