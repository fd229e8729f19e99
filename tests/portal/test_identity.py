"""Identities of the portal: password hashing, throttled logins, sessions, tokens, roles, audit."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from sqlalchemy import text

from pipelines import store
from pipelines.config import Settings
from pipelines.errors import NotFound
from pipelines.lake import Lake
from pipelines.portal import db, identity, passwords
from pipelines.portal.identity import IdentityError, LoginRefused

PASSWORD = "correct horse battery staple"
IP = "192.0.2.10"


class Clock:
    """A clock the test moves by hand (``identity.clock`` is replaced by it)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(identity, "clock", c)
    return c


@pytest.fixture(autouse=True)
def _close_identity_db():
    """Each test has a home of its own: close the pooled connections to its identity database."""
    yield
    db.dispose()


@pytest.fixture
def alice(settings: Settings) -> identity.User:
    return identity.create_user(settings, "alice", ["submitter"], "M001", PASSWORD)


def _raw(settings: Settings, table: str) -> str:
    """Every value of every row of ``table``, as one text (to search for leaked secrets)."""
    with db.engine(settings).connect() as con:
        return json.dumps([list(r) for r in con.execute(text(f"SELECT * FROM {table}")).fetchall()], default=str)


def _refused(settings: Settings, username: str, password: str, ip: str = IP) -> LoginRefused:
    with pytest.raises(LoginRefused) as caught:
        identity.authenticate(settings, username, password, ip)
    return caught.value


def _audit_entries(settings: Settings) -> list[tuple[str, str, dict]]:
    with Lake(settings) as lake:
        rows = lake.execute(f"SELECT kind, subject, details FROM {store.LAKE}.audit_log ORDER BY seq").fetchall()
    return [(k, s, json.loads(d)) for k, s, d in rows]


# ---- passwords -------------------------------------------------------------------------------

def test_identity_password_is_stored_only_as_a_salted_scrypt_hash(settings, alice):
    bob = identity.create_user(settings, "bob", ["operator"], password=PASSWORD)
    raw = _raw(settings, "portal_users")
    assert PASSWORD not in raw
    with db.engine(settings).connect() as con:
        hashes = dict(con.execute(text("SELECT username, password_hash FROM portal_users")).fetchall())
    scheme, n, r, p, salt, digest = hashes["alice"].split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(passwords.unb64(salt)) == 16
    assert hashes["alice"] != hashes[bob.username]   # the same password, different salts
    assert identity.verify_password(PASSWORD, hashes["alice"])
    assert not identity.verify_password(PASSWORD + "!", hashes["alice"])


@pytest.mark.parametrize("password, why", [("short pass", "too short"), ("Alice-The-Great", "user name")],
                         ids=["short", "equals-username"])
def test_identity_weak_password_is_refused(settings, password, why):
    with pytest.raises(IdentityError, match=why):
        identity.create_user(settings, "Alice-The-Great", ["operator"], password=password)
    assert identity.get_user(settings, "alice-the-great") is None


def test_identity_wrong_password_and_unknown_user_get_the_same_refusal(settings, alice, clock, monkeypatch):
    checked = []
    real = identity.verify_password
    monkeypatch.setattr(identity, "verify_password", lambda pw, stored: checked.append(stored) or real(pw, stored))

    wrong_password = _refused(settings, "alice", "not the password at all")
    unknown_user = _refused(settings, "mallory", PASSWORD)
    identity.set_disabled(settings, "alice", True)
    disabled = _refused(settings, "alice", PASSWORD, ip="192.0.2.99")

    assert str(wrong_password) == str(unknown_user) == str(disabled)
    assert wrong_password.retry_after is None and unknown_user.retry_after is None
    assert "alice" not in str(wrong_password) and "mallory" not in str(unknown_user)
    # the unknown name was checked against a hash too (the dummy), so it takes as long
    assert len(checked) == 3 and checked[1] == passwords.dummy_hash() != checked[0]


def test_identity_login_is_case_insensitive_and_records_the_time(settings, alice, clock):
    principal = identity.authenticate(settings, " Alice ", PASSWORD, IP)
    assert principal == identity.Principal("user", alice.user_id, "alice", frozenset({"submitter"}), "M001")
    assert identity.get_user(settings, "alice").last_login_at.timestamp() == clock.now


# ---- throttling ------------------------------------------------------------------------------

