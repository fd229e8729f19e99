"""Ingest member submissions into the shared lake.

Every 15 minutes (``INSURSHARE_INGEST_SCHEDULE`` sets another cron expression, or ``none``)
and on demand: take files dropped in the landing zone into intake, then process every
received submission in its own mapped task (after any earlier version of its slice still waiting,
so a slice's versions are judged in order), one dataset after another in the order the
contracts' cross-dataset rules give (``contracts.datasets``: premium data first, then claims, whose
``exists_in`` rule reads the member's accepted premium data). Each task runs the same
``pipelines.ingest.process_submission`` that ``insurshare ingest`` runs. A bad file ends in a
recorded verdict, not a failed task; only transient errors (a busy catalog, I/O) are retried.
One file never stops the others: a landing file that cannot be taken, or a submission the
platform failed to process (recorded as ``SUB-PROCESSING``), fails its own task only, and the
final ``check_run`` task then fails the run, so a run with failures never reports success.
The ``insurshare://lake`` asset is updated when a submission is published. Last, ``notify``
sends the members' pending notices (rejected files, near and past due dates), whatever the
run's outcome; it never fails.
"""

from __future__ import annotations

import os

from airflow.sdk import dag, task

from pipelines.airflow.dags import LAKE, dag_arguments, retry_aware
from pipelines.airflow.orchestration import task_settings
from pipelines.config import setting
from pipelines.contracts import datasets, dependencies

# How often the landing zone is polled: a cron expression, or "none" for on-demand runs only.
SCHEDULE = setting("INSURSHARE_INGEST_SCHEDULE").read(os.environ)


@dag(
    dag_id="ingest_submissions",
    schedule=None if SCHEDULE.strip().lower() == "none" else SCHEDULE,
    **dag_arguments("ingestion"),
    doc_md=__doc__,
)
def ingest_submissions():
    @task
    @retry_aware
    def intake_landing() -> list[str]:
        """Receive files (with their manifests) dropped in $INSURSHARE_HOME/landing."""
        from pipelines.ingest import repair_snapshot_ids
        from pipelines.landing import receive_landing

        repair_snapshot_ids(task_settings())
        return receive_landing(task_settings(), progress=print)

    @task
    @retry_aware
    def find_pending(dataset: str) -> list[str]:
        from pipelines.ingest import pending

        return pending(task_settings(), dataset)

    @task(outlets=[LAKE], map_index_template="{{ task.op_kwargs['submission_id'] }}")
    @retry_aware
    def process(submission_id: str) -> dict:
        """Process the submission, after any earlier version of its slice still waiting (in order)."""
        from pipelines.ingest import process_in_order

        outcomes = process_in_order(task_settings(), submission_id, progress=print)
        failed = [o.line() for o in outcomes if o.failed]
        if failed:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException("; ".join(failed))
        outcome = outcomes[-1]
        return {"submission_id": outcome.submission_id, "status": outcome.status}

    @task(trigger_rule="all_done")
    def notify() -> None:
        """Send pending notices (verdicts of this run, due dates) once the verdicts are committed;
        a notice that cannot be sent is logged, never fails the run (``pipelines.notices``)."""
        from pipelines.notices import safe_send

        safe_send(task_settings(), progress=print)

    @task(trigger_rule="none_failed")
    def check_run() -> None:
        """Runs only when no task before it failed: otherwise the run ends failed."""

    # pending_<dataset> -> process_<dataset> for each dataset; a dataset's pending task waits for the
    # processing of every dataset it depends on (or, depending on none, for the landing intake).
    landing = intake_landing()
    needs = dependencies()
    processed = {}
    for dataset in datasets():
        found = find_pending.override(task_id=f"pending_{dataset}", trigger_rule="all_done")(dataset)
        for before in [processed[d] for d in sorted(needs[dataset])] or [landing]:
            before >> found
        processed[dataset] = process.override(task_id=f"process_{dataset}").expand(submission_id=found)
    [landing, *processed.values()] >> check_run()
    [landing, *processed.values()] >> notify()


dag_object = ingest_submissions()
