"""Earned premium, pro rata by day, against hand calculations."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from pipelines.marts.premium import earned_decimal_sql, earned_sql

D = dt.date
CASES = [
    # effective, expiry, written, window start, window end, earned by hand
    ("leap year whole year", D(2024, 1, 1), D(2025, 1, 1), 366, D(2024, 1, 1), D(2024, 12, 31), 366.0),
    ("leap year first quarter", D(2024, 1, 1), D(2025, 1, 1), 366, D(2024, 1, 1), D(2024, 3, 31), 91.0),
    ("across a year end", D(2024, 12, 1), D(2025, 12, 1), 730, D(2024, 1, 1), D(2024, 12, 31), 62.0),
    ("across a year end, next year", D(2024, 12, 1), D(2025, 12, 1), 730, D(2025, 1, 1), D(2025, 12, 31), 668.0),
    ("mid-term cancellation", D(2024, 7, 1), D(2025, 1, 1), -184, D(2024, 7, 1), D(2024, 9, 30), -92.0),
    ("negative endorsement", D(2024, 3, 1), D(2024, 3, 11), -50, D(2024, 3, 6), D(2024, 3, 31), -25.0),
    ("one-day policy on 29 February", D(2024, 2, 29), D(2024, 3, 1), 10, D(2024, 2, 1), D(2024, 2, 29), 10.0),
    ("one-day policy, next month", D(2024, 2, 29), D(2024, 3, 1), 10, D(2024, 3, 1), D(2024, 3, 31), 0.0),
    ("window before cover", D(2024, 5, 1), D(2025, 5, 1), 365, D(2024, 1, 1), D(2024, 3, 31), 0.0),
    ("many quarters, one of them", D(2023, 10, 1), D(2025, 10, 1), 731, D(2024, 4, 1), D(2024, 6, 30), 91.0),
    ("expiry not after effective", D(2024, 5, 1), D(2024, 5, 1), 100, D(2024, 1, 1), D(2024, 12, 31), 0.0),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_earned_premium_equals_hand_calculation(case):
    _, eff, exp, written, a, b, expected = case
    con = duckdb.connect()
    got = con.execute(f"SELECT {earned_sql('written_premium', a, b)} FROM (SELECT ?::DATE AS effective_date, "
                      "?::DATE AS expiry_date, ?::DECIMAL(18,2) AS written_premium)", [eff, exp, written]).fetchone()[0]
    assert got == pytest.approx(expected, abs=1e-9)


def test_earned_premium_over_consecutive_windows_adds_up_to_written():
    con = duckdb.connect()
    quarters = [(D(2024, m, 1), (D(2024, m + 3, 1) if m < 10 else D(2025, 1, 1)) - dt.timedelta(days=1))
                for m in (1, 4, 7, 10)] + [(D(2025, 1, 1), D(2025, 12, 31))]
    parts = ", ".join(earned_sql("written_premium", a, b) for a, b in quarters)
    got = con.execute(f"SELECT {parts} FROM (SELECT DATE '2024-02-17' AS effective_date, "
                      "DATE '2025-02-17' AS expiry_date, 1234.56 AS written_premium)").fetchone()
    assert sum(got) == pytest.approx(1234.56, abs=1e-9)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_earned_decimal_equals_hand_calculation(case):
    _, eff, exp, written, a, b, expected = case
    sql = earned_decimal_sql("written_premium", f"DATE '{a}'", f"DATE '{b + dt.timedelta(days=1)}'")
    got = duckdb.connect().execute(
        f"SELECT {sql} FROM (SELECT ?::DATE AS effective_date, ?::DATE AS expiry_date, "
        "?::DECIMAL(18,2) AS written_premium)", [eff, exp, written]).fetchone()[0]
    assert float(got) == pytest.approx(expected, abs=1e-9)


def test_earned_decimal_sums_are_exact():
    """3,000 transactions each earning a third of 1.00 (one day of three) sum to 1,000.00 exactly
    after rounding, as DECIMAL: the sum cannot depend on the order rows are added in."""
    sql = earned_decimal_sql("written_premium", "DATE '2024-01-01'", "DATE '2024-01-02'")
    con = duckdb.connect()
    got = con.execute(f"SELECT sum({sql}), typeof(sum({sql})), round(sum({sql}), 2) FROM (SELECT "
                      "DATE '2024-01-01' AS effective_date, DATE '2024-01-04' AS expiry_date, "
                      "1.00::DECIMAL(18,2) AS written_premium FROM range(3000))").fetchone()
    assert str(got[0]) == "999.9999999000" and got[1] == "DECIMAL(38,10)" and str(got[2]) == "1000.00"
