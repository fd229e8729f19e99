"""What the operator's and the regulator's endpoints do, without HTTP: DAG runs through Airflow's
REST API, and the audit trail with its verification.

Members, users and tokens need nothing here: ``pipelines.members`` and ``pipelines.portal.identity``
are called as they are. DAG runs go through the Airflow that ``insurshare airflow start`` (``make
airflow``) runs for this home, never through ``dag.test()``: the portal only asks Airflow, so a
run is scheduled, logged and retried like any other. When Airflow is not running the answer is
``AirflowUnavailable`` (503), which says how to start it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pipelines.config import Settings
from pipelines.errors import ConfigError, InsurShareError, NotFound

RUN_FIELDS = ("dag_run_id", "state", "run_type", "logical_date", "run_after", "start_date", "end_date")


class AirflowUnavailable(InsurShareError):
    """Airflow is not running for this home, or does not answer (the portal answers 503)."""

    status = 503
    retryable = True


def _client(settings: Settings):
    """A REST client of the Airflow running for ``settings`` (``AirflowUnavailable`` when none)."""
    from pipelines.airflow.scheduler import client_for

    try:
        return client_for(settings)
    except ConfigError:
        raise AirflowUnavailable("Airflow is not running for this platform, so DAG runs cannot be listed or "
                                 "started.", hint="The operator starts it with `make airflow` "
                                                  "(insurshare airflow start).") from None


def platform_dags() -> list[str]:
    from pipelines.airflow.orchestration import platform_dags as dags

    return dags()


def _check_dag(dag_id: str) -> None:
    if dag_id not in platform_dags():
        raise NotFound(f"No DAG {dag_id!r}.", hint=f"The platform's DAGs: {', '.join(platform_dags())}.")


def _ask(settings: Settings, call):
    """Call Airflow; a refusal or silence becomes a clear error (404 for an unknown run, else 503)."""
    from pipelines.airflow.client import AirflowApiError

    client = _client(settings)
    try:
        return call(client)
    except AirflowApiError as exc:
        if exc.status == 404:
            raise NotFound(exc.message, hint="Has the DAG processor parsed the DAG yet? Try again shortly.") from None
        raise AirflowUnavailable(exc.message, hint=exc.hint) from None


def dag_runs(settings: Settings, dag_id: str, limit: int = 25) -> list[dict]:
    """The newest runs of a platform DAG, newest first (the fields an operator reads)."""
    _check_dag(dag_id)
    runs = _ask(settings, lambda c: c.dag_runs(dag_id))
    return [{k: r.get(k) for k in RUN_FIELDS} for r in runs[:limit]]


def trigger_dag(settings: Settings, dag_id: str, conf: dict | None = None) -> dict:
    """Start a manual run of a platform DAG now; return the run."""
    _check_dag(dag_id)
    run = _ask(settings, lambda c: c.trigger(dag_id, conf or {}))
    return {k: run.get(k) for k in RUN_FIELDS}


def airflow_url(settings: Settings) -> str | None:
    """Where Airflow answers for this home, or None when it is not running."""
    try:
        return _client(settings).url
    except AirflowUnavailable:
        return None


# -- the audit trail ------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditCheck:
    intact: bool
    entries: int
    problems: list[str]
    anchored_snapshot: int | None
    data_files: int
    access_rows: int

    def to_dict(self) -> dict:
        return {"intact": self.intact, "entries": self.entries, "problems": self.problems,
                "anchored_snapshot": self.anchored_snapshot, "data_files": self.data_files,
                "access_rows": self.access_rows}


def audit_entries(settings: Settings, limit: int = 100, kind: str | None = None) -> list[dict]:
    """The newest entries of the audit log (details parsed), newest first."""
    from pipelines.store import reader

    where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
    with reader(settings) as con:
        rows = con.execute(f"SELECT seq, recorded_at, kind, subject, details, entry_sha256 FROM audit_log {where} "
                           "ORDER BY seq DESC LIMIT ?", [*params, limit]).fetchall()
    return [{"seq": seq, "recorded_at": at.isoformat(), "kind": kind_, "subject": subject,
             "details": _parsed(details), "entry_sha256": entry} for seq, at, kind_, subject, details, entry in rows]


def _parsed(details: str | None) -> object:
    try:
        return json.loads(details) if details else {}
    except ValueError:
        return details


def verify_audit(settings: Settings) -> AuditCheck:
    """What ``insurshare audit verify`` checks: the keyed chain, its head, the anchor and every
    live data file of the lake against its seal, every access log row against its batch's entry."""
    from pipelines import audit as log
    from pipelines.audit.access import verify_access_log
    from pipelines.audit.anchor import verify_lake
    from pipelines.audit.key import anchor_exists, key_file, load_key
    from pipelines.lake import Lake

    key = load_key(settings) if key_file(settings).exists() or anchor_exists(settings) else None
    with Lake(settings, read_only=True) as lake:
        n, problems = log.verify(lake.con, key)
        entries = dict(lake.execute(f"SELECT seq, entry_sha256 FROM {log.TABLE}").fetchall())
        files = verify_lake(lake.con, settings, key, entries) if key else None
        accesses, access_problems = verify_access_log(lake.con, key) if key else (0, [])
    problems = [p.what for p in problems + (files.problems if files else []) + access_problems]
    return AuditCheck(not problems, n, problems, files.last_snapshot if files else None,
                      files.files if files else 0, accesses)
