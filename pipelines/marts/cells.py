"""SQL pieces every mart shares: missing-aware ratios, rollup labels and disclosure columns.

Every mart row carries ``members`` (how many member companies contributed to the cell) and
``max_member_share`` (the largest member's share of the cell's amount, from 0 to 1), so that
disclosure control can suppress a cell without reading the members' data again.
"""

from __future__ import annotations

ALL = "ALL"        # the label of a rolled-up dimension: every line or every province
GRAINS = {"quarter": 3, "year": 12}   # grain -> months per period


def ratio(num: str, den: str) -> str:
    """``num / den`` as DOUBLE, NULL unless the base is positive.

    A loss ratio on no premium, a frequency on no exposure or a factor on a zero base is
    missing, never infinity or zero; a negative base (net cancellations) is missing too.
    """
    return f"CASE WHEN {den} > 0 THEN CAST({num} AS DOUBLE) / CAST({den} AS DOUBLE) END"


def max_share(amount: str) -> str:
    """Aggregate SQL: the largest member's share of a cell, over one row per member.

    Shares are of absolute amounts, so a member's negative amount (return premium) still
    counts as that member's weight in the cell; NULL when every member's amount is zero."""
    return (f"CAST(max(abs({amount})) AS DOUBLE) / "
            f"CAST(nullif(sum(abs({amount})), 0) AS DOUBLE)")


def rollup(column: str) -> str:
    """A GROUPING SETS column: its value, or ``'ALL'`` where the set rolls it up."""
    return f"CASE WHEN grouping({column}) = 1 THEN '{ALL}' ELSE {column} END"


def period_label(grain: str, start: str) -> str:
    """``2024`` for a year, ``2024Q1`` for a quarter; ``grain`` and ``start`` are SQL."""
    return (f"CASE WHEN {grain} = 'year' THEN strftime({start}, '%Y') "
            f"ELSE strftime({start}, '%Y') || 'Q' || quarter({start}) END")

