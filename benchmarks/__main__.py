"""``make bench``: InsurShare next to the floor and next to GX's pandas engine, in one run.

For a 10-million-row claim file and a 10-million-row premium file (1 million with --quick):
(a) the floor, DuckDB reading the CSV and writing Parquet with no checks; (b) InsurShare, intake
to published with every rule; (c) GX's pandas engine running the same suite on the same rows.
Then the marts at scale (a lake of 100 million claim snapshot rows; 10 million with --quick),
a rebuild after one new submission, an industry triangle against a plain column scan,
member scaling (the marts and products builds for 5, 50 and 400 members of the same size),
small-file ingestion as the lake's history grows, start-up times, bulk submission (1,000 small files in one ``insurshare submit`` against one
process per file, measured on a sample and extrapolated), many small files end to end (1,000 files
of 200 rows from 200 members: one bulk submit and one ingestion run), and the portal under 50 concurrent clients with one and two API processes. Every measurement runs in its own process (wall time and peak RSS are its
own); the ratios are printed and written to ``<out>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bulk import bulk_figures
from benchmarks.data import write_claim_csv, write_policy_csv
from benchmarks.history import history_part
from benchmarks.lake import add_one_submission, build_big_lake
from benchmarks.machines import machines_part, s3_part
from benchmarks.members import SIZES, members_part
from benchmarks.portal import portal_part
from benchmarks.small import small_part
from benchmarks.startup import startup_figures
from pipelines.config import setting

ROOT = Path(__file__).resolve().parent.parent


def measure(task: str, *args: str, env: dict | None = None, timeout: float | None = None) -> dict:
    """Run ``benchmarks.child task args`` in a new process; add its wall time. A child still
    running after ``timeout`` seconds is killed and reported as ``timed_out`` (a lower bound)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.child", task, *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"timed_out": True, "wall": round(time.perf_counter() - start, 2), "peak_rss_mb": None}
    wall = time.perf_counter() - start
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{task} failed:\n{err[-3000:]}")
    result = json.loads(line[len("RESULT "):])   # its peak_rss_mb is the child's own (VmHWM)
    result.update(wall=round(wall, 2))
    return result


def say(text: str) -> None:
    print(text, flush=True)


def _home(path: Path) -> Path:
    from pipelines.config import Settings
    from pipelines.keys import create_keys
    from pipelines.members import add_members

    shutil.rmtree(path, ignore_errors=True)
    settings = Settings(home=path)
    create_keys(settings)
    add_members(settings, {"M001": "Benchmark member"})
    return path


def large_files(out: Path, rows: int) -> dict[str, Path]:
    """The premium and claim files of ``rows`` rows (written once, reused by later parts and runs)."""
    files = {"policy": out / f"policy_{rows}.csv", "claim": out / f"claim_{rows}.csv"}
    if not files["policy"].exists():
        say(f"writing a {rows:,}-row premium file ...")
        write_policy_csv(files["policy"], rows)
    if not files["claim"].exists():
        say(f"writing a {rows:,}-row claim file ...")
        write_claim_csv(files["claim"], rows, policies=rows)
    return files


def ingest_part(out: Path, rows: int, skip_gx: bool, gx_timeout: float) -> dict:
    results = {}
    files = large_files(out, rows)
    home = _home(out / "home")
    env = {"INSURSHARE_HOME": str(home), "INSURSHARE_GX_MAX_ROWS": "0", "INSURSHARE_DUCKDB_MEMORY": "1500MB"}
    refs = out / "policy_numbers.parquet"
    for dataset in ("policy", "claim"):
        csv = files[dataset]
        say(f"{dataset}: (a) floor, DuckDB CSV -> Parquet ...")
        a = measure("floor", csv, out / f"{dataset}_floor.parquet")
        say(f"{dataset}: (b) InsurShare, intake to published, all rules ...")
        b = measure("insurshare", home, dataset, csv, env=env)
        if dataset == "policy":
            import duckdb

            duckdb.sql(f"COPY (SELECT policy_no AS value FROM read_parquet('{out / 'policy_floor.parquet'}')) "
                       f"TO '{refs}' (FORMAT parquet)")
        c = None
        if not skip_gx:
            say(f"{dataset}: (c) GX pandas engine, same suite, same rows ...")
            c = measure("gx", dataset, out / f"{dataset}_floor.parquet", refs if dataset == "claim" else "",
                        timeout=gx_timeout)
        results[dataset] = {"rows": a["rows"], "floor": a, "insurshare": b, "gx": c,
                            "insurshare_over_floor": round(b["wall"] / a["wall"], 2),
                            "gx_over_insurshare": round(c["wall"] / b["wall"], 2) if c else None,
                            "gx_timed_out": bool(c and c.get("timed_out"))}
        say(_line(dataset, results[dataset]))
    return results


def _line(dataset: str, r: dict) -> str:
    a, b, c = r["floor"], r["insurshare"], r["gx"]
    parts = [f"{dataset} {r['rows']:,} rows:",
             f"floor {a['wall']:.1f} s ({r['rows'] / a['wall']:,.0f} rows/s, {a['peak_rss_mb']} MB)",
             f"InsurShare {b['wall']:.1f} s ({r['rows'] / b['wall']:,.0f} rows/s, {b['peak_rss_mb']} MB)"]
    more = ">" if r.get("gx_timed_out") else ""
    if c and more:
        parts.append(f"GX stopped unfinished after {c['wall']:.0f} s")
    elif c:
        parts.append(f"GX {c['wall']:.1f} s ({r['rows'] / c['wall']:,.0f} rows/s, {c['peak_rss_mb']} MB)")
    parts.append(f"b/a {r['insurshare_over_floor']}" + (f", c/b {more}{r['gx_over_insurshare']}" if c else ""))
    return "  ".join(parts)


