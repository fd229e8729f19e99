"""What the DAG files in ``dags/`` share: their assets, their common arguments and the retry rule.

- The assets the DAGs pass on: ``ingest_submissions`` updates ``LAKE`` when it publishes a
  submission, ``build_marts`` (scheduled on it) updates ``MARTS``, ``build_products`` (scheduled on
  that) updates ``PRODUCTS``; ``quality_reports`` runs on ``LAKE`` too.
- ``dag_arguments``: start date, no catch-up, one run at a time, the ``insurshare`` tag and the
  default arguments (owner, retries with a growing pause) that every DAG declares.
- ``retry_aware``: wraps a task's body so that Airflow spends its retries only on errors that trying
  again can help (a busy catalog, an I/O hiccup); any other error fails the task at once.

Airflow imports this module whenever it parses a DAG file, so it imports nothing heavy: the
stages are imported inside the tasks. It lives here rather than in ``dags/`` because Airflow's
dag-processor parses every ``.py`` file of that folder.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import pendulum
from airflow.sdk import Asset

from pipelines.airflow.orchestration import fail_unless_retryable

LAKE = Asset("insurshare://lake")           # a submission was published to the lake
MARTS = Asset("insurshare://marts")         # the marts were rebuilt
PRODUCTS = Asset("insurshare://products")   # the audiences' data products were rebuilt

START_DATE = pendulum.datetime(2024, 1, 1, tz="UTC")

P = ParamSpec("P")
R = TypeVar("R")


def default_args(retries: int = 3, retry_delay_seconds: int = 20) -> dict[str, Any]:
    """Every task's owner and retries; the pause before each retry grows (exponential backoff)."""
    return {"owner": "insurshare", "retries": retries, "retry_delay": dt.timedelta(seconds=retry_delay_seconds),
            "retry_exponential_backoff": True}


def dag_arguments(*tags: str, retries: int = 3, retry_delay_seconds: int = 20) -> dict[str, Any]:
    """The ``@dag`` arguments every InsurShare DAG has: ``@dag(dag_id=..., schedule=..., **dag_arguments("marts"))``.

    One run at a time, no catch-up of missed intervals, tagged ``insurshare`` and ``tags``.
    """
    return {"start_date": START_DATE, "catchup": False, "max_active_runs": 1, "tags": ["insurshare", *tags],
            "default_args": default_args(retries, retry_delay_seconds)}


def retry_aware(body: Callable[P, R]) -> Callable[P, R]:
    """A task body whose errors are retried by Airflow only when trying again can help.

    Put it under ``@task``. An error of the platform that a retry can fix (``errors.is_retryable``)
    is raised as it is, so Airflow retries it; any other error becomes ``AirflowFailException``
    (with the lake-file hint of ``audit.anchor.lake_file_error`` when there is one), which fails
    the task without spending its retries. Airflow's own exceptions (skip, fail) pass unchanged.
    """

    @functools.wraps(body)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from airflow.sdk.exceptions import AirflowException

        try:
            return body(*args, **kwargs)
        except AirflowException:
            raise
        except Exception as exc:
            fail_unless_retryable(exc)
            raise   # not reached: fail_unless_retryable always raises

    return run
