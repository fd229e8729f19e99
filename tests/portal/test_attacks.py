"""Attacks on the portal: each is refused with a clear error, loses nothing, and is in the access log.

IDOR (another member's submission, report, quarantine, product and rows), path traversal in ids
and file names, oversized, truncated and mislabelled uploads, session fixation, CSRF without a
token, expired and revoked tokens, brute-forced passwords, and SQL that tries to leave the
caller's product (the sandbox's probes of ``tests/query``, sent through the API).
"""

from __future__ import annotations

import hashlib
import time

import pytest
from fastapi.testclient import TestClient

from pipelines.portal import accesslog, db, identity
from pipelines.portal.app import create_app
from pipelines.products import product_path
from tests.portal.conftest import hidden
from tests.portal.world import MISSING_SUBMISSION, OTHER, OWN, PASSWORD, World, build_world, policy_file
from tests.query.test_sandbox import PROBES, leftovers

CSV_FIELDS = {"dataset": "policy", "period": "2024Q1", "rows": "3", "control.written_premium": "3600.00",
              "control.written_exposure": "3.000000"}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    built = build_world(tmp_path_factory.mktemp("attacks"))
    with built.client:
        yield built
    db.dispose()


def logged(world: World, **match: object) -> dict:
    """The newest access-log row matching ``match`` (the spool is flushed into the lake first)."""
    rows = accesslog.read(world.settings, limit=200)
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert found, f"no access {match} among the newest: {[(r['endpoint'], r['status'], r['outcome']) for r in rows[:8]]}"
    return found[0]


def error_of(answer) -> str:
    return answer.json()["error"]


def files_under(folder) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# -- IDOR -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("tail", ["", "/report", "/rules", "/quarantine", "/quarantine.csv", "/quarantine?format=xlsx"])
def test_attack_idor_another_members_submission_is_a_plain_404(world, tail):
    thief = world.actors["submitter_other"]
    theirs = world.call(thief, "GET", f"/api/v1/submissions/{world.submission}{tail}")
    missing = world.call(thief, "GET", f"/api/v1/submissions/{MISSING_SUBMISSION}{tail}")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content and error_of(theirs) == "Not found."
    owner = world.call(world.actors["submitter_own"], "GET", f"/api/v1/submissions/{world.submission}{tail}")
    assert owner.status_code == 200                     # the object exists: only the thief is refused
    row = logged(world, username="submitter-other", object_id=world.submission, status=404)
    assert row["outcome"] == "not_found" and row["member_id"] == OTHER


def test_attack_idor_product_download_is_always_the_callers_own(world):
    for actor, member in (("analyst_own", OWN), ("analyst_other", OTHER)):
        answer = world.call(world.actors[actor], "GET", "/api/v1/products/mine")
        assert answer.status_code == 200
        assert answer.content == product_path(world.settings, f"member_{member}").read_bytes()
    for path in ("/api/v1/products/member_M001", "/api/v1/products/member_M001.duckdb",
                 "/api/v1/products/..%2Fproducts%2Fmember_M001.duckdb", "/api/v1/products/regulator"):
        answer = world.call(world.actors["analyst_other"], "GET", path)
        assert answer.status_code in (404, 405), path
        assert b"DUCK" not in answer.content[:64]
    assert logged(world, username="analyst-other", endpoint="products.download")["object_id"] == f"member:{OTHER}"


def test_attack_idor_a_query_reads_only_the_callers_product(world):
    thief = world.actors["analyst_other"]
    answer = world.call(thief, "POST", "/api/v1/query", json={"sql": "SELECT DISTINCT member_id FROM policy"})
    assert answer.status_code == 200 and answer.json()["rows"] == [{"member_id": OTHER}]
    other = product_path(world.settings, f"member_{OWN}")
    for sql in (f"ATTACH '{other}' AS theirs", f"SELECT * FROM '{other}'",
                f"SELECT * FROM read_parquet('{other}')", "SELECT * FROM member_M001.policy"):
        answer = world.call(thief, "POST", "/api/v1/query", json={"sql": sql})
        assert answer.status_code == 400, sql
        assert "Traceback" not in answer.text and error_of(answer)
    row = logged(world, username="analyst-other", endpoint="query.run", status=400)
    assert row["query_sha256"] == hashlib.sha256(b"SELECT * FROM member_M001.policy").hexdigest()
    assert row["outcome"] == "invalid"


# -- path traversal -------------------------------------------------------------------------------

