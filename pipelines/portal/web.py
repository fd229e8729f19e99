"""The portal's request mechanism: who is calling, may they, and the record that they did.

Every route of the portal is built by ``api_router()`` or ``page_router()``, whose route class
(``PolicyRoute``) wraps the handler: it resolves the caller (a Bearer API token, else the session
cookie, else anonymous), checks the caller against the route's entry in ``policy.POLICY`` (the
route's ``name``), checks the CSRF token of a cookie caller on an unsafe method, calls the handler,
turns the platform's errors into answers, and records one access (``accesslog.record``) for every
request, refused ones included. A handler therefore only does its own work: it takes the caller
as ``caller: Caller``, calls ``own(caller, member_id)`` before showing a member's object, and
names what it touched in ``request.state.access_object`` / ``access_rows`` / ``access_query``.

Answers never tell an outsider more than they may know: an anonymous caller is sent to log in
(401 / the login page), a logged-in caller without the role gets 403, and another member's object
is the same 404 as a missing one (``not_found()``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipelines.config import Settings
from pipelines.errors import InsurShareError, NotFound, QueryError, SubmissionError
from pipelines.portal import accesslog, identity, policy
from pipelines.portal.identity import ANONYMOUS, LoginRefused, Principal

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
SESSION_COOKIE = "insurshare_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Routes that stream their multipart body themselves (uploads): the CSRF field arrives with the
# body, so the handler checks it with ``check_csrf`` once the form is read; the wrapper cannot.
STREAMED_FORMS = frozenset({"submissions.upload"})
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
_TOKEN_ID = re.compile(r"ist_(t-[0-9a-f]{16})_")
TEMPLATES = Path(__file__).parent / "templates"
_JINJA = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                     trim_blocks=True, lstrip_blocks=True)


# -- errors ---------------------------------------------------------------------------------------

class Denied(InsurShareError):
    """The caller may not call this endpoint (401 when anonymous, 403 when logged in)."""

    def __init__(self, message: str, *, status: int, hint: str = "", outcome: str = "denied") -> None:
        self.status = status
        self.outcome = outcome
        super().__init__(message, hint=hint)


def not_found() -> NotFound:
    """The one 404 of the portal, word for word the same for a missing object and another member's
    (so nobody learns what another company has); raise it, and name the id in ``access_object``."""
    return NotFound("Not found.", hint="Check the id; you see only your own member's objects.")


def own(principal: Principal, member_id: str | None, endpoint: str | None = None) -> None:
    """Raise the 404 unless ``principal`` may see member ``member_id``'s objects.

    A role the endpoint's rule lists in ``sees_all`` (the regulator, for records also the operator)
    sees every member's; any other caller only its own member's. With no ``endpoint`` the rule of a
    role that reads everything (the regulator) applies.
    """
    roles = principal.roles
    sees_all = (policy.rule(endpoint).sees_every_member(roles) if endpoint
                else policy.REGULATOR in roles)
    if sees_all:
        return
    if member_id is None or principal.member_id is None or principal.member_id != member_id:
        raise not_found()


def status_of(exc: BaseException) -> int:
    """The HTTP status of an error the platform raised on purpose."""
    if isinstance(exc, Denied):
        return exc.status
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, RequestValidationError):
        return 422
    if isinstance(exc, LoginRefused):
        return 429 if getattr(exc, "retry_after", None) else 401
    if isinstance(exc, NotFound):
        return 404
    if isinstance(getattr(exc, "status", None), int) and isinstance(exc, InsurShareError):
        return exc.status           # errors that name their own (uploads: 413 too large, 400 cut off)
    if isinstance(exc, SubmissionError):
        return 422
    if isinstance(exc, (QueryError, InsurShareError)):
        return 400
    return 500


def outcome_of(status: int, exc: BaseException | None = None) -> str:
    """The access log's word for an answer."""
    if isinstance(exc, Denied):
        return exc.outcome
    if status < 400:
        return "allowed"
    if status in (401, 403):
        return "denied"
    if status == 404:
        return "not_found"
    if status == 429 or isinstance(exc, LoginRefused):
        return "refused"
    if status >= 500:
        return "error"
    return "invalid"


