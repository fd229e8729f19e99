"""The portal under load: 50 concurrent clients against one API process and against two.

The real app (``pipelines.portal.app.create_app``) runs under uvicorn in its own process(es), on
a platform home made for the run: three members with an ingested premium file each, products
built, a submitter and an analyst with API tokens. The clients (httpx, async, one event loop
in this process) run two scenarios for a fixed time each:

- ``status``: every client reads its submissions page (``GET /api/v1/submissions``) in a loop;
  the issue's target is no error and p95 under 1 s with 50 clients on this machine;
- ``upload_memory`` (first): one 200 MiB upload streamed in while the server's RSS is sampled:
  the file goes to disk, not to memory;
- ``mixed``: a fifth of the clients upload new files (each a new version of the slice, so every
  one is archived and received: a lake commit), two fifths query their product
  (``POST /api/v1/query``, run in the sandbox) and the rest read the status page.

Each request kind is reported with requests per second, p50 and p95 latency and errors (a
transport failure or an unexpected status). The server and the clients share the machine, so
the figures are a floor for what the server alone would do.
"""

from __future__ import annotations

import asyncio
import csv
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.data import write_policy_csv
from pipelines.airflow.scheduler import free_port
from pipelines.cli.portal import KEEP_ALIVE
from pipelines.config import PROJECT_ROOT, Settings

MEMBERS = {"M001": "Bench One", "M002": "Bench Two", "M003": "Bench Three"}
PERIOD, PERIOD_START = "2025Q1", "2025-01-01"
QUERY = "SELECT line_of_business, count(*) AS n, sum(written_premium) AS premium FROM policy GROUP BY 1 ORDER BY 1"
EXPECTED = {"status": {200}, "upload": {200, 201}, "query": {200}}


def app_from_env():
    """The uvicorn factory (``--factory``): the portal for the platform of ``INSURSHARE_HOME``."""
    from pipelines.portal.app import create_app

    return create_app(Settings.from_env())


@dataclass
class Platform:
    home: Path
    tokens: dict[str, str]                       # role -> bearer token text
    uploads: list[Path] = field(default_factory=list)


def _cli(home: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "pipelines", *args], cwd=PROJECT_ROOT, check=True, capture_output=True,
                   env={**os.environ, "INSURSHARE_HOME": str(home), "INSURSHARE_GX_MAX_ROWS": "0"})


def prepare(out: Path, say: Callable[[str], None], uploads: int = 400) -> Platform:
    """A platform home with data, products, users and tokens; ``uploads`` distinct files to send."""
    from pipelines.keys import create_keys
    from pipelines.members import add_members
    from pipelines.portal import identity

    home = out / "portal_home"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=home, gx_max_rows=0)
    create_keys(settings)
    add_members(settings, MEMBERS)
    files = out / "portal_files"
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir(parents=True)
    say("portal: three members' premium files submitted, ingested, marts and products built ...")
    for n, member in enumerate(MEMBERS, 1):
        path = write_policy_csv(files / f"{member}_policy_{PERIOD}.csv", 2_000, seed=n, period_start=PERIOD_START)
        _cli(home, "submit", str(path), "--member", member, "--dataset", "policy", "--period", PERIOD)
    _cli(home, "ingest")
    _cli(home, "build-marts")
    _cli(home, "products", "build")
    tokens = {}
    for role, member in (("submitter", "M001"), ("analyst", "M001")):
        identity.create_user(settings, f"bench-{role}", [role], member)
        tokens[role] = identity.create_token(settings, f"bench-{role}", "load benchmark", days=1)[1]
    base = write_policy_csv(files / "upload_base.csv", 50, seed=1000, period_start=PERIOD_START)
    return Platform(home, tokens, [_variant(base, files / f"upload_{i:04d}.csv", i) for i in range(uploads)])


def _variant(base: Path, path: Path, n: int) -> Path:
    """``base`` with its first transaction id made unique: other bytes, so a new version of the slice."""
    with open(base, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    column = rows[0].index("transaction_id")
    rows[1][column] = f"{rows[1][column]}-{n:04d}"
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


class Server:
    """uvicorn serving the portal with ``workers`` processes; stopped by its own pid."""

    def __init__(self, home: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / f"uvicorn-{workers}.log"
        cmd = [sys.executable, "-m", "uvicorn", "benchmarks.portal:app_from_env", "--factory", "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", str(workers), "--log-level", "warning", "--no-access-log",
               "--timeout-keep-alive", str(KEEP_ALIVE)]
        env = {**os.environ, "INSURSHARE_HOME": str(home), "INSURSHARE_GX_MAX_ROWS": "0"}
        self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "w"))

    def wait_ready(self, timeout: float = 90) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn ended with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"uvicorn did not answer within {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)   # uvicorn's master stops its workers (and their flushers)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, seconds: float, status: int | None, detail: str = "") -> None:
        self.latencies[kind].append(seconds)
        if status not in EXPECTED[kind]:
            self.errors[kind] += 1
            self.samples.setdefault(kind, f"{status}: {detail[:200]}")

    def summary(self, wall: float) -> dict:
        out = {}
        for kind, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            out[kind] = {"requests": len(values), "per_second": round(len(values) / wall, 1),
                         "p50_ms": round(statistics.median(ordered) * 1000, 1),
                         "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
                         "errors": self.errors.get(kind, 0), "first_error": self.samples.get(kind)}
        return out


async def _request(client, tally: Tally, kind: str, method: str, path: str, **kwargs) -> None:
    import httpx

    start = time.perf_counter()
    try:
        response = await client.request(method, path, **kwargs)
        tally.add(kind, time.perf_counter() - start, response.status_code, response.text)
    except httpx.HTTPError as exc:
        tally.add(kind, time.perf_counter() - start, None, repr(exc))


