"""Earned premium and exposure, pro rata by day (DOMAIN.md section 5).

A transaction covering ``[effective_date, expiry_date)`` earns, in the calendar window
``[a, b]`` (both days included), ``written x days of the cover inside the window / days of
the cover``. Cancellations and negative endorsements earn negative amounts.

``earned_sql`` takes the window as dates (one fixed window); ``earned_in_window_sql`` takes
it as SQL expressions, so that one query can earn every transaction into every period of a
joined calendar. Both compute in DOUBLE.

The marts sum ``earned_decimal_sql`` instead: each transaction's earned amount as DECIMAL with
10 decimals, whose sums are exact and so the same whatever order DuckDB's threads add the rows
in; the marts round a cell's sum once. (A DOUBLE sum could round a cell lying on a half cent
either way from one run to the next: rebuilds would not be identical.)
"""

from __future__ import annotations

import datetime as dt


def _days(start: str, end_exclusive: str, p: str) -> tuple[str, str]:
    days_in = (f"greatest(0, date_diff('day', greatest({p}effective_date, {start}), "
               f"least({p}expiry_date, {end_exclusive})))")
    return days_in, f"date_diff('day', {p}effective_date, {p}expiry_date)"


def earned_in_window_sql(amount: str, start: str, end_exclusive: str, *, alias: str = "") -> str:
    """SQL for the part of ``amount`` earned from the day ``start`` up to the day before
    ``end_exclusive`` (both SQL date expressions) by a row of the policy table."""
    p = f"{alias}." if alias else ""
    days_in, term = _days(start, end_exclusive, p)
    return (f"CASE WHEN {term} > 0 THEN CAST({p}{amount} AS DOUBLE) * {days_in} / {term} "
            f"ELSE 0 END")


def earned_decimal_sql(amount: str, start: str, end_exclusive: str, *, alias: str = "") -> str:
    """``earned_in_window_sql`` per transaction, cast to DECIMAL(38, 10) so that sums are exact."""
    return f"CAST({earned_in_window_sql(amount, start, end_exclusive, alias=alias)} AS DECIMAL(38, 10))"


def earned_sql(amount: str, start: dt.date, end: dt.date, *, alias: str = "") -> str:
    """SQL for the part of ``amount`` earned in ``[start, end]`` by a row of the policy table."""
    a, b1 = f"DATE '{start.isoformat()}'", f"DATE '{(end + dt.timedelta(days=1)).isoformat()}'"
    return earned_in_window_sql(amount, a, b1, alias=alias)
