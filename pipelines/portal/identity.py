"""Who is calling the portal: users, passwords, sessions, API tokens and login throttling.

Everything lives in the identity database (``pipelines.portal.db``), so every API process on
every machine sees the same users, sessions and tokens; nothing here is cached in a process
(the dummy password hash below is the only module state, and it holds no one's secret).

- Passwords are hashed with scrypt (``pipelines.portal.passwords``) and compared in constant
  time; they are at least ``MIN_PASSWORD`` characters and not the user name. A login with
  an unknown name is checked against a dummy hash, so the time taken does not tell which names
  exist, and the refusal reads the same for a wrong name and a wrong password.
- Failed logins are counted per user name (existing or not) and per source address: after
  ``FREE_FAILURES`` in a row each further attempt waits ``2**(n - FREE_FAILURES)`` seconds since
  the last failure, and after ``LOCK_AFTER`` the name (or address) is locked for ``LOCK_SECONDS``
  (a failure after a lock ran out locks again; a success, ``unlock`` or ``FORGET_SECONDS``
  without a failure clears the count).
  An attempt is counted as a failure *before* its password is checked (compare-and-set on the
  counter) and cleared on success, so parallel guesses cannot slip through one window.
- Session ids and token secrets are random, shown once, and stored only as SHA-256: a copy of
  the database lets no one in. A session id the server did not create is never accepted (no
  fixation); every login gets a new one. Sessions end after ``IDLE_SECONDS`` without use or
  ``ABSOLUTE_SECONDS`` after login, on logout, on a password change and when the user is
  disabled. Tokens (``ist_<token_id>_<secret>``) expire, can be revoked, and stop working while
  their user is disabled.
- Every credential change appends an entry to the lake's audit trail in the same step, naming
  the user, roles and token ids, never a password, secret or hash.

Times are seconds since the epoch (``clock()``; tests replace it) stored as double precision,
so the same SQL runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from pipelines.config import Settings
from pipelines.errors import InsurShareError, NotFound
from pipelines.portal import db
from pipelines.portal.passwords import dummy_hash, hash_password, verify_password
from pipelines.portal.policy import ANALYST, OPERATOR, REGULATOR, ROLES, SUBMITTER
from pipelines.portal.policy import ANONYMOUS as ANONYMOUS_ROLE

# ROLES (from the policy table) are the stored roles; "anonymous" is not one
MEMBER_ROLES = frozenset({SUBMITTER, ANALYST})          # need a member_id
UNATTACHED_ROLES = frozenset({OPERATOR, REGULATOR})     # must not have one

# Passwords (hashed by pipelines.portal.passwords)
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
# Login throttling (per user name and per source address)
FREE_FAILURES = 3            # failures in a row before each attempt must wait
LOCK_AFTER = 10              # failures in a row that lock the name or address
LOCK_SECONDS = 15 * 60
FORGET_SECONDS = 24 * 3600   # failures this old (and no lock in force) are forgotten
# Sessions and tokens
IDLE_SECONDS = 30 * 60
ABSOLUTE_SECONDS = 12 * 3600
TOUCH_SECONDS = 30           # a session's or token's last use is written at most this often
TOKEN_DEFAULT_DAYS = 90
TOKEN_MAX_DAYS = 366
TOKEN_PREFIX = "ist_"

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._@-]{1,63}")
_TOKEN_RE = re.compile(r"ist_(t-[0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_SESSION_RE = re.compile(r"[A-Za-z0-9_-]{43}")

DDL = [
    """CREATE TABLE IF NOT EXISTS portal_users (
        user_id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT,
        roles TEXT NOT NULL, member_id TEXT, created_at DOUBLE PRECISION NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0, last_login_at DOUBLE PRECISION)""",
    """CREATE TABLE IF NOT EXISTS portal_sessions (
        session_sha256 TEXT PRIMARY KEY, user_id TEXT NOT NULL, csrf_token TEXT NOT NULL, ip TEXT,
        created_at DOUBLE PRECISION NOT NULL, last_seen_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS portal_sessions_user ON portal_sessions (user_id)",
    """CREATE TABLE IF NOT EXISTS portal_tokens (
        token_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, name TEXT NOT NULL, secret_sha256 TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION, last_used_at DOUBLE PRECISION)""",
    "CREATE INDEX IF NOT EXISTS portal_tokens_user ON portal_tokens (user_id)",
    # scope "user": who is the SHA-256 of the lower-cased name (a password typed into the name
    # field is not kept in clear); scope "ip": the address
    """CREATE TABLE IF NOT EXISTS portal_login_failures (
        scope TEXT NOT NULL, who TEXT NOT NULL, failures INTEGER NOT NULL,
        last_failure_at DOUBLE PRECISION NOT NULL, locked_until DOUBLE PRECISION,
        PRIMARY KEY (scope, who))""",
]

