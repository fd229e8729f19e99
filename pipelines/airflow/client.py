"""A small client of Airflow 3's REST API (``/api/v2``): a token, unpause, trigger, wait."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

from pipelines.errors import InsurShareError


class AirflowApiError(InsurShareError):
    """Airflow's REST API refused a request (``status``) or did not answer (``status`` None)."""

    def __init__(self, message: str, *, status: int | None = None, hint: str = "") -> None:
        self.status = status
        super().__init__(message, hint=hint)

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status is None or self.status >= 500


class AirflowClient:
    """Airflow 3's REST API for the calls the platform makes, logged in with a JWT."""

    FINISHED = ("success", "failed")

    def __init__(self, url: str, username: str, password: str, timeout: float = 30) -> None:
        self.url, self.username, self.password, self.timeout = url.rstrip("/"), username, password, timeout
        self._token = ""

    def request(self, method: str, path: str, body: dict | None = None, **params: object) -> dict:
        """Call ``/api/v2/<path>``; log in when there is no token yet, and once more when it has expired."""
        path = f"/api/v2/{path.lstrip('/')}"
        self._log_in()
        try:
            return self._send(method, path, body, params)
        except AirflowApiError as exc:
            if exc.status != 401:
                raise
        self._token = ""
        self._log_in()
        return self._send(method, path, body, params)

    def _log_in(self) -> None:
        if not self._token:
            login_body = {"username": self.username, "password": self.password}
            self._token = self._send("POST", "/auth/token", login_body)["access_token"]

    def _send(self, method: str, path: str, body: dict | None = None, params: dict | None = None) -> dict:
        query = "?" + urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None}) \
            if params else ""
        req = urllib.request.Request(f"{self.url}{path}{query}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Accept": "application/json",
                                              **({"Authorization": f"Bearer {self._token}"} if self._token else {})})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise AirflowApiError(f"Airflow answered {exc.code} to {method} {path}: {detail}", status=exc.code,
                                  hint="Check the DAG id and the login.") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise AirflowApiError(f"Airflow at {self.url} does not answer ({exc}).",
                                  hint="Is it running? `insurshare airflow status`.") from exc

    def dag(self, dag_id: str) -> dict:
        return self.request("GET", f"dags/{dag_id}")

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        """The DAG once the DAG processor has parsed it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.dag(dag_id)
            except AirflowApiError as exc:
                if exc.status != 404 or time.monotonic() >= deadline:
                    raise
            time.sleep(1)

    def set_paused(self, dag_id: str, paused: bool) -> dict:
        return self.request("PATCH", f"dags/{dag_id}", {"is_paused": paused})

    def unpause(self, dag_ids: list[str], timeout: float = 120) -> tuple[str, ...]:
        """Unpause each DAG once the DAG processor has parsed it; return those that were paused."""
        unpaused = []
        for dag_id in dag_ids:
            if self.wait_for_dag(dag_id, timeout=timeout)["is_paused"]:
                self.set_paused(dag_id, False)
                unpaused.append(dag_id)
        return tuple(unpaused)

    def trigger(self, dag_id: str, conf: dict | None = None) -> dict:
        """Create a manual run now (it runs once the DAG is unpaused); return it."""
        return self.request("POST", f"dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def dag_runs(self, dag_id: str) -> list[dict]:
        """The newest 100 runs, newest first."""
        return self.request("GET", f"dags/{dag_id}/dagRuns", limit=100, order_by="-run_after")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        return self.request("GET", path, limit=100)["task_instances"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 1800, progress=None) -> dict:
        """Poll the run until it has finished; return it. Progress gets each change of state."""
        deadline, state = time.monotonic() + timeout, ""
        while True:
            run = self.dag_run(dag_id, run_id)
            if run["state"] != state and progress:
                progress(f"{dag_id} {run_id}: {run['state']}")
            state = run["state"]
            if state in self.FINISHED:
                return run
            if time.monotonic() >= deadline:
                raise AirflowApiError(f"DAG run {run_id} of {dag_id} is still {state} after {timeout:.0f} s.",
                                      hint=f"Follow it in the UI at {self.url}.")
            time.sleep(2)