def error_body(exc: BaseException) -> dict[str, Any]:
    """``{error, hint}``: what failed and what to do; never a traceback."""
    if isinstance(exc, InsurShareError):
        return {"error": exc.message, "hint": exc.hint}
    if isinstance(exc, RequestValidationError):
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors())
        return {"error": f"The request is malformed: {fields or 'body'}.",
                "hint": "See the endpoint in the OpenAPI document at /api/v1/openapi.json."}
    if isinstance(exc, HTTPException):
        return {"error": str(exc.detail), "hint": ""}
    return {"error": "Internal error; it has been logged.", "hint": "Try again later or tell the operator."}


def error_response(request: Request, exc: BaseException, *, page: bool) -> Response:
    """The answer to an error: JSON ``{error, hint}`` for the API, the error page for people."""
    status = status_of(exc)
    if page and status == 401:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    body = error_body(exc)
    if page:
        response = render(request, "error.html.j2", status=status, **body)
        response.status_code = status
    else:
        response = JSONResponse(body, status_code=status)
    retry = getattr(exc, "retry_after", None)
    if retry:
        response.headers["Retry-After"] = str(max(1, int(retry + 0.999)))
    if status == 401 and not page:
        response.headers["WWW-Authenticate"] = 'Bearer realm="insurshare"'
    return response


# -- the caller -----------------------------------------------------------------------------------

def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def _resolve(settings: Settings, request: Request) -> tuple[Principal, str, str | None]:
    """(principal, how it came: "token" | "cookie" | "none", the session's CSRF token).

    A Bearer token that does not name a live token is refused (401), never taken as anonymous:
    the machine sending it must learn that its credential is bad.
    """
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        text = auth[7:].strip()
        principal = identity.token_principal(settings, text)
        if principal is None:
            why = identity.token_refusal(settings, text) or "unknown"
            named = _TOKEN_ID.match(text)       # the id part only, never the secret
            request.state.access_detail = f"API token {named[1] if named else '(malformed)'} refused: {why}"
            raise Denied("The API token is not valid.", status=401, outcome="refused",
                         hint=f"Token {why}; ask the operator for a new one (insurshare tokens create).")
        return principal, "token", None
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        found = identity.session(settings, sid)
        if found is not None:
            return found[0], "cookie", found[1]
    return ANONYMOUS, "none", None


def current_principal(request: Request) -> Principal:
    """The caller PolicyRoute resolved for this request (anonymous outside a PolicyRoute)."""
    return getattr(request.state, "principal", ANONYMOUS)


Caller = Annotated[Principal, Depends(current_principal)]


def check_csrf(request: Request, sent: str | None) -> None:
    """Refuse a cookie caller's unsafe request whose CSRF token is missing or wrong (403)."""
    expected = getattr(request.state, "csrf", None)
    if getattr(request.state, "via", "none") != "cookie" or request.method not in UNSAFE_METHODS:
        return
    if not expected or not sent or not hmac.compare_digest(str(sent), str(expected)):
        raise Denied("The form's CSRF token is missing or wrong.", status=403,
                     hint="Reload the page and submit the form again.")


def check_form_csrf(request: Request, fields: dict[str, str]) -> None:
    """For a route of ``STREAMED_FORMS``: check the CSRF field of the form it has just read, when the
    wrapper left the check to it (a cookie caller's multipart form without the header)."""
    if getattr(request.state, "csrf_deferred", False):
        check_csrf(request, fields.get(CSRF_FIELD))


async def _check_csrf_before(request: Request, name: str) -> None:
    if getattr(request.state, "via", "none") != "cookie" or request.method not in UNSAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    ctype = request.headers.get("content-type", "")
    if sent is None and name in STREAMED_FORMS and ctype.startswith("multipart/form-data"):
        request.state.csrf_deferred = True       # the handler checks the field (check_csrf)
        return
    if sent is None and ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get(CSRF_FIELD)   # cached: the handler reads the same form
    check_csrf(request, sent if isinstance(sent, str) else None)


# -- the access record ----------------------------------------------------------------------------

def _record(settings: Settings, request: Request, name: str, status: int, outcome: str,
            started: float, detail: str) -> None:
    """One access for this request; an error here is the caller's 503 (no unrecorded access)."""
    principal: Principal = getattr(request.state, "access_principal", None) or current_principal(request)
    query = getattr(request.state, "access_query", None)
    accesslog.record(settings, accesslog.Access(
        principal_kind=principal.kind, principal_id=principal.id, username=principal.name,
        roles=",".join(sorted(principal.roles)), member_id=principal.member_id,
        ip=request.client.host if request.client else "", method=request.method, endpoint=name,
        path=request.url.path, object_id=getattr(request.state, "access_object", None),
        query_sha256=hashlib.sha256(query.encode()).hexdigest() if query else None,
        status=status, outcome=outcome, rows=getattr(request.state, "access_rows", None),
        duration_ms=round((time.perf_counter() - started) * 1000, 3), detail=detail[:500]))