WRONG_LOGIN = "Wrong user name or password."


def clock() -> float:
    """Now, in seconds since the epoch (tests replace this to move time)."""
    return time.time()


class IdentityError(InsurShareError):
    """A user, role, password or token request that cannot be carried out as asked."""


class LoginRefused(InsurShareError):
    """A login that is refused; the message never says whether the user name exists."""

    def __init__(self, message: str, *, retry_after: float | None = None, hint: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(message, hint=hint)


@dataclass(frozen=True)
class Principal:
    """Who a request is from, as resolved from its session cookie or bearer token."""

    kind: str                 # "user" | "token" | "anonymous"
    id: str                   # user id (u-...), token id (t-...) or "anonymous"
    name: str                 # the user name (a token: its user's)
    roles: frozenset[str]
    member_id: str | None

    def has(self, role: str) -> bool:
        return role in self.roles


ANONYMOUS = Principal("anonymous", "anonymous", "anonymous", frozenset({ANONYMOUS_ROLE}), None)


@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    roles: frozenset[str]
    member_id: str | None
    created_at: dt.datetime
    disabled: bool
    locked_until: dt.datetime | None
    last_login_at: dt.datetime | None


@dataclass(frozen=True)
class Token:
    token_id: str
    user_id: str
    username: str
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


# ---- helpers ---------------------------------------------------------------------------------

def _engine(settings: Settings):
    return db.ensure(settings, "identity", DDL)


def _when(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalise_username(username: str) -> str:
    """User names are case-insensitive: stored and compared lower-cased, without surrounding blanks."""
    return (username or "").strip().lower()


def _audit(settings: Settings, kind: str, subject: str, details: dict, by: str | None) -> None:
    """Append one audit entry in its own lake transaction (called inside the identity DB's
    transaction of the change, so a change whose entry cannot be written is rolled back)."""
    from pipelines import audit
    from pipelines.lake import Lake

    entry = {**details, **({"by": by} if by else {})}
    with Lake(settings, read_only=False) as lake:
        lake.ensure()
        lake.write(lambda c: audit.append(c, kind, subject, entry), f"portal {kind} {subject}")


# ---- passwords -------------------------------------------------------------------------------

def check_password(username: str, password: str) -> None:
    """Refuse a password shorter than ``MIN_PASSWORD`` characters or equal to the user name."""
    if len(password) < MIN_PASSWORD:
        raise IdentityError(f"The password is too short: at least {MIN_PASSWORD} characters, please.",
                            hint="A passphrase of a few unrelated words is long and easy to type.")
    if len(password) > MAX_PASSWORD:
        raise IdentityError(f"The password is longer than {MAX_PASSWORD} characters.")
    if password.strip().lower() == normalise_username(username):
        raise IdentityError("The password must not be the user name.")


# ---- users -----------------------------------------------------------------------------------

def check_roles(settings: Settings, roles: Iterable[str], member_id: str | None) -> frozenset[str]:
    """The roles as a set, refused unless they exist and fit ``member_id``: a submitter or analyst
    belongs to a registered member; an operator or regulator belongs to none."""
    held = frozenset(r.strip().lower() for r in roles if r and r.strip())
    if not held:
        raise IdentityError("A user needs at least one role.", hint=f"Roles: {', '.join(ROLES)}.")
    unknown = sorted(held - set(ROLES))
    if unknown:
        raise IdentityError(f"Unknown role {', '.join(unknown)}.", hint=f"Roles: {', '.join(ROLES)}.")
    if held & MEMBER_ROLES and not member_id:
        raise IdentityError(f"Role {', '.join(sorted(held & MEMBER_ROLES))} acts for one member company.",
                            hint="Give the member id (--member M001).")
    if held & UNATTACHED_ROLES and member_id:
        raise IdentityError(f"Role {', '.join(sorted(held & UNATTACHED_ROLES))} does not belong to a member "
                            f"company; {member_id} cannot be given with it.",
                            hint="Create a separate user for the member's work.")
    if member_id:
        from pipelines.members import list_members

        if member_id not in {m for m, _ in list_members(settings)}:
            raise IdentityError(f"Member {member_id} is not registered.",
                                hint=f"Register it first: insurshare members add {member_id} --name NAME.")
    return held


def create_user(settings: Settings, username: str, roles: Iterable[str], member_id: str | None = None,
                password: str | None = None, *, by: str | None = None) -> User:
    """Create a user (without a password it can log in only after ``set_password``, or use tokens)."""
    name = normalise_username(username)
    if not USERNAME_RE.fullmatch(name):
        raise IdentityError(f"User name {username!r} is not valid: 2-64 characters, letters, digits and . _ @ - "
                            "(starting with a letter or digit).")
    held = check_roles(settings, roles, member_id)
    if password is not None:
        check_password(name, password)
    if get_user(settings, name) is not None:
        raise IdentityError(f"User {name} already exists.", hint="See it with `insurshare users list`.")
    user_id, stored, now = f"u-{secrets.token_hex(8)}", hash_password(password) if password else None, clock()
    with _engine(settings).begin() as con:   # hashed before: the write lock is held briefly
        try:
            con.execute(text("INSERT INTO portal_users (user_id, username, password_hash, roles, member_id, "
                             "created_at, disabled) VALUES (:id, :name, :hash, :roles, :member, :now, 0)"),
                        {"id": user_id, "name": name, "hash": stored,
                         "roles": ",".join(sorted(held)), "member": member_id, "now": now})
        except IntegrityError:   # created at the same moment by another process
            raise IdentityError(f"User {name} already exists.") from None
        _audit(settings, "user-created", name, {"user_id": user_id, "roles": sorted(held), "member_id": member_id,
                                                "password": "set" if password else "none"}, by)
    return get_user(settings, name)


_USER_COLUMNS = "user_id, username, roles, member_id, created_at, disabled, last_login_at"


def _user(row, locks: dict[str, float]) -> User:
    locked = locks.get(_sha256(row.username))
    return User(row.user_id, row.username, frozenset(row.roles.split(",")), row.member_id, _when(row.created_at),
                bool(row.disabled), _when(locked) if locked and locked > clock() else None,
                _when(row.last_login_at))


def _locks(con: Connection, key: str | None = None) -> dict[str, float]:
    """Lock times of user names (by the SHA-256 of the name), all or only ``key``'s."""
    sql = "SELECT who, locked_until FROM portal_login_failures WHERE scope = 'user' AND locked_until IS NOT NULL"
    rows = con.execute(text(sql + (" AND who = :k" if key else "")), {"k": key} if key else {}).fetchall()
    return dict(rows)


def get_user(settings: Settings, username: str) -> User | None:
    name = normalise_username(username)
    with _engine(settings).connect() as con:
        row = con.execute(text(f"SELECT {_USER_COLUMNS} FROM portal_users WHERE username = :name"),
                          {"name": name}).fetchone()
        return _user(row, _locks(con, _sha256(name))) if row else None


def list_users(settings: Settings) -> list[User]:
    with _engine(settings).connect() as con:
        rows = con.execute(text(f"SELECT {_USER_COLUMNS} FROM portal_users ORDER BY username")).fetchall()
        locks = _locks(con)
    return [_user(r, locks) for r in rows]


def _existing(settings: Settings, username: str) -> User:
    user = get_user(settings, username)
    if user is None:
        raise NotFound(f"No user {normalise_username(username)!r}.", hint="See `insurshare users list`.")
    return user


def set_password(settings: Settings, username: str, password: str, *, by: str | None = None) -> None:
    """Set a user's password; every session of the user ends (tokens stay: they are not the password)."""
    user = _existing(settings, username)
    check_password(user.username, password)
    stored = hash_password(password)
    with _engine(settings).begin() as con:
        con.execute(text("UPDATE portal_users SET password_hash = :hash WHERE user_id = :id"),
                    {"hash": stored, "id": user.user_id})
        ended = _end_sessions(con, user.user_id)
        _audit(settings, "password-set", user.username, {"user_id": user.user_id, "sessions_ended": ended}, by)


def set_disabled(settings: Settings, username: str, disabled: bool, *, by: str | None = None) -> None:
    """Disable a user (ends their sessions; their tokens stop working) or enable them again."""
    user = _existing(settings, username)
    if user.disabled == disabled:
        return
    with _engine(settings).begin() as con:
        con.execute(text("UPDATE portal_users SET disabled = :d WHERE user_id = :id"),
                    {"d": int(disabled), "id": user.user_id})
        ended = _end_sessions(con, user.user_id) if disabled else 0
        _audit(settings, "user-disabled" if disabled else "user-enabled", user.username,
               {"user_id": user.user_id, **({"sessions_ended": ended} if disabled else {})}, by)


def unlock(settings: Settings, username: str, *, ip: str | None = None, by: str | None = None) -> None:
    """Clear a user's failed logins and lock (and those of address ``ip`` when given)."""
    user = _existing(settings, username)
    with _engine(settings).begin() as con:
        _clear_failures(con, _sha256(user.username), ip)
        _audit(settings, "user-unlocked", user.username, {"user_id": user.user_id, **({"ip": ip} if ip else {})},
               by)


# ---- logins and throttling -------------------------------------------------------------------

def authenticate(settings: Settings, username: str, password: str, ip: str) -> Principal:
    """The user's principal when ``password`` is theirs; else ``LoginRefused`` (see the module's
    docstring for throttling). A disabled user is refused like a wrong password."""
    name = normalise_username(username)
    keys = [("user", _sha256(name)), ("ip", ip or "unknown")]
    with _engine(settings).begin() as con:
        now = clock()
        con.execute(text("DELETE FROM portal_login_failures WHERE last_failure_at < :old AND "
                         "(locked_until IS NULL OR locked_until < :now)"), {"old": now - FORGET_SECONDS, "now": now})
        for scope, key in keys:   # counts this attempt as a failure until it succeeds
            _claim_attempt(con, scope, key)
        row = con.execute(text(f"SELECT {_USER_COLUMNS}, password_hash FROM portal_users WHERE username = :n"),
                          {"n": name}).fetchone()
    stored = row.password_hash if row is not None and row.password_hash else None
    matches = verify_password(password[:MAX_PASSWORD], stored or dummy_hash())
    if not (matches and stored and not row.disabled):
        raise LoginRefused(WRONG_LOGIN, hint="Check both and try again; repeated failures are slowed down "
                                             "and then locked for a while.")
    with _engine(settings).begin() as con:
        _clear_failures(con, keys[0][1], keys[1][1])
        con.execute(text("UPDATE portal_users SET last_login_at = :now WHERE user_id = :id"),
                    {"now": clock(), "id": row.user_id})
    return Principal("user", row.user_id, row.username, frozenset(row.roles.split(",")), row.member_id)


def _claim_attempt(con: Connection, scope: str, key: str) -> None:
    """Count one attempt for ``(scope, key)`` as a failure, or refuse it while it must wait.

    Compare-and-set on the stored count: two attempts racing for the same window cannot both
    pass; the loser reads the new count and waits like any other attempt.
    """
    for _ in range(20):
        now = clock()
        row = con.execute(text("SELECT failures, last_failure_at, locked_until FROM portal_login_failures "
                               "WHERE scope = :s AND who = :k"), {"s": scope, "k": key}).fetchone()
        values = {"s": scope, "k": key, "now": now}
        if row is None:
            done = con.execute(text("INSERT INTO portal_login_failures (scope, who, failures, last_failure_at, "
                                    "locked_until) VALUES (:s, :k, 1, :now, :lock) "
                                    "ON CONFLICT (scope, who) DO NOTHING"), {**values, "lock": _lock(1, now)})
        else:
            wait = _wait(row.failures, row.last_failure_at, row.locked_until, now)
            if wait > 0:
                raise LoginRefused(f"Too many failed logins; try again in {max(1, round(wait))} s.",
                                   retry_after=wait, hint="Ask the operator to unlock the account if this persists.")
            n = row.failures + 1
            done = con.execute(text("UPDATE portal_login_failures SET failures = :n, last_failure_at = :now, "
                                    "locked_until = :lock WHERE scope = :s AND who = :k AND failures = :seen"),
                               {**values, "n": n, "lock": _lock(n, now), "seen": row.failures})
        if done.rowcount == 1:
            return
    raise LoginRefused("Too many logins at once; try again in 1 s.", retry_after=1.0)


def _lock(failures: int, now: float) -> float | None:
    return now + LOCK_SECONDS if failures >= LOCK_AFTER else None


def _wait(failures: int, last: float, locked_until: float | None, now: float) -> float:
    """Seconds the next attempt must wait after ``failures`` failures in a row, the last at ``last``."""
    if locked_until is not None and locked_until > now:
        return locked_until - now
    if failures < FREE_FAILURES or failures >= LOCK_AFTER:   # a lock that ran out: try again at once
        return 0.0
    return max(0.0, last + 2 ** (failures - FREE_FAILURES) - now)


def _clear_failures(con: Connection, user_key: str, ip: str | None) -> None:
    con.execute(text("DELETE FROM portal_login_failures WHERE scope = 'user' AND who = :k"), {"k": user_key})
    if ip:
        con.execute(text("DELETE FROM portal_login_failures WHERE scope = 'ip' AND who = :k"), {"k": ip})


# ---- sessions --------------------------------------------------------------------------------

def create_session(settings: Settings, principal: Principal, ip: str) -> tuple[str, str]:
    """A new session for a logged-in user: (the id for the cookie, the session's CSRF token).

    Always a fresh id: whatever id the browser sent before logging in is never reused.
    """
    if principal.kind != "user":
        raise IdentityError("Only a user who logged in with a password gets a session.")
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = clock()
    with _engine(settings).begin() as con:
        con.execute(text("DELETE FROM portal_sessions WHERE last_seen_at < :idle OR created_at < :absolute"),
                    {"idle": now - IDLE_SECONDS, "absolute": now - ABSOLUTE_SECONDS})   # housekeeping
        con.execute(text("INSERT INTO portal_sessions (session_sha256, user_id, csrf_token, ip, created_at, "
                         "last_seen_at) VALUES (:h, :u, :csrf, :ip, :now, :now)"),
                    {"h": _sha256(session_id), "u": principal.id, "csrf": csrf, "ip": ip, "now": now})
    return session_id, csrf


def session(settings: Settings, session_id: str) -> tuple[Principal, str] | None:
    """The session's user and CSRF token; None when unknown, expired or the user is disabled.
    Each use moves the idle expiry on (written at most every ``TOUCH_SECONDS``)."""
    if not session_id or not _SESSION_RE.fullmatch(session_id):
        return None
    key, now = _sha256(session_id), clock()
    with _engine(settings).begin() as con:
        row = con.execute(text("SELECT s.csrf_token, s.created_at, s.last_seen_at, u.user_id, u.username, u.roles, "
                               "u.member_id, u.disabled FROM portal_sessions s JOIN portal_users u "
                               "ON u.user_id = s.user_id WHERE s.session_sha256 = :h"), {"h": key}).fetchone()
        if row is None:
            return None
        if row.disabled or now - row.last_seen_at > IDLE_SECONDS or now - row.created_at > ABSOLUTE_SECONDS:
            con.execute(text("DELETE FROM portal_sessions WHERE session_sha256 = :h"), {"h": key})
            return None
        if now - row.last_seen_at >= TOUCH_SECONDS:
            con.execute(text("UPDATE portal_sessions SET last_seen_at = :now WHERE session_sha256 = :h"),
                        {"now": now, "h": key})
    principal = Principal("user", row.user_id, row.username, frozenset(row.roles.split(",")), row.member_id)
    return principal, row.csrf_token


def end_session(settings: Settings, session_id: str) -> None:
    with _engine(settings).begin() as con:
        con.execute(text("DELETE FROM portal_sessions WHERE session_sha256 = :h"), {"h": _sha256(session_id or "")})


def _end_sessions(con: Connection, user_id: str) -> int:
    return con.execute(text("DELETE FROM portal_sessions WHERE user_id = :u"), {"u": user_id}).rowcount


# ---- API tokens ------------------------------------------------------------------------------

def create_token(settings: Settings, username: str, name: str, days: int = TOKEN_DEFAULT_DAYS, *,
                 by: str | None = None) -> tuple[Token, str]:
    """A new token for the user and its text ``ist_<token_id>_<secret>``, returned only this once."""
    user = _existing(settings, username)
    if user.disabled:
        raise IdentityError(f"User {user.username} is disabled; enable it before issuing tokens.")
    if not isinstance(days, int) or not 1 <= days <= TOKEN_MAX_DAYS:
        raise IdentityError(f"A token lasts 1 to {TOKEN_MAX_DAYS} days, not {days}.")
    label = (name or "").strip()
    if not label or len(label) > 100:
        raise IdentityError("Name the token (1-100 characters), e.g. after the machine that uses it.")
    token_id, secret, now = f"t-{secrets.token_hex(8)}", secrets.token_urlsafe(32), clock()
    expires = now + days * 86400
    with _engine(settings).begin() as con:
        con.execute(text("INSERT INTO portal_tokens (token_id, user_id, name, secret_sha256, created_at, expires_at) "
                         "VALUES (:id, :u, :name, :h, :now, :exp)"),
                    {"id": token_id, "u": user.user_id, "name": label, "h": _sha256(secret), "now": now,
                     "exp": expires})
        _audit(settings, "token-created", user.username, {"token_id": token_id, "user_id": user.user_id,
                                                          "name": label, "expires_at": _when(expires).isoformat()}, by)
    token = Token(token_id, user.user_id, user.username, label, _when(now), _when(expires), None, None)
    return token, f"{TOKEN_PREFIX}{token_id}_{secret}"


def token_principal(settings: Settings, text_: str) -> Principal | None:
    """The principal of a valid token; None when malformed, unknown, expired, revoked or its user disabled."""
    principal, _ = _check_token(settings, text_)
    return principal


def token_refusal(settings: Settings, text_: str) -> str | None:
    """Why a token is refused (for the access log only), or None when it is valid."""
    _, why = _check_token(settings, text_)
    return why


def _check_token(settings: Settings, text_: str) -> tuple[Principal | None, str | None]:
    match = _TOKEN_RE.fullmatch(text_ or "")
    if not match:
        return None, "malformed"
    token_id, secret = match.groups()
    now = clock()
    with _engine(settings).begin() as con:
        row = con.execute(text("SELECT t.secret_sha256, t.expires_at, t.revoked_at, t.last_used_at, u.user_id, "
                               "u.username, u.roles, u.member_id, u.disabled FROM portal_tokens t JOIN portal_users u "
                               "ON u.user_id = t.user_id WHERE t.token_id = :id"), {"id": token_id}).fetchone()
        if row is None:
            _sha256(secret)   # the same work as for a known id
            return None, "unknown"
        why = _token_problem(row, secret, now)
        if why:
            return None, why
        if row.last_used_at is None or now - row.last_used_at >= TOUCH_SECONDS:
            con.execute(text("UPDATE portal_tokens SET last_used_at = :now WHERE token_id = :id"),
                        {"now": now, "id": token_id})
    return Principal("token", token_id, row.username, frozenset(row.roles.split(",")), row.member_id), None


def _token_problem(row, secret: str, now: float) -> str | None:
    if not hmac.compare_digest(_sha256(secret), row.secret_sha256):
        return "wrong secret"
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at <= now:
        return "expired"
    if row.disabled:
        return "user disabled"
    return None


def revoke_token(settings: Settings, token_id: str, *, by: str | None = None) -> None:
    """Revoke a token at once (revoking a revoked token changes nothing)."""
    with _engine(settings).begin() as con:
        row = con.execute(text("SELECT t.revoked_at, u.username FROM portal_tokens t JOIN portal_users u "
                               "ON u.user_id = t.user_id WHERE t.token_id = :id"), {"id": token_id}).fetchone()
        if row is None:
            raise NotFound(f"No token {token_id!r}.", hint="See `insurshare tokens list`.")
        if row.revoked_at is not None:
            return
        con.execute(text("UPDATE portal_tokens SET revoked_at = :now WHERE token_id = :id"),
                    {"now": clock(), "id": token_id})
        _audit(settings, "token-revoked", row.username, {"token_id": token_id}, by)


def list_tokens(settings: Settings, username: str | None = None) -> list[Token]:
    """Tokens (never their secrets), newest first; only ``username``'s when given."""
    sql = ("SELECT t.token_id, t.user_id, u.username, t.name, t.created_at, t.expires_at, t.revoked_at, "
           "t.last_used_at FROM portal_tokens t JOIN portal_users u ON u.user_id = t.user_id")
    params = {}
    if username is not None:
        sql += " WHERE u.username = :name"
        params["name"] = normalise_username(username)
    with _engine(settings).connect() as con:
        rows = con.execute(text(sql + " ORDER BY t.created_at DESC, t.token_id"), params).fetchall()
    return [Token(r.token_id, r.user_id, r.username, r.name, _when(r.created_at), _when(r.expires_at),
                  _when(r.revoked_at), _when(r.last_used_at)) for r in rows]