def marts_part(out: Path, claim_rows: int) -> dict:
    home = _home(out / "marts_home")
    say(f"marts: writing a lake of {claim_rows:,} claim snapshot rows ...")
    shape = build_big_lake(home, claim_rows)
    env = {"INSURSHARE_HOME": str(home), "INSURSHARE_DUCKDB_MEMORY": "1500MB"}
    say("marts: full build ...")
    full = measure("marts", home, env=env)
    say("marts: one new submission, then the rebuild ...")
    add_one_submission(home)
    again = measure("marts", home, "incremental", env=env)
    say("marts: industry paid triangle, and the plain scan of its columns ...")
    tri = measure("triangle", home, env=env)
    scan = measure("scan", home, env=env)
    result = {"lake": shape, "full_build": full, "rebuild_after_one_submission": again,
              "triangle": tri, "scan": scan, "triangle_over_scan": round(tri["seconds"] / max(scan["seconds"], 1e-6), 1)}
    say(f"marts from {claim_rows:,} claim rows: build {full['wall']:.1f} s ({full['peak_rss_mb']} MB); "
        f"after one submission {again['wall']:.1f} s ({again['how']}); triangle {tri['seconds']:.2f} s vs scan "
        f"{scan['seconds']:.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 million rows (10 million for the marts)")
    parser.add_argument("--rows", type=int, help="rows per file [10,000,000; 1,000,000 with --quick]")
    parser.add_argument("--marts-rows", type=int, help="claim rows of the marts lake [100,000,000; 10,000,000 quick]")
    parser.add_argument("--out", type=Path, default=Path(setting("INSURSHARE_HOME").read(os.environ)) / "bench")
    parser.add_argument("--skip-gx", action="store_true", help="leave out GX's pandas engine")
    parser.add_argument("--gx-timeout", type=float, default=600,
                        help="stop GX after this many seconds and report the time as a lower bound [600]")
    parser.add_argument("--parts", default="ingest,marts,startup,bulk,small,members,history,portal,machines,s3",
                        help="which parts to run, comma-separated: ingest, marts, startup, bulk, small, members, "
                             "history, portal, machines, s3")
    parser.add_argument("--machines-files", type=int, default=40,
                        help="small files ingested through the real scheduler with 1 and 2 Celery workers [40]")
    parser.add_argument("--members", default=",".join(map(str, SIZES)),
                        help="member counts of the members part, comma-separated [5,50,400]")
    parser.add_argument("--member-policies", type=int, default=2000, help="policies per member of the members part [2,000]")
    parser.add_argument("--history-probes", default="100,1000,3000",
                        help="numbers of earlier snapshots at which the history part times small files [100,1000,3000]")
    parser.add_argument("--history-files", type=int, default=10, help="small files ingested at each probe [10]")
    parser.add_argument("--bulk-files", type=int, default=1000, help="small files of the bulk submission part [1,000]")
    parser.add_argument("--bulk-sample", type=int, default=20,
                        help="files submitted one process each, to extrapolate the per-process figure [20]")
    parser.add_argument("--small-files", type=int, default=1000,
                        help="files of 200 rows of the small-files part, submitted and ingested [1,000]")
    parser.add_argument("--portal-clients", type=int, default=50, help="concurrent portal clients [50]")
    parser.add_argument("--portal-seconds", type=float, default=20, help="seconds per portal scenario [20]")
    args = parser.parse_args()
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    marts_rows = args.marts_rows or (10_000_000 if args.quick else 100_000_000)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict = {"machine": _machine(), "rows": rows, "marts_rows": marts_rows}
    parts = args.parts.split(",")
    if "startup" in parts:
        results["startup"] = startup_figures(say)
    if "ingest" in parts:
        results["ingest"] = ingest_part(args.out, rows, args.skip_gx, args.gx_timeout)
    if "marts" in parts:
        results["marts"] = marts_part(args.out, marts_rows)
    if "bulk" in parts:
        results["bulk"] = bulk_figures(args.out, args.bulk_files, args.bulk_sample, say)
    if "members" in parts:
        sizes = tuple(int(n) for n in args.members.split(","))
        results["members"] = members_part(args.out, say, measure, _home, sizes, args.member_policies)
    if "small" in parts:
        results["small"] = small_part(args.out, args.small_files, say)
    if "portal" in parts:
        results["portal"] = portal_part(args.out, say, clients=args.portal_clients, seconds=args.portal_seconds)
    if "machines" in parts:
        results["machines"] = machines_part(args.out, say, args.machines_files)
    if "s3" in parts:
        results["s3"] = s3_part(args.out, rows, say)
    if "history" in parts:
        probes = [int(p) for p in args.history_probes.split(",")]
        results["history"] = history_part(args.out, probes, args.history_files, say)
    results["seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    say(f"done in {results['seconds']:.0f} s; results in {args.out / 'results.json'}")


def _machine() -> dict:
    mem = next((line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")), "0")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    return {"cpus": os.cpu_count(), "memory_gb": round(int(mem) / 1024 / 1024, 1), "cpu": cpu,
            "python": platform.python_version(), "load_at_start": os.getloadavg()[0]}


if __name__ == "__main__":
    main()
