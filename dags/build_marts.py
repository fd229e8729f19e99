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

from airflow.sdk import dag, task

from pipelines.airflow.dags import LAKE, MARTS, dag_arguments, retry_aware
from pipelines.airflow.orchestration import task_settings


@dag(dag_id="build_marts", schedule=[LAKE], **dag_arguments("marts"), doc_md=__doc__)
def build_marts():
    @task(outlets=[MARTS])
    @retry_aware
    def build() -> dict:
        """Build every mart from the lake's latest data snapshot (skipped if already built)."""
        from pipelines.marts.build import build_marts as run

        result = run(task_settings())
        print(result.line())
        return {"source_snapshot": result.source_snapshot, "snapshot": result.snapshot,
                "skipped": result.skipped, "rows": result.rows}

    build()


dag_object = build_marts()
