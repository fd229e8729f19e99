"""Policy, transaction and claim numbers in each member's own style."""

from __future__ import annotations

import datetime as dt

from pipelines.generate.members import MemberProfile

ORPHAN_BASE = 9_000_000     # policy sequences from here on are never issued


class Numbering:
    """Counters of one member; numbers never repeat across periods."""

    def __init__(self, profile: MemberProfile) -> None:
        self.code = profile.code
        self.style = profile.number_style
        self._policy = 0
        self._transaction = 0
        self._claim = 0
        self._orphan = ORPHAN_BASE

    def policy_no(self, issued: dt.date, region: str) -> str:
        self._policy += 1
        return self._policy_no(issued.year, region, self._policy)

    def orphan_policy_no(self, year: int, region: str) -> str:
        """A well-formed policy number that this member never issued."""
        self._orphan += 1
        return self._policy_no(year, region, self._orphan)

    def _policy_no(self, year: int, region: str, seq: int) -> str:
        if self.style == 1:
            return f"{self.code}/{year}/{region[:2]}/{seq:07d}"
        if self.style == 2:
            return f"{self.code}-{region[:2]}-{year}-{seq:07d}"
        return f"P{self.code}{year}{region[:2]}{seq:08d}"

    def transaction_id(self, accounted: dt.date) -> str:
        self._transaction += 1
        seq = self._transaction
        if self.style == 1:
            return f"{self.code}/T/{accounted:%Y%m}/{seq:08d}"
        if self.style == 2:
            return f"T-{self.code}-{accounted:%Y%m%d}-{seq:07d}"
        return f"E{self.code}{accounted:%Y%m%d}{seq:08d}"

    def claim_no(self, reported: dt.date, region: str) -> str:
        self._claim += 1
        seq = self._claim
        if self.style == 1:
            return f"{self.code}/C/{reported.year}/{seq:07d}"
        if self.style == 2:
            return f"C-{self.code}-{reported.year}-{seq:07d}"
        return f"R{self.code}{reported.year}{region[:2]}{seq:08d}"
