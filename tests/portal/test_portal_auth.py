"""Logging in and out: session cookie flags, a new session per login, CSRF, the front door."""

from __future__ import annotations

from tests.portal.conftest import PASSWORD, add_user, bearer, hidden, log_in, token_for


def test_login_sets_a_strict_httponly_session_cookie(portal):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    form = client.get("/login")
    answer = client.post("/login", data={"username": "sam", "password": PASSWORD,
                                         "login_token": hidden(form.text, "login_token")}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("insurshare_session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags    # served over http here
    assert client.get("/api/v1/me").json()["username"] == "sam"