@pytest.mark.parametrize("evil", ["..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fkeys", "..%5C..%5Cwin.ini",
                                  "M001-policy-2024Q1-v1%00.html",
                                  "%252e%252e%252fetc%252fpasswd"])
def test_attack_traversal_in_submission_ids_is_a_plain_404(world, evil):
    answer = world.call(world.actors["submitter_own"], "GET", f"/api/v1/submissions/{evil}/report")
    assert answer.status_code == 404
    assert b"root:" not in answer.content and b"Traceback" not in answer.content


@pytest.mark.parametrize("name", ["../../../../tmp/evil/policy_2024Q1.csv", "..\\..\\policy_2024Q1.csv",
                                  "/etc/policy_2024Q1.csv", "sub/policy_2024Q1.csv"])
def test_attack_traversal_in_an_uploaded_file_name_is_refused_and_keeps_nothing(world, name):
    before = files_under(world.settings.archive_dir)
    body = policy_file(world.files, "traversal.csv").read_bytes()
    answer = world.call(world.actors["submitter_other"], "POST", "/api/v1/submissions",
                        files={"file": (name, body, "text/csv")}, data=CSV_FIELDS)
    assert answer.status_code == 400 and "path" in error_of(answer)
    assert files_under(world.settings.work_dir / "uploads") == []
    assert files_under(world.settings.archive_dir) == before
    assert not (world.settings.home.parent / "tmp" / "evil").exists()
    assert logged(world, endpoint="submissions.upload", status=400, username="submitter-other")["outcome"] == "invalid"


# -- uploads --------------------------------------------------------------------------------------

def test_attack_oversized_upload_is_413_and_keeps_nothing(world):
    small = world.settings.with_(env={**world.settings.env, "INSURSHARE_PORTAL_MAX_UPLOAD": "2KB"})
    before = files_under(small.archive_dir)
    big = policy_file(world.files, "big.csv", rows=60).read_bytes()
    assert len(big) > 4000
    with TestClient(create_app(small)) as client:
        answer = client.post("/api/v1/submissions", headers=world.actors["submitter_own"].headers(),
                             files={"file": ("policy_2024Q1.csv", big, "text/csv")}, data=CSV_FIELDS)
    assert answer.status_code == 413 and error_of(answer)
    assert files_under(small.work_dir / "uploads") == []
    assert files_under(small.archive_dir) == before
    assert logged(world, endpoint="submissions.upload", status=413)["outcome"] == "invalid"


