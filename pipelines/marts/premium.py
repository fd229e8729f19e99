"""Earned premium and exposure, pro rata by day (DOMAIN.md section 5).

A transaction covering ``[effective_date, expiry_date)`` earns, in the calendar window
``[a, b]`` (both days included), ``written x days of the cover inside the window / days of
the cover``. Cancellations and negative endorsements earn negative amounts.
"""

from __future__ import annotations

import datetime as dt


def earned_sql(amount: str, start: dt.date, end: dt.date, *, alias: str = "") -> str:
    """SQL for the part of ``amount`` earned in ``[start, end]`` by a row of the policy table."""
    p = f"{alias}." if alias else ""
    a, b1 = f"DATE '{start.isoformat()}'", f"DATE '{(end + dt.timedelta(days=1)).isoformat()}'"
    days_in = (f"greatest(0, date_diff('day', greatest({p}effective_date, {a}), "
               f"least({p}expiry_date, {b1})))")
    term = f"date_diff('day', {p}effective_date, {p}expiry_date)"
    return (f"CASE WHEN {term} > 0 THEN CAST({p}{amount} AS DOUBLE) * {days_in} / {term} "
            f"ELSE 0 END")
