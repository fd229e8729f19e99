"""Commands for notices to members: configure their channels, send what is pending, read the log."""

from __future__ import annotations

import datetime as dt

import click

from pipelines.cli.base import command, main
from pipelines.config import Settings


@main.group()
def notices() -> None:
    """Tell members of rejected files and near or past due dates (webhook or e-mail)."""


def _who(member: str | None, default: bool) -> str:
    from pipelines.notices import DEFAULT_MEMBER

    if bool(member) == default:
        raise click.UsageError("Give --member M or --default (for members without a channel of their own).")
    return DEFAULT_MEMBER if default else member


@command(notices, "configure")
@click.option("--member", help="The member whose notices go there.")
@click.option("--default", "default", is_flag=True, help="The channel of every member without one of its own.")
@click.option("--webhook", metavar="URL", help="POST each notice as JSON to this http(s) URL, signed "
                                                "(X-InsurShare-Signature: sha256=HMAC of the body).")
@click.option("--email", metavar="ADDR", help="Mail each notice to this address (needs INSURSHARE_SMTP_HOST).")
@click.option("--events", default="rejected,refused,due_soon,overdue", show_default=True,
              help="Comma-separated: rejected, refused, quarantine, due_soon, overdue.")
@click.option("--remove", is_flag=True, help="Remove this channel instead.")
def notices_configure(settings: Settings, member: str | None, default: bool, webhook: str | None,
                      email: str | None, events: str, remove: bool) -> None:
    """Add (or change the events of, or remove) a member's webhook or e-mail channel.

    A channel hears of what happens from now on: earlier verdicts and due dates are not sent.
    """
    from pipelines.notices import configure

    who = _who(member, default)
    if bool(webhook) == bool(email):
        raise click.UsageError("Give one of --webhook URL or --email ADDR.")
    kind, target = ("webhook", webhook) if webhook else ("email", email)
    channel = configure(settings, who, kind, target, events=events.split(","), remove=remove)
    name = member or "default"
    if channel is None:
        click.echo(f"removed {kind} channel of {name}")
        return
    click.echo(f"{name}: {kind} {target} for {', '.join(channel.events)} (since {channel.since[:19]} UTC)")
    if kind == "webhook":
        click.echo(f"give {name} its signing secret: insurshare notices secret "
                   f"{'--default' if default else '--member ' + member}")


@command(notices, "channels")
def notices_channels(settings: Settings) -> None:
    """List the configured channels."""
    from pipelines.notices import _shown, load_channels

    channels = load_channels(settings)
    if not channels:
        click.echo("no channel configured (insurshare notices configure)")
    for c in sorted(channels, key=lambda c: (c.member, c.kind, c.target)):
        click.echo(f"{c.owner}  {c.kind}  {_shown(c.kind, c.target)}  {','.join(c.events)}  since {c.since[:19]}")


@command(notices, "secret")
@click.option("--member", help="The member.")
@click.option("--default", "default", is_flag=True, help="The default channel's receiver.")
def notices_secret(settings: Settings, member: str | None, default: bool) -> None:
    """Print the secret a member checks its webhook notices' signature with.

    The receiver computes HMAC-SHA256(secret, raw body) and compares it in constant time with
    the hex digest after "sha256=" in the X-InsurShare-Signature header.
    """
    from pipelines.notices import DEFAULT_MEMBER, check_member, member_secret

    who = _who(member, default)
    if who != DEFAULT_MEMBER:
        check_member(settings, who)
    click.echo(member_secret(settings, who))


@command(notices, "send")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="The date due dates are judged on [default: today, UTC].")
def notices_send(settings: Settings, today: dt.datetime | None) -> None:
    """Send every pending notice now and log each attempt in the lake (a second run sends nothing)."""
    from pipelines.notices import send_pending

    run = send_pending(settings, today.date() if today else None, progress=click.echo)
    click.echo(run.line())


@command(notices, "log")
@click.option("--member", help="Only this member's notices.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="How many, newest first.")
def notices_log(settings: Settings, member: str | None, limit: int) -> None:
    """Show the notices sent, failed and skipped, newest first."""
    from pipelines.notices import read_log

    rows = read_log(settings, member, limit)
    if not rows:
        click.echo("no notice logged")
    for r in rows:
        error = f"  {r['error']}" if r["error"] else ""
        click.echo(f"{r['attempted_at']:%Y-%m-%d %H:%M:%S}  {r['status']:<7}  {r['member_id']}  {r['event']:<10}  "
                   f"{r['subject']}  {r['channel']} {r['target']}  x{r['attempts']}{error}")
