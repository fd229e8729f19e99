"""Maintain the lake every night: flush small inserts to files, merge small files, expire old snapshots.

Runs daily at 02:30 UTC (and on demand: ``insurshare run-dag lake_maintenance``). The one task
runs the same ``pipelines.maintenance.maintain_lake`` as ``insurshare lake maintain``, with the
retention of ``INSURSHARE_SNAPSHOT_RETENTION_DAYS`` (30 days by default): snapshots older than
that expire, except the latest and those from the marts' last build source on. Audited (a
``lake-maintenance`` entry) and sealed in the audit anchor; it takes its turn at the writer lock
like every other writer. Only transient errors (a busy catalog, I/O) are retried.
"""

from __future__ import annotations

from airflow.sdk import CronTriggerTimetable, dag, task

from pipelines.airflow.dags import dag_arguments, retry_aware
from pipelines.airflow.orchestration import task_settings


@dag(dag_id="lake_maintenance", schedule=CronTriggerTimetable("30 2 * * *", timezone="UTC"),
     **dag_arguments("lake", "maintenance"), doc_md=__doc__)
def lake_maintenance():
    @task
    @retry_aware
    def maintain() -> dict:
        """Flush, merge, expire and clean up (see ``pipelines.maintenance``)."""
        from pipelines.maintenance import maintain_lake, retention_days

        settings = task_settings()
        report = maintain_lake(settings, retention_days(settings))
        print(report.line())
        return {"snapshots_before": report.before.snapshots, "snapshots_after": report.after.snapshots,
                "files_before": report.before.live_files, "files_after": report.after.live_files,
                "expired": report.expired, "seconds": report.seconds}

    maintain()


dag_object = lake_maintenance()
