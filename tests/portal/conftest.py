"""Fixtures for the portal's tests: an app on the test platform, its users, and logging in.

``portal`` is ``(settings, client)``: the ``settings`` fixture's platform (members M001-M003) and
a ``TestClient`` on ``create_app(settings)``. ``add_user`` creates an account (password
``PASSWORD``), ``log_in`` logs a client in through the login form and answers the session's CSRF
token, ``token_for`` issues an API token and answers its secret, ``bearer`` the header for it.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from pipelines.config import Settings
from pipelines.portal import db, identity
from pipelines.portal.app import create_app

PASSWORD = "correct horse battery staple"
_HIDDEN = re.compile(r'name="(?P<name>login_token|csrf_token)" value="(?P<value>[^"]*)"')


@pytest.fixture
def portal(settings: Settings):
    """(settings, a TestClient on the portal); the identity database is closed afterwards."""
    with TestClient(create_app(settings)) as client:
        yield settings, client
    db.dispose()


def add_user(settings: Settings, username: str, roles: str | tuple[str, ...], member_id: str | None = None,
             password: str = PASSWORD) -> identity.User:
    """An account with ``roles`` ("submitter" or a tuple) and the shared test password."""
    return identity.create_user(settings, username, (roles,) if isinstance(roles, str) else roles,
                                member_id=member_id, password=password)


def hidden(html: str, name: str) -> str:
    """The value of the hidden form field ``name`` (login_token or csrf_token) in a page."""
    found = {m["name"]: m["value"] for m in _HIDDEN.finditer(html)}
    return found[name]


def log_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log ``client`` in through the login form; the session's CSRF token (for forms and the
    ``X-CSRF-Token`` header). Fails the test when the login does not succeed."""
    form = client.get("/login").text
    csrf = {"csrf_token": hidden(form, "csrf_token")} if 'name="csrf_token"' in form else {}  # logged in already
    answer = client.post("/login", data={"username": username, "password": password,
                                         "login_token": hidden(form, "login_token"), **csrf},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return hidden(client.get("/").text, "csrf_token")


def token_for(settings: Settings, username: str, name: str = "test", days: int = 30) -> str:
    """A new API token's secret text for ``username``."""
    return identity.create_token(settings, username, name, days=days)[1]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
