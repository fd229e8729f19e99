"""The data and administration endpoints: what they answer, computed from the rows, not the code.

Queries (exact numbers, the row cap, the formats), experience and triangles from the caller's own
product, the query page, the operator's forms, DAG runs through a stand-in for Airflow's REST API,
the audit trail with its verification and the access log's filters; and the README's API reference
(generated, and caught when it drifts).
"""

from __future__ import annotations

import io
import time

import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from pipelines.cli.docs import update_readme
from pipelines.config import PROJECT_ROOT
from pipelines.portal import admin, db, identity
from pipelines.portal.data import ROW_CAP
from pipelines.products import open_product
from tests.portal.conftest import hidden
from tests.portal.world import OTHER, OWN, PASSWORD, World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    built = build_world(tmp_path_factory.mktemp("data"))
    with built.client:
        yield built
    db.dispose()


def query(world: World, actor: str, sql: str, **body):
    return world.call(world.actors[actor], "POST", "/api/v1/query", json={"sql": sql, **body})


def test_query_json_numbers_are_exact(world):
    answer = query(world, "analyst_own", "SELECT 0.1::DOUBLE + 0.2::DOUBLE AS x, 1::DOUBLE / 3 AS y, "
                                         "1e-300::DOUBLE AS tiny, 12345678901234567 AS big, DATE '2024-02-29' AS d")
    assert answer.status_code == 200
    assert answer.json()["rows"] == [{"x": 0.1 + 0.2, "y": 1 / 3, "tiny": 1e-300, "big": 12345678901234567,
                                      "d": "2024-02-29"}]
    assert '"x":0.30000000000000004' in answer.text


def test_query_row_limit_is_capped_and_truncation_said(world):
    capped = query(world, "analyst_own", "SELECT * FROM range(20000) t(i)", limit=10 * ROW_CAP).json()
    assert capped["row_count"] == ROW_CAP == capped["limit"] and capped["truncated"] is True
    five = query(world, "analyst_own", "SELECT * FROM range(20000) t(i) ORDER BY i DESC", limit=5)
    assert [r["i"] for r in five.json()["rows"]] == [19999, 19998, 19997, 19996, 19995]
    assert five.headers["X-Truncated"] == "true"
    whole = query(world, "analyst_own", "SELECT * FROM range(3) t(i);", limit=5)
    assert whole.json()["truncated"] is False and whole.headers["X-Row-Count"] == "3"


def test_query_csv_and_parquet_hold_the_same_rows(world):
    sql = "SELECT member_id, sum(written_premium)::DOUBLE AS premium FROM policy GROUP BY ALL"
    con = open_product(world.settings, f"member:{OWN}")
    try:
        expected = con.execute(sql).fetchall()
    finally:
        con.close()
    csv = query(world, "analyst_own", sql, format="csv")
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    cells = [line.split(",") for line in lines[1:]]
    assert lines[0] == '"member_id","premium"' and [(m.strip('"'), float(p)) for m, p in cells] == expected
    parquet = query(world, "analyst_own", sql, format="parquet")
    assert [tuple(r.values()) for r in pq.read_table(io.BytesIO(parquet.content)).to_pylist()] == expected


def test_query_runs_on_the_callers_own_product(world):
    rows = {a: query(world, a, "SELECT DISTINCT member_id FROM policy ORDER BY 1").json()["rows"]
            for a in ("analyst_own", "analyst_other", "regulator")}
    assert rows["analyst_own"] == [{"member_id": OWN}] and rows["analyst_other"] == [{"member_id": OTHER}]
    assert {r["member_id"] for r in rows["regulator"]} >= {OWN, OTHER}


def test_experience_from_the_callers_product(world):
    mine = world.call(world.actors["analyst_own"], "GET", "/api/v1/experience", params={"grain": "year"}).json()
    public = world.call(world.actors["anonymous"], "GET", "/api/v1/experience", params={"grain": "year"}).json()
    assert mine["audience"] == f"member:{OWN}" and public["audience"] == "public"
    assert {r["scope"] for r in public["rows"]} == {"industry"}
    assert not any(r.get("member_id") for r in public["rows"])
    assert {r["member_id"] for r in mine["rows"] if r["scope"] != "industry"} == {OWN}
    con = open_product(world.settings, "public")
    try:
        n = con.execute("SELECT count(*) FROM industry_experience WHERE grain = 'year'").fetchone()[0]
    finally:
        con.close()
    assert public["row_count"] == len(public["rows"]) == n