def test_identity_failures_slow_down_then_lock_until_unlocked(settings, alice, clock):
    for _ in range(3):   # free
        _refused(settings, "alice", "wrong password!")
    too_soon = _refused(settings, "alice", PASSWORD)   # even the right password must wait
    assert too_soon.retry_after == pytest.approx(1.0)
    assert "Too many failed logins" in str(too_soon) and "try again in 1 s" in str(too_soon)
    waits = []
    for n in range(4, 11):   # the 4th..10th failure, each after waiting 2**(n-4) s
        clock.advance(2 ** (n - 4))
        _refused(settings, "alice", "wrong password!")
        waits.append(_refused(settings, "alice", PASSWORD).retry_after)
    assert waits[:-1] == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    assert waits[-1] == pytest.approx(identity.LOCK_SECONDS)   # 10 failures: locked
    assert identity.get_user(settings, "alice").locked_until.timestamp() == clock.now + identity.LOCK_SECONDS

    identity.unlock(settings, "alice", ip=IP)

    assert identity.get_user(settings, "alice").locked_until is None
    assert identity.authenticate(settings, "alice", PASSWORD, IP).name == "alice"


def test_identity_lock_runs_out_and_a_further_failure_locks_again(settings, alice, clock, monkeypatch):
    monkeypatch.setattr(identity, "LOCK_AFTER", 4)
    monkeypatch.setattr(identity, "LOCK_SECONDS", 60)
    for _ in range(3):
        _refused(settings, "alice", "wrong password!")
    clock.advance(1)
    _refused(settings, "alice", "wrong password!")
    assert _refused(settings, "alice", PASSWORD).retry_after == pytest.approx(60)
    clock.advance(61)
    _refused(settings, "alice", "wrong password!")
    assert _refused(settings, "alice", PASSWORD).retry_after == pytest.approx(60)
    clock.advance(61)
    assert identity.authenticate(settings, "alice", PASSWORD, IP).name == "alice"


def test_identity_success_resets_the_count(settings, alice, clock):
    for _ in range(2):
        _refused(settings, "alice", "wrong password!")
    identity.authenticate(settings, "alice", PASSWORD, IP)
    for _ in range(3):   # three free failures again
        _refused(settings, "alice", "wrong password!")
    assert _refused(settings, "alice", PASSWORD).retry_after == pytest.approx(1.0)


def test_identity_unknown_names_are_throttled_like_known_ones(settings, clock):
    for _ in range(3):
        assert _refused(settings, "nobody", "whatever it is", ip=f"198.51.100.{_}").retry_after is None
    assert _refused(settings, "nobody", "whatever it is", ip="198.51.100.9").retry_after == pytest.approx(1.0)
    assert "nobody" not in _raw(settings, "portal_login_failures")   # the name is kept as a hash only


def test_identity_one_address_trying_many_names_is_throttled(settings, alice, clock):
    for name in ("bob", "carol", "dave"):
        _refused(settings, name, "some password")
    refused = _refused(settings, "alice", PASSWORD)   # alice's own count is 0: the address waits
    assert refused.retry_after == pytest.approx(1.0)
    assert identity.authenticate(settings, "alice", PASSWORD, "203.0.113.5").name == "alice"


# ---- sessions --------------------------------------------------------------------------------

def _login(settings: Settings, username: str = "alice") -> tuple[str, str]:
    return identity.create_session(settings, identity.authenticate(settings, username, PASSWORD, IP), IP)


def test_identity_each_login_gets_a_new_session_stored_only_as_a_hash(settings, alice, clock):
    first, csrf1 = _login(settings)
    second, csrf2 = _login(settings)
    assert first != second and csrf1 != csrf2 and len(first) >= 43
    principal, csrf = identity.session(settings, second)
    assert (principal.kind, principal.id, principal.member_id, csrf) == ("user", alice.user_id, "M001", csrf2)
    assert identity.session(settings, first)[1] == csrf1   # the other browser's session is its own
    raw = _raw(settings, "portal_sessions")
    assert first not in raw and second not in raw


@pytest.mark.parametrize("sid", ["", "made-up", "A" * 43, "x" * 10_000], ids=["empty", "short", "forged", "huge"])
def test_identity_a_session_id_the_server_did_not_create_is_refused(settings, alice, clock, sid):
    _login(settings)
    assert identity.session(settings, sid) is None


def test_identity_session_idle_expiry_slides_with_use(settings, alice, clock):
    sid, _ = _login(settings)
    for _ in range(3):
        clock.advance(identity.IDLE_SECONDS - 60)
        assert identity.session(settings, sid) is not None
    clock.advance(identity.IDLE_SECONDS + 1)
    assert identity.session(settings, sid) is None
    clock.advance(-identity.IDLE_SECONDS)   # gone for good, not just expired
    assert identity.session(settings, sid) is None


