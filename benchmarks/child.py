"""One measured piece of work, run in its own process so that its time and peak memory are its own.

``python -m benchmarks.child floor CSV OUT.parquet`` | ``insurshare HOME DATASET CSV`` |
``gx DATASET PARQUET REFS.parquet`` | ``marts HOME`` | ``triangle HOME`` | ``scan HOME`` |
``products HOME`` | ``members_lake HOME MEMBERS POLICIES``.
Prints one JSON line with what it measured (rows, seconds of the timed part).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path


def floor(csv: str, out: str) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    t = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out}' (FORMAT parquet)")
    seconds = time.perf_counter() - t
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    return {"rows": rows, "seconds": seconds}


def insurshare(home: str, dataset: str, csv: str) -> dict:
    from pipelines.config import Settings
    from pipelines.ingest import process_submission
    from pipelines.intake import Manifest, receive

    settings = Settings.from_env(home=Path(home))
    t = time.perf_counter()
    got = receive(settings, Path(csv), Manifest.build(member_id="M001", dataset=dataset, period="2025Q1"),
                  today=dt.date(2026, 1, 1))
    intake = time.perf_counter() - t
    outcome = process_submission(settings, got.submission.submission_id)
    seconds = time.perf_counter() - t
    return {"rows": outcome.rows_total, "seconds": seconds, "intake": intake, "status": outcome.status,
            "quarantined": outcome.rows_quarantined, "stages": outcome.timings, "gx": outcome.gx}


def gx(dataset: str, parquet: str, refs: str) -> dict:
    import duckdb

    from pipelines.contracts import load_contract
    from pipelines.validation.context import CheckContext, parse_period
    from pipelines.validation.expectations import validate_frame

    contract = load_contract(dataset)
    con = duckdb.connect()
    cols = ", ".join(f'"{c.name}"' for c in contract.columns)
    t = time.perf_counter()
    frame = con.execute(f"SELECT {cols} FROM read_parquet('{parquet}')").df()
    values = [r[0] for r in con.execute(f"SELECT value FROM read_parquet('{refs}')").fetchall()] if refs else []
    load = time.perf_counter() - t
    references = {r.id: values for r in contract.rules if r.kind in ("exists_in", "unique_across_periods")}
    if dataset == "policy":
        references = {rid: [] for rid in references}
    ctx = CheckContext(member_id="M001", period=parse_period("2025Q1"))
    t = time.perf_counter()
    outcome = validate_frame(frame, contract, ctx, references, name=f"bench-{dataset}")
    return {"rows": len(frame), "seconds": time.perf_counter() - t, "load": load,
            "expectations": outcome.evaluated}


def marts(home: str, mode: str = "full") -> dict:
    """``full``: every mart from every row (``--force``); ``incremental``: what a build after a new
    submission does (only the slices the submission touched are recomputed)."""
    from pipelines.config import Settings
    from pipelines.marts.build import build_marts

    settings = Settings.from_env(home=Path(home))
    t = time.perf_counter()
    result = build_marts(settings, force=mode == "full")
    return {"seconds": time.perf_counter() - t, "rows": result.rows, "mode": mode,
            "how": result.how() if not result.skipped else "skipped", "steps": result.steps}


def products(home: str) -> dict:
    """Every audience's product from the lake's marts (``--force``), with the seconds of each step."""
    from pipelines.config import Settings
    from pipelines.products import build_products

    settings = Settings.from_env(home=Path(home))
    t = time.perf_counter()
    result = build_products(settings, force=True)
    return {"seconds": time.perf_counter() - t, "products": len(result.rows), "steps": result.steps,
            "published": result.control.published, "withheld": result.control.withheld}


def members_lake(home: str, members: str, policies: str) -> dict:
    from benchmarks.members import build_members_lake

    t = time.perf_counter()
    return {**build_members_lake(Path(home), int(members), int(policies)), "seconds": time.perf_counter() - t}


def triangle(home: str) -> dict:
    from pipelines import api
    from pipelines.config import Settings

    settings = Settings.from_env(home=Path(home))
    t = time.perf_counter()
    report = api.triangle("MCOM", "paid", settings=settings)
    return {"seconds": time.perf_counter() - t, "origins": len(report.origins)}


def scan(home: str) -> dict:
    """DuckDB merely reading the columns an industry paid triangle reads."""
    from pipelines import store
    from pipelines.config import Settings

    settings = Settings.from_env(home=Path(home))
    con = store.connect(settings)
    t = time.perf_counter()
    con.execute("SELECT count(*), sum(paid_to_date), count(DISTINCT valuation_date), min(accident_date), "
                "count(DISTINCT member_id) FROM lake.claim WHERE line_of_business = 'MCOM'").fetchone()
    return {"seconds": time.perf_counter() - t}


def peak_rss_mb() -> int:
    """This process's own peak resident set (VmHWM). ``wait4``'s ``ru_maxrss`` is no good here: a
    child created by fork + exec starts from its parent's high-water mark, so a large parent
    (one that generated the data) would make every child look as large."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return round(kb / 1024)


TASKS = {"floor": floor, "insurshare": insurshare, "gx": gx, "marts": marts, "triangle": triangle, "scan": scan,
         "products": products, "members_lake": members_lake}

if __name__ == "__main__":
    result = TASKS[sys.argv[1]](*sys.argv[2:])
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result, default=str))
