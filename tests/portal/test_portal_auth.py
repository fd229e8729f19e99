"""The front door: session cookie flags, a new session per login, logout, CSRF, tokens, denials,
security headers, the offline API reference and the refusal of a route without a policy entry."""

from __future__ import annotations

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from pipelines.portal import app as portal_app
from pipelines.portal import identity, web
from tests.portal.conftest import PASSWORD, add_user, bearer, hidden, log_in, token_for


def _post_login(client: TestClient, username: str, password: str = PASSWORD, **extra: str):
    form = client.get("/login").text
    csrf = {"csrf_token": hidden(form, "csrf_token")} if 'name="csrf_token"' in form else {}
    return client.post("/login", data={"username": username, "password": password,
                                       "login_token": hidden(form, "login_token"), **csrf, **extra},
                       follow_redirects=False)


def _session_cookie(answer) -> str:
    return next(c for c in answer.headers.get_list("set-cookie") if c.startswith("insurshare_session="))


def test_login_sets_a_strict_httponly_session_cookie(portal):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    answer = _post_login(client, "sam")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    flags = {part.strip().lower() for part in _session_cookie(answer).split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags    # served over http here
    assert client.get("/api/v1/me").json()["username"] == "sam"


def test_login_cookie_is_secure_when_the_portal_is_served_over_https(settings):
    https = settings.with_(env={**settings.env, "INSURSHARE_PORTAL_URL": "https://portal.example"})
    add_user(https, "sam", "submitter", "M001")
    with TestClient(portal_app.create_app(https), base_url="https://testserver") as client:
        answer = _post_login(client, "sam")
    assert "secure" in {p.strip().lower() for p in _session_cookie(answer).split(";")}


def test_login_gives_a_new_session_id_not_the_one_planted_before(portal):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    client.cookies.set("insurshare_session", "planted-by-an-attacker-" + "x" * 20, domain="testserver.local")
    first = _post_login(client, "sam")
    sid1 = client.cookies.get("insurshare_session")
    second = _post_login(client, "sam")
    sid2 = client.cookies.get("insurshare_session")
    assert first.status_code == second.status_code == 303
    assert sid1 != sid2 and not sid1.startswith("planted")
    assert identity.session(settings, sid1) is None      # logging in again ended the earlier session
    assert identity.session(settings, sid2)[0].name == "sam"


def test_login_wrong_password_is_refused_without_a_session(portal):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    answer = _post_login(client, "sam", "not the password at all")
    assert answer.status_code == 401
    assert "Wrong user name or password" in answer.text
    assert not any(c.startswith("insurshare_session=") for c in answer.headers.get_list("set-cookie"))
    assert client.get("/api/v1/me").status_code == 401


def test_login_without_the_forms_token_is_refused(portal):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    answer = client.post("/login", data={"username": "sam", "password": PASSWORD}, follow_redirects=False)
    assert answer.status_code == 403
    assert client.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_to_another_site(portal, target):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    assert _post_login(client, "sam", next=target).headers["location"] == "/"


def test_login_goes_on_to_the_page_asked_for(portal):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    first = client.get("/submissions", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login?next=/submissions"
    assert _post_login(client, "sam", next="/submissions").headers["location"] == "/submissions"


def test_logout_without_csrf_token_is_refused_and_the_session_stays(portal):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    log_in(client, "sam")
    answer = client.post("/logout", data={}, follow_redirects=False)
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert client.post("/logout", data={"csrf_token": "guessed"}, follow_redirects=False).status_code == 403
    assert client.get("/api/v1/me").status_code == 200


def test_logout_ends_the_session(portal):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    csrf = log_in(client, "sam")
    sid = client.cookies.get("insurshare_session")
    answer = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert identity.session(settings, sid) is None
    client.cookies.set("insurshare_session", sid, domain="testserver.local")   # replaying the old cookie
    assert client.get("/api/v1/me").status_code == 401


def test_csrf_header_is_accepted_for_cookie_callers(portal):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    csrf = log_in(client, "sam")
    assert client.post("/logout", headers={"X-CSRF-Token": csrf}, follow_redirects=False).status_code == 303


def test_token_caller_needs_no_csrf_token(portal):
    settings, client = portal
    add_user(settings, "bot", "submitter", "M001")
    secret = token_for(settings, "bot")
    me = client.get("/api/v1/me", headers=bearer(secret)).json()
    assert (me["kind"], me["username"], me["member_id"]) == ("token", "bot", "M001")
    assert "submissions.upload" in me["may"] and "query.run" not in me["may"]


@pytest.mark.parametrize("why", ["revoked", "malformed"])
def test_bad_token_is_refused_not_taken_as_anonymous(portal, why):
    settings, client = portal
    add_user(settings, "bot", "submitter", "M001")
    secret = token_for(settings, "bot")
    if why == "revoked":
        identity.revoke_token(settings, secret.split("_")[1])
    else:
        secret = "ist_nonsense"
    answer = client.get("/api/v1/health", headers=bearer(secret))
    assert answer.status_code == 401
    assert answer.json()["error"] == "The API token is not valid."
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_anonymous_api_call_is_401_and_a_member_without_the_role_403(portal):
    settings, client = portal
    add_user(settings, "ann", "analyst", "M001")
    assert client.get("/api/v1/submissions").status_code == 401
    log_in(client, "ann")
    answer = client.get("/api/v1/submissions")
    assert answer.status_code == 403 and "submitter" in answer.json()["hint"]
    page = client.get("/submissions/new")
    assert page.status_code == 403 and "Not allowed" in page.text


@pytest.mark.parametrize("path", ["/api/v1/health", "/login", "/api/v1/no-such-thing", "/no-such-page",
                                  "/api/v1/openapi.json", "/api/v1/docs"])
def test_security_headers_on_every_answer(portal, path):
    _settings, client = portal
    headers = client.get(path).headers
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


def test_unknown_paths_answer_json_for_the_api_and_a_page_for_people(portal):
    _settings, client = portal
    assert client.get("/api/v1/no-such-thing").json()["error"] == "Not Found"
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


def test_api_reference_page_lists_endpoints_without_any_external_url(portal):
    _settings, client = portal
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/submissions/{submission_id}/quarantine" in schema["paths"]
    page = client.get("/api/v1/docs").text
    assert "/api/v1/submissions/{submission_id}/report" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_home_lists_what_the_caller_may_do(portal):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    assert "/submissions/new" not in client.get("/").text
    log_in(client, "sam")
    home = client.get("/").text
    assert 'href="/submissions/new"' in home and "/api/v1/submissions" in home


def test_app_refuses_a_route_without_a_policy_entry(settings, monkeypatch):
    router = web.api_router()

    @router.get("/sneaky", name="sneaky.endpoint")
    def sneaky(request: Request) -> dict:
        return {}

    class Extra:
        api = router

    real = portal_app.route_modules
    monkeypatch.setattr(portal_app, "route_modules", lambda: [*real(), Extra])
    with pytest.raises(RuntimeError, match="sneaky.endpoint"):
        portal_app.create_app(settings)


def test_a_route_that_bypasses_the_policy_route_is_refused(monkeypatch, tmp_path):
    """A plain Starlette route added beside the policy routes (no caller check, no access record)
    stops the app from being built; only the API's description is allowed outside."""
    from fastapi import FastAPI

    from pipelines.portal import app as portal_app

    bare = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    bare.add_route("/api/v1/openapi.json", lambda request: None)
    portal_app._check_unguarded(bare)                     # the description alone is fine
    bare.add_route("/backdoor", lambda request: None)
    with pytest.raises(RuntimeError, match="/backdoor"):
        portal_app._check_unguarded(bare)
