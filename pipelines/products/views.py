"""Exports and triangles for an audience, read from its data product.

The lake's marts hold every member's rows and the industry's values before disclosure
control (``members``, ``max_member_share``): they are for the regulator only. Whatever leaves
the platform for a member or the public is read from that audience's built product, so it is
exactly what ``insurshare query --as`` shows: the same disclosure control, the same held
revisions, nothing else. ``insurshare export`` and ``insurshare triangle`` therefore require
``--as``: ``regulator`` reads the lake (every value, marked for the regulator only),
``public`` and ``member:<M>`` read the product.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb

from pipelines.config import Settings
from pipelines.core.sql import literal
from pipelines.errors import NotFound, QueryError
from pipelines.marts.export import filter_conditions
from pipelines.products.query import Audience, open_product

REGULATOR_ONLY = ("for the regulator only: every member's rows and industry values before disclosure control "
                  "(do not pass it on to members or the public)")
_INDUSTRY = {"experience": "industry_experience", "triangle": "industry_triangle", "factors": "industry_factors",
             "ultimates": "industry_ultimates"}
_HINT = ("Give the audience it is for: --as regulator (every value, for the regulator only), "
         "--as member:<M> (that member's product) or --as public.")


def require_audience(audience: str | None, what: str) -> Audience:
    """The parsed ``--as``; refused when missing, since the lake's numbers are the regulator's."""
    if not audience:
        raise QueryError(f"{what} needs an audience: without disclosure control its numbers are for the "
                         "regulator only.", hint=_HINT)
    return Audience.parse(audience)


def product_sql(who: Audience, mart: str, scope: str | None) -> str:
    """SQL, on the audience's product, of the rows of ``mart`` it may see: the member's own
    mart rows and the published industry table (``scope`` picks one)."""
    if mart == "benchmark":
        if who.kind != "member":
            raise QueryError("The benchmark compares one member with the industry: export it --as member:<M>.")
        return "SELECT * FROM mart_benchmark"
    parts = []
    if scope in (None, "member"):
        if who.kind != "member":
            if scope == "member":
                raise QueryError("The public product holds no member's rows.", hint="Use --scope industry.")
        else:
            parts.append(f"SELECT * FROM mart_{mart}")
    if scope in (None, "industry"):
        parts.append(f"SELECT 'industry' AS scope, * FROM {_INDUSTRY[mart]}")
    return " UNION ALL BY NAME ".join(f"({p})" for p in parts)


def select_product(con: duckdb.DuckDBPyConnection, who: Audience, mart: str,
                   filters: Mapping[str, object]) -> str:
    """SQL selecting the product rows of ``mart`` that match ``filters`` (None ignored)."""
    filters = dict(filters)
    member = filters.pop("member_id", None)
    if member is not None and member != who.member:
        raise QueryError(f"--member {member} is not the audience {who}: a member exports only its own rows.",
                         hint="Drop --member, or export --as regulator.")
    if member is not None:
        filters["member_id"] = member          # its own rows only, as --member means for the regulator
    sql = product_sql(who, mart, filters.pop("scope", None))
    have = [r[0] for r in con.execute(f"DESCRIBE ({sql})").fetchall()]
    where = filter_conditions(filters, have, f"The {mart} export")
    return f"SELECT * FROM ({sql})" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY ALL"


def export_product(settings: Settings, audience: Audience, mart: str, to: Path,
                   filters: Mapping[str, object]) -> int:
    """Write the audience's rows of ``mart`` to ``to`` (format from its suffix); return the count.

    The product is opened locked down (no file access), so the rows are fetched and written
    by a separate, empty connection."""
    from pipelines.marts.export import EXPORT_FORMATS, XLSX_MAX_ROWS, describe_filters, write_xlsx

    fmt = EXPORT_FORMATS.get(Path(to).suffix.lower())
    if fmt is None:
        raise QueryError(f"Cannot export to {Path(to).name!r}: the file must end in {', '.join(EXPORT_FORMATS)}.")
    con = open_product(settings, audience)
    try:
        table = con.execute(select_product(con, audience, mart, filters)).fetch_arrow_table()
    finally:
        con.close()
    if fmt == "xlsx" and table.num_rows > XLSX_MAX_ROWS:
        raise QueryError(f"{table.num_rows:,} rows do not fit in an Excel sheet.",
                         hint="Filter the rows (e.g. --line, --grain) or export to .csv or .parquet.")
    Path(to).parent.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        write_xlsx(Path(to), mart, table, {
            "mart": mart, "audience": str(audience), "rows": table.num_rows,
            "filters": describe_filters(filters),
            "note": "as published in this audience's product: disclosure-controlled (a withheld value is empty "
                    "and its row says why in suppression)"})
        return table.num_rows
    writer = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                                    "allow_unsigned_extensions": True})
    try:
        writer.register("rows", table)
        options = {"csv": "FORMAT csv, HEADER true", "parquet": "FORMAT parquet"}[fmt]
        writer.execute(f"COPY (SELECT * FROM rows) TO {literal(str(to))} ({options})")
    finally:
        writer.close()
    return table.num_rows


def product_triangle(settings: Settings, audience: Audience, line: str, measure: str, *, grain: str,
                     region: str, average: str):
    """The industry triangle, factors and ultimates as the audience's product publishes them
    (withheld cells and values are None; held revisions too: they are not this release's)."""
    from pipelines.marts.reserving import TriangleReport, _number

    con = open_product(settings, audience)
    try:
        snapshot = con.execute("SELECT lake_snapshot FROM product_info").fetchone()[0]
        key = [grain, line, region, measure]
        same = "grain = ? AND line_of_business = ? AND region_code = ? AND measure = ?"
        cells = con.execute(f"SELECT origin, origin_start, age, CASE WHEN NOT suppressed THEN value END, suppressed "
                            f"FROM industry_triangle WHERE {same} ORDER BY origin_start, age", key).fetchall()
        if not cells:
            raise NotFound(f"The {audience} product has no {grain} {measure} triangle of line {line}"
                           + (f" in province {region}." if region != "ALL" else "."),
                           hint=f"Lines it has: {_lines(con)}.")
        factors = con.execute(f"SELECT development, age_from, age_to, ldf_{average}, cdf_{average}, tail "
                              f"FROM industry_factors WHERE {same} ORDER BY age_from", key).fetchall()
        ults = {r[0]: r[1:] for r in con.execute(
            f"SELECT origin, latest, ultimate, ibnr FROM industry_ultimates WHERE {same}", key).fetchall()}
    finally:
        con.close()
    origins = list(dict.fromkeys((c[0], c[1]) for c in cells))
    ages = sorted({c[2] for c in cells})
    grid = {(c[0], c[2]): _number(c[3], measure) for c in cells}
    return TriangleReport(
        line=line, measure=measure, grain=grain, member=None, region=region, snapshot=snapshot, average=average,
        diagonals=None, tail=float(factors[0][5]) if factors and factors[0][5] is not None else 1.0, origins=[o for o, _ in origins], ages=ages,
        values=[[grid.get((o, a)) for a in ages] for o, _ in origins],
        ldf={f[0]: f[3] for f in factors if f[2] is not None}, cdf={f"{f[1]}-Ult": f[4] for f in factors},
        latest={o: _number(ults[o][0], measure) if o in ults else None for o, _ in origins},
        ultimate={o: ults[o][1] if o in ults else None for o, _ in origins},
        ibnr={o: ults[o][2] if o in ults else None for o, _ in origins},
        origin_starts=[s for _, s in origins], audience=str(audience),
        withheld=sum(1 for c in cells if c[4]))


def _lines(con: duckdb.DuckDBPyConnection) -> str:
    return ", ".join(r[0] for r in con.execute(
        "SELECT DISTINCT line_of_business FROM industry_triangle ORDER BY 1").fetchall()) or "none"
