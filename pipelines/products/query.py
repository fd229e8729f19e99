"""Read a data product as its audience: read-only, SELECT only, no access to any other file.

A product is opened read-only with ``enable_external_access = false`` (no ``read_parquet``,
``read_csv``, ``ATTACH``, ``COPY``: a member cannot reach the lake's files or another
product) and ``lock_configuration = true`` (no ``SET`` can undo that); queries go through
``query.check_read_only`` like the lake's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.config import Settings
from pipelines.errors import NotFound, QueryError
from pipelines.products.build import product_path, products_dir
from pipelines.query import FORMATS, check_read_only, format_relation

_AUDIENCE = re.compile(r"regulator|public|member:(?P<member>[A-Za-z0-9_-]{1,32})")


@dataclass(frozen=True)
class Audience:
    """``regulator``, ``public`` or ``member:<M>``."""

    kind: str
    member: str | None = None

    @classmethod
    def parse(cls, text: str) -> Audience:
        m = _AUDIENCE.fullmatch(str(text).strip())
        if not m:
            raise QueryError(f"Unknown audience {text!r}.",
                             hint="An audience is regulator, public or member:<member id>, e.g. member:M001.")
        return cls("member", m["member"]) if m["member"] else cls(m[0])

    @property
    def product(self) -> str:
        return f"member_{self.member}" if self.member else self.kind

    def __str__(self) -> str:
        return f"member:{self.member}" if self.member else self.kind


def open_product(settings: Settings, audience: str | Audience) -> duckdb.DuckDBPyConnection:
    """A locked-down, read-only connection to the audience's product."""
    who = audience if isinstance(audience, Audience) else Audience.parse(audience)
    path = product_path(settings, who.product)
    if not path.exists():
        raise NotFound(f"There is no product for {who} at {path}.", hint=_known(settings))
    config = {"enable_external_access": False, "lock_configuration": True,
              "autoload_known_extensions": False, "autoinstall_known_extensions": False,
              "memory_limit": settings.duckdb_memory_limit}
    if settings.duckdb_threads:
        config["threads"] = settings.duckdb_threads
    return duckdb.connect(str(path), read_only=True, config=config)


def _known(settings: Settings) -> str:
    names = sorted(p.stem for p in products_dir(settings).glob("*.duckdb"))
    audiences = [f"member:{n[len('member_'):]}" if n.startswith("member_") else n for n in names]
    if not audiences:
        return "Build the products with `insurshare products build`."
    return f"Products exist for: {', '.join(audiences)} (rebuild with `insurshare products build`)."


def query_product(settings: Settings, audience: str, sql: str, *, fmt: str = "table",
                  output: Path | None = None, limit: int = 1000) -> str:
    """Run ``sql`` (one SELECT) on the audience's product and return it formatted."""
    if fmt not in FORMATS:
        raise QueryError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if fmt == "parquet" and output is None:
        raise QueryError("The parquet format writes a file.", hint="Add --output FILE.parquet.")
    con = open_product(settings, audience)
    try:
        check_read_only(con, sql)
        try:
            rel = con.sql(sql)
            if fmt == "parquet":
                import pyarrow.parquet as pq

                pq.write_table(rel.fetch_arrow_table(), str(output))
                return f"wrote {output}"
            return format_relation(rel, fmt, limit=limit, output=output)
        except duckdb.Error as exc:
            raise QueryError(f"The query failed: {str(exc).splitlines()[0]}",
                             hint=f"A product reads only its own tables, no file; list them with "
                                  f"`insurshare products show {audience}`.") from None
    finally:
        con.close()


