"""Verdict: accept or reject a submission by the contract's thresholds and its control totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from pipelines.contracts import DatasetContract, SubmissionRules
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.validation.engine import RowCheck


@dataclass(frozen=True)
class Reconciliation:
    column: str
    given: Decimal | None
    computed: Decimal
    unreadable_rows: int
    matches: bool


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    failed_checks: tuple[str, ...] = ()          # submission check ids
    reasons: tuple[str, ...] = ()
    reconciliations: tuple[Reconciliation, ...] = field(default_factory=tuple)

    @property
    def label(self) -> Status:
        return Status.ACCEPTED if self.accepted else Status.REJECTED


def reconcile(contract: DatasetContract, rules: SubmissionRules, given: dict[str, str],
              computed: dict[str, Decimal], unreadable: dict[str, int]) -> tuple[Reconciliation, ...]:
    out = []
    for col in contract.control_totals:
        g = Decimal(given[col]) if col in given else None
        c = computed.get(col) or Decimal(0)
        tol = Decimal(str(rules.abs_tolerance)) + Decimal(str(rules.rel_tolerance)) * abs(c)
        out.append(Reconciliation(column=col, given=g, computed=c, unreadable_rows=unreadable.get(col, 0),
                                  matches=g is None or abs(g - c) <= tol))
    return tuple(out)


def decide(contract: DatasetContract, rules: SubmissionRules, check: RowCheck, *, file_name: str,
           row_count_given: int | None, reconciliations: tuple[Reconciliation, ...]) -> Verdict:
    """Reject on a fatal row, a row count or control total that does not reconcile, or too many errors."""
    failed, reasons = [], []
    f = repr(file_name)
    if row_count_given is not None and row_count_given != check.rows:
        failed.append("SUB-ROW-COUNT")
        reasons.append(f"SUB-ROW-COUNT: file {f} has {check.rows:,} data rows, the manifest says "
                       f"{row_count_given:,}; the file may be truncated or from another extract.")
    for r in reconciliations:
        if not r.matches:
            failed.append("SUB-CONTROL-TOTAL")
            extra = (f" ({r.unreadable_rows:,} rows have an unreadable {r.column})"
                     if r.unreadable_rows else "")
            reasons.append(f"SUB-CONTROL-TOTAL: {r.column} sums to {r.computed:,} in file {f} but the "
                           f"manifest says {r.given:,} (difference {r.given - r.computed:,}){extra}.")
    if check.fatal_rows:
        fatal = sorted({c.rule.id for c in check.counts if c.rule.severity == "fatal" and c.failed})
        failed.append("SUB-FATAL-ROWS")
        reasons.append(f"SUB-FATAL-ROWS: {check.fatal_rows:,} rows of file {f} break fatal rule(s) {', '.join(fatal)}.")
    share = check.error_rows / check.rows if check.rows else 0.0
    limit = contract.max_error_row_share
    every = check.rows > 0 and check.error_rows == check.rows    # nothing would be left to publish
    if every or (share > limit and check.error_rows > contract.min_error_rows):   # see schemas/submission.yaml
        failed.append("SUB-ERROR-SHARE")
        reasons.append(f"SUB-ERROR-SHARE: {share:.1%} of the rows of file {f} ({check.error_rows:,} of "
                       f"{check.rows:,}) break error rules; at most {limit:.0%} may (or "
                       f"{contract.min_error_rows:,} rows, whichever is more"
                       + (", and never every row" if every else "") + ").")
    return Verdict(accepted=not failed, failed_checks=tuple(dict.fromkeys(failed)),
                   reasons=tuple(reasons), reconciliations=reconciliations)


def file_verdict(check_id: str, message: str) -> Verdict:
    """The verdict on a file that could not be read or whose header is wrong."""
    return Verdict(accepted=False, failed_checks=(check_id,), reasons=(f"{check_id}: {message}",))
