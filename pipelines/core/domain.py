"""The domain words every stage shares: periods, submission statuses, rule kinds, file formats.

>>> p = parse_period("2024q4")
>>> p.label, p.grain, p.start.isoformat(), p.end.isoformat()
('2024Q4', 'quarter', '2024-10-01', '2024-12-31')
>>> SubmissionStatus.ACCEPTED == "accepted", SubmissionStatus("held").settled
(True, False)
>>> RuleKind("exists_in").cross_dataset
True
>>> format_of("M001/policy_2024Q4.XLSX"), format_of("notes.docx")
('xlsx', None)
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

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


class SubmissionStatus(StrEnum):
    """Where a submission is (the ``status`` column of the ``submissions`` table).

    ``received`` (archived, waiting) and ``held`` (waiting for a file it depends on) are not yet
    settled; ``accepted`` (its rows are the slice's published version), ``rejected`` (nothing
    published), ``superseded`` (a later version of the slice replaced it), ``failed`` (the
    platform failed on it; it is retried or looked at) and ``refused`` (a file that could not
    even be received: no manifest, no member, unreadable; nothing archived) are. Members read these words: they are
    the values in the lake, so the enum's values never change.
    """

    RECEIVED = "received"
    HELD = "held"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"
    FAILED = "failed"
    REFUSED = "refused"

    @property
    def settled(self) -> bool:
        return self not in WAITING

    @property
    def sql(self) -> str:
        """The status as a SQL literal, for SQL text (``status = 'accepted'``)."""
        return "'" + self.value + "'"


def statuses_sql(statuses: tuple[SubmissionStatus, ...]) -> str:
    """``'received', 'held'``: a list of statuses for a SQL ``IN (...)``."""
    return ", ".join(s.sql for s in statuses)


WAITING = (SubmissionStatus.RECEIVED, SubmissionStatus.HELD)                 # to be processed
DECIDED = (SubmissionStatus.ACCEPTED, SubmissionStatus.REJECTED, SubmissionStatus.SUPERSEDED)


class RuleKind(StrEnum):
    """The kinds of row rule a contract may state (``schemas/*.yaml``, ``rules: - kind: ...``)."""

    REQUIRED = "required"
    TYPE = "type"
    CODES = "codes"
    PATTERN = "pattern"
    FREE_TEXT = "free_text"
    MAX_LENGTH = "max_length"
    UNIQUE = "unique"
    UNIQUE_ACROSS_PERIODS = "unique_across_periods"
    COMPARE = "compare"
    RANGE = "range"
    CHECK_DIGIT = "check_digit"
    RESIDENT_ID_AGREES = "resident_id_agrees"
    EXISTS_IN = "exists_in"
    IDENTIFIERS_IN_TEXT = "identifiers_in_text"

    @property
    def cross_dataset(self) -> bool:
        """Whether the rule reads the member's published rows (of this or another dataset)."""
        return self in (RuleKind.EXISTS_IN, RuleKind.UNIQUE_ACROSS_PERIODS)


FILE_FORMATS = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".xlsx": "xlsx"}


def format_of(name: str) -> str | None:
    """The submission format of a file name by its suffix (``csv``, ``parquet``, ``xlsx``), or None."""
    return FILE_FORMATS.get(Path(name).suffix.lower())


def text_encoding(name: str) -> str | None:
    """The codec name of a text encoding Python knows (``utf-8``, ``gb18030``, ...); None for an
    unknown name or a codec that is not a text encoding (``rot13``, ``hex``, ``zip``)."""
    try:
        info = codecs.lookup(name)
    except (LookupError, TypeError, ValueError):
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None
