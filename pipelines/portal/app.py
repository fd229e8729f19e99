"""The portal application: ``create_app(settings)`` assembles the routes of every portal module.

The route modules are a fixed list (``ROUTE_MODULES``), never discovered: what the portal serves
is what this file names. Each module exposes its routers as module attributes ``api`` (built by
``web.api_router()``) and/or ``pages`` (``web.page_router()``). At build time every route's name
must be a key of the policy table, else the app refuses to start (``policy.check_routes``).

The OpenAPI document is served at ``/api/v1/openapi.json`` and, so that it reads offline without
a CDN, ``/api/v1/docs`` is a server-rendered page listing the endpoints from that document.
Neither carries data: they describe the API, as the README does.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from pipelines.config import Settings
from pipelines.errors import InsurShareError
from pipelines.portal import accesslog, policy, web

ROUTE_MODULES = ("routes_auth", "routes_submissions", "routes_data", "routes_admin")
TITLE = "InsurShare portal"
METHOD_ORDER = ("get", "post", "put", "patch", "delete")


def route_modules() -> list[object]:
    """The route modules of ``ROUTE_MODULES`` that exist in this build."""
    found = []
    for name in ROUTE_MODULES:
        qualified = f"pipelines.portal.{name}"
        if importlib.util.find_spec(qualified) is not None:
            found.append(importlib.import_module(qualified))
    return found


def create_app(settings: Settings) -> FastAPI:
    """The portal for ``settings``' platform; refuses a route without a policy entry."""
    app = FastAPI(title=TITLE, version="1", lifespan=_lifespan, docs_url=None, redoc_url=None,
                  openapi_url=f"{web.API_PREFIX}/openapi.json",
                  description="The InsurShare member portal's API. Authenticate with "
                              "`Authorization: Bearer ist_...` (insurshare tokens create).")
    app.state.settings = settings
    for module in route_modules():
        for attr in ("api", "pages"):
            router = getattr(module, attr, None)
            if router is not None:
                app.include_router(router)
    policy.check_routes(route.name for route in app.routes if isinstance(route, APIRoute))
    # a description of the API like openapi.json: no caller, no data, outside the policy table
    app.add_route(f"{web.API_PREFIX}/docs", _docs_page, methods=["GET"], include_in_schema=False)
    _check_unguarded(app)
    _add_error_handlers(app)
    app.add_middleware(web.SecurityHeaders)
    return app


DESCRIPTION_PATHS = frozenset({f"{web.API_PREFIX}/openapi.json", f"{web.API_PREFIX}/docs"})


def _check_unguarded(app: FastAPI) -> None:
    """Refuse a route that bypasses ``PolicyRoute``: only the API's description may (no data)."""
    unguarded = sorted(getattr(r, "path", repr(r)) for r in app.routes if not isinstance(r, APIRoute))
    extra = [path for path in unguarded if path not in DESCRIPTION_PATHS]
    if extra:
        raise RuntimeError(f"Routes outside the policy table: {', '.join(extra)} (build them with "
                           "web.api_router() or web.page_router())")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the access log's flusher beside the API process (it seals the spool into the lake)."""
    flusher = accesslog.Flusher().start(app.state.settings)
    try:
        yield
    finally:
        flusher.stop()


def endpoints(schema: dict) -> list[dict[str, str]]:
    """The API's endpoints from its OpenAPI document: method, path, summary, policy name."""
    rows = []
    for path, operations in sorted(schema.get("paths", {}).items()):
        for method in METHOD_ORDER:
            op = operations.get(method)
            if op:
                rows.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                             "description": op.get("description", ""), "name": op.get("operationId", "")})
    return rows


async def _docs_page(request: Request) -> Response:
    schema = request.app.openapi()
    return web.render(request, "docs.html.j2", title=schema["info"]["title"], endpoints=endpoints(schema),
                      openapi_url=request.app.openapi_url)


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith(web.API_PREFIX + "/")


def _add_error_handlers(app: FastAPI) -> None:
    """Errors outside a policy route (an unknown path, a wrong method): JSON or the error page."""

    async def handle(request: Request, exc: Exception) -> Response:
        return web.error_response(request, exc, page=_is_page(request))

    for kind in (InsurShareError, HTTPException, RequestValidationError):
        app.add_exception_handler(kind, handle)
