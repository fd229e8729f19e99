"""Run the platform's DAGs through Airflow without a scheduler (``dag.test()``).

This is the edge where Airflow is configured: its home is ``$INSURSHARE_HOME/airflow``, its
DAGs folder the project's ``dags/``, examples off, logs quiet. Airflow reads its
configuration when first imported, so the environment is set before that import.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable

from pipelines.config import DAGS_DIR, Settings
from pipelines.errors import NotFound


def airflow_environment(settings: Settings) -> dict[str, str]:
    home = settings.airflow_home
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": settings.env.get(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": settings.env.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR"),
        "INSURSHARE_HOME": str(settings.home),
        "GX_ANALYTICS_ENABLED": "False",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    }


def prepare_airflow(settings: Settings) -> None:
    """Point Airflow at the platform's home and create its metadata DB if needed."""
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ.update(airflow_environment(settings))
    for key in ("INSURSHARE_CATALOG", "INSURSHARE_KEY_FILE", "INSURSHARE_DATA_PATH"):
        if settings.raw(key):
            os.environ[key] = settings.raw(key)
    from airflow.utils import db

    if not (settings.airflow_home / "airflow.db").exists() or settings.env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        db.initdb()
    for name in ("airflow", "sqlalchemy", "alembic", "great_expectations"):
        logging.getLogger(name).setLevel(logging.WARNING)


def platform_dags() -> list[str]:
    """The ids of the platform's DAGs: one per file of ``dags/``, named by it."""
    return sorted(p.stem for p in DAGS_DIR.glob("*.py") if not p.stem.startswith("_"))


def check_dag_id(dag_id: str) -> None:
    """Raise ``NotFound`` naming the known DAGs unless ``dag_id`` is one of them."""
    if dag_id not in platform_dags():
        raise NotFound(f"No DAG {dag_id!r}.", hint=f"Known DAGs: {', '.join(platform_dags())}.")


def load_dag(dag_id: str):
    check_dag_id(dag_id)
    path = DAGS_DIR / f"{dag_id}.py"
    spec = importlib.util.spec_from_file_location(f"insurshare_dags.{dag_id}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag_object


def run_dag(settings: Settings, dag_id: str, progress: Callable[[str], None] | None = None) -> str:
    """Run one DAG once through Airflow (``dag.test()``); return the run's final state."""
    prepare_airflow(settings)
    # Tasks run in forked processes: importing the heavy modules once here makes each task fast.
    import great_expectations  # noqa: F401

    import pipelines.ingest  # noqa: F401

    dag = load_dag(dag_id)
    if progress:
        progress(f"running DAG {dag_id} through Airflow (home {settings.airflow_home})")
    run = dag.test()
    return str(getattr(run.state, "value", run.state))




def task_settings() -> Settings:
    """The settings of a task: resolved from the worker's environment when the task runs.

    Every task starts here, so this is where the task's files become owner-only (umask 077).
    """
    os.umask(0o077)
    return Settings.from_env()


def fail_unless_retryable(exc: BaseException) -> None:
    """Re-raise ``exc`` so that Airflow spends retries only on errors that trying again can help."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.audit.anchor import lake_file_error
    from pipelines.errors import ConfigError, is_retryable

    if is_retryable(exc):
        raise exc
    try:
        storage = task_settings().storage
    except ConfigError:   # the task failed on its settings: no lake file was reached
        storage = ""
    raise AirflowFailException(str(lake_file_error(exc, storage) or exc)) from exc