def describe_product(settings: Settings, audience: str) -> str:
    """What the audience can see: who the product is for, its tables and the disclosure."""
    con = open_product(settings, audience)
    try:
        info = con.execute("SELECT * FROM product_info").df().iloc[0]
        tables = con.execute("SELECT table_name, rows, description FROM catalog ORDER BY table_name <> 'catalog', "
                             "table_name <> 'product_info', table_name").df()
        cells = con.execute("SELECT count(*) FILTER (WHERE NOT suppressed), count(*) FILTER (WHERE suppressed) "
                            "FROM industry_triangle").fetchone()
        rows = con.execute("SELECT count(*) FILTER (WHERE NOT suppressed), count(*) FILTER (WHERE suppressed) "
                           "FROM industry_experience").fetchone()
        linked = (con.execute("SELECT count(DISTINCT claim_no), max(other_members) FROM own_linked_claims").fetchone()
                  if info["audience"] == "member" else None)
        sample = _sample(con, info["audience"] == "member")
    finally:
        con.close()
    who = Audience.parse(audience)
    out = [f"Product for {who}: {product_path(settings, who.product)}",
           f"release {info.get('release', '?')}, "
           f"built {info['built_at']:%Y-%m-%d %H:%M:%S} UTC from lake snapshot {info['lake_snapshot']} "
           f"(marts from data snapshot {info['marts_source_snapshot']})",
           f"disclosure {info['disclosure_profile']}: at least {info['min_members']} members per cell, "
           f"largest member's share at most {info['max_share']:.0%}",
           f"industry experience rows: {rows[0]:,} complete, {rows[1]:,} with suppressed values; "
           f"industry triangle cells: {cells[0]:,} published, {cells[1]:,} suppressed (NULL, never 0)"]
    if linked is not None:
        out.append(f"own claims linked to other members' claims: {linked[0]:,}"
                   + (f" (each with at most {linked[1]} other member{'s' if linked[1] != 1 else ''}; "
                                    "who they are is not shown)" if linked[0] else ""))
    out += ["", tables.to_string(index=False, formatters={"rows": "{:,}".format}, max_colwidth=90), "", *sample]
    return "\n".join(out)


def _sample(con: duckdb.DuckDBPyConnection, member: bool) -> list[str]:
    """The latest year's loss ratio by line, all provinces: the member's next to the industry's
    (members), or the industry's amounts (others); suppressed values show as NULL."""
    year = con.execute("SELECT max(period) FROM industry_experience WHERE grain = 'year'").fetchone()[0]
    if year is None:
        return []
    if member:
        frame = con.execute("""
            SELECT line_of_business AS line, round(member_value, 4) AS your_loss_ratio,
                   round(industry_value, 4) AS industry_loss_ratio, rank, ranked_members, suppression
            FROM mart_benchmark WHERE metric = 'loss_ratio' AND grain = 'year' AND period = ?
              AND region_code = 'ALL' ORDER BY line_of_business = 'ALL', line_of_business""", [year]).df()
        title = f"Loss ratio {year}, all provinces: yours and the industry's"
    else:
        frame = con.execute("""
            SELECT line_of_business AS line, earned_premium, incurred_loss, round(loss_ratio, 4) AS loss_ratio,
                   suppression
            FROM industry_experience WHERE grain = 'year' AND period = ? AND region_code = 'ALL'
            ORDER BY line_of_business = 'ALL', line_of_business""", [year]).df()
        title = f"Industry experience {year}, all provinces"
    return [title, frame.to_string(index=False, na_rep="NULL", max_colwidth=60)]


def list_products(settings: Settings) -> str:
    """One line per product: audience, snapshot, disclosure profile, build time and size."""
    lines = []
    for path in sorted(products_dir(settings).glob("*.duckdb")):
        stem = path.stem
        who = f"member:{stem[len('member_'):]}" if stem.startswith("member_") else stem
        con = open_product(settings, who)
        try:
            info = con.execute("SELECT lake_snapshot, disclosure_profile, built_at FROM product_info").fetchone()
        finally:
            con.close()
        lines.append(f"{who:<16} lake snapshot {info[0]:<6} disclosure {info[1]:<8} built {info[2]:%Y-%m-%d %H:%M:%S} "
                     f"{path.stat().st_size / 1e6:8.1f} MB  {path}")
    return "\n".join(lines) or f"No products under {products_dir(settings)}; build them with `insurshare products build`."
