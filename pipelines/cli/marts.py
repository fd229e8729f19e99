"""Commands for the actuarial marts: build them, print a triangle, export a mart."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from pipelines.cli.base import command, main
from pipelines.config import Settings

_MARTS = ("experience", "triangle", "factors", "ultimates", "benchmark")


@command(main, "build-marts")
@click.option("--as-of", help="Snapshot id or ISO timestamp to build from [default: the latest].")
@click.option("--force", is_flag=True, help="Build even if the marts were built from the same data.")
def build_marts(settings: Settings, as_of: str | None, force: bool) -> None:
    """Build the marts (experience, triangles, factors, ultimates, benchmarks) from the lake."""
    from pipelines.marts.build import build_marts as run

    click.echo(run(settings, as_of, force=force).line())


@command(main, "triangle")
@click.option("--line", required=True, help="Line of business, e.g. MCOM.")
@click.option("--measure", type=click.Choice(["paid", "incurred", "reported", "closed"]), default="paid",
              show_default=True)
@click.option("--grain", type=click.Choice(["year", "quarter"]), default="year", show_default=True)
@click.option("--member", help="A member's own triangle [default: the industry's].")
@click.option("--region", default="ALL", show_default=True, help="A province code, or ALL.")
@click.option("--as-of", help="Snapshot id or ISO timestamp to read the lake as of.")
@click.option("--average", type=click.Choice(["volume", "simple"]), default="volume", show_default=True,
              help="Volume-weighted or simple average age-to-age factors.")
@click.option("--diagonals", type=click.IntRange(min=1), help="Use only the latest N diagonals [default: all].")
@click.option("--tail", type=float, default=1.0, show_default=True, help="Tail factor beyond the last age.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "xlsx"]), default="table",
              show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file (needed for xlsx).")
@click.option("--as", "audience", metavar="AUDIENCE",
              help="Who the triangle is for (required): regulator (the lake's values, no disclosure control), "
                   "public or member:M (the industry triangle as that product publishes it; with --member M, "
                   "the member's own).")
def triangle(settings: Settings, line: str, measure: str, grain: str, member: str | None, region: str,
             as_of: str | None, average: str, diagonals: int | None, tail: float, fmt: str,
             output: Path | None, audience: str | None) -> None:
    """Print a development triangle with its factors, CDFs, ultimates and IBNR."""
    from pipelines.errors import QueryError
    from pipelines.marts.formats import format_report
    from pipelines.marts.reserving import triangle_report
    from pipelines.products.views import product_triangle, require_audience

    who = require_audience(audience, "insurshare triangle")
    if who.kind == "regulator" or member:
        if who.kind != "regulator" and member != who.member:
            raise QueryError(f"--member {member} is not the audience {who}: a member sees only its own triangle.",
                             hint="Drop --member for the industry triangle as published, or use --as regulator.")
        report = triangle_report(settings, line, measure, grain=grain, member=member, region=region,
                                 as_of=as_of, average=average, diagonals=diagonals, tail=tail)
        report = replace(report, audience=str(who))
    else:
        if as_of or diagonals or tail != 1.0:
            raise QueryError("--as-of, --diagonals and --tail recompute from the lake: for the regulator only.",
                             hint=f"The {who} product holds one snapshot and its published factors.")
        report = product_triangle(settings, who, line, measure, grain=grain, region=region, average=average)
    click.echo(format_report(report, fmt, output))


@command(main, "export")
@click.argument("mart", type=click.Choice(_MARTS))
@click.option("--to", "to", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="FILE.csv, FILE.parquet or FILE.xlsx.")
@click.option("--scope", type=click.Choice(["industry", "member"]), help="Only industry or member rows.")
@click.option("--member", help="Only this member's rows (member_id).")
@click.option("--line", help="Only this line of business (ALL for the rollup).")
@click.option("--region", help="Only this province (ALL for the rollup).")
@click.option("--grain", type=click.Choice(["year", "quarter"]), help="Only this grain.")
@click.option("--measure", type=click.Choice(["paid", "incurred", "reported", "closed"]),
              help="Only this measure (triangle, factors, ultimates).")
@click.option("--period", help="Only this period, e.g. 2024 or 2024Q3 (experience, benchmark).")
@click.option("--metric", help="Only this metric, e.g. loss_ratio or ldf_paid (benchmark).")
@click.option("--as-of", help="Snapshot id or ISO timestamp: the marts as they were then (regulator).")
@click.option("--as", "audience", metavar="AUDIENCE",
              help="Who the file is for (required): regulator (the lake's marts, every member's rows, no "
                   "disclosure control), public or member:M (read from that product: disclosure-controlled).")
def export(settings: Settings, mart: str, to: Path, scope: str | None, member: str | None, line: str | None,
           region: str | None, grain: str | None, measure: str | None, period: str | None,
           metric: str | None, as_of: str | None, audience: str | None) -> None:
    """Export a mart (or the rows matching the filters) to CSV, Parquet or Excel."""
    from pipelines.errors import QueryError
    from pipelines.marts.export import export_mart
    from pipelines.products.views import REGULATOR_ONLY, export_product, require_audience

    who = require_audience(audience, "insurshare export")
    filters = {"scope": scope, "member_id": member, "line_of_business": line, "region_code": region,
               "grain": grain, "measure": measure, "period": period, "metric": metric}
    if who.kind == "regulator":
        rows = export_mart(settings, mart, to, filters, as_of)
        click.echo(f"wrote {rows:,} rows of mart_{mart} to {to} ({REGULATOR_ONLY})")
        return
    if as_of:
        raise QueryError("--as-of reads the lake; a product holds one snapshot (see `insurshare products list`).")
    rows = export_product(settings, who, mart, to, filters)
    click.echo(f"wrote {rows:,} rows of {mart} as published to {who} to {to}")
