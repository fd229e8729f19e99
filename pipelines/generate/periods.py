"""Quarters and dates for the generator: the reporting window and a few date helpers."""

from __future__ import annotations

import datetime as dt
import random

from pipelines.core.domain import Period, parse_period


def previous_quarter(label: str) -> str:
    """The quarter before ``label`` (``2025Q1`` -> ``2024Q4``)."""
    period = parse_period(label)
    if period.grain != "quarter":
        raise ValueError(f"{label!r} is not a quarter like 2025Q4")
    return quarter_of(period.start - dt.timedelta(days=1))


def quarter_of(day: dt.date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def window(end_period: str, quarters: int) -> tuple[Period, ...]:
    """The ``quarters`` reporting quarters that end with ``end_period``, oldest first."""
    if quarters < 1:
        raise ValueError("quarters must be at least 1")
    labels = [parse_period(end_period).label]
    if "Q" not in labels[0]:
        raise ValueError(f"end_period {end_period!r} is not a quarter like 2025Q4")
    while len(labels) < quarters:
        labels.append(previous_quarter(labels[-1]))
    return tuple(parse_period(label) for label in reversed(labels))


def warm_up(first: Period, quarters: int) -> tuple[Period, ...]:
    """``quarters`` quarters before ``first``, oldest first (simulated, never written)."""
    labels = [first.label]
    for _ in range(quarters):
        labels.append(previous_quarter(labels[-1]))
    return tuple(parse_period(label) for label in reversed(labels[1:]))


def add_years(day: dt.date, years: int) -> dt.date:
    """The same day ``years`` later; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def random_day(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    """A uniformly drawn day in [first, last] (both included)."""
    span = (last - first).days
    return first + dt.timedelta(days=rng.randint(0, max(span, 0)))


def days(n: float) -> dt.timedelta:
    return dt.timedelta(days=int(n))
