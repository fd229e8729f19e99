"""Commands for operating a real Airflow: start, stop, status, and triggering a DAG run."""

from __future__ import annotations

import json
import sys

import click

from pipelines.cli.base import command, main
from pipelines.config import Settings


@main.group("airflow")
def airflow() -> None:
    """Run a real Airflow (api-server, scheduler, dag-processor) on 127.0.0.1 for this home."""


@command(airflow, "start")
@click.option("--port", type=int, help="Port of the API server on 127.0.0.1 [default: a free one].")
@click.option("--paused", is_flag=True,
              help="Leave the DAGs paused or unpaused as they are (new ones paused) [default: unpause every "
                   "platform DAG, so they follow their schedules].")
@click.option("--timeout", default=240, show_default=True, help="Seconds to wait until Airflow answers.")
@click.option("--no-worker", is_flag=True,
              help="With the CeleryExecutor, start no worker here: the workers run on other machines "
                   "(`insurshare airflow worker`).")
def airflow_start(settings: Settings, port: int | None, paused: bool, timeout: int, no_worker: bool) -> None:
    """Start Airflow (LocalExecutor, parallelism 2) with the project's DAGs, then the portal; print their URLs.

    The portal (`insurshare portal serve`, INSURSHARE_PORTAL_HOST/PORT) is one more recorded component;
    if it does not come up, that is reported and Airflow runs on without it.

    The metadata DB is SQLite under HOME/airflow unless AIRFLOW__DATABASE__SQL_ALCHEMY_CONN names another
    (PostgreSQL). Pid files and logs go to HOME/airflow/pids and HOME/airflow/logs. Unless --paused, every
    platform DAG is then unpaused (also one that run-dag registered paused). Starting again while it
    runs prints the same URL and login.
    """
    from pipelines.airflow.scheduler import start

    for line in start(settings, port=port, paused=paused, timeout=timeout, local_worker=not no_worker).lines():
        click.echo(line)


@command(airflow, "worker")
@click.argument("api_url")
@click.option("--concurrency", default=2, show_default=True, help="Tasks this worker runs at once.")
def airflow_worker(settings: Settings, api_url: str, concurrency: int) -> None:
    """Start a Celery worker on this machine for the Airflow whose API server is at API_URL.

    For a platform on many machines: this machine needs the same INSURSHARE_* (S3 storage, PostgreSQL
    catalog, keys) and AIRFLOW__* (CeleryExecutor, broker, metadata DB) settings as the scheduler's, and
    nothing of its disk. `insurshare airflow stop` stops it.
    """
    from pipelines.airflow.scheduler import start_worker

    worker = start_worker(settings, api_url, concurrency=concurrency)
    click.echo(f"Celery worker running (pid {worker.pid}) for {api_url}; log {worker.log}")


@command(airflow, "stop")
@click.option("--grace", default=60, show_default=True,
              help="Seconds to wait after SIGTERM before the rest of a component's processes get SIGKILL.")
def airflow_stop(settings: Settings, grace: int) -> None:
    """Stop exactly the Airflow processes that `insurshare airflow start` recorded for this home."""
    from pipelines.airflow.scheduler import stop

    stopped = stop(settings, grace=grace)
    for name, pids in stopped.pids.items():
        click.echo(f"stopped {name} (pids {', '.join(map(str, pids))})")
    for name in stopped.stale:
        click.echo(f"{name} was not running (stale pid file removed)")
    if stopped.killed:
        click.echo(f"killed after {grace} s: pids {', '.join(map(str, stopped.killed))}")
    if not stopped.pids and not stopped.stale:
        click.echo(f"no Airflow recorded for {settings.home}")


@command(airflow, "status")
def airflow_status(settings: Settings) -> None:
    """Show the recorded Airflow processes, the portal and Airflow's health; exit 1 unless Airflow runs."""
    from pipelines.airflow.scheduler import BASE, PORTAL, status

    components, health = status(settings)
    for c in components:
        click.echo(f"{c.name:14} pid {c.pid:<8} {'running' if c.alive else 'not running'}  "
                   f"{c.info.get('url', '') if c.name in ('api-server', 'portal') else ''}".rstrip())
    if health:
        click.echo("health: " + ", ".join(f"{k} {v.get('status')}" for k, v in health.items()))
    airflow = [c for c in components if c.name != PORTAL]
    if not {c.name for c in airflow} >= set(BASE) or not all(c.alive for c in airflow):
        click.echo(f"Airflow is not (fully) running for {settings.home}; start it with `make airflow`.")
        sys.exit(1)
    if not any(c.name == PORTAL and c.alive for c in components):   # Airflow runs on without it
        click.echo("the portal is not running; `make airflow` starts it again (or `insurshare portal serve`)")


@command(airflow, "trigger")
@click.argument("dag_id")
@click.option("--conf", "conf", help="A JSON object given to the run as its conf.")
@click.option("--wait", is_flag=True, help="Wait until the run has finished; exit 1 unless it succeeded.")
@click.option("--timeout", default=1800, show_default=True, help="Seconds to wait with --wait.")
def airflow_trigger(settings: Settings, dag_id: str, conf: str | None, wait: bool, timeout: int) -> None:
    """Trigger a run of DAG_ID through Airflow's REST API (unpausing the DAG if it is paused)."""
    from pipelines.airflow.orchestration import check_dag_id
    from pipelines.airflow.scheduler import client_for

    check_dag_id(dag_id)
    client = client_for(settings)
    if client.wait_for_dag(dag_id, timeout=120)["is_paused"]:
        client.set_paused(dag_id, False)
        click.echo(f"unpaused {dag_id}")
    run = client.trigger(dag_id, json.loads(conf) if conf else None)
    click.echo(f"triggered {dag_id}: run {run['dag_run_id']}")
    if not wait:
        return
    run = client.wait_for_run(dag_id, run["dag_run_id"], timeout=timeout, progress=click.echo)
    if run["state"] != "success":
        failed = sorted({ti["task_id"] for ti in client.task_instances(dag_id, run["dag_run_id"])
                         if ti["state"] in ("failed", "upstream_failed")})
        click.echo(f"Error: run {run['dag_run_id']} of {dag_id} {run['state']}; failed tasks: "
                   f"{', '.join(failed) or 'none'}. See the task logs in {client.url}.", err=True)
        sys.exit(1)