def test_attack_truncated_upload_is_refused_and_keeps_nothing(world):
    before = files_under(world.settings.archive_dir)
    boundary = "XyZ123"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"dataset\"\r\n\r\npolicy\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"policy_2024Q1.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode() + policy_file(world.files).read_bytes()[:150]
    answer = world.call(world.actors["submitter_own"], "POST", "/api/v1/submissions", content=body,
                        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert 400 <= answer.status_code < 500 and error_of(answer)
    assert files_under(world.settings.work_dir / "uploads") == []
    assert files_under(world.settings.archive_dir) == before
    assert logged(world, endpoint="submissions.upload", status=answer.status_code)["username"] == "submitter-own"


def test_attack_bytes_that_do_not_match_the_name_are_refused_clearly(world):
    body = policy_file(world.files, "liar.csv", rows=3).read_bytes()
    answer = world.call(world.actors["submitter_own"], "POST", "/api/v1/submissions",
                        files={"file": ("policy_2024Q1.xlsx", body, "application/octet-stream")}, data=CSV_FIELDS)
    assert answer.status_code == 422, answer.text
    assert "xlsx" in error_of(answer).lower() or "excel" in error_of(answer).lower()
    assert files_under(world.settings.work_dir / "uploads") == []
    assert logged(world, endpoint="submissions.upload", status=422)["outcome"] == "invalid"


# -- sessions, CSRF, tokens, passwords ------------------------------------------------------------

def _login(client: TestClient, username: str, password: str = PASSWORD):
    form = client.get("/login")
    return client.post("/login", data={"username": username, "password": password,
                                       "login_token": hidden(form.text, "login_token")}, follow_redirects=False)


def test_attack_session_fixation_planted_cookie_is_not_accepted_and_login_issues_a_new_id(world):
    client = world.client
    client.cookies.clear()
    planted = "A" * 43
    client.cookies.set("insurshare_session", planted)
    assert client.get("/api/v1/me").status_code == 401
    answer = _login(client, "visitor")
    assert answer.status_code == 303
    issued = answer.cookies.get("insurshare_session")
    assert issued and issued != planted
    assert identity.session(world.settings, planted) is None
    assert logged(world, endpoint="me", status=401)["principal_kind"] == "anonymous"
    client.cookies.clear()


def test_attack_csrf_without_a_token_is_403_and_changes_nothing(world):
    client = world.client
    client.cookies.clear()
    assert _login(client, "operator").status_code == 303
    csrf = hidden(client.get("/admin").text, "csrf_token")
    refused = client.post("/admin/members", data={"member_id": "M077", "name": "Forged"})
    wrong = client.post("/api/v1/members", json={"member_id": "M078", "name": "Forged"},
                        headers={"X-CSRF-Token": "not-the-token"})
    assert refused.status_code == wrong.status_code == 403
    assert "CSRF" in wrong.json()["error"]
    members = {m["member_id"] for m in client.get("/api/v1/members").json()}
    assert not {"M077", "M078"} & members
    ok = client.post("/admin/members", data={"member_id": "M079", "name": "Real", "csrf_token": csrf})
    assert ok.status_code == 200 and "M079" in {m["member_id"] for m in client.get("/api/v1/members").json()}
    assert logged(world, endpoint="members.add", status=403, username="operator")["outcome"] == "denied"
    client.cookies.clear()


def test_attack_revoked_and_expired_tokens_are_refused(world, monkeypatch):
    settings = world.settings
    token, revoked = identity.create_token(settings, "analyst-own", "to-revoke")
    identity.revoke_token(settings, token.token_id)
    _, expiring = identity.create_token(settings, "analyst-own", "to-expire", days=1)
    answer = world.client.get("/api/v1/me", headers={"Authorization": f"Bearer {revoked}"})
    assert answer.status_code == 401 and "revoked" in answer.json()["hint"]
    later = time.time() + 2 * 86400
    monkeypatch.setattr(identity, "clock", lambda: later)
    answer = world.client.get("/api/v1/me", headers={"Authorization": f"Bearer {expiring}"})
    assert answer.status_code == 401 and "expired" in answer.json()["hint"]
    monkeypatch.undo()
    forged = world.client.get("/api/v1/me", headers={"Authorization": "Bearer ist_t-0000000000000000_" + "x" * 43})
    assert forged.status_code == 401
    row = logged(world, endpoint="me", status=401, outcome="refused")
    assert "Bearer" not in row["detail"] and revoked not in str(row)


def test_attack_brute_force_is_slowed_then_locked(world, monkeypatch):
    settings, client = world.settings, world.client
    now = [time.time()]
    monkeypatch.setattr(identity, "clock", lambda: now[0])
    try:
        statuses = []
        for _ in range(identity.LOCK_AFTER):
            client.cookies.clear()
            statuses.append(_login(client, "visitor", "wrong password guess").status_code)
            now[0] += 600                                 # past every wait before the lock
        client.cookies.clear()
        right = _login(client, "visitor")
        assert set(statuses) == {401} and right.status_code == 429
        assert int(right.headers["Retry-After"]) > 60 and "session" not in str(right.cookies)
        assert logged(world, endpoint="auth.login", status=429)["outcome"] == "refused"
    finally:
        identity.unlock(settings, "visitor", ip="testclient")
        client.cookies.clear()


# -- SQL that leaves the product ------------------------------------------------------------------

@pytest.mark.parametrize("probe", [*PROBES, "httpfs"], ids=[*PROBES, "httpfs"])
def test_attack_sql_cannot_leave_the_product(world, probe):
    settings = world.settings
    sql, message = PROBES.get(probe, ("SELECT * FROM read_parquet('https://example.com/x.parquet')",
                                      "read_parquet(), which reads files"))
    text = sql.format(key=settings.key_file, archive_key=settings.key_file.with_name("archive.key"),
                      home=settings.home, catalog=settings.catalog)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (settings.home / "products").glob("*")}
    answer = world.call(world.actors["analyst_own"], "POST", "/api/v1/query", json={"sql": text, "format": "csv"})
    assert answer.status_code == 400 and message in error_of(answer)
    assert "Traceback" not in answer.text
    assert before == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (settings.home / "products").glob("*")}
    assert not (settings.home / "out.csv").exists()
    assert leftovers(settings) == [] and files_under(settings.work_dir / "portal-queries") == []
    row = logged(world, endpoint="query.run", query_sha256=hashlib.sha256(text.encode()).hexdigest())
    assert row["status"] == 400 and row["outcome"] == "invalid"
