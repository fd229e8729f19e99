"""Fixtures of the product tests: multi-member lakes with their marts and products built.

- ``small_market``: four members, one line, four provinces, one year; every number known, so
  the primary and secondary decisions can be pinned (rows written straight into the lake).
- ``market``: five members of unequal size in three lines and four provinces over two years,
  random but seeded: many cells with fewer than three members or a dominant one.
- ``generated``: the generator's five members through the real pipeline (intake, validation,
  pseudonymisation, publish), so that the products can be scanned for the raw identifiers of
  the generated files.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.config import Settings
from pipelines.keys import create_keys
from pipelines.marts.build import build_marts
from pipelines.products import build_products
from tests.marts.conftest import claim_snapshots, insert_rows, policy

D = dt.date
QUARTER_ENDS = [D(y, m, 31 if m in (3, 12) else 30) for y in (2023, 2024) for m in (3, 6, 9, 12)]


def built(home: Path, policies: list[dict], claims: list[dict]) -> Settings:
    """A lake with these rows, its marts and its products (default disclosure rules)."""
    settings = Settings(home=home)
    create_keys(settings)
    insert_rows(settings, "policy", policies)
    insert_rows(settings, "claim", claims)
    build_marts(settings)
    build_products(settings)
    return settings


# (member, province) -> premium of a one-year policy written 2024-01-01 (exposure = premium / 100),
# plus an endorsement of a tenth of it on 2024-10-01 (so that the calendar covers the year).
SMALL_PREMIUM = {
    ("M001", "110000"): 100.0, ("M002", "110000"): 100.0, ("M003", "110000"): 100.0,   # passes
    ("M001", "310000"): 50.0,                                                          # one member
    ("M001", "440000"): 300.0, ("M002", "440000"): 20.0, ("M003", "440000"): 20.0,     # M001 has 88%
    ("M002", "510000"): 300.0, ("M003", "510000"): 300.0, ("M004", "510000"): 300.0,   # passes
}
# One claim (accident 2024-02-01, paid 100 then 150) per (member, province):
SMALL_CLAIMS = [("M002", "510000"), ("M003", "510000"), ("M004", "510000"), ("M001", "110000"),
                ("M001", "440000"), ("M002", "440000"), ("M003", "440000")]
# The same person claims at M002, M003 and M004 on the same day: each claim is linked to two others.
SHARED_CLAIMANT = "k1:" + "ab" * 32


def small_rows() -> tuple[list[dict], list[dict]]:
    policies = [policy(m, D(2024, 1, 1), D(2025, 1, 1), p, p / 100, region=r) for (m, r), p in SMALL_PREMIUM.items()]
    policies += [policy(m, D(2024, 10, 1), D(2025, 1, 1), p / 10, 0.0, region=r, kind="EN")
                 for (m, r), p in SMALL_PREMIUM.items()]
    ends = [D(2024, 3, 31), D(2024, 6, 30), D(2024, 9, 30), D(2024, 12, 31)]
    claims = []
    for n, (m, r) in enumerate(SMALL_CLAIMS):
        claimant = SHARED_CLAIMANT if r == "510000" else f"k1:{n:064x}"
        claims += [{**row, "claimant_id": claimant} for row in claim_snapshots(
            m, f"C{n}", D(2024, 2, 1), D(2024, 2, 2), [100.0, 150.0], 300.0, None, region=r, valuations=ends)]
    return policies, claims


@pytest.fixture(scope="session")
def small_market(tmp_path_factory) -> Settings:
    return built(tmp_path_factory.mktemp("small") / "home", *small_rows())


MEMBERS = {"M001": (5.0, 1.0), "M002": (3.0, 0.8), "M003": (2.0, 0.6), "M004": (1.0, 0.5), "M005": (1.0, 0.4)}
LINES, REGIONS = ("MCOM", "EPROP", "HLTH"), ("110000", "310000", "440000", "510000")


def market_rows(seed: int = 3) -> tuple[list[dict], list[dict]]:
    """Members of sizes 5:3:2:1:1 (the larger ones present in more cells), 2023-2024; M003
    lacks its claim snapshot of 2024-06-30."""
    rnd = random.Random(seed)
    policies, claims = [], []
    for member, (size, presence) in MEMBERS.items():
        for line in LINES:
            for region in REGIONS:
                if rnd.random() > presence:
                    continue
                for _ in range(rnd.randint(1, 3)):
                    eff = D(2023, 1, 1) + dt.timedelta(days=rnd.randrange(0, 690))
                    premium = round(size * rnd.uniform(500, 1500), 2)
                    policies.append(policy(member, eff, eff + dt.timedelta(days=365), premium,
                                           round(premium / 1000, 6), line=line, region=region))
                    if rnd.random() < 0.7:
                        accident = eff + dt.timedelta(days=rnd.randrange(0, 200))
                        report = accident + dt.timedelta(days=rnd.randrange(1, 90))
                        if report > QUARTER_ENDS[-1]:
                            continue
                        paid = [round(size * rnd.uniform(50, 400) * (k + 1), 2) for k in range(rnd.randint(1, 4))]
                        claims += claim_snapshots(member, f"{member}-{len(claims):05d}", accident, report, paid,
                                                  paid[-1] * 1.3, rnd.choice([None, 1, 2]), line=line,
                                                  region=region, valuations=QUARTER_ENDS)
    # M003's claim file of 2024Q2 was never accepted: the cells it would have fed have no value
    return policies, [c for c in claims if not (c["member_id"] == "M003" and c["valuation_date"] == MISSING)]


MISSING = D(2024, 6, 30)


@pytest.fixture(scope="session")
def market(tmp_path_factory) -> Settings:
    return built(tmp_path_factory.mktemp("market") / "home", *market_rows())


@dataclass(frozen=True)
class Generated:
    settings: Settings
    out_dir: Path
    index: dict


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Generated:
    """Five generated members, two quarters (with the resubmission scenarios and a missing
    claim file), ingested by the real pipeline; then marts and products."""
    from pipelines.generate import generate
    from tests.generate.test_pipeline import run_pipeline

    out = tmp_path_factory.mktemp("generated") / "out"
    result = generate(out, members=5, quarters=2, seed=29, scale=0.1)
    index = json.loads(result.index.read_text(encoding="utf-8"))
    settings = run_pipeline(tmp_path_factory.mktemp("generated-home"), out, index, index["submissions"])
    build_marts(settings)
    build_products(settings)
    return Generated(settings, out, index)
