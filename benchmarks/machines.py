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