def _roles(clients: int, mixed: bool) -> list[str]:
    if not mixed:
        return ["status"] * clients
    uploaders, queriers = clients // 5, 2 * clients // 5
    return ["upload"] * uploaders + ["query"] * queriers + ["status"] * (clients - uploaders - queriers)


async def _client(client, role: str, platform: Platform, tally: Tally, until: float, files: list[Path]) -> None:
    auth = {"Authorization": f"Bearer {platform.tokens['analyst' if role == 'query' else 'submitter']}"}
    while time.monotonic() < until:
        if role == "status":
            await _request(client, tally, "status", "GET", "/api/v1/submissions", params={"limit": 50}, headers=auth)
        elif role == "query":
            await _request(client, tally, "query", "POST", "/api/v1/query", json={"sql": QUERY, "limit": 100},
                           headers=auth)
        elif files:
            path = files.pop()
            await _request(client, tally, "upload", "POST", "/api/v1/submissions", headers=auth,
                           data={"dataset": "policy", "period": PERIOD},
                           files={"file": (path.name, path.read_bytes(), "text/csv")})
        else:
            return


async def _scenario(url: str, platform: Platform, clients: int, seconds: float, mixed: bool) -> dict:
    """``clients`` concurrent loops sharing one connection pool (a connection each), for ``seconds``."""
    import httpx

    tally, files = Tally(), list(platform.uploads)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as client:
        started = time.monotonic()
        await asyncio.gather(*(_client(client, role, platform, tally, started + seconds, files)
                               for role in _roles(clients, mixed)))
        wall = time.monotonic() - started   # the last requests finish after the deadline
    platform.uploads = files            # bytes not sent yet stay new for the next scenario
    return {"clients": clients, "seconds": round(wall, 1), "load_average": round(os.getloadavg()[0], 1),
            **tally.summary(wall)}


async def _big_upload(url: str, token: str, size: int) -> tuple[int, float]:
    """Send a ``size``-byte CSV as a streamed multipart body (never built in memory here either)."""
    import httpx

    boundary = "insurshare-bench-boundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="dataset"\r\n\r\npolicy\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="period"\r\n\r\n{PERIOD}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big_{PERIOD}.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n").encode()
    line = b"P0000001,T0000001,NB,2025-01-10\n"
    block = line * ((1 << 20) // len(line))

    async def body():
        yield head + b"policy_no,transaction_id,transaction_type,accounting_date\n"
        sent = 0
        while sent < size:
            yield block
            sent += len(block)
        yield f"\r\n--{boundary}--\r\n".encode()

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        response = await client.post("/api/v1/submissions", content=body(),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": f"multipart/form-data; boundary={boundary}"})
    return response.status_code, time.perf_counter() - start


def upload_memory(server: Server, token: str, size: int = 200 << 20) -> dict:
    """RSS of the server's processes while one ``size``-byte upload streams in and is archived and
    received (after a 1 MiB one warmed the path): it should barely move."""
    import threading

    import psutil

    root = psutil.Process(server.proc.pid)

    def rss() -> int:
        total = 0
        for p in [root, *root.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    asyncio.run(_big_upload(server.url, token, 1 << 20))   # warm: the first receive loads the lake's extensions
    base, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        status, seconds = asyncio.run(_big_upload(server.url, token, size))
    finally:
        done.set()
        sampler.join()
    return {"bytes": size, "status": status, "seconds": round(seconds, 1), "server_rss_before_mb": base >> 20,
            "server_rss_growth_mb": round((peak[0] - base) / 2**20, 1)}


def _line(label: str, result: dict) -> str:
    kinds = [k for k in ("status", "query", "upload") if k in result]
    return f"portal {label}, {result['clients']} clients, {result['seconds']:.0f} s: " + "; ".join(
        f"{k} {result[k]['per_second']:.1f} req/s p50 {result[k]['p50_ms']:.0f} ms p95 {result[k]['p95_ms']:.0f} ms "
        f"errors {result[k]['errors']}" for k in kinds) + f" (load average {result['load_average']})"


def portal_part(out: Path, say: Callable[[str], None], clients: int = 50, seconds: float = 20,
                workers: tuple[int, ...] = (1, 2)) -> dict:
    """Both scenarios against ``workers`` API processes each; the figures per scenario and kind."""
    platform = prepare(out, say)
    results: dict = {}
    for n in workers:
        server = Server(platform.home, n)
        try:
            server.wait_ready()
            asyncio.run(_scenario(server.url, platform, 5, 3, mixed=True))   # warm up every path
            if n == workers[0]:
                memory = results["upload_memory"] = upload_memory(server, platform.tokens["submitter"])
                say(f"portal upload of {memory['bytes'] >> 20} MiB streamed: answer {memory['status']} in "
                    f"{memory['seconds']} s; the server's RSS grew by {memory['server_rss_growth_mb']} MiB "
                    f"(from {memory['server_rss_before_mb']} MiB)")
            for mixed in (False, True):
                label = f"{'mixed' if mixed else 'status'} x{n} process{'es' if n > 1 else ''}"
                result = asyncio.run(_scenario(server.url, platform, clients, seconds, mixed))
                results[label] = result
                say(_line(label, result))
                for kind in ("status", "query", "upload"):
                    if result.get(kind, {}).get("first_error"):
                        say(f"  first {kind} error: {result[kind]['first_error']}")
        finally:
            server.stop()
    status = [r["status"] for label, r in results.items() if label.startswith("status")]
    results["target_met"] = all(s["errors"] == 0 and s["p95_ms"] < 1000 for s in status)
    return results
