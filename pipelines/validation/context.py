"""What a rule needs to know about the submission it checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipelines.core.domain import Period, parse_period  # noqa: F401  (re-exported for CheckContext's users)


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
