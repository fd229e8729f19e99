"""Every request leaves one access record, refused ones too: who, what, which object, outcome."""

from __future__ import annotations

import pytest

from pipelines.portal import accesslog, identity
from tests.portal.conftest import add_user, bearer, hidden, log_in, token_for


def _records(settings, **filters) -> list[dict]:
    return accesslog.read(settings, **filters)


def test_a_request_is_recorded_once_with_its_caller_and_rows(portal):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    secret = token_for(settings, "sam")
    assert client.get("/api/v1/submissions", headers=bearer(secret)).status_code == 200
    got = [r for r in _records(settings, username="sam") if r["endpoint"] == "submissions.list"]
    assert len(got) == 1
    rec = got[0]
    assert (rec["principal_kind"], rec["member_id"], rec["method"], rec["path"], rec["status"], rec["outcome"],
            rec["rows"]) == ("token", "M001", "GET", "/api/v1/submissions", 200, "allowed", 0)
    assert rec["principal_id"] == identity.list_tokens(settings, "sam")[0].token_id


def test_anonymous_denial_is_recorded(portal):
    settings, client = portal
    assert client.get("/api/v1/submissions").status_code == 401
    rec = next(r for r in _records(settings) if r["endpoint"] == "submissions.list")
    assert (rec["principal_kind"], rec["status"], rec["outcome"]) == ("anonymous", 401, "denied")


def test_another_members_object_is_recorded_as_not_found_with_its_id(portal):
    settings, client = portal
    add_user(settings, "sue", "submitter", "M002")
    answer = client.get("/api/v1/submissions/M001-policy-2024Q1-v1/rules", headers=bearer(token_for(settings, "sue")))
    assert answer.status_code == 404
    rec = next(r for r in _records(settings, username="sue") if r["endpoint"] == "submissions.rules")
    assert (rec["outcome"], rec["object_id"], rec["status"]) == ("not_found", "M001-policy-2024Q1-v1", 404)


def test_csrf_refusal_is_recorded(portal):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    log_in(client, "sam")
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    rec = next(r for r in _records(settings, username="sam") if r["endpoint"] == "auth.logout")
    assert (rec["outcome"], rec["status"]) == ("denied", 403) and "CSRF" in rec["detail"]


def test_refused_login_is_recorded_with_the_name_tried_never_the_password(portal):
    settings, client = portal
    form = client.get("/login").text
    client.post("/login", data={"username": "mallory", "password": "hunter2-hunter2",
                                "login_token": hidden(form, "login_token")})
    rec = next(r for r in _records(settings) if r["endpoint"] == "auth.login")
    assert (rec["outcome"], rec["status"]) == ("refused", 401) and "mallory" in rec["detail"]
    assert not any("hunter2" in str(v) for r in _records(settings) for v in r.values())


def test_successful_login_is_recorded_as_the_user(portal):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    log_in(client, "sam")
    rec = next(r for r in _records(settings) if r["endpoint"] == "auth.login")
    assert (rec["username"], rec["principal_kind"], rec["outcome"], rec["status"]) == ("sam", "user", "allowed", 303)


@pytest.mark.parametrize("why", ["revoked", "expired"])
def test_refused_token_is_recorded_with_its_id_and_why(portal, why, monkeypatch):
    settings, client = portal
    add_user(settings, "bot", "submitter", "M001")
    secret = token_for(settings, "bot", days=1)
    token_id = secret.split("_")[1]
    if why == "revoked":
        identity.revoke_token(settings, token_id)
    else:
        later = identity.clock() + 2 * 86400
        monkeypatch.setattr(identity, "clock", lambda: later)
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 401
    rec = next(r for r in _records(settings) if r["endpoint"] == "me")
    assert (rec["outcome"], rec["status"]) == ("refused", 401)
    assert token_id in rec["detail"] and why in rec["detail"] and secret.split("_")[2] not in rec["detail"]
