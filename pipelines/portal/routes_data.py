"""The data endpoints: SQL on the caller's product, triangles, experience, product files.

Which product a caller reads is decided here from who they are (``data.product_audience``),
never from a parameter: there is no URL that names another member's product, so there is none to
guess. Every answer names the rows it returned and every query its SQL (hashed in the access log).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Form, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from pipelines.errors import QueryError
from pipelines.portal import data, policy, web
from pipelines.portal.data import ROW_CAP

api = web.api_router(tags=["data"])
pages = web.page_router()

Measure = Literal["paid", "incurred", "reported", "closed"]
Grain = Literal["year", "quarter"]
Average = Literal["volume", "simple"]
Code = Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
PAGE_ROWS = 1000          # the query page shows at most this many rows (the API up to ROW_CAP)


def doc(name: str) -> dict[str, str]:
    """A route's ``name`` and ``summary``, from the policy table (one wording for both)."""
    return {"name": name, "summary": policy.rule(name).summary}


def _note(request: Request, audience: data.Audience, rows: int | None = None, query: str | None = None) -> None:
    request.state.access_object = str(audience)
    if rows is not None:
        request.state.access_rows = rows
    if query is not None:
        request.state.access_query = query


def _attachment(body: bytes, fmt: str, stem: str, **headers: str) -> Response:
    return Response(body, media_type=data.MEDIA_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"', **headers})


def _json(document: object) -> Response:
    return Response(data.dumps(document), media_type="application/json")


# -- query ----------------------------------------------------------------------------------------

class QueryBody(BaseModel):
    sql: str = Field(min_length=1, max_length=100_000, description="One SELECT on your product's tables.")
    format: Literal["json", "csv", "parquet"] = "json"
    limit: int = Field(1000, ge=1, description=f"Rows to return; at most {ROW_CAP:,} whatever is asked.")


@api.post("/query", **doc("query.run"),
          description="Runs in the sandbox on your own product (an analyst: your member's; the regulator: the "
                      "regulator's): read only, no file or network access, with time and memory limits. "
                      "The answer says whether rows were left out (`truncated`, header `X-Truncated`).")
def query_run(body: QueryBody, request: Request, caller: web.Caller) -> Response:
    audience = data.query_audience(caller.roles, caller.member_id)
    _note(request, audience, query=body.sql)
    answer = data.run_query(web.settings_of(request), audience, body.sql, body.limit)
    _note(request, audience, rows=answer.rows)
    headers = {"X-Row-Count": str(answer.rows), "X-Truncated": str(answer.truncated).lower()}
    if body.format == "json":
        response = _json({"audience": str(audience), "columns": data.columns(answer.table),
                          "rows": data.records(answer.table), "row_count": answer.rows,
                          "limit": answer.limit, "truncated": answer.truncated})
        response.headers.update(headers)
        return response
    return _attachment(data.table_bytes(answer.table, body.format), body.format, "query", **headers)


@pages.get("/query", **doc("query.form"))
def query_page(request: Request, caller: web.Caller) -> Response:
    audience = data.query_audience(caller.roles, caller.member_id)
    return web.render(request, "query.html.j2", audience=str(audience), sql="", limit=100, answer=None,
                      error=None, row_cap=PAGE_ROWS)


@pages.post("/query", **doc("query.form"))
def query_page_run(request: Request, caller: web.Caller, sql: Annotated[str, Form(max_length=100_000)],
                   limit: Annotated[int, Form(ge=1)] = 100) -> Response:
    audience = data.query_audience(caller.roles, caller.member_id)
    _note(request, audience, query=sql)
    answer, error = None, None
    try:
        answer = data.run_query(web.settings_of(request), audience, sql, min(limit, PAGE_ROWS))
        _note(request, audience, rows=answer.rows)
    except QueryError as exc:
        error = exc
        request.state.access_detail = exc.message
    response = web.render(request, "query.html.j2", audience=str(audience), sql=sql, limit=limit, error=error,
                          answer=answer, row_cap=PAGE_ROWS,
                          rows=[[_cell(v) for v in row.values()] for row in data.records(answer.table)]
                          if answer else [])
    if error is not None:
        response.status_code = 400
    return response


def _cell(value: object) -> str:
    return "" if value is None else str(value)


# -- triangles and experience ---------------------------------------------------------------------

@api.get("/triangles", **doc("marts.triangle"),
         description="The industry triangle with its factors, ultimates and IBNR, as your product publishes it "
                     "(anonymous callers: the public product). Withheld cells are null, never 0.")
def triangles(request: Request, caller: web.Caller, line: Code, measure: Measure = "paid", grain: Grain = "year",
              region: Code = "ALL", average: Average = "volume",
              format: Literal["json", "xlsx"] = "json") -> Response:
    audience = data.product_audience(caller.roles, caller.member_id)
    report = data.triangle(web.settings_of(request), audience, line, measure, grain, region, average)
    _note(request, audience, rows=len(report.origins))
    if format == "xlsx":
        return _attachment(data.triangle_xlsx(report), "xlsx", f"triangle_{line}_{measure}_{grain}")
    return _json(data.triangle_document(report))


@api.get("/experience", **doc("marts.experience"),
         description="Experience rows (premium, exposure, losses, ratios) from your product: an analyst gets its "
                     "member's rows and the published industry rows (`scope` picks one), others the industry's.")
def experience(request: Request, caller: web.Caller, line: Code | None = None, region: Code | None = None,
               grain: Grain | None = None, period: Annotated[str | None, Query(pattern=r"^\d{4}(Q[1-4])?$")] = None,
               scope: Literal["industry", "member"] | None = None,
               format: Literal["json", "csv", "xlsx"] = "json") -> Response:
    audience = data.product_audience(caller.roles, caller.member_id)
    filters = {"scope": scope, "line_of_business": line, "region_code": region, "grain": grain, "period": period}
    table = data.experience(web.settings_of(request), audience, filters)
    _note(request, audience, rows=table.num_rows)
    if format == "json":
        return _json({"audience": str(audience), "columns": data.columns(table), "rows": data.records(table),
                      "row_count": table.num_rows})
    about = {"mart": "experience", "audience": str(audience), "rows": table.num_rows,
             "filters": ", ".join(f"{k} = {v}" for k, v in filters.items() if v) or "none"}
    return _attachment(data.table_bytes(table, format, sheet="experience", about=about), format, "experience")


@pages.get("/triangles", **doc("marts.page"))
def triangles_page(request: Request, caller: web.Caller, line: Code | None = None, measure: Measure = "paid",
                   grain: Grain = "year", region: Code = "ALL") -> Response:
    settings = web.settings_of(request)
    audience = data.product_audience(caller.roles, caller.member_id)
    lines = data.triangle_lines(settings, audience)
    line = line or (lines[0] if lines else None)
    report = data.triangle(settings, audience, line, measure, grain, region, "volume") if line else None
    table = _triangle_table(report) if report else None
    if report:
        _note(request, audience, rows=len(report.origins))
    return web.render(request, "triangles.html.j2", audience=str(audience), lines=lines, line=line,
                      measure=measure, grain=grain, region=region, report=report, table=table,
                      measures=Measure.__args__, grains=Grain.__args__)


def _triangle_table(report) -> dict:
    """The triangle page's table: amounts to the cent (counts whole), factors to 4 places."""
    frame = report.frame()
    amount = "{:,.0f}" if report.measure in ("reported", "closed") else "{:,.2f}"
    rows = []
    for record in frame.itertuples(index=False):
        origin, *values = record
        factor = origin in ("LDF", "CDF")
        rows.append([origin, *(_number(v, "{:.4f}" if factor or frame.columns[i + 1] == "cdf" else amount)
                               for i, v in enumerate(values))])
    return {"columns": list(frame.columns), "rows": rows}


def _number(value: object, pattern: str) -> str:
    if value is None or value != value:        # None or NaN: a cell that is withheld or does not exist
        return "—"
    return pattern.format(value)


# -- product files --------------------------------------------------------------------------------

@api.get("/products/mine", **doc("products.download"), response_class=FileResponse,
         description="Your own product file (DuckDB, read-only): an analyst's member's, or the regulator's.")
def product_mine(request: Request, caller: web.Caller) -> FileResponse:
    settings = web.settings_of(request)
    audience = data.query_audience(caller.roles, caller.member_id)
    _note(request, audience)
    return FileResponse(data.product_file(settings, audience), media_type="application/octet-stream",
                        filename=data.download_name(settings, audience))


@api.get("/products/public", **doc("products.public"), response_class=FileResponse)
def product_public(request: Request) -> FileResponse:
    settings = web.settings_of(request)
    _note(request, data.PUBLIC)
    return FileResponse(data.product_file(settings, data.PUBLIC), media_type="application/octet-stream",
                        filename=data.download_name(settings, data.PUBLIC))
