"""Resubmission scenarios, so that the platform shows rejected and superseded versions.

1. ``too_many_errors``: a premium file first sent with about 9% defective rows (rejected for
   breaking the error-share threshold), then as ``_v2`` with only the normal defects.
2. ``truncated``: a claim file first sent cut in the middle of a line after ~90% of its rows,
   with the manifest of the complete file (rejected: it does not parse), then complete as ``_v2``.
3. ``corrected``: a claim file first sent with extra defects but still accepted, then corrected
   as ``_v2`` with fewer defects (the first version becomes superseded).
4. ``missing``: a claim file that the member never sends (the index lists it under
   ``missing``; the next snapshot still holds every claim, as snapshots are cumulative).

The rows are the same in both versions; the first version only adds defects, so source row
numbers agree. Claims are checked after all of a member's premium files, so the premium
rows they refer to are those of the accepted second version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipelines.core.domain import Period
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.generate.defect_kinds import claim_kinds, policy_kinds
from pipelines.generate.defects import error_budget, error_rows, inject
from pipelines.generate.numbers import Numbering
from pipelines.generate.submissions import SubmissionFile, defect_context

REJECTED_DEFECT_SHARE = 0.09


@dataclass(frozen=True)
class Scenario:
    kind: str
    member_id: str
    dataset: str
    period: str


def plan_scenarios(member_ids: list[str], window: tuple[Period, ...]) -> tuple[Scenario, ...]:
    """Which slices get a second version; the truncated one goes to the first (CSV) member."""
    n, m = len(window), len(member_ids)
    plan = [Scenario("too_many_errors", member_ids[1 % m], "policy", window[n // 2].label),
            Scenario("truncated", member_ids[0], "claim", window[-1].label)]
    if m > 1 and n > 2:
        plan.append(Scenario("missing", member_ids[-1], "claim", window[1].label))
    corrected_member = member_ids[2 % m]
    for period in (window[max(0, n - 2)], window[max(0, n - 3)]):
        if (corrected_member, period.label) != (member_ids[0], window[-1].label):
            plan.append(Scenario("corrected", corrected_member, "claim", period.label))
            break
    return tuple(plan)


def apply_scenarios(files: list[SubmissionFile], plan: tuple[Scenario, ...], numbering: Numbering,
                    seed: int) -> list[SubmissionFile]:
    """The member's files with each planned slice replaced by its two versions."""
    out = []
    for f in files:
        scenario = next((s for s in plan if (s.member_id, s.dataset, s.period)
                         == (f.member.member_id, f.dataset, f.period.label)), None)
        if scenario is None:
            out.append(f)
            continue
        if scenario.kind == "missing":
            continue
        first = _first_version(scenario, f, numbering, seed)
        out += [first, SubmissionFile(f.member, f.dataset, f.period, f.marked, version=2, suffix="_v2",
                                      notes=[f"corrects {first.file_name}"])]
    return out


def _first_version(scenario: Scenario, f: SubmissionFile, numbering: Numbering,
                   seed: int) -> SubmissionFile:
    ctx = defect_context(f.member, f.dataset, f.period, numbering, seed, purpose=scenario.kind)
    kinds = policy_kinds() if f.dataset == "policy" else claim_kinds()
    rows = len(f.marked)
    if scenario.kind == "truncated":
        return SubmissionFile(f.member, f.dataset, f.period, f.marked, expect=Status.REJECTED, truncated=True,
                              notes=["truncated in the middle of a line"])
    if scenario.kind == "too_many_errors":
        target = max(math.floor(ctx.contract.max_error_row_share * rows) + 1, ctx.contract.min_error_rows + 1,
                     math.ceil(REJECTED_DEFECT_SHARE * rows))
        errors = [k for k in kinds if not k.warning and not k.duplicate]
        marked = inject(f.marked, errors, ctx, count=target - error_rows(f.marked, ctx.contract),
                        max_errors=rows, duplicates=False)
        return SubmissionFile(f.member, f.dataset, f.period, marked, expect=Status.REJECTED,
                              notes=["too many defective rows"])
    extra = max(1, sum(m.truth is not None for m in f.marked))
    marked = inject(f.marked, kinds, ctx, count=extra, max_errors=error_budget(rows, ctx.contract),
                    duplicates=False)
    return SubmissionFile(f.member, f.dataset, f.period, marked, expect=Status.SUPERSEDED,
                          notes=["accepted, then corrected"])