# -- the route class ------------------------------------------------------------------------------

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class PolicyRoute(APIRoute):
    """A route whose handler runs only for callers its policy entry allows, and is recorded."""

    page = False

    def get_route_handler(self) -> Handler:
        inner = super().get_route_handler()
        name, page = self.name, self.page

        async def guarded(request: Request) -> Response:
            started = time.perf_counter()
            settings = settings_of(request)
            request.state.endpoint = name
            exc: BaseException | None = None
            try:
                principal, via, csrf = await run_in_threadpool(_resolve, settings, request)
                request.state.principal, request.state.via, request.state.csrf = principal, via, csrf
                _allow(name, principal)
                await _check_csrf_before(request, name)
                response = await inner(request)
            except Exception as caught:   # noqa: BLE001 - every error becomes an answer and a record
                exc = caught
                if status_of(caught) >= 500:
                    log.exception("portal: %s %s failed", request.method, request.url.path)
                response = error_response(request, caught, page=page)
            status = response.status_code
            detail = getattr(request.state, "access_detail", "") or (
                error_body(exc)["error"] if exc is not None else "")
            try:
                await run_in_threadpool(_record, settings, request, name, status,
                                        getattr(request.state, "access_outcome", None)
                                        or outcome_of(status, exc), started, detail)
            except Exception:   # noqa: BLE001 - fail closed: an access that cannot be recorded is not served
                log.exception("portal: could not record the access to %s", request.url.path)
                return _unrecorded(page, request)
            return response

        return guarded


def _unrecorded(page: bool, request: Request) -> Response:
    body = {"error": "The access could not be recorded, so it is not served.",
            "hint": "Try again; tell the operator if it persists."}
    if page:
        response = render(request, "error.html.j2", status=503, **body)
        response.status_code = 503
        return response
    return JSONResponse(body, status_code=503)


def _allow(name: str, principal: Principal) -> None:
    if policy.rule(name).allows(principal.roles):
        return
    if principal.kind == "anonymous":
        raise Denied("Log in first.", status=401, hint="Log in at /login, or send an API token "
                     "(Authorization: Bearer ist_...).")
    raise Denied("Your roles do not allow this.", status=403,
                 hint=f"It needs one of: {', '.join(sorted(policy.rule(name).roles))}.")


class PageRoute(PolicyRoute):
    """A page for people: anonymous callers are sent to log in; errors are an HTML page."""

    page = True


def api_router(prefix: str = "", **kwargs: Any) -> APIRouter:
    """A router for JSON endpoints under ``/api/v1`` (+ ``prefix``); every route needs a policy ``name``."""
    return APIRouter(prefix=API_PREFIX + prefix, route_class=PolicyRoute, **kwargs)


def page_router(**kwargs: Any) -> APIRouter:
    """A router for HTML pages (left out of the OpenAPI document)."""
    return APIRouter(route_class=PageRoute, include_in_schema=False, **kwargs)


# -- pages ----------------------------------------------------------------------------------------

def can(request: Request, name: str) -> bool:
    """Whether the caller may call endpoint ``name`` (pages show only the links that work)."""
    return policy.rule(name).allows(current_principal(request).roles)


def render(request: Request, template: str, **ctx: Any) -> HTMLResponse:
    """A page from ``templates/`` (autoescaped) with the caller, its CSRF token and ``can``."""
    principal = current_principal(request)
    html = _JINJA.get_template(template).render(
        request=request, caller=principal, csrf_token=getattr(request.state, "csrf", None) or "",
        can=lambda name: policy.rule(name).allows(principal.roles), **ctx)
    return HTMLResponse(html)


# -- headers on every answer ----------------------------------------------------------------------

class SecurityHeaders:
    """ASGI middleware: the security headers on every answer, routed or not (404s, OpenAPI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in SECURITY_HEADERS.items():
                    if key.lower().encode() not in present:
                        headers.append((key.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
