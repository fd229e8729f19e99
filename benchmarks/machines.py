"""Many machines on one host: files per second through the real scheduler with one Celery worker and
with two (``pipelines.airflow.trial``: PostgreSQL catalog and metadata, Redis, SeaweedFS), on the
same small files, and the same files ingested by one ``insurshare ingest`` on the embedded
defaults for the baseline. Each run starts from a fresh platform; the time is from the trigger of
``ingest_submissions`` to the end of its run.

On this 2-core host the two workers share the cores with the scheduler, the API server, the
database and the store, so the figure shows the overhead of the distributed path and whether a
second worker adds throughput here; on separate machines each worker brings its own cores.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.bulk import _home, _insurshare
from benchmarks.small import write_small_files

FILES = 40
MEMBERS = 20


def machines_part(out: Path, say: Callable[[str], None], files: int = FILES) -> dict:
    from pipelines.airflow.trial import Trial, services_missing

    if (missing := services_missing()) is not None:
        say(f"machines: skipped ({missing})")
        return {"skipped": missing}
    from pipelines import seaweed

    if not seaweed.answering():
        seaweed.start()
    from pipelines.config import Settings
    from pipelines.members import add_members

    folder = out / "machines-files"
    write_small_files(folder, files, members=MEMBERS)
    members = {f"M{m:03d}": f"Benchmark member {m}" for m in range(1, min(MEMBERS, files) + 1)}
    result: dict = {"files": files, "rows_per_file": 200}
    result["single_ingest"] = _single(out / "machines-single", folder, sorted(members))
    say(f"machines: {files} files on one machine, `insurshare ingest`: {result['single_ingest']['seconds']:.1f} s")
    for workers in (1, 2):
        root = out / f"machines-{workers}"
        subprocess.run(["rm", "-rf", str(root)], check=True)
        trial = Trial.create(root, workers=workers)
        try:
            add_members(Settings.from_env({**trial.env, "INSURSHARE_HOME": str(trial.intake)}), members)
            trial.cli(trial.intake, "submit", str(folder))
            trial.start()
            state, tasks = trial.run("ingest_submissions")
        finally:
            trial.stop()
            trial.drop()
        seconds = trial.seconds["ingest_submissions"]
        result[f"workers_{workers}"] = {"state": state, "seconds": round(seconds, 1),
                                        "files_per_second": round(files / seconds, 2), "tasks": len(tasks)}
        say(f"machines: {workers} worker(s): {files} files in {seconds:.1f} s ({files / seconds:.2f} files/s, "
            f"run {state})")
    one, two = result["workers_1"]["seconds"], result["workers_2"]["seconds"]
    result["two_over_one"] = round(one / two, 2)
    result["one_worker_over_single"] = round(one / result["single_ingest"]["seconds"], 1)
    say(f"machines: 2 workers / 1 worker throughput {result['two_over_one']}x; 1 worker through Airflow takes "
        f"{result['one_worker_over_single']}x the single-machine ingest")
    return result


def _single(home: Path, folder: Path, members: list[str]) -> dict:
    env = _home(home, members)
    _insurshare(env, "submit", str(folder))
    clock = time.monotonic()
    _insurshare(env, "ingest")
    return {"seconds": round(time.monotonic() - clock, 1)}


def s3_part(out: Path, rows: int, say: Callable[[str], None]) -> dict:
    """The large premium and claim files, intake to published, into a home on local disk and into
    one with everything durable on S3 (SeaweedFS on this host), each in its own process."""
    import os
    import uuid

    from benchmarks.__main__ import large_files, measure
    from pipelines import seaweed
    from pipelines.config import Settings
    from pipelines.keys import create_keys
    from pipelines.members import add_members

    if not seaweed.answering():
        seaweed.start()
    files = large_files(out, rows)
    common = {"INSURSHARE_GX_MAX_ROWS": "0", "INSURSHARE_DUCKDB_MEMORY": "1500MB"}
    where = {"local": {}, "s3": {**seaweed.env(), "INSURSHARE_STORAGE": f"s3://{seaweed.BUCKET}/bench-{uuid.uuid4().hex[:8]}"}}
    result: dict = {"rows": rows}
    for name, extra in where.items():
        home = out / f"s3-home-{name}"
        env = {**common, **extra, "INSURSHARE_HOME": str(home)}
        subprocess.run(["rm", "-rf", str(home)], check=True)
        settings = Settings.from_env({**os.environ, **env})   # the home's first commit goes where its data will
        create_keys(settings)
        add_members(settings, {"M001": "Benchmark member"})
        for dataset in ("policy", "claim"):
            say(f"s3: {dataset} {rows:,} rows into {'S3' if extra else 'local disk'} ...")
            got = measure("insurshare", home, dataset, files[dataset], env=env)
            result.setdefault(dataset, {})[name] = {"wall": got["wall"], "status": got["status"],
                                                    "peak_rss_mb": got.get("peak_rss_mb")}
    for dataset in ("policy", "claim"):
        r = result[dataset]
        r["s3_over_local"] = round(r["s3"]["wall"] / r["local"]["wall"], 2)
        say(f"s3: {dataset} {rows:,} rows: local {r['local']['wall']:.1f} s, S3 {r['s3']['wall']:.1f} s "
            f"({r['s3_over_local']}x)")
    return result

