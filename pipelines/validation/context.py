"""What a rule needs to know about the submission it checks."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipelines.errors import SubmissionError

PERIOD_RE = re.compile(r"(?P<year>\d{4})(?:Q(?P<quarter>[1-4]))?")


@dataclass(frozen=True)
class Period:
    """A reporting period: a quarter (``2024Q4``) or a year (``2024``)."""

    label: str
    start: dt.date
    end: dt.date

    @property
    def grain(self) -> str:
        return "quarter" if "Q" in self.label else "year"


def parse_period(label: str) -> Period:
    m = PERIOD_RE.fullmatch(label.strip().upper()) if isinstance(label, str) else None
    if not m:
        raise SubmissionError(f"Period {label!r} is not a quarter like 2024Q4 or a year like 2024.",
                              hint="Name the period as YYYYQn (or YYYY for annual data).")
    year = int(m["year"])
    if not 1 <= year <= 9999:
        raise SubmissionError(f"Period {label!r} is not a calendar year the platform can hold.",
                              hint="Name the period as YYYYQn (or YYYY for annual data).")
    if m["quarter"]:
        q = int(m["quarter"])
        start = dt.date(year, 3 * q - 2, 1)
        end = dt.date(year, 12, 31) if q == 4 else dt.date(year, 3 * q + 1, 1) - dt.timedelta(days=1)
    else:
        start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    return Period(label=m.group(0), start=start, end=end)


@dataclass(frozen=True)
class CheckContext:
    """The submission a batch belongs to, and the reference sets cross-dataset rules read."""

    member_id: str
    period: Period
    file_format: str = "csv"
    references: Mapping[str, str] = field(default_factory=dict)  # rule id -> staging table

    def bound(self, value: object) -> object:
        """Resolve ``period_start`` / ``period_end`` in a rule's parameters."""
        if value == "period_start":
            return self.period.start
        if value == "period_end":
            return self.period.end
        return value
