"""A member's book of policies across quarters, and its premium transactions.

The book starts a year before the reporting window (those quarters are simulated but not
written, so that renewals, endorsements and cancellations of older policies appear from the
first reported quarter on). Every quarter: policies expiring in it renew (RN, same policy
number) or lapse, new business is written (NB), and policies in force are endorsed (EN) or
cancelled (CN). Claims arise on the terms of policies that have a transaction in the window
(also on their warm-up terms: a renewed policy's earlier claims), never on a policy the
member's premium files do not show.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal

from pipelines.core.domain import Period
from pipelines.generate import periods
from pipelines.generate import randomness as rnd
from pipelines.generate.identities import PartyDraw, Person
from pipelines.generate.lines import CoverProfile, LineProfile, market
from pipelines.generate.members import MemberProfile
from pipelines.generate.numbers import Numbering
from pipelines.generate.texts import product_name

BASE_NEW_POLICIES = 500          # new policies per quarter of a member of size 1 at scale 1
WARM_UP_QUARTERS = 4
SEASON = {1: 1.12, 2: 0.95, 3: 0.93, 4: 1.0}
MOTOR_COMPANION = {"MTPL": 0.6, "MCOM": 0.85}    # chance that the other motor line comes along
MOTOR_CHANNELS = {"DEALER": 25, "AGENT": 30, "DIRECT": 12, "ONLINE": 18, "BROKER": 10, "BANK": 5}
OTHER_CHANNELS = {"AGENT": 30, "BROKER": 25, "BANK": 15, "DIRECT": 15, "ONLINE": 15}
ORDER = {"RN": 0, "NB": 1, "EN": 2, "CN": 3}


@dataclass
class Cover:
    premium: Decimal
    sum_insured: Decimal


@dataclass
class Policy:
    policy_no: str
    line: str
    region: str
    insured_type: str
    insured_id: str
    person: Person | None
    vin: str | None
    channel: str
    product: str
    annual: bool
    term: Term | None = None


@dataclass
class Term:
    """One period of cover (new business or renewal); ``end`` moves to the cancellation date."""

    policy: Policy
    covers: dict[str, Cover]
    effective: dt.date
    expiry: dt.date
    written: bool
    end: dt.date = dt.date.min

    def __post_init__(self) -> None:
        self.end = self.expiry

    @property
    def days(self) -> int:
        return (self.expiry - self.effective).days

    @property
    def exposure(self) -> Decimal:
        return rnd.exposure(self.days / 365)


@dataclass
class Book:
    transactions: dict[str, list[dict]] = field(default_factory=dict)   # period -> rows
    terms: list[Term] = field(default_factory=list)                     # every term, warm-up too
    reported: set[str] = field(default_factory=set)                     # policies with rows in the window

    def claimable_terms(self) -> list[Term]:
        """Terms on which claims may be reported: their policy is in the member's premium files."""
        return [t for t in self.terms if t.policy.policy_no in self.reported]


def simulate_book(profile: MemberProfile, window: tuple[Period, ...], parties: PartyDraw,
                  numbering: Numbering, r: random.Random, scale: float) -> Book:
    """Run the book through the warm-up year and the window; return the window's transactions."""
    sim = _Simulation(profile, parties, numbering, r, scale)
    quarters = periods.warm_up(window[0], WARM_UP_QUARTERS) + window
    for i, period in enumerate(quarters):
        sim.run_quarter(period, i, written=i >= WARM_UP_QUARTERS)
    return sim.book


