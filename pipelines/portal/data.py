"""What the portal reads from the data products: queries, triangles, experience, product files.

Every caller reads exactly one product, chosen from who they are, never from what they ask:
the regulator reads the regulator's product, a member's analyst its own member's product (its
rows and the industry tables that disclosure control lets it see), everyone else the public
product. A query runs through ``pipelines.products.query_product`` (the sandbox: one read-only
SELECT on that one file, no file or network access, with the platform's time and memory limits),
wrapped in a LIMIT so that no answer holds more than ``ROW_CAP`` rows.

Nothing here knows HTTP: the route modules call these functions and send what they return.
Numbers are never rounded on the way out: JSON carries each double as Python's shortest exact
form (pandas' ``to_json`` would cut them to 10 digits).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from pipelines import sandbox
from pipelines.config import Settings
from pipelines.errors import QueryError
from pipelines.portal import policy
from pipelines.products.build import product_path
from pipelines.products.query import Audience, existing_product, open_product, query_product

ROW_CAP = 10_000              # the most rows one query answers, whatever ``limit`` asks
QUERY_FORMATS = ("json", "csv", "parquet")
TABLE_FORMATS = ("json", "csv", "xlsx")
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8",
               "parquet": "application/vnd.apache.parquet",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
PUBLIC = Audience("public")


def product_audience(roles: frozenset[str], member_id: str | None) -> Audience:
    """The product a caller reads: regulator, its own member's (analysts) or the public one."""
    if policy.REGULATOR in roles:
        return Audience("regulator")
    if policy.ANALYST in roles and member_id:
        return Audience("member", member_id)
    return PUBLIC


def query_audience(roles: frozenset[str], member_id: str | None) -> Audience:
    """The product a caller's SQL runs on; only the regulator and a member's analyst have one."""
    who = product_audience(roles, member_id)
    if who == PUBLIC:
        raise QueryError("Queries run on your own member's product, and your account has none.",
                         hint="Ask the operator for an analyst account of your member.")
    return who


# -- queries --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QueryAnswer:
    """A query's rows (at most ``limit``) and whether more were left out."""

    audience: Audience
    table: pa.Table
    limit: int
    truncated: bool

    @property
    def rows(self) -> int:
        return self.table.num_rows


def clamp_limit(limit: int | None) -> int:
    """The row limit a query gets: what it asks for, between 1 and ``ROW_CAP``."""
    return max(1, min(int(limit or ROW_CAP), ROW_CAP))


def run_query(settings: Settings, audience: Audience, sql: str, limit: int | None = None) -> QueryAnswer:
    """Run ``sql`` on the audience's product in the sandbox; at most ``limit`` rows come back.

    The SQL is checked as written first (so its errors name what the caller wrote), then run as
    ``SELECT * FROM (<sql>) LIMIT n+1``: the sandbox never builds more rows than are sent, and
    the extra row tells whether the answer was cut.
    """
    limit = clamp_limit(limit)
    body = sql.strip().rstrip(";").strip()
    if not body:
        raise QueryError("The query is empty.", hint="Write one SELECT, e.g. SHOW TABLES.")
    sandbox.check_sql(body)
    scratch = settings.work_dir / "portal-queries"
    scratch.mkdir(parents=True, exist_ok=True)
    result = scratch / f"{uuid.uuid4().hex}.parquet"
    try:
        query_product(settings, str(audience), f"SELECT * FROM (\n{body}\n) AS answer LIMIT {limit + 1}",
                      fmt="parquet", output=result)
        import pyarrow.parquet as pq

        table = pq.read_table(result)
    finally:
        result.unlink(missing_ok=True)
    return QueryAnswer(audience, table.slice(0, limit), limit, table.num_rows > limit)


# -- formats --------------------------------------------------------------------------------------

def plain(value: object) -> object:
    """A value as JSON can hold it, exactly: NaN and infinities become null (JSON has none)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def records(table: pa.Table) -> list[dict]:
    """The rows of ``table`` as JSON-ready dicts (numbers exact)."""
    return [{k: plain(v) for k, v in row.items()} for row in table.to_pylist()]


def columns(table: pa.Table) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]


def dumps(document: object) -> bytes:
    """JSON text with every double in its shortest exact form."""
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def table_bytes(table: pa.Table, fmt: str, *, sheet: str = "rows", about: dict | None = None) -> bytes:
    """``table`` as CSV, Parquet or an Excel workbook (JSON is the caller's document)."""
    if fmt == "csv":
        import pyarrow.csv as pcsv

        buf = io.BytesIO()
        pcsv.write_csv(table, buf)
        return buf.getvalue()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()
    if fmt == "xlsx":
        from pipelines.marts.export import XLSX_MAX_ROWS, write_xlsx

        if table.num_rows > XLSX_MAX_ROWS:
            raise QueryError(f"{table.num_rows:,} rows do not fit in an Excel sheet.", hint="Filter the rows or ask for CSV.")
        return _via_file(lambda path: write_xlsx(path, sheet, table, about or {}), ".xlsx")
    raise QueryError(f"Unknown format {fmt!r}.", hint="Use json, csv, parquet or xlsx.")


def _via_file(write, suffix: str) -> bytes:
    """Bytes of a file a writer makes, in a temporary folder removed at once."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="insurshare-portal-") as folder:
        path = Path(folder) / f"out{suffix}"
        write(path)
        return path.read_bytes()


# -- triangles and experience ---------------------------------------------------------------------

def triangle(settings: Settings, audience: Audience, line: str, measure: str, grain: str, region: str,
             average: str):
    """The industry triangle (``TriangleReport``) as the audience's product publishes it."""
    from pipelines.products.views import product_triangle

    return product_triangle(settings, audience, line, measure, grain=grain, region=region, average=average)


def triangle_document(report) -> dict:
    """A triangle report as the API's JSON document (the CLI's ``--format json``)."""
    return plain(report.to_dict())


def triangle_xlsx(report) -> bytes:
    from pipelines.marts.formats import write_workbook

    return _via_file(lambda path: write_workbook(report, path), ".xlsx")


def triangle_lines(settings: Settings, audience: Audience) -> list[str]:
    """The lines of business the audience's product has triangles of (for the page's form)."""
    con = open_product(settings, audience)
    try:
        return [r[0] for r in con.execute("SELECT DISTINCT line_of_business FROM industry_triangle ORDER BY 1").fetchall()]
    finally:
        con.close()


def experience(settings: Settings, audience: Audience, filters: dict[str, str | None]) -> pa.Table:
    """The experience rows of the audience's product that match ``filters``: a member's analyst
    gets its own rows and the published industry rows (``scope`` picks one), others the industry's."""
    from pipelines.products.views import select_product

    con = open_product(settings, audience)
    try:
        return con.execute(select_product(con, audience, "experience", filters)).fetch_arrow_table()
    finally:
        con.close()


def product_file(settings: Settings, audience: Audience) -> Path:
    """The audience's product file (404 when it is not built)."""
    return existing_product(settings, audience)


def download_name(settings: Settings, audience: Audience) -> str:
    """The file name a download is saved under (``member_M001.duckdb``)."""
    return product_path(settings, audience.product).name
