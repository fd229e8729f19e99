"""The identity database on PostgreSQL (the catalog's own database): the same SQL, the same rules."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from pipelines.portal import db, identity
from tests.store.conftest import pg_settings  # noqa: F401  (a fresh PostgreSQL database; skips without one)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def pg(pg_settings):  # noqa: F811
    yield pg_settings
    db.dispose()   # before the database is dropped


def test_identity_on_postgres_users_throttling_sessions_tokens(pg, monkeypatch):
    now = [1_800_000_000.0]
    monkeypatch.setattr(identity, "clock", lambda: now[0])
    assert db.location(pg).startswith("postgres:")

    user = identity.create_user(pg, "alice", ["submitter", "analyst"], "M002", PASSWORD)
    for _ in range(3):
        with pytest.raises(identity.LoginRefused) as wrong:
            identity.authenticate(pg, "alice", "not the password", "192.0.2.1")
    with pytest.raises(identity.LoginRefused) as waiting:
        identity.authenticate(pg, "alice", PASSWORD, "192.0.2.1")
    assert wrong.value.retry_after is None and waiting.value.retry_after == pytest.approx(1.0)
    now[0] += 1
    principal = identity.authenticate(pg, "alice", PASSWORD, "192.0.2.1")
    assert (principal.id, principal.roles, principal.member_id) == (user.user_id, {"submitter", "analyst"}, "M002")

    sid, csrf = identity.create_session(pg, principal, "192.0.2.1")
    assert identity.session(pg, sid) == (principal, csrf)
    now[0] += identity.IDLE_SECONDS + 1
    assert identity.session(pg, sid) is None

    token, secret = identity.create_token(pg, "alice", "ci", days=1)
    assert identity.token_principal(pg, secret).id == token.token_id
    identity.revoke_token(pg, token.token_id)
    assert identity.token_refusal(pg, secret) == "revoked"

    with db.engine(pg).connect() as con:
        tables = set(con.execute(text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'portal_%'")).scalars())
        raw = str(con.execute(text("SELECT * FROM portal_users")).fetchall())
    assert {"portal_users", "portal_sessions", "portal_tokens", "portal_login_failures"} <= tables
    assert PASSWORD not in raw and "scrypt$" in raw