def test_identity_session_ends_after_the_absolute_limit_even_when_used(settings, alice, clock):
    sid, _ = _login(settings)
    used = 0
    while used + 20 * 60 < identity.ABSOLUTE_SECONDS:
        clock.advance(20 * 60)
        used += 20 * 60
        assert identity.session(settings, sid) is not None
    clock.advance(identity.ABSOLUTE_SECONDS - used + 1)
    assert identity.session(settings, sid) is None


@pytest.mark.parametrize("end", ["logout", "password", "disable"])
def test_identity_session_ends_on_logout_password_change_and_disable(settings, alice, clock, end):
    sid, _ = _login(settings)
    other_user = identity.create_user(settings, "bob", ["operator"], password=PASSWORD)
    bob_sid, _ = _login(settings, "bob")
    if end == "logout":
        identity.end_session(settings, sid)
    elif end == "password":
        identity.set_password(settings, "alice", "a new long passphrase")
    else:
        identity.set_disabled(settings, "alice", True)
    assert identity.session(settings, sid) is None
    assert identity.session(settings, bob_sid)[0].id == other_user.user_id


def test_identity_only_a_user_gets_a_session(settings, alice, clock):
    _, secret = identity.create_token(settings, "alice", "ci")
    with pytest.raises(IdentityError):
        identity.create_session(settings, identity.token_principal(settings, secret), IP)


# ---- tokens ----------------------------------------------------------------------------------

def test_identity_token_works_is_stored_as_a_hash_and_records_its_use(settings, alice, clock):
    token, secret = identity.create_token(settings, "alice", "nightly upload", days=30)
    assert secret.startswith(f"ist_{token.token_id}_")
    assert secret.split("_", 2)[2] not in _raw(settings, "portal_tokens")
    clock.advance(100)
    principal = identity.token_principal(settings, secret)
    assert principal == identity.Principal("token", token.token_id, "alice", frozenset({"submitter"}), "M001")
    assert identity.token_refusal(settings, secret) is None
    listed = identity.list_tokens(settings, "alice")
    assert [t.token_id for t in listed] == [token.token_id]
    assert listed[0].last_used_at.timestamp() == clock.now
    assert (listed[0].expires_at - listed[0].created_at).days == 30


@pytest.mark.parametrize("change, why", [
    ("expire", "expired"), ("revoke", "revoked"), ("disable", "user disabled"),
    ("wrong-secret", "wrong secret"), ("unknown", "unknown"), ("malformed", "malformed"),
])
def test_identity_token_refused(settings, alice, clock, change, why):
    token, secret = identity.create_token(settings, "alice", "ci", days=2)
    if change == "expire":
        clock.advance(2 * 86400)
    elif change == "revoke":
        identity.revoke_token(settings, token.token_id)
    elif change == "disable":
        identity.set_disabled(settings, "alice", True)
    elif change == "wrong-secret":
        secret = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    elif change == "unknown":
        secret = secret.replace(token.token_id, "t-0123456789abcdef")
    else:
        secret = "Bearer " + secret
    assert identity.token_principal(settings, secret) is None
    assert identity.token_refusal(settings, secret) == why


def test_identity_token_of_a_re_enabled_user_works_again(settings, alice, clock):
    _, secret = identity.create_token(settings, "alice", "ci")
    identity.set_disabled(settings, "alice", True)
    identity.set_disabled(settings, "alice", False)
    assert identity.token_principal(settings, secret).name == "alice"


@pytest.mark.parametrize("days", [0, 367, -1])
def test_identity_token_lifetime_is_bounded(settings, alice, days):
    with pytest.raises(IdentityError, match="1 to 366 days"):
        identity.create_token(settings, "alice", "ci", days=days)


def test_identity_revoking_an_unknown_token_says_so(settings, alice):
    with pytest.raises(NotFound):
        identity.revoke_token(settings, "t-0000000000000000")


# ---- roles -----------------------------------------------------------------------------------

@pytest.mark.parametrize("roles, member, why", [
    (["submitter"], None, "acts for one member"),
    (["analyst"], "M999", "not registered"),
    (["operator"], "M001", "does not belong to a member"),
    (["regulator", "submitter"], "M001", "does not belong to a member"),
    (["admin"], None, "Unknown role"),
    ([], None, "at least one role"),
])
def test_identity_roles_must_fit_the_member(settings, roles, member, why):
    with pytest.raises(IdentityError, match=why):
        identity.create_user(settings, "carol", roles, member, PASSWORD)
    assert identity.list_users(settings) == []


