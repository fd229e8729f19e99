"""Commands for the portal: its user accounts, their API tokens, and serving it.

Passwords are read from a file, from standard input or typed twice without echo; never from
the command line, where they would end up in the shell's history and the process list. A
token's secret is printed once, when it is created.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipelines.cli.base import command, main
from pipelines.config import Settings

KEEP_ALIVE = 75   # seconds an idle connection stays open
OPERATOR_HINT = "insurshare users add admin --role operator"


@main.group()
def users() -> None:
    """User accounts of the portal: people who log in with a password."""


@main.group()
def tokens() -> None:
    """API tokens of the portal: machines that call the API for a user."""


@main.group()
def portal() -> None:
    """The portal: the member portal and API (FastAPI on uvicorn)."""


def _password(password_file: Path | None, password_stdin: bool) -> str:
    """The new password from a file (first line), from stdin (first line) or typed twice unseen."""
    if password_file is not None and password_stdin:
        raise click.UsageError("Give --password-file or --password-stdin, not both.")
    if password_file is not None:
        lines = password_file.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    if password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


_password_options = [
    click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="Read the password from the first line of this file."),
    click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input."),
]


def password_options(fn):
    for option in reversed(_password_options):
        fn = option(fn)
    return fn


def _by() -> str:
    """Who made a change from the command line, for the audit entry: the operating-system account."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


@command(users, "add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, metavar="ROLE",
              help="submitter, analyst, regulator or operator (repeat for several).")
@click.option("--member", help="The member company of a submitter or analyst (registered: insurshare members).")
@password_options
@click.option("--no-password", is_flag=True, help="No password: the user works through API tokens only.")
def users_add(settings: Settings, username: str, roles: tuple[str, ...], member: str | None,
              password_file: Path | None, password_stdin: bool, no_password: bool) -> None:
    """Create a user; asks for the password twice unless it is given by file or stdin.

    A submitter or analyst acts for one member company (--member); an operator or regulator for none.
    """
    from pipelines.portal.identity import IdentityError, check_roles, create_user, get_user

    check_roles(settings, roles, member)   # before asking for a password
    if get_user(settings, username) is not None:
        raise IdentityError(f"User {username.strip().lower()} already exists.",
                            hint="Change it with `insurshare users passwd` or `users disable`.")
    password = None if no_password else _password(password_file, password_stdin)
    user = create_user(settings, username, roles, member, password, by=_by())
    click.echo(f"created {user.username} ({user.user_id}): {', '.join(sorted(user.roles))}"
               + (f" of {user.member_id}" if user.member_id else ""))
    click.echo(f"log in at {settings.portal_url}/login" if password else
               f"no password: issue a token with `insurshare tokens create {user.username} --name NAME`")


@command(users, "list")
def users_list(settings: Settings) -> None:
    """List the users (never a password or hash)."""
    from pipelines.portal.identity import list_users

    found = list_users(settings)
    if not found:
        click.echo(f"no users yet; create the first operator: {OPERATOR_HINT}")
    for u in found:
        state = "disabled" if u.disabled else f"locked until {_when(u.locked_until)}" if u.locked_until else "active"
        click.echo(f"{u.username:<20} {u.user_id}  {','.join(sorted(u.roles)):<24} {u.member_id or '-':<8} "
                   f"{state:<28} last login {_when(u.last_login_at)}")


@command(users, "disable")
@click.argument("username")
def users_disable(settings: Settings, username: str) -> None:
    """Disable a user: their sessions end now and their tokens stop working."""
    from pipelines.portal.identity import set_disabled

    set_disabled(settings, username, True, by=_by())
    click.echo(f"disabled {username}; sessions ended, tokens refused until enabled again")


@command(users, "enable")
@click.argument("username")
def users_enable(settings: Settings, username: str) -> None:
    """Enable a disabled user again (their unrevoked, unexpired tokens work again)."""
    from pipelines.portal.identity import set_disabled

    set_disabled(settings, username, False, by=_by())
    click.echo(f"enabled {username}")


