"""The front door: log in and out, the home page, who am I, and whether the service is up.

A login answers a new session id every time (no session fixation) in a cookie the page's scripts
cannot read (HttpOnly), that no other site's page sends (SameSite=Strict), sent only over TLS when
the portal's address is https. The login form itself is protected against login CSRF (another
site logging the victim into the attacker's account) by a double-submit token: a random value in
a short-lived cookie and in the form, which must match.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from pipelines.portal import identity, policy, web
from pipelines.portal.identity import LoginRefused

LOGIN_COOKIE = "insurshare_login"
SESSION_COOKIE = web.SESSION_COOKIE

api = web.api_router(tags=["session"])
pages = web.page_router()


def _secure(request: Request) -> bool:
    return web.settings_of(request).portal_url.startswith("https://")


def _safe_next(target: str | None) -> str:
    """Only a path of this site ("/..."), never another site ("//evil", "https://...", "/\\evil")."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target \
            and all(ch.isprintable() for ch in target):
        return target
    return "/"


@pages.get("/login", name="auth.login_form")
def login_form(request: Request, caller: web.Caller, next: str = "/") -> Response:  # noqa: A002 - the form's field
    """The login page; sets the login form's double-submit token."""
    return _login_page(request, next_=_safe_next(next))


def _login_page(request: Request, *, next_: str, error: str = "", hint: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = web.render(request, "login.html.j2", login_token=token, next=next_, error=error, hint=hint)
    response.status_code = status
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/login", httponly=True, samesite="strict",
                        secure=_secure(request))
    return response


@pages.post("/login", name="auth.login")
async def login(request: Request, caller: web.Caller, username: Annotated[str, Form(max_length=200)] = "",
                password: Annotated[str, Form(max_length=1024)] = "",
                login_token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/") -> Response:  # noqa: A002
    """Check the password; on success a new session (the old one, if any, ends) and go on."""
    settings = web.settings_of(request)
    next_ = _safe_next(next)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, login_token):
        request.state.access_outcome, request.state.access_detail = "denied", "login form token missing or wrong"
        return _login_page(request, next_=next_, status=403, error="The login form expired.",
                           hint="Log in again from this page.")
    ip = request.client.host if request.client else ""
    try:
        principal = await run_in_threadpool(identity.authenticate, settings, username, password, ip)
    except LoginRefused as exc:
        request.state.access_outcome = "refused"
        request.state.access_detail = f"login refused for {username[:64]!r}"
        response = _login_page(request, next_=next_, status=web.status_of(exc), error=exc.message, hint=exc.hint)
        if exc.retry_after:
            response.headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        return response
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await run_in_threadpool(identity.end_session, settings, old)
    sid, _csrf = await run_in_threadpool(identity.create_session, settings, principal, ip)
    request.state.access_principal = principal
    response = RedirectResponse(next_, status_code=303)
    response.set_cookie(SESSION_COOKIE, sid, path="/", httponly=True, samesite="strict", secure=_secure(request))
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@pages.post("/logout", name="auth.logout")
async def logout(request: Request, caller: web.Caller) -> Response:
    """End the session (CSRF-checked like every form) and go back to the login page."""
    sid = request.cookies.get(SESSION_COOKIE)
    if sid and getattr(request.state, "via", "") == "cookie":
        await run_in_threadpool(identity.end_session, web.settings_of(request), sid)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request))
    return response


def allowed(request: Request, *, page: bool) -> list[dict[str, str]]:
    """The app's routes the caller may call: pages (GET without parameters) or API endpoints."""
    roles = web.current_principal(request).roles
    out, seen = [], set()
    for route in request.app.routes:
        if not isinstance(route, web.PolicyRoute) or route.page is not page or not policy.rule(route.name).allows(roles):
            continue
        if page and ("GET" not in route.methods or "{" in route.path or route.path in ("/", "/login")):
            continue
        for method in sorted(route.methods - {"HEAD"}):
            key = (method, route.path)
            if key not in seen:
                seen.add(key)
                out.append({"method": method, "path": route.path, "name": route.name,
                            "summary": policy.rule(route.name).summary})
    return out


@pages.get("/", name="home")
def home(request: Request, caller: web.Caller) -> Response:
    """What the caller may do here: the pages and the API endpoints its roles open."""
    return web.render(request, "home.html.j2", pages=allowed(request, page=True), endpoints=allowed(request, page=False))


@api.get("/me", name="me", summary="Who the caller is")
def me(request: Request, caller: web.Caller) -> dict:
    """The caller's user (or token), roles and member, and the endpoints it may call."""
    return {"kind": caller.kind, "id": caller.id, "username": caller.name, "roles": sorted(caller.roles),
            "member_id": caller.member_id,
            "may": sorted({e["name"] for e in allowed(request, page=False)})}


@api.get("/health", name="health", summary="Is the service up")
def health() -> dict:
    """Up and answering (no data, no credentials needed)."""
    return {"status": "ok"}

