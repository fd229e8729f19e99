"""Ingest member submissions into the shared lake.

Every 15 minutes (``INSURSHARE_INGEST_SCHEDULE`` sets another cron expression, or ``none``)
and on demand: take files dropped in the landing zone into intake, then process every
received submission in its own mapped task: premium data first, then claims
(whose cross-dataset rule reads the member's accepted premium data). Each task runs the same
``pipelines.ingest.process_submission`` that ``insurshare ingest`` runs. A bad file ends in a
recorded verdict, not a failed task; only transient errors (a busy catalog, I/O) are retried.
One file never stops the others: a landing file that cannot be taken, or a submission the
platform failed to process (recorded as ``SUB-PROCESSING``), fails its own task only, and the
final ``check_run`` task then fails the run, so a run with failures never reports success.
The ``insurshare://lake`` asset is updated when a submission is published.
"""

from __future__ import annotations

import datetime as dt
import os

import pendulum
from airflow.sdk import Asset, dag, task

from pipelines.airflow.orchestration import fail_unless_retryable, task_settings
from pipelines.config import setting

LAKE = Asset("insurshare://lake")
# How often the landing zone is polled: a cron expression, or "none" for on-demand runs only.
SCHEDULE = setting("INSURSHARE_INGEST_SCHEDULE").read(os.environ)


@dag(
    dag_id="ingest_submissions",
    schedule=None if SCHEDULE.strip().lower() == "none" else SCHEDULE,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["insurshare", "ingestion"],
    default_args={"owner": "insurshare", "retries": 3, "retry_delay": dt.timedelta(seconds=20),
                  "retry_exponential_backoff": True},
    doc_md=__doc__,
)
def ingest_submissions():
    @task
    def intake_landing() -> list[str]:
        """Receive files (with their manifests) dropped in $INSURSHARE_HOME/landing."""
        from pipelines.ingest import repair_snapshot_ids
        from pipelines.landing import receive_landing

        try:
            repair_snapshot_ids(task_settings())
            return receive_landing(task_settings(), progress=print)
        except Exception as exc:
            fail_unless_retryable(exc)

    @task
    def find_pending(dataset: str) -> list[str]:
        from pipelines.ingest import pending

        return pending(task_settings(), dataset)

    @task(outlets=[LAKE], map_index_template="{{ task.op_kwargs['submission_id'] }}")
    def process(submission_id: str) -> dict:
        from pipelines.ingest import process_submission

        try:
            outcome = process_submission(task_settings(), submission_id, progress=print)
        except Exception as exc:
            fail_unless_retryable(exc)
        if outcome.failed:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(outcome.line())
        return {"submission_id": outcome.submission_id, "status": outcome.status}

    @task(trigger_rule="none_failed")
    def check_run() -> None:
        """Runs only when no task before it failed: otherwise the run ends failed."""

    landing = intake_landing()
    policy = find_pending.override(task_id="pending_policy", trigger_rule="all_done")("policy")
    landing >> policy
    processed_policy = process.override(task_id="process_policy").expand(submission_id=policy)
    claim = find_pending.override(task_id="pending_claim", trigger_rule="all_done")("claim")
    processed_policy >> claim
    processed_claim = process.override(task_id="process_claim").expand(submission_id=claim)
    [landing, processed_policy, processed_claim] >> check_run()


dag_object = ingest_submissions()
