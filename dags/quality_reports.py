"""Write the data-quality reports: one per submission, a scorecard per member, the dashboard.

Runs when the ingestion DAG updates the ``insurshare://lake`` asset, and daily at 06:30 UTC
so that timeliness (late and missing submissions) moves on even when nothing is submitted.
Every task reads the same lake snapshot, pinned by the first task, and calls
``pipelines.reports.build_reports`` for its part, exactly as ``insurshare report`` does.
Reports are rewritten only where they changed; only transient errors are retried.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, get_current_context, task

from pipelines.airflow.dags import LAKE, dag_arguments, retry_aware
from pipelines.airflow.orchestration import task_settings


def _build(part: str, snapshot: int) -> dict:
    from pipelines.reports import ReportOptions, build_reports

    params = get_current_context()["params"]
    options = ReportOptions(today=dt.datetime.now(dt.UTC).date(),
                            movement_band=float(params.get("movement_band", 0.25)))
    built = build_reports(task_settings(), options, as_of=str(snapshot), parts=(part,))
    print(f"{part}: {len(built.submissions)} submission report(s), {len(built.scorecards)} scorecard(s), "
          f"{built.written} file(s) written, snapshot {built.snapshot_id}")
    return {"snapshot": built.snapshot_id, "written": built.written,
            "dashboard": str(built.dashboard) if built.dashboard else None}


@dag(
    dag_id="quality_reports",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("30 6 * * *", timezone="UTC"), assets=[LAKE]),
    **dag_arguments("reports", "quality", retries=2, retry_delay_seconds=30),
    params={"movement_band": 0.25},
    doc_md=__doc__,
)
def quality_reports():
    @task
    @retry_aware
    def pin_snapshot() -> int:
        """The lake snapshot every report of this run is built from (skip: no lake yet)."""
        from pathlib import Path

        from airflow.sdk.exceptions import AirflowSkipException

        from pipelines import store
        from pipelines.lake import Lake

        settings = task_settings()
        if not settings.catalog_is_postgres and not Path(settings.catalog).exists():
            raise AirflowSkipException(f"No lake at {settings.catalog} yet: nothing to report.")
        with Lake(settings) as lake:
            return store.current_snapshot(lake.con)

    @task
    @retry_aware
    def submission_reports(snapshot: int) -> dict:
        return _build("submissions", snapshot)

    @task
    @retry_aware
    def scorecards(snapshot: int) -> dict:
        return _build("scorecards", snapshot)

    @task
    @retry_aware
    def dashboard(snapshot: int) -> dict:
        result = _build("dashboard", snapshot)
        print(f"dashboard: {result['dashboard']}")
        return result

    snapshot = pin_snapshot()
    submission_reports(snapshot) >> scorecards(snapshot) >> dashboard(snapshot)


dag_object = quality_reports()
