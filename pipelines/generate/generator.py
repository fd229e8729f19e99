"""``generate``: synthetic member submissions with a ground truth of their defects."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.domain import Period
from pipelines.generate import outputs, periods
from pipelines.generate.arrivals import with_arrival_times
from pipelines.generate.claims import simulate_claims
from pipelines.generate.identities import PartyDraw, Population
from pipelines.generate.members import MemberProfile, member_profiles
from pipelines.generate.numbers import Numbering
from pipelines.generate.policies import BASE_NEW_POLICIES, WARM_UP_QUARTERS, simulate_book
from pipelines.generate.randomness import rng
from pipelines.generate.scenarios import Scenario, apply_scenarios, plan_scenarios
from pipelines.generate.submissions import member_files

SHARED_DRAW_SHARE = 0.24     # share of a member's new customers drawn from the market-wide pool
SHARED_MULTIPLICITY = 2.5   # how many draws a pooled customer gets on average


@dataclass(frozen=True)
class GenerateResult:
    out_dir: Path
    files: int                 # data files written (each has a manifest beside it)
    rows: int                  # data rows in them
    defective_rows: int        # rows listed in the ground truth
    index: Path
    ground_truth: Path
    seconds: float


def generate(out_dir: Path, *, members: int = 5, quarters: int = 8, seed: int = 42,
             end_period: str = "2025Q4", scale: float = 1.0, defect_rate: float = 0.015,
             scenarios: bool = True, progress: Callable[[str], None] | None = None) -> GenerateResult:
    """Write ``members`` members' premium and claim files for ``quarters`` quarters to ``out_dir``.

    The same arguments give the same files, byte for byte. ``scale`` multiplies the volume of
    business; ``defect_rate`` is the share of rows of each file given one defect each.
    ``scenarios`` adds the resubmissions (rejected, truncated, superseded first versions) and
    one claim file that is never sent (listed under ``missing`` in the index).
    Files of an earlier run in ``out_dir`` are overwritten or left alone; ``index.json`` and
    ``ground_truth.csv`` describe this run's files only.
    """
    started = time.perf_counter()
    if scale <= 0 or not 0 <= defect_rate < 1:
        raise ValueError("scale must be positive and defect_rate in [0, 1)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    window = periods.window(end_period, quarters)
    profiles = member_profiles(members, seed)
    population = Population(seed, shared_pool_sizes(profiles, window, scale), reference=window[-1].end)
    plan = plan_scenarios([p.member_id for p in profiles], window) if scenarios else ()
    written: list[outputs.Written] = []
    for profile in profiles:
        done = _generate_member(out_dir, profile, window, population, plan, seed, scale, defect_rate)
        written += done
        if progress:
            progress(_progress_line(profile, done))
    ordered = outputs.submission_order(with_arrival_times(written, seed))
    missing = [(s.member_id, s.dataset, s.period) for s in plan if s.kind == "missing"]
    index = outputs.write_index(out_dir, seed, profiles, ordered, missing)
    truth = outputs.write_ground_truth(out_dir, ordered)
    return GenerateResult(out_dir=out_dir, files=len(ordered), rows=sum(w.rows for w in ordered),
                          defective_rows=sum(len(w.truth) for w in ordered), index=index,
                          ground_truth=truth, seconds=round(time.perf_counter() - started, 2))


def _generate_member(out_dir: Path, profile: MemberProfile, window: tuple[Period, ...],
                     population: Population, plan: tuple[Scenario, ...], seed: int, scale: float,
                     defect_rate: float) -> list[outputs.Written]:
    member = profile.member_id
    numbering = Numbering(profile)
    parties = PartyDraw(population, profile.number, rng(seed, member, "parties"), SHARED_DRAW_SHARE)
    book = simulate_book(profile, window, parties, numbering, rng(seed, member, "book"), scale)
    claims = simulate_claims(profile, book.claimable_terms(), window, parties, numbering,
                             rng(seed, member, "claims"))
    files = member_files(profile, window, book, claims, numbering, seed, defect_rate)
    files = apply_scenarios(files, plan, numbering, seed)
    return [outputs.write_submission(out_dir, f) for f in files]


def shared_pool_sizes(profiles: tuple[MemberProfile, ...], window: tuple[Period, ...],
                      scale: float) -> dict[str, int]:
    """Size of the market-wide customer pool per region, so pooled customers meet ~2.5 members."""
    quarters = len(window) + WARM_UP_QUARTERS
    draws: dict[str, float] = {}
    for p in profiles:
        total = sum(p.regions.values())
        new = BASE_NEW_POLICIES * p.size * scale * quarters * SHARED_DRAW_SHARE
        for region, weight in p.regions.items():
            draws[region] = draws.get(region, 0.0) + new * weight / total
    return {region: max(1, round(n / SHARED_MULTIPLICITY)) for region, n in draws.items()}


def _progress_line(profile: MemberProfile, done: list[outputs.Written]) -> str:
    premium = sum(w.rows for w in done if w.dataset == "policy")
    claims = sum(w.rows for w in done if w.dataset == "claim")
    return (f"{profile.member_id} ({profile.format_label}): {premium:,} premium rows, "
            f"{claims:,} claim rows in {len(done)} files")
