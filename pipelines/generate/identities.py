"""Synthetic people, organisations and vehicles with valid identifiers.

Resident identity numbers, unified social credit codes and VINs are built with the check
characters of ``pipelines.privacy.checkdigits`` (the reference the validator uses too).
Parties come from one population shared by all members: a party is a pure function of
(seed, region, index), so when two members draw the same index of a region they insure
the same person (with the same vehicle and phone), which the platform later links by token.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from dataclasses import dataclass

from pipelines.generate.randomness import pick_one, rng
from pipelines.privacy.checkdigits import (
    CREDIT_ALPHABET,
    VIN_ALPHABET,
    credit_code_check_char,
    resident_id_check_char,
    vin_check_char,
)

# World manufacturer identifiers of cars built in China (ISO 3780).
WMIS = ("LSV", "LFV", "LGB", "LVS", "LBV", "LHG", "LGX", "LSG", "LDC", "LZW", "LVH", "LFM",
        "LNB", "LRW", "LGW", "LJD")
VIN_YEARS = "ABCDEFGHJKLMNPRSTVWXY123456789"    # model years 1980.., repeating every 30 years
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150",
                   "151", "152", "153", "155", "157", "158", "159", "166", "170", "176",
                   "177", "180", "181", "182", "185", "186", "187", "188", "189", "191",
                   "195", "198", "199")
CREDIT_KINDS = ("91", "91", "91", "91", "92", "12", "52")   # enterprise, individual business, institution, NGO
MEMBER_RANGE = 10_000_000                # exclusive party indices of member k start at (k+1) * this
THIRD_PARTY_OFFSET = 5_000_000


@dataclass(frozen=True)
class Person:
    id_number: str
    birth_date: dt.date
    gender: str
    phone: str | None
    vin: str
    region: str


@dataclass(frozen=True)
class Organisation:
    credit_code: str
    region: str
    index: int
    fleet_size: int


def resident_id(region: str, birth: dt.date, male: bool, r: random.Random) -> str:
    """A valid 18-character resident identity number of a person born in ``region``."""
    address = f"{region[:2]}{r.randint(1, 15):02d}{r.randint(1, 20):02d}"
    sequence = r.randrange(0, 500) * 2 + (1 if male else 0)
    first17 = f"{address}{birth:%Y%m%d}{sequence:03d}"
    return first17 + resident_id_check_char(first17)


def credit_code(region: str, r: random.Random) -> str:
    """A valid unified social credit code of an organisation registered in ``region``."""
    address = f"{region[:2]}{r.randint(1, 15):02d}{r.randint(1, 20):02d}"
    body = "".join(r.choices(CREDIT_ALPHABET, k=9))
    first17 = pick_one(r, CREDIT_KINDS) + address + body
    return first17 + credit_code_check_char(first17)


def vin(r: random.Random, model_year: int) -> str:
    """A valid 17-character VIN (no I, O or Q) with its check digit in position 9."""
    vds, plant = "".join(r.choices(VIN_ALPHABET, k=5)), r.choice(VIN_ALPHABET)
    year = VIN_YEARS[(model_year - 1980) % len(VIN_YEARS)]
    serial = f"{r.randrange(1_000_000):06d}"
    draft = f"{r.choice(WMIS)}{vds}0{year}{plant}{serial}"
    return draft[:8] + vin_check_char(draft) + draft[9:]


def mobile(r: random.Random) -> str:
    """A mainland mobile number; a few are written with the country code."""
    number = pick_one(r, MOBILE_PREFIXES) + f"{r.randrange(100_000_000):08d}"
    form = r.random()
    return ("+86" + number) if form < 0.03 else ("86" + number) if form < 0.05 else number


class Population:
    """Every party of the synthetic market; members draw from it by (region, index)."""

    def __init__(self, seed: int, shared: Mapping[str, int], reference: dt.date) -> None:
        self.seed = seed
        self.shared = dict(shared)
        self.reference = reference
        self._people: dict[tuple[str, int], Person] = {}
        self._organisations: dict[tuple[str, int], Organisation] = {}

    def shared_size(self, region: str) -> int:
        return max(1, self.shared.get(region, 1))

    def person(self, region: str, index: int) -> Person:
        key = (region, index)
        if key not in self._people:
            self._people[key] = self._make_person(region, index)
        return self._people[key]

    def organisation(self, region: str, index: int) -> Organisation:
        key = (region, index)
        if key not in self._organisations:
            r = rng(self.seed, "org", region, index)
            fleet = min(1 + int(r.paretovariate(1.2)), 200)
            self._organisations[key] = Organisation(credit_code(region, r), region, index, fleet)
        return self._organisations[key]

    def fleet_vin(self, org: Organisation, number: int) -> str:
        """The VIN of vehicle ``number`` (0-based) of an organisation's fleet."""
        r = rng(self.seed, "fleet", org.region, org.index, number % org.fleet_size)
        return vin(r, self.reference.year - r.randint(0, 13))

    def _make_person(self, region: str, index: int) -> Person:
        r = rng(self.seed, "person", region, index)
        age_days = int(365.25 * r.uniform(19, 78))
        birth = self.reference - dt.timedelta(days=age_days)
        male = r.random() < 0.56
        number = resident_id(region, birth, male, r)
        phone = mobile(r) if r.random() < 0.88 else None
        car = vin(r, self.reference.year - r.randint(0, 13))
        return Person(number, birth, "M" if male else "F", phone, car, region)


class PartyDraw:
    """How one member meets its customers: mostly its own, sometimes ones shared with others."""

    def __init__(self, population: Population, member_no: int, r: random.Random,
                 shared_share: float = 0.2) -> None:
        self.population = population
        self.base = (member_no + 1) * MEMBER_RANGE
        self.r = r
        self.shared_share = shared_share
        self._next: dict[tuple[str, str], int] = {}

    def _index(self, region: str, kind: str, offset: int = 0) -> int:
        if self.r.random() < self.shared_share:
            return self.r.randrange(self.population.shared_size(region))
        n = self._next.get((region, kind), 0)
        self._next[(region, kind)] = n + 1
        return self.base + offset + n

    def person(self, region: str) -> Person:
        return self.population.person(region, self._index(region, "P"))

    def organisation(self, region: str) -> Organisation:
        return self.population.organisation(region, self._index(region, "O"))

    def third_party(self, region: str) -> Person:
        """A claimant who is not the insured (another driver, an employee, a passer-by)."""
        return self.population.person(region, self._index(region, "T", THIRD_PARTY_OFFSET))

    def third_party_organisation(self, region: str) -> Organisation:
        return self.population.organisation(region, self._index(region, "B", THIRD_PARTY_OFFSET))
