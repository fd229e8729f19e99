"""Commands for quality reports and quarantined rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from pipelines.cli.base import command, main
from pipelines.config import Settings


@command(main, "report")
@click.option("--member", help="Only this member's submission reports and scorecard (no dashboard).")
@click.option("--as-of", help="Snapshot id or ISO timestamp to report the lake as of.")
@click.option("--on", "on", type=click.DateTime(["%Y-%m-%d"]),
              help="Judge timeliness as on this date [default: today, UTC].")
@click.option("--band", default=0.25, show_default=True,
              help="Flag a count or amount that moved more than this share against the previous period.")
@click.option("--gx-docs", is_flag=True,
              help="Also write GX's own Data Docs under reports/gx/ (they load scripts from the internet; "
                   "each report shows their content without them).")
def report(settings: Settings, member: str | None, as_of: str | None, on: dt.datetime | None, band: float,
           gx_docs: bool) -> None:
    """Write the quality reports: one per submission, a scorecard per member and the dashboard."""
    from pipelines.reports import ReportOptions, build_reports

    today = on.date() if on else dt.datetime.now(dt.UTC).date()
    try:
        options = ReportOptions(today=today, movement_band=band, gx_docs=gx_docs)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--band") from None
    built = build_reports(settings, options, member=member, as_of=as_of)
    click.echo(f"{len(built.submissions)} submission report(s), {len(built.scorecards)} scorecard(s) from lake "
               f"snapshot {built.snapshot_id}; {built.written} file(s) written under {built.root}")
    if built.published is not None:
        click.echo(f"{len(built.published)} file(s) copied to {settings.storage}/reports/ (the others were current there)")
    if built.dashboard:
        click.echo(f"dashboard: {built.dashboard}")
    elif member and member in built.scorecards:
        click.echo(f"scorecard: {built.scorecards[member]}")


@command(main, "quarantine")
@click.argument("submission_id")
@click.option("--to", "to", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="FILE.csv or FILE.xlsx to write.")
def quarantine(settings: Settings, submission_id: str, to: Path) -> None:
    """Download a submission's quarantined rows (pseudonymised) as CSV or XLSX, to correct and resubmit."""
    from pipelines.reports import export_quarantine

    n = export_quarantine(settings, submission_id, to)
    click.echo(f"wrote {n:,} quarantined row(s) of {submission_id} to {to}")
