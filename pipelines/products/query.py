"""Read a data product as its audience: read-only, SELECT only, no access to any other file.

A product is opened read-only with ``enable_external_access = false`` (no ``read_parquet``,
``read_csv``, ``ATTACH``, ``COPY``: a member cannot reach the lake's files or another
product) and ``lock_configuration = true`` (no ``SET`` can undo that). A user's query runs in
``pipelines.sandbox`` like the lake's: checked, in a child process with a time, memory and
disk budget, spilling into its own scratch folder (never next to the product).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines import sandbox
from pipelines.config import Settings
from pipelines.core.tables import frame_text
from pipelines.errors import NotFound, QueryError
from pipelines.products import remote
from pipelines.products.build import product_path, products_dir
from pipelines.sandbox import FORMATS, product_connection

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
                             hint="An audience is regulator, public or member:<member id>.")
        return cls("member", m["member"]) if m["member"] else cls(m[0])

    @property
    def product(self) -> str:
        return f"member_{self.member}" if self.member else self.kind

    def __str__(self) -> str:
        return f"member:{self.member}" if self.member else self.kind


def existing_product(settings: Settings, audience: str | Audience, vouched: dict[str, str] | None = None) -> Path:
    """The audience's product file; a clear error when it does not exist. On S3 storage: this
    machine's copy of the release the audit trail names (``vouched``, when the caller read it)."""
    who = audience if isinstance(audience, Audience) else Audience.parse(audience)
    if settings.storage:   # the copy of the product the audit trail names (fetched once per release)
        sha = (remote.current(settings) if vouched is None else vouched).get(who.product)
        if sha is None:
            raise NotFound(f"There is no product for {who}.", hint=_known(settings))
        return remote.local_copy(settings, who.product, sha)
    path = product_path(settings, who.product)
    if not path.exists():
        raise NotFound(f"There is no product for {who}.", hint=_known(settings))
    return path


def open_product(settings: Settings, audience: str | Audience) -> duckdb.DuckDBPyConnection:
    """A locked-down, read-only connection to the audience's product (for the platform's own
    SQL; a user's runs in the sandbox)."""
    return _connect(settings, existing_product(settings, audience))


def _connect(settings: Settings, path: Path) -> duckdb.DuckDBPyConnection:
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    return product_connection(path, memory=settings.duckdb_memory_limit, threads=settings.duckdb_threads,
                              temp_dir=settings.work_dir / "duckdb_tmp")


def _known(settings: Settings) -> str:
    """How to find the audiences, without naming them: whoever mistyped one may be any member."""
    if not (remote.current(settings) if settings.storage else any(products_dir(settings).glob("*.duckdb"))):
        return "Build the products with `insurshare products build`."
    return ("A member's product is built once the member has accepted data. "
            "The platform's operator lists the audiences with `insurshare products list`.")


def query_product(settings: Settings, audience: str, sql: str, *, fmt: str = "table",
                  output: Path | None = None, limit: int = 1000) -> str:
    """Run ``sql`` (one SELECT) on the audience's product and return it formatted."""
    if fmt not in FORMATS:
        raise QueryError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if fmt == "parquet" and output is None:
        raise QueryError("The parquet format writes a file.", hint="Add --output FILE.parquet.")
    path = existing_product(settings, audience)
    return sandbox.run(settings, sandbox.Request(sql, fmt, limit, product=str(path)), output)


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
    out += ["", frame_text(tables, formatters={"rows": "{:,}".format}), "", *sample]
    return "\n".join(out)


def _sample(con: duckdb.DuckDBPyConnection, member: bool) -> list[str]:
    """The latest year's loss ratio by line, all provinces: the member's next to the industry's
    (members), or the industry's amounts (others); suppressed values show as NULL (``core.tables``)."""
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
    return [title, frame_text(frame)]


def list_products(settings: Settings) -> str:
    """One line per product: audience, snapshot, disclosure profile, build time, size and where it is kept."""
    vouched = remote.current(settings) if settings.storage else None
    names = sorted(vouched) if vouched is not None else sorted(p.stem for p in products_dir(settings).glob("*.duckdb"))
    lines = []
    for stem in names:
        who = f"member:{stem[len('member_'):]}" if stem.startswith("member_") else stem
        path = existing_product(settings, who, vouched)
        con = _connect(settings, path)
        try:
            info = con.execute("SELECT lake_snapshot, disclosure_profile, built_at FROM product_info").fetchone()
        finally:
            con.close()
        kept = remote.object_url(settings, stem, vouched[stem]) if vouched is not None else path
        lines.append(f"{who:<16} lake snapshot {info[0]:<6} disclosure {info[1]:<8} built {info[2]:%Y-%m-%d %H:%M:%S} "
                     f"{path.stat().st_size / 1e6:8.1f} MB  {kept}")
    where = f"{settings.storage}/products" if settings.storage else products_dir(settings)
    return "\n".join(lines) or f"No products under {where}; build them with `insurshare products build`."