@command(users, "passwd")
@click.argument("username")
@password_options
def users_passwd(settings: Settings, username: str, password_file: Path | None, password_stdin: bool) -> None:
    """Set a user's password (ends their sessions)."""
    from pipelines.portal.identity import get_user, set_password

    if get_user(settings, username) is None:   # before asking for a password
        from pipelines.errors import NotFound

        raise NotFound(f"No user {username!r}.", hint="See `insurshare users list`.")
    set_password(settings, username, _password(password_file, password_stdin), by=_by())
    click.echo(f"password of {username} set; their sessions ended")


@command(users, "unlock")
@click.argument("username")
@click.option("--ip", help="Also clear the failed logins of this source address.")
def users_unlock(settings: Settings, username: str, ip: str | None) -> None:
    """Clear a user's failed logins and lock, so they can log in again at once."""
    from pipelines.portal.identity import unlock

    unlock(settings, username, ip=ip, by=_by())
    click.echo(f"unlocked {username}" + (f" and address {ip}" if ip else ""))


@command(tokens, "create")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for (e.g. the machine that uses it).")
@click.option("--days", type=int, default=90, show_default=True, help="Days until it expires (at most 366).")
def tokens_create(settings: Settings, username: str, name: str, days: int) -> None:
    """Issue an API token for a user; its secret is printed once."""
    from pipelines.portal.identity import create_token

    token, secret = create_token(settings, username, name, days, by=_by())
    click.echo(f"token {token.token_id} for {token.username} ({token.name}), expires {_when(token.expires_at)} UTC")
    click.echo(secret)
    click.echo("This secret is shown once and will not be shown again: store it now. Send it as "
               "`Authorization: Bearer <secret>`.", err=True)


@command(tokens, "list")
@click.option("--user", "username", help="Only this user's tokens.")
def tokens_list(settings: Settings, username: str | None) -> None:
    """List tokens (never their secrets), newest first."""
    import datetime as dt

    from pipelines.portal.identity import list_tokens

    found = list_tokens(settings, username)
    if not found:
        click.echo("no tokens")
    now = dt.datetime.now(dt.UTC)
    for t in found:
        state = ("revoked " + _when(t.revoked_at)) if t.revoked_at else (
            "expired" if t.expires_at <= now else f"expires {_when(t.expires_at)}")
        click.echo(f"{t.token_id}  {t.username:<20} {t.name:<24} {state:<28} last used {_when(t.last_used_at)}")


@command(tokens, "revoke")
@click.argument("token_id")
def tokens_revoke(settings: Settings, token_id: str) -> None:
    """Revoke a token at once."""
    from pipelines.portal.identity import revoke_token

    revoke_token(settings, token_id, by=_by())
    click.echo(f"revoked {token_id}")


@command(portal, "serve")
@click.option("--host", help="Address to listen on [default: INSURSHARE_PORTAL_HOST, 127.0.0.1].")
@click.option("--port", type=int, help="Port [default: INSURSHARE_PORTAL_PORT, 8300].")
def portal_serve(settings: Settings, host: str | None, port: int | None) -> None:
    """Serve the portal and its API with uvicorn until interrupted.

    Put a TLS proxy in front of it for anything beyond this machine and set INSURSHARE_PORTAL_URL
    to the https address users reach.
    """
    import uvicorn

    from pipelines.portal.app import create_app

    host, port = host or settings.portal_host, port or settings.portal_port
    app = create_app(settings)
    url = settings.portal_url if (host, port) == (settings.portal_host, settings.portal_port) else f"http://{host}:{port}"
    click.echo(f"portal at {url} (API docs at {url}/api/v1/docs)")
    click.echo(f"log in with a user of `insurshare users list`; the first operator: {OPERATOR_HINT}")
    # keep-alive longer than clients' and proxies' idle timeouts (httpx: 5 s, as uvicorn's default):
    # else a client reuses a connection the server is closing at that moment and reads nothing
    uvicorn.run(app, host=host, port=port, proxy_headers=True, forwarded_allow_ips="127.0.0.1",
                log_level="info", access_log=False, timeout_keep_alive=KEEP_ALIVE)