class _Simulation:
    def __init__(self, profile: MemberProfile, parties: PartyDraw, numbering: Numbering,
                 r: random.Random, scale: float) -> None:
        self.profile, self.parties, self.numbering, self.r = profile, parties, numbering, r
        self.scale = scale
        self.market = market()
        self.active: dict[str, Policy] = {}
        self.book = Book()
        self.lines = rnd.Weighted(profile.lines)
        self.regions = rnd.Weighted(profile.regions)
        self.terms = {code: rnd.Weighted(dict(p.terms)) for code, p in self.market.lines.items()}
        self.channels = {motor: rnd.Weighted({c: weights.get(c, 1.0) for c in self.market.channels})
                         for motor, weights in ((True, MOTOR_CHANNELS), (False, OTHER_CHANNELS))}

    def run_quarter(self, period: Period, index: int, written: bool) -> None:
        rows: list[dict] = []
        rows += self._renewals(period, written)
        rows += self._new_business(period, index, written)
        rows += self._mid_term(period, written)
        if written:
            rows.sort(key=lambda row: (row["accounting_date"], ORDER[row["transaction_type"]]))
            for row in rows:
                row["transaction_id"] = self.numbering.transaction_id(row["accounting_date"])
                self.book.reported.add(row["policy_no"])
            self.book.transactions[period.label] = rows

    # -- renewals and new business --------------------------------------------------------

    def _renewals(self, period: Period, written: bool) -> list[dict]:
        rows = []
        for policy in list(self.active.values()):
            term = policy.term
            if term.expiry > period.end:
                continue
            line = self.market.lines[policy.line]
            if (term.expiry < period.start or not policy.annual
                    or self.r.random() >= line.renew_rate):
                del self.active[policy.policy_no]
                continue
            covers = {code: Cover(rnd.money(float(c.premium) * self.r.lognormvariate(0.02, 0.08)),
                                  _renewed_sum(code, c.sum_insured))
                      for code, c in term.covers.items()}
            new = Term(policy, covers, term.expiry, periods.add_years(term.expiry, 1), written)
            rows += self._write_term(policy, new, "RN", period)
        return rows

    def _new_business(self, period: Period, index: int, written: bool) -> list[dict]:
        lam = (BASE_NEW_POLICIES * self.profile.size * self.scale * SEASON[period.end.month // 3]
               * 1.015 ** index)
        rows = []
        for _ in range(rnd.poisson(self.r, lam)):
            line = self.lines.draw(self.r)
            effective = periods.random_day(self.r, period.start, period.end)
            policy = self._new_policy(line, effective, None)
            rows += self._start(policy, effective, period, written)
            companion = self._companion(line)
            if companion:
                other = self._new_policy(companion, effective, policy)
                rows += self._start(other, effective, period, written)
        return rows

    def _companion(self, line: str) -> str | None:
        motor = self.market.motor_lines()
        if line not in motor or self.r.random() >= MOTOR_COMPANION.get(line, 0.0):
            return None
        others = [m for m in motor if m != line]
        return others[0] if others else None

    def _start(self, policy: Policy, effective: dt.date, period: Period, written: bool) -> list[dict]:
        days = self.terms[policy.line].draw(self.r)
        policy.annual = days == 365
        expiry = periods.add_years(effective, 1) if policy.annual else effective + dt.timedelta(days=days)
        if days == 1:
            policy.product = product_name(self.r, policy.line, self.profile.chinese_share, one_day=True)
        covers = self._covers(policy.line, (expiry - effective).days)
        return self._write_term(policy, Term(policy, covers, effective, expiry, written), "NB", period)

    def _new_policy(self, line: str, effective: dt.date, like: Policy | None) -> Policy:
        profile = self.market.lines[line]
        if like is not None:
            region, person, insured_id, kind, vin = (like.region, like.person, like.insured_id,
                                                     like.insured_type, like.vin)
        else:
            region, person, insured_id, kind, vin = self._insured(profile)
        channel = like.channel if like else self._channel(profile)
        policy = Policy(
            policy_no=self.numbering.policy_no(effective, region), line=line, region=region,
            insured_type=kind, insured_id=insured_id, person=person, vin=vin,
            channel=channel, product=product_name(self.r, line, self.profile.chinese_share), annual=True)
        return policy

    def _insured(self, line: LineProfile) -> tuple[str, Person | None, str, str, str | None]:
        region = self.regions.draw(self.r)
        if self.r.random() < line.person_share:
            person = self.parties.person(region)
            return region, person, person.id_number, "P", person.vin if line.motor else None
        org = self.parties.organisation(region)
        vin = self.parties.population.fleet_vin(org, self.r.randrange(org.fleet_size)) if line.motor else None
        return region, None, org.credit_code, "O", vin

    def _channel(self, line: LineProfile) -> str:
        return self.channels[line.motor].draw(self.r)

    def _covers(self, line: str, days: int) -> dict[str, Cover]:
        profiles = self.market.covers[line]
        chosen = [code for code, p in profiles.items() if self.r.random() < p.take_up]
        if not chosen:
            chosen = [max(profiles, key=lambda code: profiles[code].take_up)]
        return {code: self._cover(profiles[code], days) for code in chosen}

    def _cover(self, p: CoverProfile, days: int) -> Cover:
        premium = rnd.lognormal(self.r, *p.premium) * min(1.0, days / 365) ** 0.85 * max(1.0, days / 365)
        insured = rnd.lognormal(self.r, *p.sum_insured)
        return Cover(rnd.money(max(premium, 2.0)), rnd.money(max(_round_sum(insured), 1000.0)))

    def _write_term(self, policy: Policy, term: Term, kind: str, period: Period) -> list[dict]:
        policy.term = term
        self.active[policy.policy_no] = policy
        self.book.terms.append(term)
        if not term.written:
            return []
        lag = 0 if self.r.random() < 0.4 else self.r.randint(1, 25)
        accounted = max(period.start, term.effective - dt.timedelta(days=lag))
        return [transaction_row(policy, code, kind, accounted, term.effective, term.expiry,
                                c.premium, term.exposure, c.sum_insured)
                for code, c in term.covers.items()]

    # -- endorsements and cancellations -------------------------------------------------------

    def _mid_term(self, period: Period, written: bool) -> list[dict]:
        rows = []
        for policy in list(self.active.values()):
            term, line, draw = policy.term, self.market.lines[policy.line], self.r.random()
            if draw >= line.cancel_rate + line.endorse_rate or term.days < 30:
                continue
            first = max(period.start, term.effective + dt.timedelta(days=1))
            last = min(period.end, term.expiry - dt.timedelta(days=1))
            if first > last:
                continue
            day = periods.random_day(self.r, first, last)
            change = self._cancel(policy, day, period) if draw < line.cancel_rate else \
                [self._endorse(policy, day, period)]
            rows += change if written else []
        return rows

    def _cancel(self, policy: Policy, day: dt.date, period: Period) -> list[dict]:
        term = policy.term
        share = (term.expiry - day).days / term.days
        term.end = day
        del self.active[policy.policy_no]
        accounted = min(period.end, day + dt.timedelta(days=self.r.randint(0, 5)))
        returned = rnd.exposure(-float(term.exposure) * share)
        return [transaction_row(policy, code, "CN", accounted, day, term.expiry,
                                min(-rnd.money(float(c.premium) * share), Decimal("-0.01")),
                                returned, c.sum_insured)
                for code, c in term.covers.items()]

    def _endorse(self, policy: Policy, day: dt.date, period: Period) -> dict:
        term = policy.term
        code = rnd.pick_one(self.r, sorted(term.covers))
        cover = term.covers[code]
        share = (term.expiry - day).days / term.days
        factor = self.r.choice((-1, 1)) * self.r.uniform(0.03, 0.4)
        delta = rnd.money(float(cover.premium) * share * factor) or Decimal("1.00")
        change = rnd.exposure(0.0 if self.r.random() < 0.85 else share * factor * 0.2)
        cover.sum_insured = rnd.money(max(_round_sum(float(cover.sum_insured) * (1 + factor / 2)), 1000.0))
        accounted = min(period.end, day + dt.timedelta(days=self.r.randint(0, 5)))
        return transaction_row(policy, code, "EN", accounted, day, term.expiry, delta,
                               change, cover.sum_insured)


def _renewed_sum(code: str, sum_insured: Decimal) -> Decimal:
    """Vehicles lose value each year; other sums insured stay."""
    if code.endswith("-OD"):
        return rnd.money(max(_round_sum(float(sum_insured) * 0.9), 1000.0))
    return sum_insured


def _round_sum(amount: float) -> float:
    """Sums insured and limits are round numbers (three significant digits)."""
    return float(f"{amount:.3g}") if amount >= 1000 else amount


def transaction_row(policy: Policy, coverage: str, kind: str, accounted: dt.date,
                    effective: dt.date, expiry: dt.date, premium: Decimal, exposure: Decimal,
                    sum_insured: Decimal) -> dict:
    """One premium transaction as the contract's columns (``transaction_id`` set later)."""
    person = policy.person
    return {
        "policy_no": policy.policy_no, "transaction_id": None, "transaction_type": kind,
        "accounting_date": accounted, "effective_date": effective, "expiry_date": expiry,
        "line_of_business": policy.line, "coverage_code": coverage, "region_code": policy.region,
        "written_premium": premium, "written_exposure": exposure, "sum_insured": sum_insured,
        "insured_id": policy.insured_id, "insured_type": policy.insured_type,
        "birth_date": person.birth_date if person else None,
        "gender": person.gender if person else None,
        "vin": policy.vin, "phone": person.phone if person else None,
        "channel": policy.channel, "product_name": policy.product,
    }
