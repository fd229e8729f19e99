"""Running the platform and overseeing it: members, users, tokens and DAG runs for the operator;
the access log and the audit trail for the regulator.

Each JSON endpoint has a form on the operator's page (``/admin``) that posts to a page route of
the same policy name, so the rule is the same however it is reached. A credential change names
its author (``by``) in the audit entry that ``identity`` writes; a token's secret is in the one
answer that creates it and nowhere else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Literal

from fastapi import Form, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from pipelines.errors import InsurShareError
from pipelines.members import add_members, list_members
from pipelines.portal import admin, identity, web
from pipelines.portal.data import plain
from pipelines.portal.routes_data import doc

api = web.api_router(tags=["platform"])
pages = web.page_router()

def _user(u: identity.User) -> dict:
    """A user as the API shows it: never a password or its hash (the User record holds neither)."""
    return {**dataclasses.asdict(u), "roles": sorted(u.roles)}


def _token(t: identity.Token) -> dict:
    return dataclasses.asdict(t)


def _unavailable(request: Request, exc: admin.AirflowUnavailable, page: bool) -> Response:
    """Airflow not running: 503 with what to do (web's mapping would make it a 400)."""
    body = web.error_body(exc)
    if page:
        response = web.render(request, "error.html.j2", status=503, **body)
    else:
        response = JSONResponse(body)
    response.status_code = 503
    response.headers["Retry-After"] = "30"
    return response


# -- members --------------------------------------------------------------------------------------

class MemberBody(BaseModel):
    member_id: str = Field(description="An upper-case letter then 2-15 upper-case letters or digits, e.g. M004.")
    name: str = Field(min_length=1, max_length=200)


@api.get("/members", **doc("members.list"))
def members(request: Request) -> list[dict]:
    return [{"member_id": m, "name": n} for m, n in list_members(web.settings_of(request))]


@api.post("/members", **doc("members.add"), status_code=201)
def member_add(body: MemberBody, request: Request) -> dict:
    request.state.access_object = body.member_id
    added = add_members(web.settings_of(request), {body.member_id: body.name})
    return {"member_id": body.member_id, "name": body.name, "added": bool(added)}


# -- users ----------------------------------------------------------------------------------------

class UserBody(BaseModel):
    username: str
    roles: list[Literal["submitter", "analyst", "regulator", "operator"]] = Field(min_length=1)
    member_id: str | None = Field(None, description="Required for submitter and analyst, refused otherwise.")
    password: str | None = Field(None, description="At least 12 characters; without one the user logs in only "
                                                   "once a password is set (insurshare users password).")


class DisableBody(BaseModel):
    disabled: bool = True


@api.get("/users", **doc("users.list"))
def users(request: Request) -> list[dict]:
    return [_user(u) for u in identity.list_users(web.settings_of(request))]


@api.post("/users", **doc("users.add"), status_code=201)
def user_add(body: UserBody, request: Request, caller: web.Caller) -> dict:
    request.state.access_object = body.username
    return _user(identity.create_user(web.settings_of(request), body.username, body.roles, body.member_id,
                                      password=body.password, by=caller.name))


@api.post("/users/{username}/disable", **doc("users.disable"),
          description="`{\"disabled\": false}` enables the user again.")
def user_disable(username: str, request: Request, caller: web.Caller, body: DisableBody | None = None) -> dict:
    request.state.access_object = username
    settings = web.settings_of(request)
    disabled = True if body is None else body.disabled
    identity.set_disabled(settings, username, disabled, by=caller.name)
    return _user(identity.get_user(settings, username))


# -- tokens ---------------------------------------------------------------------------------------

class TokenBody(BaseModel):
    username: str
    name: str = Field(min_length=1, max_length=100, description="What uses it, e.g. the member's upload job.")
    days: int = Field(identity.TOKEN_DEFAULT_DAYS, ge=1, le=identity.TOKEN_MAX_DAYS)


@api.get("/tokens", **doc("tokens.list"))
def tokens(request: Request, username: Annotated[str | None, Query(max_length=64)] = None) -> list[dict]:
    return [_token(t) for t in identity.list_tokens(web.settings_of(request), username)]


@api.post("/tokens", **doc("tokens.create"), status_code=201,
          description="The answer's `secret` is shown this once and stored only as a hash: hand it over now.")
def token_create(body: TokenBody, request: Request, caller: web.Caller) -> dict:
    token, secret = identity.create_token(web.settings_of(request), body.username, body.name, body.days,
                                          by=caller.name)
    request.state.access_object = token.token_id
    return {**_token(token), "secret": secret}


@api.post("/tokens/{token_id}/revoke", **doc("tokens.revoke"))
def token_revoke(token_id: str, request: Request, caller: web.Caller) -> dict:
    request.state.access_object = token_id
    settings = web.settings_of(request)
    identity.revoke_token(settings, token_id, by=caller.name)
    return next(_token(t) for t in identity.list_tokens(settings) if t.token_id == token_id)


# -- DAG runs -------------------------------------------------------------------------------------

class TriggerBody(BaseModel):
    conf: dict = Field(default_factory=dict, description="The run's configuration (dag_run.conf).")


@api.get("/dags/{dag_id}/runs", **doc("dags.runs"), description="503 when Airflow is not running.")
def dag_runs(dag_id: str, request: Request, limit: Annotated[int, Query(ge=1, le=100)] = 25) -> Response:
    request.state.access_object = dag_id
    try:
        runs = admin.dag_runs(web.settings_of(request), dag_id, limit)
    except admin.AirflowUnavailable as exc:
        return _unavailable(request, exc, page=False)
    request.state.access_rows = len(runs)
    return JSONResponse({"dag_id": dag_id, "runs": runs})


@api.post("/dags/{dag_id}/runs", **doc("dags.trigger"), status_code=201,
          description="Through Airflow's REST API; 503 when Airflow is not running.")
def dag_trigger(dag_id: str, request: Request, body: TriggerBody | None = None) -> Response:
    request.state.access_object = dag_id
    try:
        run = admin.trigger_dag(web.settings_of(request), dag_id, body.conf if body else {})
    except admin.AirflowUnavailable as exc:
        return _unavailable(request, exc, page=False)
    return JSONResponse({"dag_id": dag_id, **run}, status_code=201)


# -- oversight ------------------------------------------------------------------------------------

Outcome = Literal["allowed", "denied", "not_found", "invalid", "refused", "error"]


def _access_rows(request: Request, limit: int, username: str | None, outcome: str | None,
                 since: dt.datetime | None) -> list[dict]:
    from pipelines.portal import accesslog

    rows = accesslog.read(web.settings_of(request), limit=limit, username=username, outcome=outcome, since=since)
    request.state.access_rows = len(rows)
    return rows


@api.get("/access-log", **doc("access_log.read"), description="Newest first; the spool is sealed into the lake first.")
def access_log(request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
               username: Annotated[str | None, Query(max_length=64)] = None, outcome: Outcome | None = None,
               since: dt.datetime | None = None) -> Response:
    rows = _access_rows(request, limit, username, outcome, since)
    return JSONResponse(plain(rows))


@pages.get("/access-log", **doc("access_log.page"))
def access_log_page(request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
                    username: Annotated[str | None, Query(max_length=64)] = None, outcome: Outcome | None = None
                    ) -> Response:
    rows = _access_rows(request, limit, username or None, outcome, None)
    return web.render(request, "access_log.html.j2", rows=rows, limit=limit, username=username or "",
                      outcome=outcome or "", outcomes=Outcome.__args__)


@api.get("/audit", **doc("audit.read"),
         description="The newest entries, and the result of `insurshare audit verify` (chain, anchor, data files).")
def audit_trail(request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
                kind: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    settings = web.settings_of(request)
    entries = admin.audit_entries(settings, limit, kind)
    request.state.access_rows = len(entries)
    return JSONResponse({"verification": admin.verify_audit(settings).to_dict(), "entries": plain(entries)})


# -- the operator's page --------------------------------------------------------------------------

def _admin_page(request: Request, *, notice: str = "", error: InsurShareError | None = None,
                secret: str | None = None, status: int = 200) -> Response:
    settings = web.settings_of(request)
    response = web.render(request, "admin.html.j2", members=list_members(settings),
                          users=[_user(u) for u in identity.list_users(settings)],
                          tokens=[_token(t) for t in identity.list_tokens(settings)], dags=admin.platform_dags(),
                          airflow=admin.airflow_url(settings), notice=notice, error=error, secret=secret,
                          roles=identity.ROLES)
    response.status_code = status
    return response


def _form_action(request: Request, action, done: str) -> Response:
    """Run a form's action; the page again with what happened (an error: 400 and its message)."""
    try:
        result = action()
    except admin.AirflowUnavailable as exc:
        return _unavailable(request, exc, page=True)
    except InsurShareError as exc:
        request.state.access_detail = exc.message
        return _admin_page(request, error=exc, status=web.status_of(exc))
    secret = result if isinstance(result, str) else None
    return _admin_page(request, notice=done, secret=secret)


@pages.get("/admin", **doc("admin.page"))
def admin_page(request: Request) -> Response:
    return _admin_page(request)


@pages.post("/admin/members", **doc("members.add"))
def admin_member_add(request: Request, member_id: Annotated[str, Form()], name: Annotated[str, Form()]) -> Response:
    request.state.access_object = member_id
    settings = web.settings_of(request)
    return _form_action(request, lambda: add_members(settings, {member_id: name}),
                        f"Member {member_id} registered (an existing id is left as it was).")


@pages.post("/admin/users", **doc("users.add"))
def admin_user_add(request: Request, caller: web.Caller, username: Annotated[str, Form()],
                   roles: Annotated[list[str], Form()], member_id: Annotated[str, Form()] = "",
                   password: Annotated[str, Form()] = "") -> Response:
    request.state.access_object = username
    settings = web.settings_of(request)
    return _form_action(request, lambda: identity.create_user(settings, username, roles, member_id or None,
                                                              password=password or None, by=caller.name),
                        f"User {username} created.")


@pages.post("/admin/users/{username}/disable", **doc("users.disable"))
def admin_user_disable(username: str, request: Request, caller: web.Caller,
                       disabled: Annotated[bool, Form()] = True) -> Response:
    request.state.access_object = username
    settings = web.settings_of(request)
    return _form_action(request, lambda: identity.set_disabled(settings, username, disabled, by=caller.name),
                        f"User {username} {'disabled' if disabled else 'enabled'}.")


@pages.post("/admin/tokens", **doc("tokens.create"))
def admin_token_create(request: Request, caller: web.Caller, username: Annotated[str, Form()],
                       name: Annotated[str, Form()], days: Annotated[int, Form()] = identity.TOKEN_DEFAULT_DAYS
                       ) -> Response:
    settings = web.settings_of(request)

    def create() -> str:
        token, secret = identity.create_token(settings, username, name, days, by=caller.name)
        request.state.access_object = token.token_id
        return secret

    return _form_action(request, create, f"Token {name!r} issued for {username}: copy it now, it is not shown again.")


@pages.post("/admin/tokens/{token_id}/revoke", **doc("tokens.revoke"))
def admin_token_revoke(token_id: str, request: Request, caller: web.Caller) -> Response:
    request.state.access_object = token_id
    settings = web.settings_of(request)
    return _form_action(request, lambda: identity.revoke_token(settings, token_id, by=caller.name),
                        f"Token {token_id} revoked.")


@pages.post("/admin/dags/{dag_id}/trigger", **doc("dags.trigger"))
def admin_dag_trigger(dag_id: str, request: Request) -> Response:
    request.state.access_object = dag_id
    settings = web.settings_of(request)

    def trigger() -> None:
        run = admin.trigger_dag(settings, dag_id)
        request.state.access_detail = f"run {run.get('dag_run_id')}"

    return _form_action(request, trigger, f"DAG {dag_id} triggered.")
