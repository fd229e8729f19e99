"""Build the actuarial marts whenever the lake changes.

Scheduled on the ``insurshare://lake`` asset that ``ingest_submissions`` updates when it
publishes a submission (and runnable on demand: ``insurshare run-dag build_marts``). The one
task runs the same ``pipelines.marts.build.build_marts`` as ``insurshare build-marts``: it reads
the lake at its latest data snapshot, computes every mart and replaces them in one DuckLake
transaction, or does nothing when the marts were already built from that data. It updates
the ``insurshare://marts`` asset (not the lake's, which would schedule itself again). Only
transient errors (a busy catalog, I/O) are retried.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import Asset, dag, task

from pipelines.airflow.orchestration import fail_unless_retryable, task_settings

LAKE = Asset("insurshare://lake")
MARTS = Asset("insurshare://marts")


@dag(
    dag_id="build_marts",
    schedule=[LAKE],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["insurshare", "marts"],
    default_args={"owner": "insurshare", "retries": 3, "retry_delay": dt.timedelta(seconds=20),
                  "retry_exponential_backoff": True},
    doc_md=__doc__,
)
def build_marts():
    @task(outlets=[MARTS])
    def build() -> dict:
        """Build every mart from the lake's latest data snapshot (skipped if already built)."""
        from pipelines.marts.build import build_marts as run

        try:
            result = run(task_settings())
        except Exception as exc:
            fail_unless_retryable(exc)
        print(result.line())
        return {"source_snapshot": result.source_snapshot, "snapshot": result.snapshot,
                "skipped": result.skipped, "rows": result.rows}

    build()


dag_object = build_marts()
