"""A real Airflow for the platform: api-server, scheduler and dag-processor on 127.0.0.1.

``start`` runs ``airflow db migrate``, then starts the three components, each in a session of
its own, with the project's DAGs, the LocalExecutor and parallelism 2 (``AIRFLOW__*`` variables in
the settings' environment override these; with the CeleryExecutor a local Celery worker is started
too); it waits until the API answers and reports a fresh scheduler and DAG processor, and returns
the URL and the login. Then it starts the portal (``insurshare portal serve``) as one more
component; a portal that does not come up is reported, and Airflow runs on without it.
Everything lives under ``$INSURSHARE_HOME/airflow``: ``pids/<component>.json`` (pid and the
process start time, so a reused pid is never taken for ours), ``logs/<component>.log``, the
metadata DB (SQLite unless ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` names another) and the
login (``simple_auth_manager_passwords.json.generated``, mode 0600).

``stop`` ends exactly what ``start`` recorded: SIGTERM to each component's process group
(scheduler first, so running tasks can still report to the API), then SIGKILL to whatever
is left in that component's session (task runners put themselves in groups of their own,
but stay in the session). No process is looked up by name.

``pipelines.airflow.client.AirflowClient`` (``client_for`` gives one for a home) is the small part of Airflow 3's REST API (``/api/v2``, JWT from ``/auth/token``)
the platform uses: unpause, trigger a DAG run, wait for it, list runs and task instances.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipelines.airflow.client import AirflowClient
from pipelines.airflow.orchestration import airflow_environment, platform_dags
from pipelines.config import SETTINGS, Settings
from pipelines.errors import ConfigError

BASE = ("api-server", "scheduler", "dag-processor")
CELERY_WORKER = "celery-worker"  # started too when AIRFLOW__CORE__EXECUTOR is the CeleryExecutor
PORTAL = "portal"                # the member portal and API (insurshare portal serve), started after Airflow
COMPONENTS = (*BASE, CELERY_WORKER, PORTAL)
# the portal first (no new requests), Airflow's API last: tasks report to it
STOP_ORDER = (PORTAL, "scheduler", CELERY_WORKER, "dag-processor", "api-server")
PORTAL_TIMEOUT = 60.0
FIRST_OPERATOR = "insurshare users add admin --role operator"
HOST = "127.0.0.1"
PRELOAD = "airflow,airflow.executors.local_executor,great_expectations,pipelines.ingest,pipelines.reports"


@dataclass(frozen=True)
class Component:
    """One started Airflow process, as recorded in its pid file (with what it was started as)."""

    name: str
    pid: int
    start_ticks: int | None
    log: Path
    info: dict = field(default_factory=dict, compare=False)

    @property
    def alive(self) -> bool:
        return self.start_ticks is not None and process_start_ticks(self.pid) == self.start_ticks


@dataclass(frozen=True)
class Portal:
    """The portal started beside Airflow: where it answers, or why it did not come up."""

    url: str
    component: Component | None
    problem: str = ""

    def lines(self) -> list[str]:
        if self.problem:
            return [f"PORTAL NOT RUNNING: {self.problem}",
                    "Airflow runs without it; fix the cause, then `make stop` and `make airflow` again "
                    "(or run `insurshare portal serve` by hand)."]
        return [f"portal at {self.url}  (pid {self.component.pid}; API docs at {self.url}/api/v1/docs)",
                f"create the first operator with `{FIRST_OPERATOR}`, then log in at {self.url}/login"]


@dataclass(frozen=True)
class Running:
    """A running Airflow: where it answers, how to log in, and its recorded processes."""

    url: str
    username: str
    password: str
    components: tuple[Component, ...]
    started: bool = True
    seconds: float = 0.0
    unpaused: tuple[str, ...] = ()
    portal: Portal | None = None

    def lines(self) -> list[str]:
        info = self.components[0].info
        pids = ", ".join(f"{c.name} {c.pid}" for c in self.components if c.name != PORTAL)
        verb = f"started in {self.seconds:.0f} s" if self.started else "already running"
        return [f"Airflow {verb} at {self.url}  ({pids}; {info.get('executor')}, "
                f"parallelism {info.get('parallelism')})",
                f"login: {self.username} / {self.password}",
                f"metadata DB: {info.get('metadata_db')}",
                *([f"unpaused: {', '.join(self.unpaused)}"] if self.unpaused else []),
                *(self.portal.lines() if self.portal else []),
                f"logs: {self.components[0].log.parent}; stop with `make stop` (insurshare airflow stop)"]


@dataclass
class Stopped:
    """What ``stop`` ended: per component, every pid of its session that was signalled."""

    pids: dict[str, list[int]] = field(default_factory=dict)
    killed: list[int] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


# ---- where things live ---------------------------------------------------------------------

def pids_dir(settings: Settings) -> Path:
    return settings.airflow_home / "pids"


def logs_dir(settings: Settings) -> Path:
    return settings.airflow_home / "logs"


def passwords_file(settings: Settings) -> Path:
    configured = settings.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    return Path(configured) if configured else settings.airflow_home / "simple_auth_manager_passwords.json.generated"


def recorded(settings: Settings) -> list[Component]:
    """The components whose pid files exist, alive or not."""
    found = []
    for name in COMPONENTS:
        path = pids_dir(settings) / f"{name}.json"
        if path.exists():
            data = json.loads(path.read_text())
            found.append(Component(name, data["pid"], data["start_ticks"], Path(data["log"]), data["info"]))
    return found


# ---- start ------------------------------------------------------------------------------------

def server_environment(settings: Settings, port: int, *, paused: bool = False) -> dict[str, str]:
    """The environment of every Airflow process: this one's, the platform's settings, Airflow's."""
    env = {**os.environ, **{k: v for k, v in settings.env.items() if k.startswith(("INSURSHARE_", "AIRFLOW"))}}
    for s in SETTINGS:  # the tasks' Settings.from_env() must equal ``settings``
        if s.parse:
            env[s.env] = str(getattr(settings, s.attr))
    if settings.pseudonym_key:
        env["INSURSHARE_PSEUDONYM_KEY"] = settings.pseudonym_key
    else:
        env.pop("INSURSHARE_PSEUDONYM_KEY", None)
    env.update(airflow_environment(settings))
    url = f"http://{HOST}:{port}"
    defaults = {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(paused),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__API__WORKERS": "1",
        # tasks fork from a process that imported the heavy modules once (GX alone takes ~10 s)
        "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
        "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": PRELOAD,
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),  # one per start, shared by all components
    }
    env.update({k: settings.env.get(k) or v for k, v in defaults.items()})
    env.update({"AIRFLOW__API__HOST": HOST, "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/", "PYTHONUNBUFFERED": "1",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"})
    return env


def start(settings: Settings, *, port: int | None = None, paused: bool = False, timeout: float = 240,
          local_worker: bool = True) -> Running:
    """Start Airflow for ``settings`` (or report the one already running) and wait until it answers.

    Unless ``paused``, every platform DAG is then unpaused, also one that ``insurshare run-dag``
    (``dag.test()``) or an earlier start registered paused, so the scheduled flow runs. With the
    CeleryExecutor one worker is started here too, unless not ``local_worker`` (the workers run on
    other machines: ``start_worker``).
    """
    began = time.monotonic()
    current = recorded(settings)
    airflow = [c for c in current if c.name != PORTAL]
    if airflow and all(c.alive for c in airflow) and {c.name for c in airflow} >= set(BASE):
        url = next(c.info["url"] for c in airflow if c.name == "api-server")
        portal = start_portal(settings, server_environment(settings, int(url.rsplit(":", 1)[1])), current)
        return _with_portal(_running(settings, airflow, started=False), portal)
    if any(c.alive for c in current):
        raise ConfigError("Airflow is partly running for this home: "
                          + ", ".join(f"{c.name} {c.pid}" for c in current if c.alive) + ".",
                          hint="Run `insurshare airflow stop` and start again.")
    _remove_pid_files(settings)
    for folder in (pids_dir(settings), logs_dir(settings)):
        folder.mkdir(parents=True, exist_ok=True)
    _private_file(passwords_file(settings))
    port = port or free_port()
    env = server_environment(settings, port, paused=paused)
    _migrate(settings, env)
    info = {"url": f"http://{HOST}:{port}", "executor": env["AIRFLOW__CORE__EXECUTOR"],
            "parallelism": env["AIRFLOW__CORE__PARALLELISM"], "metadata_db": metadata_db(env)}
    since = time.time()
    try:
        components = [spawn(settings, name, argv, env, info)
                      for name, argv in _commands(env, port, local_worker=local_worker).items()]
        _wait_until_healthy(components, info["url"], since, timeout)
        running = _running(settings, components, started=True)
        if not paused:
            running = replace(running, unpaused=AirflowClient(running.url, running.username, running.password).unpause(platform_dags(), timeout=timeout))
    except BaseException:
        stop(settings, grace=10)
        raise
    running = _with_portal(running, start_portal(settings, env, []))
    return replace(running, seconds=time.monotonic() - began)


def _with_portal(running: Running, portal: Portal) -> Running:
    extra = (portal.component,) if portal.component is not None else ()
    return replace(running, components=running.components + extra, portal=portal)


# ---- the portal ------------------------------------------------------------------------------

def start_portal(settings: Settings, env: dict[str, str], current: list[Component], *,
                 timeout: float | None = None) -> Portal:
    """Start the portal as component ``portal`` (unless it runs) and wait until it answers HTTP.

    Never raises for a portal that does not come up (a port in use, an error in the app): Airflow
    is already running and must stay usable; the returned ``Portal`` says what went wrong.
    """
    url = settings.portal_url
    try:
        running = next((c for c in current if c.name == PORTAL and c.alive), None)
        if running is not None:   # where it was started, whatever this caller's settings say
            return Portal(running.info.get("url", url), running)
        host, port = settings.portal_host, settings.portal_port
        local = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
        if _answers(local):
            return Portal(url, None, f"something else already answers at {local} (INSURSHARE_PORTAL_PORT "
                                     "chooses another port)")
        argv = [str(Path(sys.executable).parent / "insurshare"), "portal", "serve", "--host", host, "--port", str(port)]
        component = spawn(settings, PORTAL, argv, env, {"url": url})
        wait = PORTAL_TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not component.alive:
                (pids_dir(settings) / f"{PORTAL}.json").unlink(missing_ok=True)
                return Portal(url, None, f"it exited while starting (see {component.log}):\n{_tail(component.log)}")
            if _answers(local):
                return Portal(url, component)
            time.sleep(0.5)
        return Portal(url, component, f"it did not answer at {local} within {wait:.0f} s "
                                      f"(pid {component.pid}, still recorded; see {component.log})")
    except Exception as exc:   # noqa: BLE001 - reported, never blocks Airflow
        return Portal(url, None, f"it could not be started: {exc}")


def _answers(url: str) -> bool:
    """Whether an HTTP server answers at ``url`` (any status counts)."""
    try:
        with urllib.request.urlopen(f"{url}/", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _commands(env: dict[str, str], port: int, *, local_worker: bool = True) -> dict[str, list[str]]:
    airflow = str(Path(sys.executable).parent / "airflow")
    commands = {"api-server": [airflow, "api-server", "--host", HOST, "--port", str(port)],
                "scheduler": [airflow, "scheduler", "--skip-serve-logs"],  # the API reads task logs from disk
                "dag-processor": [airflow, "dag-processor"]}
    if _celery(env) and local_worker:  # one local worker; more run elsewhere
        commands[CELERY_WORKER] = _worker_argv(env["AIRFLOW__CORE__PARALLELISM"], "local")
    return commands


def _celery(env: dict[str, str]) -> bool:
    return env["AIRFLOW__CORE__EXECUTOR"].endswith("CeleryExecutor")


def _worker_argv(concurrency: str | int, name: str) -> list[str]:
    """A Celery worker named ``name`` on this host (two workers of one host need two names)."""
    return [str(Path(sys.executable).parent / "airflow"), "celery", "worker", "--skip-serve-logs",
            "--concurrency", str(concurrency), "--celery-hostname", f"{name}@%h"]


def start_worker(settings: Settings, api_url: str, *, concurrency: int = 2, timeout: float = 120) -> Component:
    """Start a Celery worker for this home: a further machine of a platform on many machines.

    It takes tasks from the broker (``AIRFLOW__CELERY__BROKER_URL``) and runs each against the API
    server at ``api_url``; it needs the same ``INSURSHARE_*`` settings (S3 storage, PostgreSQL
    catalog, keys) and ``AIRFLOW__*`` variables as the scheduler's machine, and nothing else of it.
    Recorded like the other components: ``insurshare airflow stop`` on this home stops it.
    """
    current = {c.name: c for c in recorded(settings)}
    if CELERY_WORKER in current and current[CELERY_WORKER].alive:
        return current[CELERY_WORKER]
    for folder in (pids_dir(settings), logs_dir(settings)):
        folder.mkdir(parents=True, exist_ok=True)
    url = api_url.rstrip("/")
    env = server_environment(settings, urllib.parse.urlsplit(url).port or 80)
    if not _celery(env):
        raise ConfigError("A worker of its own needs the CeleryExecutor.",
                          hint="Set AIRFLOW__CORE__EXECUTOR=CeleryExecutor and AIRFLOW__CELERY__BROKER_URL "
                               "on every machine (see the README's \"Running it on many machines\").")
    env.update({"AIRFLOW__API__BASE_URL": url, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/"})
    name = settings.home.name or "worker"
    component = spawn(settings, CELERY_WORKER, _worker_argv(concurrency, name), env, {"url": url})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:   # ready once Celery says so in its log
        if not component.alive:
            raise ConfigError(f"The Celery worker exited while starting:\n{_tail(component.log)}")
        if " ready." in component.log.read_text(errors="replace"):
            return component
        time.sleep(0.5)
    raise ConfigError(f"The Celery worker did not get ready within {timeout:.0f} s (see {component.log}).")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if missing, so the generated password is not world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)


def _migrate(settings: Settings, env: dict[str, str]) -> None:
    log = logs_dir(settings) / "db-migrate.log"
    with open(log, "w") as out:
        done = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env,
                              stdout=out, stderr=subprocess.STDOUT, cwd=settings.airflow_home, timeout=600)
    if done.returncode != 0:
        raise ConfigError(f"`airflow db migrate` failed for {metadata_db(env)}:\n{_tail(log)}",
                          hint="For PostgreSQL create the database and install Airflow's drivers for it "
                               "(apache-airflow[postgres]: psycopg2-binary and asyncpg).")


def spawn(settings: Settings, name: str, argv: list[str], env: dict[str, str], info: dict) -> Component:
    """Start ``argv`` as component ``name`` in a session of its own, logging to logs/<name>.log; record it."""
    log = logs_dir(settings) / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, env=env, cwd=settings.airflow_home, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    component = Component(name, proc.pid, process_start_ticks(proc.pid), log, info)
    (pids_dir(settings) / f"{name}.json").write_text(json.dumps(
        {"pid": proc.pid, "start_ticks": component.start_ticks, "log": str(log), "info": info, "argv": argv}) + "\n")
    return component


def _wait_until_healthy(components: list[Component], url: str, since: float, timeout: float) -> None:
    """Wait until the API answers and the scheduler and DAG processor have beaten since ``since``."""
    deadline = time.monotonic() + timeout
    health: dict = {}
    while time.monotonic() < deadline:
        for c in components:
            if not c.alive:
                raise ConfigError(f"Airflow's {c.name} (pid {c.pid}) exited while starting:\n{_tail(c.log)}",
                                  hint=f"See {c.log}.")
        health = api_health(url) or {}
        if health.get("metadatabase", {}).get("status") == "healthy" and all(
                _beat_since(health.get(part, {}), f"latest_{part}_heartbeat", since)
                for part in ("scheduler", "dag_processor")):
            return
        time.sleep(1)
    raise ConfigError(f"Airflow did not become healthy within {timeout:.0f} s (last health: {health}).",
                      hint=f"See the logs in {components[0].log.parent}.")


def _beat_since(part: dict, key: str, since: float) -> bool:
    beat = part.get(key)
    return part.get("status") == "healthy" and bool(beat) and _timestamp(beat) >= since - 1


def _timestamp(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def api_health(url: str) -> dict | None:
    """Airflow's own health report (no login needed), or None when the API does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _running(settings: Settings, components: list[Component], started: bool) -> Running:
    order = {name: i for i, name in enumerate(COMPONENTS)}
    components = sorted(components, key=lambda c: order[c.name])
    return Running(components[0].info["url"], *login(settings), tuple(components), started=started)


def client_for(settings: Settings) -> AirflowClient:
    """A REST client of the Airflow that ``start`` runs for ``settings``."""
    api = next((c for c in recorded(settings) if c.name == "api-server" and c.alive), None)
    if api is None:
        raise ConfigError(f"Airflow is not running for {settings.home}.",
                          hint="Start it with `make airflow` (insurshare airflow start).")
    return AirflowClient(api.info["url"], *login(settings))


def login(settings: Settings) -> tuple[str, str]:
    """The first configured user and the password Airflow generated for it."""
    users = settings.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS") or "admin:admin"
    username = users.split(",")[0].split(":")[0].strip()
    path = passwords_file(settings)
    text = path.read_text().strip() if path.exists() else ""
    password = json.loads(text or "{}").get(username)
    if not password:
        raise ConfigError(f"Airflow has written no password for {username!r} to {path}.",
                          hint="Start Airflow with `insurshare airflow start`; it writes the login on first start.")
    return username, password


def metadata_db(env: dict) -> str:
    """The metadata DB's URL with any password masked."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""))


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---- stop and status -------------------------------------------------------------------------

def stop(settings: Settings, *, grace: float = 60) -> Stopped:
    """Stop exactly the recorded components and everything left in their sessions."""
    by_name = {c.name: c for c in recorded(settings)}
    stopped = Stopped()
    for name in STOP_ORDER:
        c = by_name.get(name)
        if c is None:
            continue
        if not c.alive:
            stopped.stale.append(name)
            continue
        members = session_members(c.pid)
        stopped.pids[name] = sorted(members)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(c.pid, signal.SIGTERM)
        if not _wait_gone(c.pid, grace):
            left = session_members(c.pid) if c.alive else session_members(c.pid) & members
            for pid in left:
                with suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            stopped.killed.extend(sorted(left))
            _wait_gone(c.pid, 10)
    _remove_pid_files(settings)
    return stopped


def status(settings: Settings) -> tuple[list[Component], dict | None]:
    """The recorded components and, when the API answers, Airflow's health report."""
    components = recorded(settings)
    api = next((c for c in components if c.name == "api-server" and c.alive), None)
    return components, api_health(api.info["url"]) if api else None


def _remove_pid_files(settings: Settings) -> None:
    for name in COMPONENTS:
        (pids_dir(settings) / f"{name}.json").unlink(missing_ok=True)


def _wait_gone(sid: int, timeout: float) -> bool:
    """Wait until no process is left in session ``sid``; reap the leader if it is our child."""
    deadline = time.monotonic() + timeout
    while True:
        with suppress(ChildProcessError):
            os.waitpid(sid, os.WNOHANG)
        if not session_members(sid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


# ---- /proc -----------------------------------------------------------------------------------

def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state, ppid, pgrp, session, ...), None if gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else fields


def process_start_ticks(pid: int) -> int | None:
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def session_members(sid: int) -> set[int]:
    """Live processes of session ``sid``: a component and every process it started, wherever grouped."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and int(fields[3]) == sid:
                found.add(int(entry.name))
    return found