def test_triangle_json_and_xlsx(world):
    doc = world.call(world.actors["anonymous"], "GET", "/api/v1/triangles", params={"line": "MCOM"}).json()
    assert doc["audience"] == "public" and doc["line"] == "MCOM" and doc["origins"]
    xlsx = world.call(world.actors["anonymous"], "GET", "/api/v1/triangles", params={"line": "MCOM", "format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    missing = world.call(world.actors["anonymous"], "GET", "/api/v1/triangles", params={"line": "NOPE"})
    assert missing.status_code == 404 and "MCOM" in missing.json()["hint"]


def _cookie_login(world: World, username: str) -> str:
    client = world.client
    client.cookies.clear()
    form = client.get("/login")
    answer = client.post("/login", data={"username": username, "password": PASSWORD,
                                         "login_token": hidden(form.text, "login_token")}, follow_redirects=False)
    assert answer.status_code == 303
    return hidden(client.get("/").text, "csrf_token")


def test_query_page_shows_the_rows_and_the_error(world):
    csrf = _cookie_login(world, "analyst-own")
    page = world.client.post("/query", data={"sql": "SELECT 41 + 1 AS answer", "csrf_token": csrf})
    assert page.status_code == 200 and "<th>answer</th>" in page.text and "<td>42</td>" in page.text
    bad = world.client.post("/query", data={"sql": "SELECT * FROM read_csv('/etc/passwd')", "csrf_token": csrf})
    assert bad.status_code == 400 and "read_csv(), which reads files" in bad.text and "root:" not in bad.text
    world.client.cookies.clear()


def test_admin_forms_create_a_user_and_show_a_token_once(world):
    csrf = _cookie_login(world, "operator")
    page = world.client.post("/admin/users", data={"username": "carol", "roles": ["analyst"], "member_id": OWN,
                                                   "csrf_token": csrf})
    assert page.status_code == 200 and "User carol created." in page.text
    assert identity.get_user(world.settings, "carol").roles == {"analyst"}
    issued = world.client.post("/admin/tokens", data={"username": "carol", "name": "job", "csrf_token": csrf})
    secret = issued.text.split('<code id="secret">')[1].split("<")[0]
    assert identity.token_principal(world.settings, secret).name == "carol"
    again = world.client.get("/admin")
    assert secret not in again.text and world.client.get("/api/v1/tokens").text.count(secret) == 0
    refused = world.client.post("/admin/users", data={"username": "dave", "roles": ["analyst"], "csrf_token": csrf})
    assert refused.status_code == 400 and "member" in refused.text
    world.client.cookies.clear()


class FakeAirflow:
    """Airflow's REST API as the client sees it: the runs it was asked to start."""

    url = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.runs: list[dict] = []

    def trigger(self, dag_id: str, conf: dict) -> dict:
        run = {"dag_run_id": f"manual__{len(self.runs)}", "state": "queued", "conf": conf, "secret": "x"}
        self.runs.insert(0, run)
        return run

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.runs


def test_dag_runs_go_through_airflows_rest_api(world, monkeypatch):
    fake = FakeAirflow()
    monkeypatch.setattr(admin, "_client", lambda settings: fake)
    op = world.actors["operator"]
    started = world.call(op, "POST", "/api/v1/dags/build_products/runs", json={"conf": {"why": "test"}})
    assert started.status_code == 201 and started.json()["dag_run_id"] == "manual__0"
    assert "secret" not in started.json() and fake.runs[0]["conf"] == {"why": "test"}
    runs = world.call(op, "GET", "/api/v1/dags/build_products/runs").json()
    assert [r["dag_run_id"] for r in runs["runs"]] == ["manual__0"]
    assert world.call(op, "POST", "/api/v1/dags/not_a_dag/runs").status_code == 404
    monkeypatch.undo()
    down = world.call(op, "GET", "/api/v1/dags/build_products/runs")
    assert down.status_code == 503 and "make airflow" in down.json()["hint"]


def test_audit_trail_verifies_and_lists_credential_changes(world):
    identity.create_token(world.settings, "visitor", "audited")
    trail = world.call(world.actors["regulator"], "GET", "/api/v1/audit", params={"kind": "token-created"}).json()
    assert trail["verification"]["intact"] is True and trail["verification"]["problems"] == []
    assert trail["entries"][0]["details"]["name"] == "audited"
    assert all("ist_" not in str(e) for e in trail["entries"])


def test_access_log_filters_by_user_and_outcome(world):
    world.call(world.actors["submitter_other"], "GET", "/api/v1/audit")
    for _ in range(30):     # read() does not wait for a batch the background flusher is writing
        rows = world.call(world.actors["regulator"], "GET", "/api/v1/access-log",
                          params={"username": "submitter-other", "outcome": "denied"}).json()
        if rows:
            break
        time.sleep(0.5)
    assert rows and {(r["username"], r["outcome"]) for r in rows} == {("submitter-other", "denied")}
    assert rows[0]["endpoint"] == "audit.read" and rows[0]["status"] == 403
    page = world.call(world.actors["regulator"], "GET", "/access-log", params={"username": "submitter-other"})
    assert page.status_code == 200 and "audit.read" in page.text


def test_readme_api_reference_lists_every_endpoint_and_catches_drift(world, tmp_path):
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- generated:api -->\n")[1].split("<!-- /generated:api -->")[0]
    schema = world.client.app.openapi()
    for path, operations in schema["paths"].items():
        for method in operations:
            assert f"| `{method.upper()}` | `{path}` |" in block
    stale = tmp_path / "README.md"
    stale.write_text(readme.replace("| `POST` | `/api/v1/query` |", "| `POST` | `/api/v1/old-query` |"), encoding="utf-8")
    assert update_readme(main, check=True, path=stale) is True
    assert update_readme(main, check=True) is False
