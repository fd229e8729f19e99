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


@main.group()
def storage() -> None:
    """The platform's S3 object storage (INSURSHARE_STORAGE): backups and restores of its prefix."""


@command(storage, "copy")
@click.argument("source")
@click.argument("target")
def storage_copy(settings: Settings, source: str, target: str) -> None:
    """Copy every object under the s3:// prefix SOURCE to TARGET, inside the store (nothing is
    downloaded); objects already at TARGET with the same content are skipped, so running it again
    copies only what is new. Back up with `storage copy s3://b/platform s3://backup/platform-DATE`
    after `pg_dump` of the catalog; restore the other way round (see the README's Backups)."""
    from pipelines import objects

    for url in (source, target):
        if not url.startswith("s3://"):
            raise click.UsageError(f"{url!r} is not an s3:// prefix.")
    copied, skipped = objects.copy_prefix(settings, source.rstrip("/"), target.rstrip("/"), progress=click.echo)
    click.echo(f"copied {copied:,} object(s) from {source} to {target}; {skipped:,} were there already")
