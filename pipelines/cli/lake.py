"""Commands for the lake itself: its maintenance."""

from __future__ import annotations

import click

from pipelines.cli.base import command, main
from pipelines.config import Settings


@main.group()
def lake() -> None:
    """Look after the lake: expire old snapshots, merge small files."""


@command(lake, "maintain")
@click.option("--retention-days", type=click.FloatRange(min=0),
              help="Keep every snapshot of the last N days [default: INSURSHARE_SNAPSHOT_RETENTION_DAYS, 30].")
def lake_maintain(settings: Settings, retention_days: float | None) -> None:
    """Flush small inserts to files, merge small files, expire snapshots older than the retention.

    Audited (a `lake-maintenance` entry) and sealed in the audit anchor. Kept: every snapshot of the
    retention, the latest, and those from the marts' last build source on; `--as-of` reads within
    the retention are unchanged, an expired snapshot can no longer be read. Runs as the
    `lake_maintenance` DAG every night.
    """
    from pipelines.maintenance import maintain_lake
    from pipelines.maintenance import retention_days as configured

    days = configured(settings) if retention_days is None else retention_days
    click.echo(maintain_lake(settings, days).line())
