"""A member's submission files: rows per dataset and quarter, with defects and their truth."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pipelines.contracts import load_contract
from pipelines.core.domain import Period
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.generate.claims import Claim, snapshot_rows
from pipelines.generate.defect_kinds import claim_kinds, policy_kinds
from pipelines.generate.defects import (
    DefectContext,
    Marked,
    defect_count,
    error_budget,
    inject,
)
from pipelines.generate.members import MemberProfile
from pipelines.generate.numbers import Numbering
from pipelines.generate.policies import Book
from pipelines.generate.randomness import rng


@dataclass
class SubmissionFile:
    member: MemberProfile
    dataset: str
    period: Period
    marked: list[Marked]
    version: int = 1
    expect: Status = Status.ACCEPTED
    truncated: bool = False        # the file ends in the middle of a line; the manifest is the full one
    suffix: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def file_name(self) -> str:
        return f"{self.dataset}_{self.period.label}{self.suffix}.{self.member.extension}"

    @property
    def path(self) -> str:
        """Relative to the output folder."""
        return f"{self.member.member_id}/{self.file_name}"

    @property
    def rows(self) -> list[dict]:
        return [m.row for m in self.marked]


def defect_context(member: MemberProfile, dataset: str, period: Period, numbering: Numbering,
                   seed: int, purpose: str = "defects") -> DefectContext:
    return DefectContext(
        contract=load_contract(dataset), file_format=member.file_format,
        r=rng(seed, member.member_id, dataset, period.label, purpose),
        orphan_policy_no=lambda day, region: numbering.orphan_policy_no(day.year, region))


def member_files(member: MemberProfile, window: tuple[Period, ...], book: Book, claims: list[Claim],
                 numbering: Numbering, seed: int, rate: float) -> list[SubmissionFile]:
    """One premium and one claim file per quarter (none for a quarter without rows)."""
    with_claims = {c.policy_no for c in claims}
    files = []
    for period in window:
        premium = book.transactions.get(period.label, [])
        snapshot = snapshot_rows(claims, period.end)
        for dataset, rows in (("policy", premium), ("claim", snapshot)):
            if not rows:
                continue
            ctx = defect_context(member, dataset, period, numbering, seed)
            kinds = policy_kinds() if dataset == "policy" else claim_kinds()
            marked = inject([Marked(row) for row in rows], kinds, ctx,
                            count=defect_count(ctx.r, len(rows), rate),
                            max_errors=error_budget(len(rows), ctx.contract),
                            protected=(lambda row: row["policy_no"] in with_claims)
                            if dataset == "policy" else (lambda row: False))
            files.append(SubmissionFile(member, dataset, period, marked))
    return files


def valuation_stamp(period: Period) -> dt.datetime:
    """When a member's extract of ``period`` was made: fixed, never the clock."""
    return dt.datetime.combine(period.end + dt.timedelta(days=12), dt.time(9, 30))
