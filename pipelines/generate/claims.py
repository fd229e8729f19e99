"""Claims on a member's policy terms, and their cumulative snapshots at quarter ends.

A claim is drawn with its whole future: accident date inside the cover, report lag, payment
dates and amounts, closing date, and for a few a reopening with further payments. A snapshot
at valuation date v shows what was known at v: cumulative paid, the case reserve (first set at
report from a misjudged estimate that converges to the real cost, released at closing) and the
status. Only claims reported by the end of the window exist; their accidents are earlier.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from pipelines.core.domain import Period
from pipelines.generate import periods
from pipelines.generate import randomness as rnd
from pipelines.generate.identities import PartyDraw
from pipelines.generate.lines import CoverProfile, market
from pipelines.generate.members import MemberProfile
from pipelines.generate.numbers import Numbering
from pipelines.generate.policies import Term
from pipelines.generate.texts import loss_description

CLOSED_WITHOUT_PAYMENT = 0.08
REOPEN_RATE = 0.05
THIRD_PARTY_ORGANISATION_LINES = ("SURE",)     # the lender claims under a loan surety


@dataclass(frozen=True)
class Claim:
    claim_no: str
    policy_no: str
    line: str
    coverage: str
    region: str
    accident: dt.date
    report: dt.date
    claimant_id: str
    cause: str
    description: str
    payments: tuple[tuple[dt.date, int], ...]   # (date, cents), in date order
    closes: tuple[dt.date, ...]                 # first closing, and closing after a reopening
    reopened: dt.date | None
    estimate: int                               # cents: the first estimate of the cost
    extra_estimate: int                         # cents: the estimate made at reopening

    def paid(self, valuation: dt.date) -> int:
        return sum(cents for day, cents in self.payments if day <= valuation)

    def state(self, valuation: dt.date) -> tuple[str, dt.date | None, int, int]:
        """Status, close date, cumulative paid and case reserve (cents) at ``valuation``."""
        paid = self.paid(valuation)
        first = self.closes[0]
        if valuation < first:
            return "OPEN", None, paid, self._reserve(valuation, paid)
        if self.reopened is None or valuation < self.reopened:
            return "CLOSED", first, paid, 0
        if valuation < self.closes[1]:
            extra_paid = paid - self.paid(self.reopened)
            return "REOPENED", first, paid, _floor(self.extra_estimate - extra_paid, self.extra_estimate)
        return "CLOSED", self.closes[1], paid, 0

    def _reserve(self, valuation: dt.date, paid: int) -> int:
        span = (self.closes[0] - self.report).days
        t = (valuation - self.report).days / span if span else 1.0
        actual = max(self.paid(self.closes[0]), 1)
        target = self.estimate ** (1 - t) * actual ** t
        return _floor(round(target) - paid, self.estimate)


def _floor(reserve: int, estimate: int) -> int:
    """An open claim keeps at least a small reserve."""
    return max(reserve, 10_000, estimate // 20)


def simulate_claims(profile: MemberProfile, terms: list[Term], window: tuple[Period, ...],
                    parties: PartyDraw, numbering: Numbering, r: random.Random) -> list[Claim]:
    """Claims on ``terms`` reported by the end of the window, numbered in report order."""
    horizon = window[-1].end
    drafts = []
    for term in terms:
        for code in term.covers:
            drafts += _claims_on(term, code, horizon, profile, parties, r)
    drafts.sort(key=lambda d: (d["report"], d["accident"], d["policy_no"], d["coverage"]))
    return [Claim(claim_no=numbering.claim_no(d["report"], d["region"]), **d) for d in drafts]


def _claims_on(term: Term, code: str, horizon: dt.date, profile: MemberProfile,
               parties: PartyDraw, r: random.Random) -> list[dict]:
    p = market().covers[term.policy.line][code]
    last = min(term.end - dt.timedelta(days=1), horizon)
    if last < term.effective:
        return []
    years = ((last - term.effective).days + 1) / 365
    drafts = []
    for _ in range(rnd.poisson(r, p.frequency * years)):
        accident = periods.random_day(r, term.effective, last)
        report = accident + dt.timedelta(days=_report_lag(r, p))
        if report > horizon:
            continue
        drafts.append(_draft(term, code, p, accident, report, profile, parties, r))
    return drafts


def _report_lag(r: random.Random, p: CoverProfile) -> int:
    fast, mean, tail_median, sigma = p.report_lag
    if r.random() < fast:
        return int(r.expovariate(1 / mean))
    return int(rnd.lognormal(r, tail_median, sigma))


def _draft(term: Term, code: str, p: CoverProfile, accident: dt.date, report: dt.date,
           profile: MemberProfile, parties: PartyDraw, r: random.Random) -> dict:
    policy = term.policy
    cause = rnd.pick(r, dict(p.causes))
    region = policy.region
    if policy.vin and r.random() < 0.04:
        region = rnd.pick(r, profile.regions)
    cap = int(term.covers[code].sum_insured * 100)
    return dict(
        policy_no=policy.policy_no, line=policy.line, coverage=code, region=region,
        accident=accident, report=report, claimant_id=_claimant(term, p, region, parties, r),
        cause=cause, description=loss_description(r, policy.line, cause, profile.chinese_share),
        **_lifecycle(r, p, report, cap, slow=cause == "INJ"))


def _claimant(term: Term, p: CoverProfile, region: str, parties: PartyDraw, r: random.Random) -> str:
    if r.random() < p.first_party:
        return term.policy.insured_id
    if term.policy.line in THIRD_PARTY_ORGANISATION_LINES:
        return parties.third_party_organisation(region).credit_code
    return parties.third_party(region).id_number


def _lifecycle(r: random.Random, p: CoverProfile, report: dt.date, cap: int, slow: bool) -> dict:
    settle = rnd.lognormal(r, *p.settle) * (2.5 if slow else 1.0)
    close = report + dt.timedelta(days=int(settle))
    cost = min(int(rnd.lognormal(r, p.severity_median, p.severity[1]) * 100), cap)
    cost = max(cost, 5_000)
    estimate = max(int(cost * r.lognormvariate(0.0, 0.5)), 10_000)
    if r.random() < CLOSED_WITHOUT_PAYMENT:
        return dict(payments=(), closes=(close,), reopened=None, estimate=estimate, extra_estimate=0)
    payments = _payments(r, report, close, cost)
    if r.random() >= REOPEN_RATE:
        return dict(payments=payments, closes=(close,), reopened=None, estimate=estimate,
                    extra_estimate=0)
    reopened = close + dt.timedelta(days=7 + int(rnd.lognormal(r, 90, 0.8)))
    reclosed = reopened + dt.timedelta(days=1 + int(rnd.lognormal(r, 60, 0.8)))
    extra = max(int(cost * r.uniform(0.1, 0.5)), 5_000)
    return dict(payments=payments + _payments(r, reopened, reclosed, extra), closes=(close, reclosed),
                reopened=reopened, estimate=estimate,
                extra_estimate=max(int(extra * r.lognormvariate(0.0, 0.3)), 10_000))


def _payments(r: random.Random, start: dt.date, end: dt.date, total: int) -> tuple[tuple[dt.date, int], ...]:
    """``total`` cents paid in instalments after ``start``, the last one on ``end``."""
    span = (end - start).days
    count = 1 if span < 2 else 1 + min(rnd.poisson(r, span / 120), 7)
    days = sorted(start + dt.timedelta(days=r.randint(1, span - 1)) for _ in range(count - 1)) + [end]
    weights = [r.expovariate(1.0) for _ in days]
    amounts = [int(total * w / sum(weights)) for w in weights]
    amounts[-1] += total - sum(amounts)
    return tuple((day, cents) for day, cents in zip(days, amounts, strict=True) if cents > 0)


def snapshot_rows(claims: list[Claim], valuation: dt.date) -> list[dict]:
    """Every claim reported by ``valuation``, as the claim contract's columns."""
    rows = []
    for c in claims:
        if c.report > valuation:
            continue
        status, closed, paid, reserve = c.state(valuation)
        rows.append({
            "claim_no": c.claim_no, "policy_no": c.policy_no, "valuation_date": valuation,
            "line_of_business": c.line, "coverage_code": c.coverage, "region_code": c.region,
            "accident_date": c.accident, "report_date": c.report, "claim_status": status,
            "close_date": closed, "paid_to_date": _cny(paid), "case_reserve": _cny(reserve),
            "claimant_id": c.claimant_id, "cause_code": c.cause, "loss_description": c.description,
        })
    return rows


def _cny(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)
