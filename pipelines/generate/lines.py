"""Market parameters by line of business and coverage.

The code lists themselves come from the contracts (``schemas/codes.yaml``): a line or a
coverage is generated only if the contract lists it, a coverage belongs to the line its code
starts with, and a line or coverage that these tables do not describe gets the defaults.
The numbers are plausible orders of magnitude for Chinese P&C business, not statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from pipelines.contracts import load_contract


@dataclass(frozen=True)
class LineProfile:
    weight: float                                  # share of new policies
    person_share: float                            # share insured by persons
    terms: tuple[tuple[int, float], ...] = ((365, 1.0),)   # (days, weight); 365 = one year
    renew_rate: float = 0.7
    endorse_rate: float = 0.03                     # per policy and quarter in force
    cancel_rate: float = 0.012
    motor: bool = False


@dataclass(frozen=True)
class CoverProfile:
    take_up: float                  # probability that a policy of the line has this coverage
    premium: tuple[float, float]    # median CNY per year, lognormal sigma
    sum_insured: tuple[float, float]
    frequency: float                # claims per coverage-year
    severity: tuple[float, float]   # (unused median, sigma): the median follows from loss_ratio
    report_lag: tuple[float, float, float, float] = (0.85, 7.0, 60.0, 0.9)  # fast share, fast mean, tail median, sigma
    settle: tuple[float, float] = (60.0, 0.9)     # days from report to close: median, sigma
    causes: tuple[tuple[str, float], ...] = (("OTHER", 1.0),)
    first_party: float = 1.0        # share of claims whose claimant is the insured
    loss_ratio: float = 0.6         # expected ultimate loss / premium of the coverage

    @property
    def severity_median(self) -> float:
        """The lognormal median that makes frequency x mean severity = loss_ratio x mean premium."""
        premium_mean = self.premium[0] * math.exp(self.premium[1] ** 2 / 2)
        return self.loss_ratio * premium_mean / (self.frequency * math.exp(self.severity[1] ** 2 / 2))


LINES: dict[str, LineProfile] = {
    "MTPL": LineProfile(0.30, 0.86, renew_rate=0.74, endorse_rate=0.02, motor=True),
    "MCOM": LineProfile(0.26, 0.86, renew_rate=0.70, endorse_rate=0.04, cancel_rate=0.015, motor=True),
    "EPROP": LineProfile(0.05, 0.0, terms=((365, 0.95), (180, 0.05))),
    "HPROP": LineProfile(0.05, 1.0, renew_rate=0.6),
    "ENG": LineProfile(0.012, 0.0, terms=((180, 0.3), (365, 0.4), (730, 0.3)), renew_rate=0.0),
    "LIAB": LineProfile(0.05, 0.1),
    "CRED": LineProfile(0.01, 0.0, renew_rate=0.8),
    "SURE": LineProfile(0.03, 0.95, terms=((365, 0.6), (730, 0.3), (1095, 0.1)), renew_rate=0.0,
                        endorse_rate=0.005),
    "HULL": LineProfile(0.006, 0.05, renew_rate=0.8),
    "CARGO": LineProfile(0.03, 0.05, terms=((30, 0.3), (60, 0.3), (90, 0.2), (365, 0.2))),
    "SPEC": LineProfile(0.004, 0.0, renew_rate=0.9),
    "AGRI": LineProfile(0.05, 0.9, terms=((150, 0.5), (240, 0.3), (365, 0.2)), renew_rate=0.8,
                        endorse_rate=0.005, cancel_rate=0.002),
    "HLTH": LineProfile(0.06, 0.97, renew_rate=0.65, endorse_rate=0.01),
    "ACC": LineProfile(0.07, 0.95, terms=((1, 0.15), (7, 0.1), (30, 0.05), (365, 0.7)),
                       renew_rate=0.6, endorse_rate=0.01),
}
DEFAULT_LINE = LineProfile(0.005, 0.5)

_MOTOR_LAG = (0.92, 3.0, 40.0, 0.8)
_INJURY_LAG = (0.85, 6.0, 60.0, 1.0)
_PROPERTY_LAG = (0.8, 10.0, 60.0, 0.9)
_LIABILITY_LAG = (0.5, 30.0, 300.0, 0.8)

COVERS: dict[str, CoverProfile] = {
    "MTPL-TPL": CoverProfile(1.0, (950, 0.2), (200_000, 0.0), 0.10, (3_000, 1.3), _INJURY_LAG,
                             (60, 1.2), (("TPL", 0.55), ("INJ", 0.45)), 0.0, loss_ratio=0.75),
    "MCOM-OD": CoverProfile(0.9, (2_500, 0.5), (150_000, 0.6), 0.18, (4_000, 1.0), _MOTOR_LAG,
                            (20, 0.8), (("COLL", 0.82), ("THEFT", 0.02), ("FIRE", 0.02),
                                        ("FLOOD", 0.07), ("STORM", 0.07)), loss_ratio=0.65),
    "MCOM-TPL": CoverProfile(0.95, (1_000, 0.4), (2_000_000, 0.5), 0.06, (8_000, 1.4), _INJURY_LAG,
                             (90, 1.2), (("TPL", 0.6), ("INJ", 0.4)), 0.0, loss_ratio=0.6),
    "MCOM-SEAT": CoverProfile(0.4, (80, 0.4), (50_000, 0.5), 0.01, (6_000, 1.2), _INJURY_LAG,
                              (120, 1.0), (("INJ", 1.0),), 0.3, loss_ratio=0.3),
    "EPROP-ALL": CoverProfile(1.0, (15_000, 1.2), (5_000_000, 1.5), 0.04, (30_000, 1.2), _PROPERTY_LAG,
                              (120, 1.0), (("FIRE", 0.3), ("FLOOD", 0.25), ("STORM", 0.25),
                                           ("THEFT", 0.05), ("OTHER", 0.15)), loss_ratio=0.55),
    "EPROP-BI": CoverProfile(0.2, (5_000, 1.0), (2_000_000, 1.2), 0.005, (50_000, 1.3), _PROPERTY_LAG,
                             (200, 0.8), (("FIRE", 0.5), ("FLOOD", 0.3), ("OTHER", 0.2)), loss_ratio=0.4),
    "HPROP-BLD": CoverProfile(0.7, (200, 0.6), (800_000, 0.7), 0.015, (4_000, 1.0), _PROPERTY_LAG,
                              (40, 0.8), (("FIRE", 0.2), ("FLOOD", 0.4), ("STORM", 0.3), ("OTHER", 0.1)), loss_ratio=0.35),
    "HPROP-CNT": CoverProfile(0.8, (150, 0.6), (100_000, 0.7), 0.01, (3_000, 1.0), _PROPERTY_LAG,
                              (40, 0.8), (("THEFT", 0.4), ("FIRE", 0.2), ("FLOOD", 0.3), ("OTHER", 0.1)), loss_ratio=0.3),
    "ENG-CAR": CoverProfile(1.0, (60_000, 1.2), (20_000_000, 1.2), 0.06, (80_000, 1.5), _PROPERTY_LAG,
                            (150, 1.0), (("STORM", 0.3), ("FLOOD", 0.3), ("FIRE", 0.1), ("OTHER", 0.3)), loss_ratio=0.5),
    "LIAB-PUB": CoverProfile(0.6, (3_000, 1.0), (1_000_000, 0.8), 0.03, (15_000, 1.4), _LIABILITY_LAG,
                             (240, 1.0), (("TPL", 0.6), ("INJ", 0.4)), 0.0, loss_ratio=0.45),
    "LIAB-EMP": CoverProfile(0.4, (8_000, 1.0), (3_000_000, 0.8), 0.05, (40_000, 1.3),
                             (0.6, 15.0, 200.0, 0.9), (200, 1.0), (("INJ", 0.9), ("ILL", 0.1)), 0.0, loss_ratio=0.55),
    "CRED-TRD": CoverProfile(1.0, (40_000, 1.0), (5_000_000, 1.0), 0.05, (120_000, 1.0),
                             (0.7, 45.0, 120.0, 0.6), (180, 0.8), (("DEF", 1.0),), loss_ratio=0.5),
    "SURE-LOAN": CoverProfile(1.0, (1_500, 0.7), (100_000, 0.8), 0.03, (30_000, 0.8),
                              (0.8, 30.0, 120.0, 0.6), (120, 0.8), (("DEF", 1.0),), 0.0, loss_ratio=0.6),
    "HULL-ALL": CoverProfile(1.0, (60_000, 1.0), (10_000_000, 1.0), 0.08, (150_000, 1.1), _PROPERTY_LAG,
                             (200, 0.9), (("COLL", 0.5), ("STORM", 0.3), ("FIRE", 0.1), ("OTHER", 0.1)), loss_ratio=0.65),
    "CARGO-ALL": CoverProfile(1.0, (3_000, 1.2), (500_000, 1.0), 0.05, (15_000, 1.4), _PROPERTY_LAG,
                              (90, 0.9), (("COLL", 0.3), ("THEFT", 0.2), ("STORM", 0.2), ("FLOOD", 0.2),
                                          ("OTHER", 0.1)), loss_ratio=0.5),
    "SPEC-SAT": CoverProfile(1.0, (300_000, 0.5), (500_000_000, 0.5), 0.08, (5_000_000, 0.6),
                             _PROPERTY_LAG, (365, 0.7), (("OTHER", 0.8), ("FIRE", 0.2)), loss_ratio=0.4),
    "AGRI-CROP": CoverProfile(0.6, (150, 0.8), (2_000, 0.6), 0.2, (800, 0.9), (0.9, 3.0, 20.0, 0.6),
                              (30, 0.6), (("FLOOD", 0.4), ("STORM", 0.4), ("OTHER", 0.2)), loss_ratio=0.75),
    "AGRI-LIVE": CoverProfile(0.4, (300, 0.8), (5_000, 0.6), 0.1, (1_500, 0.7), (0.9, 3.0, 20.0, 0.6),
                              (30, 0.6), (("ILL", 0.8), ("FLOOD", 0.1), ("OTHER", 0.1)), loss_ratio=0.7),
    "HLTH-MED": CoverProfile(1.0, (500, 0.6), (2_000_000, 0.3), 0.3, (4_000, 1.1), (0.7, 15.0, 60.0, 0.7),
                             (15, 0.8), (("ILL", 0.85), ("INJ", 0.15)), loss_ratio=0.7),
    "ACC-PA": CoverProfile(1.0, (120, 0.8), (500_000, 0.8), 0.03, (8_000, 1.3), (0.7, 10.0, 90.0, 0.8),
                           (60, 1.0), (("INJ", 1.0),), 0.9, loss_ratio=0.35),
}
DEFAULT_COVER = CoverProfile(1.0, (1_000, 0.8), (100_000, 1.0), 0.03, (5_000, 1.2))


@dataclass(frozen=True)
class Market:
    """The lines and coverages of the contract, each with its profile."""

    lines: dict[str, LineProfile]
    covers: dict[str, dict[str, CoverProfile]]     # line -> coverage code -> profile
    causes: tuple[str, ...]
    channels: tuple[str, ...]

    def motor_lines(self) -> tuple[str, ...]:
        return tuple(code for code, p in self.lines.items() if p.motor)


@cache
def market() -> Market:
    """The market of the current policy and claim contracts."""
    policy, claim = load_contract("policy"), load_contract("claim")
    line_codes = policy.codes_of("line_of_business")
    motor = {c.code for c in policy.code_lists["line_of_business"].codes if c.attributes.get("motor")}
    lines = {code: _line(code, code in motor) for code in line_codes}
    covers: dict[str, dict[str, CoverProfile]] = {code: {} for code in line_codes}
    for code in policy.codes_of("coverage_code"):
        line = code.split("-", 1)[0]
        if line in covers:
            covers[line][code] = COVERS.get(code, DEFAULT_COVER)
    causes = claim.codes_of("cause_code")
    covers = {line: {c: _known_causes(p, causes) for c, p in cs.items()} for line, cs in covers.items()}
    return Market(lines={k: v for k, v in lines.items() if covers[k]},
                  covers={k: v for k, v in covers.items() if v},
                  causes=causes, channels=policy.codes_of("channel"))


def _line(code: str, motor: bool) -> LineProfile:
    profile = LINES.get(code, DEFAULT_LINE)
    if profile.motor != motor:
        profile = LineProfile(**{**profile.__dict__, "motor": motor})
    return profile


def _known_causes(profile: CoverProfile, causes: tuple[str, ...]) -> CoverProfile:
    kept = tuple((c, w) for c, w in profile.causes if c in causes) or ((causes[-1], 1.0),)
    return CoverProfile(**{**profile.__dict__, "causes": kept})
