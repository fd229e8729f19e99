"""Commands for the audit trail, the raw archive and the keys."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipelines.cli.base import command, main
from pipelines.config import Settings
from pipelines.lake import Lake


@main.group()
def audit() -> None:
    """The tamper-evident audit log of everything the platform did."""


@command(audit, "verify")
def audit_verify(settings: Settings) -> None:
    """Check the keyed chain, its anchor and every live data file of the lake.

    Names every edited, deleted or reordered entry, a catalog rolled back to an older copy, a change
    committed outside the platform ("unaudited change to the lake at snapshot N"), every data file
    that is missing, damaged or rewritten (its size and sha256 against the seal its commit recorded)
    and every row of the access log that was edited, deleted or inserted (against its batch's entry).
    """
    from pipelines import audit as log
    from pipelines.audit.access import verify_access_log
    from pipelines.audit.anchor import verify_lake
    from pipelines.audit.key import anchor_exists, key_file, load_key

    # a lake older than the audit key has neither key nor anchor: its plain chain is still checked
    key = load_key(settings) if key_file(settings).exists() or anchor_exists(settings) else None
    with Lake(settings, read_only=True) as lake:   # the platform's own reader (catalog tables, no SQL of users)
        n, problems = log.verify(lake.con, key)
        entries = dict(lake.execute(f"SELECT seq, entry_sha256 FROM {log.TABLE}").fetchall())
        files = verify_lake(lake.con, settings, key, entries) if key else None
        accesses, access_problems = verify_access_log(lake.con, key) if key else (0, [])
    problems += (files.problems if files else []) + access_problems
    if key is None and any(log.is_keyed(h) for h in entries.values()):
        load_key(settings)   # keyed entries but neither key nor anchor: says to restore the key
    if problems:
        for p in problems:
            click.echo(f"TAMPERED: {p.what}")
        click.echo(f"audit log of {n} entries FAILS verification ({len(problems)} problem(s))")
        sys.exit(1)
    click.echo(f"audit log intact: {n} entries, chain (audit key {key.key_id}) and head verified; "
               f"anchored to snapshot {files.last_snapshot}; {files.files} data files match their seals"
               + (f"; {accesses} access log rows match their seals" if accesses else "")
               if key and files else f"audit log intact: {n} entries (none yet)")


@command(audit, "upgrade")
def audit_upgrade(settings: Settings) -> None:
    """Key a log that predates the audit key: one keyed entry vouches for the plain entries before it.

    Done by itself on the first write after the audit key exists; refused once the lake is anchored.
    """
    from pipelines import audit as log

    with Lake(settings, read_only=False) as lake:
        lake.ensure()
        upgraded, snapshot = lake.write(log.upgrade, message="audit upgrade")
    click.echo(f"audit log keyed: entries 1-{upgraded} vouched for at snapshot {snapshot}" if upgraded
               else f"the audit log is keyed already; the anchor seals snapshot {snapshot}")


@command(audit, "log")
@click.option("--tail", default=20, show_default=True, help="How many of the newest entries.")
def audit_log(settings: Settings, tail: int) -> None:
    """Show the newest entries of the audit log."""
    from pipelines.core.tables import frame_text
    from pipelines.store import reader

    with reader(settings) as con:
        frame = con.execute(
            "SELECT seq, strftime(recorded_at, '%Y-%m-%d %H:%M:%S') AS at, kind, subject, "
            "left(entry_sha256, 12) AS entry FROM audit_log ORDER BY seq DESC LIMIT ?", [tail]).df()
    click.echo(frame_text(frame.iloc[::-1]) if not frame.empty else "The audit log is empty.")


@main.group("archive")
def archive_group() -> None:
    """The raw archive: every file as received, encrypted at rest."""


@command(archive_group, "restore")
@click.argument("submission_id")
@click.option("--to", "dest", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the original file [default: its original name in the current folder].")
def archive_restore(settings: Settings, submission_id: str, dest: Path | None) -> None:
    """Give an auditor the original bytes of a submission, checked against its sha256."""
    from pipelines import archive
    from pipelines.store import reader

    with reader(settings) as con:
        row = con.execute("SELECT sha256, file_name FROM submissions WHERE submission_id = ?",
                          [submission_id]).fetchone()
    if row is None:
        raise click.ClickException(f"No submission {submission_id!r}; list them with `insurshare status`.")
    sha, name = row
    target = archive.restore(settings, sha, dest or Path(Path(name).name))
    click.echo(f"restored {submission_id} to {target} ({target.stat().st_size:,} bytes, sha256 {sha} verified)")


@main.group()
def keys() -> None:
    """The pseudonymisation and archive keys."""


@command(keys, "rotate")
@click.option("--new-id", help="Id of the new key [default: k- and the new key's fingerprint].")
@click.option("--resume", is_flag=True, help="Finish a rotation that was interrupted.")
def keys_rotate(settings: Settings, new_id: str | None, resume: bool) -> None:
    """Rotate the pseudonymisation key: re-tokenise the whole lake from the raw archive."""
    from pipelines.keys.rotation import rotate

    r = rotate(settings, new_id, resume=resume, progress=click.echo)
    click.echo(f"rotated {r.old_key_id} -> {r.new_key_id}: {r.submissions} submissions, {r.rows:,} rows "
               f"and {r.quarantined:,} quarantined rows re-tokenised; run `insurshare report` to refresh reports")
