"""Commands for what members owe: reporting calendars (``members calendar``) and operator
declarations (``declare``, ``declarations list``)."""

from __future__ import annotations

import datetime as dt

import click

from pipelines.cli.base import command, main
from pipelines.cli.commands import members
from pipelines.config import Settings


@members.group()
def calendar() -> None:
    """A member's reporting calendar: which datasets, how often, from (and until) which period."""


@command(calendar, "set")
@click.argument("member_id")
@click.option("--dataset", required=True, help="The dataset the entry is for (claim, policy).")
@click.option("--frequency", required=True, type=click.Choice(["quarterly", "annual"]),
              help="quarterly: every quarter; annual: the year's last quarter only (year-end history).")
@click.option("--from", "from_period", required=True, help="The first period the entry covers, e.g. 2015Q4.")
@click.option("--until", "until_period", help="The last period it covers [default: until the next entry].")
def calendar_set(settings: Settings, member_id: str, dataset: str, frequency: str, from_period: str,
                 until_period: str | None) -> None:
    """Record that MEMBER_ID reports DATASET at FREQUENCY from a period on (audited).

    An entry holds until its --until or the next entry's --from: ten years of annual claim
    history then quarterly files are two entries (annual from 2015Q4, quarterly from 2025Q1).
    Setting an entry with the same --from replaces it.
    """
    from pipelines.calendars import CalendarEntry, set_calendar

    e = set_calendar(settings, CalendarEntry(member_id, dataset, frequency, from_period, until_period))
    click.echo(f"{e.member_id} reports {e.dataset} {e.frequency} from {e.from_period}"
               + (f" until {e.until_period}" if e.until_period else ""))


@command(calendar, "show")
@click.argument("member_id", required=False)
def calendar_show(settings: Settings, member_id: str | None) -> None:
    """Show MEMBER_ID's calendar (every member's without it); a member without one owes every period."""
    from pipelines.calendars import show_calendar

    entries = show_calendar(settings, member_id)
    if not entries:
        click.echo("no calendar entries: every period of the window is owed")
    for e in entries:
        click.echo(f"{e.member_id}  {e.dataset:<8} {e.frequency:<9} from {e.from_period}"
                   + (f" until {e.until_period}" if e.until_period else ""))


@main.group()
def declare() -> None:
    """Record an operator's declaration about one slot (member x dataset x period), audited."""


def _declaration_command(kind: str, summary: str):
    @click.option("--member", "member_id", required=True, help="The member, e.g. M001.")
    @click.option("--dataset", required=True, help="The dataset (claim, policy).")
    @click.option("--period", required=True, help="The period, e.g. 2024Q2.")
    @click.option("--reason", required=True, help="Why: kept in the lake and the audit log, shown in the reports.")
    def run(settings: Settings, member_id: str, dataset: str, period: str, reason: str,
            until: dt.datetime | None = None) -> None:
        from pipelines.calendars import Declaration
        from pipelines.calendars import declare as record

        d = Declaration(kind, member_id, dataset, period, reason, until.date() if until else None)
        declaration_id = record(settings, d)
        click.echo(f"declared {kind} {declaration_id}: {member_id} {dataset} {period}"
                   + (f" due {d.until}" if d.until else ""))
    run.__doc__ = summary
    if kind == "extension":
        run = click.option("--until", required=True, type=click.DateTime(["%Y-%m-%d"]),
                           help="The new due date (YYYY-MM-DD).")(run)
    return command(declare, kind)(run)


_declaration_command("nil-return", "The member had no business in the slot: it is complete with zero rows "
                                   "(no penalty; the marts count it as zeros).")
_declaration_command("exemption", "The member does not owe the slot: it is neither missing nor judged.")
_declaration_command("extension", "The slot is due on --until instead of period end + the dataset's due days.")


@main.group()
def declarations() -> None:
    """Operator declarations (nil returns, exemptions, extensions)."""


@command(declarations, "list")
@click.option("--member", "member_id", help="Only this member's.")
def declarations_list(settings: Settings, member_id: str | None) -> None:
    """List declarations, oldest first."""
    from pipelines.calendars import list_declarations

    rows = list_declarations(settings, member_id)
    if not rows:
        click.echo("no declarations")
    for r in rows:
        click.echo(f"{r['declaration_id']}  {r['kind']:<10} {r['member_id']} {r['dataset']} {r['period']}"
                   + (f" until {r['until']}" if r["until"] else "") + f"  {r['reason']}  "
                   f"({r['declared_at']:%Y-%m-%d %H:%M})")