def test_identity_a_user_may_hold_several_roles(settings):
    both = identity.create_user(settings, "dana", ["submitter", "analyst"], "M002")
    overseer = identity.create_user(settings, "olga", ["operator", "regulator"])
    assert both.roles == {"submitter", "analyst"} and both.member_id == "M002"
    assert overseer.roles == {"operator", "regulator"} and overseer.member_id is None
    assert [u.username for u in identity.list_users(settings)] == ["dana", "olga"]
    with pytest.raises(IdentityError, match="already exists"):
        identity.create_user(settings, "DANA", ["analyst"], "M002")


def test_identity_user_without_password_cannot_log_in(settings, clock):
    identity.create_user(settings, "robot", ["analyst"], "M003")
    assert str(_refused(settings, "robot", "")) == identity.WRONG_LOGIN + " " + _refused(
        settings, "robot", PASSWORD).hint


# ---- audit -----------------------------------------------------------------------------------

def test_identity_credential_changes_are_audited_without_secrets(settings, alice, clock):
    token, secret = identity.create_token(settings, "alice", "ci")
    identity.set_password(settings, "alice", "another long passphrase", by="u-operator")
    identity.set_disabled(settings, "alice", True)
    identity.set_disabled(settings, "alice", False)
    identity.unlock(settings, "alice")
    identity.revoke_token(settings, token.token_id)

    entries = [(k, s, d) for k, s, d in _audit_entries(settings) if k not in ("member", "audit-upgrade")]
    assert [(k, s) for k, s, _ in entries] == [
        ("user-created", "alice"), ("token-created", "alice"), ("password-set", "alice"),
        ("user-disabled", "alice"), ("user-enabled", "alice"), ("user-unlocked", "alice"),
        ("token-revoked", "alice")]
    assert entries[0][2]["roles"] == ["submitter"] and entries[0][2]["member_id"] == "M001"
    assert entries[1][2]["token_id"] == token.token_id and entries[2][2]["by"] == "u-operator"
    with db.engine(settings).connect() as con:
        stored = con.execute(text("SELECT password_hash FROM portal_users")).scalar_one()
        token_hash = con.execute(text("SELECT secret_sha256 FROM portal_tokens")).scalar_one()
    everything = json.dumps(entries)
    for leaked in (PASSWORD, "another long passphrase", secret, secret.split("_", 2)[2], stored,
                   stored.split("$")[-1], token_hash):
        assert leaked not in everything


# ---- several processes and threads -----------------------------------------------------------

def test_identity_parallel_guesses_get_one_try_per_window(settings, alice, clock):
    for _ in range(3):
        _refused(settings, "alice", "wrong password!")
    clock.advance(1)   # one more attempt is due now; eight arrive at once from eight addresses
    outcomes, start = [], threading.Barrier(8)

    def guess(i: int) -> None:
        start.wait()
        outcomes.append(_refused(settings, "alice", "wrong password!", ip=f"203.0.113.{i}").retry_after)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes, key=lambda w: w or 0) == [None] + [pytest.approx(2.0)] * 7


def test_identity_another_process_sees_the_same_sessions_and_tokens(settings, alice):
    _, secret = identity.create_token(settings, "alice", "ci")
    code = ("import sys; from pathlib import Path; from pipelines.config import Settings; "
            "from pipelines.portal import identity as i; s = Settings(home=Path(sys.argv[1]), gx_max_rows=0); "
            "p = i.authenticate(s, 'alice', sys.argv[2], '192.0.2.7'); "
            "print(i.create_session(s, p, '192.0.2.7')[0], i.token_principal(s, sys.argv[3]).id)")
    done = subprocess.run([sys.executable, "-c", code, str(settings.home), PASSWORD, secret],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    sid, token_id = done.stdout.split()
    assert identity.session(settings, sid)[0].id == alice.user_id
    assert token_id == secret.split("_")[1]
    assert identity.get_user(settings, "alice").last_login_at is not None


def test_identity_old_failures_are_forgotten(settings, alice, clock):
    for _ in range(3):
        _refused(settings, "alice", "wrong password!")
    clock.advance(identity.FORGET_SECONDS + 1)
    for _ in range(3):   # three free failures again, not a wait of 2 s
        assert _refused(settings, "alice", "wrong password!").retry_after is None
