"""The access matrix: every endpoint of the policy table x every role x own and other member.

For each endpoint name ``RECIPES`` says how to call each of its routes (method, path template and
a function building a valid request from the world and the actor). The expectation comes from
``policy.POLICY`` alone: a role the rule does not list is refused (anonymous: 401 on the API, a
redirect to the login page for pages; logged in: 403); an allowed caller reaching another member's
object gets the same 404, word for word, as for an object that does not exist; every other allowed
call gets the answer of a working request. ``test_every_route_has_a_recipe_and_a_policy_entry``
fails when a route is added without an entry here or in the policy table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from fastapi.routing import APIRoute

from pipelines.portal import identity, policy
from pipelines.portal.app import DESCRIPTION_PATHS
from pipelines.portal.web import API_PREFIX
from tests.portal.conftest import hidden
from tests.portal.world import ACTORS, MISSING_SUBMISSION, OWN, PASSWORD, Actor, World, build_world

Build = Callable[[World, Actor], dict]


@dataclass(frozen=True)
class Call:
    method: str
    path: str                                   # the route's template: /api/v1/submissions/{submission_id}
    build: Build = lambda world, actor: {}      # path parameters ("path") and request keywords
    ok: frozenset[int] = frozenset({200})       # the answer of a working, allowed request
    of_member: bool = False                     # reads an object of member OWN (a submission)

    @property
    def page(self) -> bool:
        return not self.path.startswith(API_PREFIX + "/")


def _sub(world: World, actor: Actor) -> dict:
    return {"path": {"submission_id": world.submission}}


def _login(world: World, actor: Actor) -> dict:
    world.client.cookies.clear()
    form = world.client.get("/login")
    return {"cookies": {"insurshare_login": form.cookies["insurshare_login"]},
            "data": {"username": "visitor", "password": PASSWORD, "login_token": hidden(form.text, "login_token")}}


def _upload(world: World, actor: Actor) -> dict:
    body = (world.files / "policy_2024Q1.csv").read_bytes()
    return {"files": {"file": ("policy_2024Q1.csv", body, "text/csv")},
            "data": {"dataset": "policy", "period": "2024Q1", "rows": "3", "control.written_premium": "3600.00",
                     "control.written_exposure": "3.000000"}}


def _throwaway_user(world: World, actor: Actor, *, form: bool) -> dict:
    name = world.unique("gone")
    identity.create_user(world.settings, name, ["submitter"], member_id=OWN)
    return {"path": {"username": name}, **({"data": {"disabled": "true"}} if form else {"json": {"disabled": True}})}


def _fresh_token(world: World, actor: Actor) -> dict:
    token, _ = identity.create_token(world.settings, "visitor", world.unique("tok"))
    return {"path": {"token_id": token.token_id}}


def _new_user(world: World, actor: Actor, *, form: bool) -> dict:
    name = world.unique("new")
    if form:
        return {"data": {"username": name, "roles": ["analyst"], "member_id": OWN}}
    return {"json": {"username": name, "roles": ["analyst"], "member_id": OWN}}


SQL = "SELECT count(*) AS n FROM catalog"
def _dag(world: World, actor: Actor) -> dict:
    return {"path": {"dag_id": "build_products"}}


NO_AIRFLOW = frozenset({503})     # allowed, and Airflow is not running in the tests
CREATED, SAME_OR_CREATED, REDIRECT = frozenset({201}), frozenset({200, 201}), frozenset({303})

RECIPES: dict[str, list[Call]] = {
    "health": [Call("GET", "/api/v1/health")],
    "home": [Call("GET", "/")],
    "auth.login_form": [Call("GET", "/login")],
    "auth.login": [Call("POST", "/login", _login, REDIRECT)],
    "auth.logout": [Call("POST", "/logout", ok=REDIRECT)],
    "me": [Call("GET", "/api/v1/me")],
    "submissions.upload": [Call("POST", "/api/v1/submissions", _upload, SAME_OR_CREATED),
                           Call("POST", "/submissions/new", _upload, REDIRECT)],
    "submissions.upload_form": [Call("GET", "/submissions/new")],
    "submissions.list": [Call("GET", "/api/v1/submissions"), Call("GET", "/submissions")],
    "submissions.show": [Call("GET", "/api/v1/submissions/{submission_id}", _sub, of_member=True),
                         Call("GET", "/submissions/{submission_id}", _sub, of_member=True)],
    "submissions.report": [Call("GET", "/api/v1/submissions/{submission_id}/report", _sub, of_member=True)],
    "submissions.rules": [Call("GET", "/api/v1/submissions/{submission_id}/rules", _sub, of_member=True)],
    "submissions.quarantine": [
        Call("GET", "/api/v1/submissions/{submission_id}/quarantine", _sub, of_member=True),
        Call("GET", "/api/v1/submissions/{submission_id}/quarantine.{fmt}",
             lambda w, a: {"path": {"submission_id": w.submission, "fmt": "xlsx"}}, of_member=True)],
    "query.run": [Call("POST", "/api/v1/query", lambda w, a: {"json": {"sql": SQL}})],
    "query.form": [Call("GET", "/query"), Call("POST", "/query", lambda w, a: {"data": {"sql": SQL, "limit": "5"}})],
    "marts.triangle": [Call("GET", "/api/v1/triangles", lambda w, a: {"params": {"line": "MCOM"}})],
    "marts.experience": [Call("GET", "/api/v1/experience", lambda w, a: {"params": {"grain": "year"}})],
    "marts.page": [Call("GET", "/triangles")],
    "products.download": [Call("GET", "/api/v1/products/mine")],
    "products.public": [Call("GET", "/api/v1/products/public")],
    "members.list": [Call("GET", "/api/v1/members")],
    "members.add": [Call("POST", "/api/v1/members", lambda w, a: {"json": {"member_id": "M003", "name": "Three"}},
                         CREATED),
                    Call("POST", "/admin/members", lambda w, a: {"data": {"member_id": "M004", "name": "Four"}})],
    "users.list": [Call("GET", "/api/v1/users")],
    "users.add": [Call("POST", "/api/v1/users", lambda w, a: _new_user(w, a, form=False), CREATED),
                  Call("POST", "/admin/users", lambda w, a: _new_user(w, a, form=True))],
    "users.disable": [Call("POST", "/api/v1/users/{username}/disable", lambda w, a: _throwaway_user(w, a, form=False)),
                      Call("POST", "/admin/users/{username}/disable", lambda w, a: _throwaway_user(w, a, form=True))],
    "tokens.list": [Call("GET", "/api/v1/tokens")],
    "tokens.create": [Call("POST", "/api/v1/tokens", lambda w, a: {"json": {"username": "visitor", "name": "m"}},
                           CREATED),
                      Call("POST", "/admin/tokens", lambda w, a: {"data": {"username": "visitor", "name": "m"}})],
    "tokens.revoke": [Call("POST", "/api/v1/tokens/{token_id}/revoke", _fresh_token),
                      Call("POST", "/admin/tokens/{token_id}/revoke", _fresh_token)],
    "admin.page": [Call("GET", "/admin")],
    "dags.runs": [Call("GET", "/api/v1/dags/{dag_id}/runs", _dag, NO_AIRFLOW)],
    "dags.trigger": [Call("POST", "/api/v1/dags/{dag_id}/runs", _dag, NO_AIRFLOW),
                     Call("POST", "/admin/dags/{dag_id}/trigger", _dag, NO_AIRFLOW)],
    "access_log.read": [Call("GET", "/api/v1/access-log")],
    "access_log.page": [Call("GET", "/access-log")],
    "audit.read": [Call("GET", "/api/v1/audit", lambda w, a: {"params": {"limit": "5"}})],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    built = build_world(tmp_path_factory.mktemp("matrix"))
    with built.client:
        yield built
    from pipelines.portal import db

    db.dispose()


def app_routes(app) -> set[tuple[str, str, str]]:
    """(policy name, method, path) of every route the portal serves."""
    return {(r.name, m, r.path) for r in app.routes if isinstance(r, APIRoute) for m in r.methods - {"HEAD"}}


def test_every_route_has_a_recipe_and_a_policy_entry(world):
    routes = app_routes(world.client.app)
    names = {name for name, _, _ in routes}
    assert names == set(policy.POLICY), "routes and the policy table differ"
    unguarded = {r.path for r in world.client.app.routes if not isinstance(r, APIRoute)}
    assert unguarded == DESCRIPTION_PATHS, "a route outside PolicyRoute (only the API's description may be)"
    assert set(RECIPES) == names, "add a recipe to RECIPES for every endpoint name"
    recipes = {(name, c.method, c.path) for name, calls in RECIPES.items() for c in calls}
    assert recipes == routes, f"routes without a recipe: {sorted(routes - recipes)}; recipes without a route: " \
                              f"{sorted(recipes - routes)}"


def expected(name: str, call: Call, actor: Actor) -> str | frozenset[int]:
    """``login`` (sent to log in), ``403``, ``404`` (another member's object) or the working answer."""
    rule = policy.POLICY[name]
    if not rule.allows(actor.roles):
        return "login" if actor.anonymous else "403"
    if call.of_member and not rule.sees_every_member(actor.roles) and actor.member_id != OWN:
        return "404"
    return call.ok


def send(world: World, actor: Actor, call: Call):
    kwargs = call.build(world, actor)
    path = call.path.format(**kwargs.pop("path", {}))
    cookies = kwargs.pop("cookies", {})
    world.client.cookies.clear()
    world.client.cookies.update(cookies)
    return world.client.request(call.method, path, headers=actor.headers(), follow_redirects=False, **kwargs)


CASES = [(name, i, actor) for name, calls in RECIPES.items() for i in range(len(calls)) for actor in ACTORS]


@pytest.mark.parametrize(("name", "index", "actor"), CASES,
                         ids=[f"{n}-{RECIPES[n][i].method}{RECIPES[n][i].path}-{a}" for n, i, a in CASES])
def test_access_matrix(world, name, index, actor):
    call, who = RECIPES[name][index], world.actors[actor]
    answer = send(world, who, call)
    want = expected(name, call, who)
    if want == "login":
        if call.page:
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), answer.text[:300]
        else:
            assert answer.status_code == 401, answer.text[:300]
            assert answer.headers["www-authenticate"].startswith("Bearer")
    elif want == "403":
        assert answer.status_code == 403, answer.text[:300]
    elif want == "404":
        assert answer.status_code == 404, answer.text[:300]
        missing = send(world, who, replace(call, build=lambda w, a: {"path": {"submission_id": MISSING_SUBMISSION,
                                                                              "fmt": "xlsx"}}))
        assert missing.status_code == 404 and missing.content == answer.content   # existence is not revealed
        assert world.submission not in answer.text
    else:
        assert answer.status_code in want, f"{answer.status_code}: {answer.text[:400]}"
