"""Commands for intake, ingestion, queries and documentation."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import click

from pipelines.cli.base import command, main
from pipelines.cli.declare import Declared, manifest_options
from pipelines.config import Settings
from pipelines.errors import is_retryable


@command(main, "keygen")
@click.option("--if-missing", is_flag=True, help="Do nothing when the keys already exist.")
@click.option("--force-new", is_flag=True,
              help="Make a new key even where the lake or the archive holds data of a lost one (a deliberate "
                   "new start: old archives stay unreadable, old tokens no longer link, old audit entries fail).")
def keygen(settings: Settings, if_missing: bool, force_new: bool) -> None:
    """Create the pseudonymisation key (HMAC), the archive key (AES-GCM) and the audit key (HMAC) where missing.

    A key's id is its fingerprint (k-..., a-..., au-...). A missing key that the lake, the archive or the
    audit log still depends on is not replaced: restore it from backup (or see --force-new).
    """
    from pipelines.keys import create_keys

    made = create_keys(settings, force_new=force_new)
    if not made and not if_missing:
        raise click.ClickException("The keys exist already; nothing to do (use --if-missing in scripts).")
    for line in made:
        click.echo(f"created {line} (mode 0600; keep it out of git, back it up)")
    if not made:
        click.echo("keys exist")


@main.group()
def members() -> None:
    """Register and list the member companies allowed to submit."""


@command(members, "add")
@click.argument("member_id", required=False)
@click.option("--name", help="The member's name.")
@click.option("--from-index", "index", type=click.Path(exists=True, path_type=Path),
              help="Register the members listed in a generated index.json.")
def members_add(settings: Settings, member_id: str | None, name: str | None, index: Path | None) -> None:
    """Register a member (or every member of a generated data set)."""
    from pipelines.members import add_members

    if index:
        wanted = {m["member_id"]: m["name"] for m in json.loads(index.read_text())["members"]}
    elif member_id:
        wanted = {member_id: name or member_id}
    else:
        raise click.UsageError("Give MEMBER_ID or --from-index.")
    added = add_members(settings, wanted)
    click.echo(f"registered {len(added)} new member(s): {', '.join(added) or 'none'}")


@command(members, "list")
def members_list(settings: Settings) -> None:
    """List registered members."""
    from pipelines.members import list_members

    for member_id, name in list_members(settings):
        click.echo(f"{member_id}  {name}")


@command(main, "generate")
@click.option("--members", "n_members", default=5, show_default=True, help="Number of member insurers.")
@click.option("--quarters", default=8, show_default=True, help="Number of quarters, ending at --end-period.")
@click.option("--seed", default=42, show_default=True, help="Random seed; the same seed gives the same data.")
@click.option("--end-period", default="2025Q4", show_default=True, help="Last quarter generated.")
@click.option("--scale", default=1.0, show_default=True, help="Size multiplier.")
@click.option("--out", type=click.Path(path_type=Path), help="Output folder [default: HOME/incoming].")
def generate(settings: Settings, n_members: int, quarters: int, seed: int, end_period: str,
             scale: float, out: Path | None) -> None:
    """Write synthetic member submissions with known defects and a ground-truth file."""
    from pipelines.generate import generate as run

    out = out or settings.home / "incoming"
    result = run(out, members=n_members, quarters=quarters, seed=seed, end_period=end_period,
                 scale=scale, progress=click.echo)
    click.echo(f"wrote {result.files} files ({result.rows:,} rows) to {out}; index {result.index}, "
               f"ground truth {result.ground_truth}")


@command(main, "submit")
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@manifest_options
@click.option("--listing", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A CSV or JSON listing of the files to submit, one entry per file (columns file, member, "
                   "dataset, period, rows, control.<column>, received_at, contract_version, encoding); "
                   "options given here override it.")
@click.option("--received-at", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="When the file really arrived (UTC), to load historical submissions [default: now].")
def submit(settings: Settings, files: tuple[Path, ...], declared: Declared, listing: Path | None,
           received_at: dt.datetime | None) -> None:
    """Archive FILES and record each as a submission waiting for ingestion.

    One FILE: what the options (or the manifest) declare is checked first: a mistake there (a
    missing or unknown member, dataset or period, a control total the dataset does not have) is
    reported and nothing is archived or recorded. A file whose bytes are not those its manifest's
    sha256 describes is recorded as refused.

    Several files, folders (every data file under them) or a --listing: one
    process and one lake connection for the batch. Each file's manifest is FILE.manifest.json
    beside it (or the listing's entry), under the options, which apply to every file. A progress
    bar, then a summary (received, already received, refused with reasons); exit code 1 if any
    file was refused.
    """
    if listing is None and len(files) == 1 and not files[0].is_dir():
        _submit_one(settings, files[0], declared, received_at)
        return
    if listing is not None and files:
        raise click.UsageError("Give FILES or --listing, not both.")
    if not files and listing is None:
        raise click.UsageError("Give the FILES (or folders) to submit, or --listing.")
    if declared.manifest is not None:
        raise click.UsageError("--manifest describes one file; for several, put FILE.manifest.json beside each "
                               "or give --listing.")
    from pipelines.bulk import files_in, read_listing

    items, skipped = (read_listing(listing), []) if listing else files_in(files)
    result = _submit_many(settings, items, declared.fields, received_at)
    result.skipped = skipped
    for line in result.lines():
        click.echo(line)
    if not result.ok:
        sys.exit(1)


def _submit_one(settings: Settings, file: Path, declared: Declared, received_at: dt.datetime | None) -> None:
    from pipelines.intake import receive

    got = receive(settings, file, declared.manifest_for(settings), received_at=received_at, precheck=True)
    sub = got.submission
    if not got.created:
        click.echo(f"{file.name}: already received as {sub.submission_id} ({sub.status}); nothing to do")
        return
    extra = f"; supersedes {got.supersedes} if accepted" if got.supersedes else ""
    click.echo(f"{file.name}: received as {sub.submission_id} (sha256 {sub.sha256[:12]}){extra}")


def _submit_many(settings: Settings, items: list, shared: dict, received_at: dt.datetime | None):
    """Submit a batch behind a progress bar (on stderr: the summary on stdout stays clean)."""
    from pipelines.bulk import submit_batch

    with click.progressbar(length=len(items), label=f"submitting {len(items)} file(s)", file=sys.stderr,
                           item_show_func=lambda name: name) as bar:
        def advance(_: int, taken) -> None:
            bar.update(1, taken.name)
        return submit_batch(settings, items, shared=shared, received_at=received_at, on_file=advance)


@command(main, "check")
@click.argument("file", type=click.Path(path_type=Path))
@manifest_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("precheck"), show_default=True,
              help="Folder for the report (HTML and JSON) and the quarantined rows (CSV and XLSX).")
def check(settings: Settings, file: Path, declared: Declared, out: Path) -> None:
    """Pre-check FILE: stage, validate and judge it exactly as ingestion would, and write the
    submission report it would get, marked "Pre-check: not submitted". Nothing is recorded (no
    submission, lake snapshot, audit entry or archived file). Exit code 0: it would be accepted;
    1: it would be rejected, held or refused; 2: wrong usage."""
    from pipelines.errors import SubmissionError
    from pipelines.precheck import BANNER, precheck

    here = out.absolute()
    while not here.exists() and here != here.parent:    # the folder is made only when a report is written
        here = here.parent
    if not here.is_dir() or not os.access(here, os.W_OK | os.X_OK):
        raise click.BadParameter(f"cannot create folder {str(out)!r}: {str(here)!r} is not a writable folder.",
                                 param_hint="--out")
    try:
        got = precheck(settings, file, declared.manifest_for(settings), out_dir=out)
    except SubmissionError as exc:
        click.echo(f"{BANNER}. {file.name}: would be refused - {exc}")
        sys.exit(1)
    for line in got.lines():
        click.echo(line)
    if not got.accepted:
        sys.exit(1)


@command(main, "submit-index")
@click.argument("index", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def submit_index(settings: Settings, index: Path) -> None:
    """Submit every file of a generated index.json, in its order (at its `submitted_at` times):
    one line per file; a refusal is recorded and does not change the exit code."""
    from pipelines.bulk import read_listing, submit_batch

    items = read_listing(index)
    submit_batch(settings, items, precheck=False,
                 on_file=lambda n, taken: click.echo(f"[{n}/{len(items)}] {taken.line()}"))


@command(main, "ingest")
@click.argument("submission_ids", nargs=-1)
@click.option("--retry", is_flag=True,
              help="Queue the given submissions again that the platform failed to process (SUB-PROCESSING), "
                   "then process them.")
@click.option("--member", "members", multiple=True, help="Only this member's pending submissions (repeatable).")
@click.option("--dataset", "datasets", multiple=True, help="Only this dataset's pending submissions (repeatable).")
@click.option("--period", "periods", multiple=True,
              help="Only this period's pending submissions, e.g. 2024Q1; a year (2024) takes the year and its "
                   "quarters (repeatable).")
def ingest(settings: Settings, submission_ids: tuple[str, ...], retry: bool, members: tuple[str, ...],
           datasets: tuple[str, ...], periods: tuple[str, ...]) -> None:
    """Process received submissions now, without Airflow: the files waiting in the landing zone,
    then every pending submission (or only those of --member, --dataset and --period, or only
    SUBMISSION_IDS). One failure never stops the others; the exit code is 1 when some submission
    could not be processed."""
    from pipelines.ingest import Selection, ingest_all, pending, repair_snapshot_ids, requeue
    from pipelines.landing import LandingFailed, receive_landing

    select = Selection(members, datasets, periods) if members or datasets or periods else None
    if select and submission_ids:
        raise click.UsageError("Give SUBMISSION_IDS or --member/--dataset/--period, not both.")
    if retry:
        if not submission_ids:
            raise click.UsageError("--retry needs the ids of the submissions to process again.")
        again = requeue(settings, list(submission_ids))
        click.echo(f"queued again: {', '.join(again) or 'none (only SUB-PROCESSING rejections can be)'}")
    repair_snapshot_ids(settings)
    landing_ok = True
    if not submission_ids:
        try:
            receive_landing(settings, progress=click.echo)
        except Exception as exc:   # the other files were taken; go on with the queue
            if not (is_retryable(exc) or isinstance(exc, LandingFailed)):
                raise
            click.echo(f"landing zone: {exc}")
            landing_ok = False
    run = ingest_all(settings, list(submission_ids) or None, progress=click.echo, select=select)
    left = len(pending(settings)) if select else 0
    click.echo(f"processed {len(run.outcomes)} submission(s)"
               + (f"; {len(run.failed)} failed to process (recorded as SUB-PROCESSING)" if run.failed else "")
               + (f"; {len(run.postponed)} postponed by transient errors, still received" if run.postponed else "")
               + (f"; {left} other pending submission(s) left for a later run" if left else ""))
    if not (run.ok and landing_ok):
        sys.exit(1)


@command(main, "run-dag")
@click.argument("dag_id", default="ingest_submissions")
def run_dag(settings: Settings, dag_id: str) -> None:
    """Run a DAG once through Airflow (dag.test(), no scheduler needed)."""
    from pipelines.airflow.orchestration import run_dag as run

    state = run(settings, dag_id, progress=click.echo)
    click.echo(f"DAG {dag_id} finished: {state}")
    if state != "success":
        sys.exit(1)


@command(main, "query")
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True)
@click.option("--as-of", help="Snapshot id or ISO timestamp to read the lake as of.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file (needed for parquet).")
@click.option("--limit", default=1000, show_default=True, help="Rows shown in table format.")
@click.option("--as", "audience", metavar="AUDIENCE",
              help="Query through an audience's data product instead of the lake: regulator, public "
                   "or member:M (tables as `insurshare products show AUDIENCE` lists them).")
def query(settings: Settings, sql: str, fmt: str, as_of: str | None, output: Path | None, limit: int,
          audience: str | None) -> None:
    """Run a read-only SQL query on the lake (tables: policy, claim, submissions, ...) or, with
    --as, on one audience's data product. The query runs sandboxed: one SELECT, no file access,
    stopped after INSURSHARE_QUERY_TIMEOUT seconds or beyond INSURSHARE_QUERY_MEMORY /
    INSURSHARE_QUERY_TEMP."""
    if audience:
        from pipelines.errors import QueryError
        from pipelines.products import query_product

        if as_of:
            raise QueryError("--as-of reads the lake; a product holds one snapshot (see `insurshare products list`).")
        click.echo(query_product(settings, audience, sql, fmt=fmt, output=output, limit=limit))
        return
    from pipelines.query import run_query

    click.echo(run_query(settings, sql, fmt=fmt, as_of=as_of, output=output, limit=limit))


@command(main, "status")
@click.option("--member", help="Only this member.")
@click.option("--period", help="Only this period.")
def status(settings: Settings, member: str | None, period: str | None) -> None:
    """List submissions by member and period with their verdicts."""
    from pipelines.summary import status_table

    click.echo(status_table(settings, member, period))


@command(main, "summary")
def summary(settings: Settings) -> None:
    """Per member: submissions and rows; the most broken rules; the industry loss ratio by line."""
    from pipelines.summary import demo_summary

    click.echo(demo_summary(settings))


@command(main, "docs")
@click.option("--check", is_flag=True, help="Fail if README.md's generated sections are out of date.")
def docs(settings: Settings, check: bool) -> None:
    """Regenerate the command reference and data dictionary in README.md."""
    from pipelines.cli.docs import update_readme

    changed = update_readme(click.get_current_context().find_root().command, check=check)
    if check and changed:
        click.echo("README.md is out of date; run `insurshare docs` (or `make docs`).", err=True)
        sys.exit(1)
    click.echo("README.md is up to date" if not changed else "README.md updated")


