"""Helpers for the tests that run a real Airflow: the command line in a subprocess, processes
read from /proc, and waits on Airflow's REST API."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.airflow.client import AirflowClient
from pipelines.airflow.scheduler import process_start_ticks, session_members
from pipelines.config import PROJECT_ROOT, Settings


def insurshare(settings: Settings, *args: str, timeout: float = 600,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `insurshare ARGS` for the settings' home in a subprocess, as an operator would, with the
    embedded defaults (no AIRFLOW* or INSURSHARE_* variable from the caller's environment) and ``env``."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "INSURSHARE_"))}, **(env or {})}
    env["INSURSHARE_HOME"] = str(settings.home)
    return subprocess.run([sys.executable, "-m", "pipelines", *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout)


SMALL_DEMO = ["--members", "3", "--quarters", "2", "--seed", "11", "--scale", "0.05"]


def demo_steps(index: Path, generate: list[str] = SMALL_DEMO) -> list[list[str]]:
    """The `insurshare` commands of the Makefile's demo recipe, in order, with ``generate``'s
    options instead of the demo's (a smaller data set)."""
    recipe = (PROJECT_ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    steps = []
    for line in recipe.replace("\\\n", " ").splitlines()[1:]:
        line = line.strip()
        assert line.startswith("$(INSURSHARE) "), f"demo recipe line the tests do not know: {line}"
        args = [index.as_posix() if a == "$(INDEX)" else a for a in shlex.split(line.removeprefix("$(INSURSHARE) "))]
        steps.append(args[:1] + generate if args[0] == "generate" else args)
    return steps


def when(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp)


def processes_of(leaders: list[int]) -> dict[int, int | None]:
    """Every live process in the sessions of ``leaders``, with its start time (to tell a reused pid)."""
    return {pid: process_start_ticks(pid) for sid in leaders for pid in session_members(sid)}


def still_alive(procs: dict[int, int | None]) -> set[int]:
    return {pid for pid, ticks in procs.items() if ticks is not None and process_start_ticks(pid) == ticks}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def listening_hosts(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    hosts = set()
    for name in ("tcp", "tcp6"):
        path = Path(f"/proc/net/{name}")
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:
                hosts.add(".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0)) if len(addr) == 8 else addr)
    return hosts


def most_at_once(task_instances: list[dict]) -> int:
    """The most task instances that ran at the same moment."""
    edges = sorted([(when(t["start_date"]), 1) for t in task_instances if t["start_date"] and t["end_date"]]
                   + [(when(t["end_date"]), -1) for t in task_instances if t["start_date"] and t["end_date"]])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def wait_until_idle(client: AirflowClient, dag_ids: tuple[str, ...], timeout: float, quiet: float = 90) -> None:
    """Wait until the DAGs have no unfinished run and none is due within ``quiet`` seconds (the
    scheduled runs that unpausing starts at once have run), so the next work is the test's own."""
    deadline = time.monotonic() + timeout
    while True:
        busy = [r["dag_run_id"] for d in dag_ids for r in client.dag_runs(d) if r["state"] in ("queued", "running")]
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=quiet)
        due = [d for d in dag_ids if (n := client.dag(d)["next_dagrun_run_after"]) and when(n) <= soon]
        if not busy and not due:
            return
        assert time.monotonic() < deadline, f"still busy after {timeout} s: {busy} {due}"
        time.sleep(2)


def wait_for_reports(client: AirflowClient, after: dt.datetime, timeout: float) -> list[dict]:
    """Wait until quality_reports has no queued lake event nor unfinished run, and one of its runs
    triggered by the lake asset started after ``after``; return its runs."""
    deadline = time.monotonic() + timeout
    while True:
        runs = client.dag_runs("quality_reports")
        queued = client.request("GET", "dags/quality_reports/assets/queuedEvents")["total_entries"]
        active = [r for r in runs if r["state"] in ("queued", "running")]
        later = [r for r in runs if r["run_type"] == "asset_triggered" and r["start_date"]
                 and when(r["start_date"]) >= after]
        if not queued and not active and later:
            return runs
        assert time.monotonic() < deadline, f"quality_reports not done after {timeout} s: {runs}"
        time.sleep(2)


@pytest.fixture(scope="module")
def decoy():
    """A process that looks like someone else's Airflow scheduler; stopping ours must leave it alone."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)", "airflow", "scheduler"],
                            start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()
