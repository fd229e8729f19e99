"""Who may call which endpoint: the portal's one policy table.

Every route of the portal (API and pages) is named after a key of ``POLICY``; the app refuses to
start with a route that has none (``check_routes``), and the access-matrix test walks this table
for every role and for the caller's own and another member's objects.

A rule names the roles that may call the endpoint and its scope:

- ``public``: no object of a member is involved (anyone the roles allow sees the same thing);
- ``own``: the endpoint reads or writes one member's objects (a submission, a product): a member's
  users reach their own member's only, and another member's object answers 404 exactly like a
  missing one, so nobody learns what another company has; ``sees_all`` roles reach every member's.

Roles: ``submitter`` and ``analyst`` belong to one member; ``regulator`` reads everything, the
access log included; ``operator`` runs the platform (members, users, tokens, DAG runs) and sees
submissions' records, but no member's rows (quarantined rows, reports, products, queries) unless
they are also regulator; ``anonymous`` is anyone, logged in or not, and reaches the public
products only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ANONYMOUS = "anonymous"
SUBMITTER, ANALYST, REGULATOR, OPERATOR = "submitter", "analyst", "regulator", "operator"
ROLES = (SUBMITTER, ANALYST, REGULATOR, OPERATOR)
ANYONE_LOGGED_IN = frozenset(ROLES)


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str]          # who may call it; ANONYMOUS in it means anyone
    scope: str                     # "public" or "own"
    summary: str
    sees_all: frozenset[str] = frozenset()   # roles that reach every member's objects (scope "own")

    def allows(self, roles: Iterable[str]) -> bool:
        held = set(roles)
        return ANONYMOUS in self.roles or bool(held & self.roles)

    def sees_every_member(self, roles: Iterable[str]) -> bool:
        return bool(set(roles) & self.sees_all)


def _rule(roles: Iterable[str], summary: str, *, scope: str = "public", sees_all: Iterable[str] = ()) -> Rule:
    return Rule(frozenset(roles), scope, summary, frozenset(sees_all))


_SUBMISSION_READERS = (SUBMITTER, REGULATOR)
_RECORD_READERS = (SUBMITTER, REGULATOR, OPERATOR)

POLICY: dict[str, Rule] = {
    # the front door
    "health": _rule([ANONYMOUS], "Is the service up (no data)."),
    "home": _rule([ANONYMOUS], "The home page: the login form, or what the caller may do."),
    "auth.login_form": _rule([ANONYMOUS], "The login page."),
    "auth.login": _rule([ANONYMOUS], "Log in with a user name and password; starts a new session."),
    "auth.logout": _rule(ANYONE_LOGGED_IN, "End the session."),
    "me": _rule(ANYONE_LOGGED_IN, "Who the caller is: user, roles, member."),
    # a member's submissions
    "submissions.upload": _rule([SUBMITTER], "Upload a file with its manifest fields; answers the submission id.",
                                scope="own"),
    "submissions.upload_form": _rule([SUBMITTER], "The upload page.", scope="own"),
    "submissions.list": _rule(_RECORD_READERS, "Submissions with status, verdict, counts and timeliness.",
                              scope="own", sees_all=(REGULATOR, OPERATOR)),
    "submissions.show": _rule(_RECORD_READERS, "One submission's record and verdict.",
                              scope="own", sees_all=(REGULATOR, OPERATOR)),
    "submissions.report": _rule(_SUBMISSION_READERS, "One submission's HTML report.",
                                scope="own", sees_all=(REGULATOR,)),
    "submissions.rules": _rule(_SUBMISSION_READERS, "One submission's rule results.",
                               scope="own", sees_all=(REGULATOR,)),
    "submissions.quarantine": _rule(_SUBMISSION_READERS, "One submission's quarantined rows as CSV or XLSX.",
                                    scope="own", sees_all=(REGULATOR,)),
    # data products
    "query.run": _rule([ANALYST, REGULATOR], "SQL on the caller's own product (read only, limited).",
                       scope="own", sees_all=(REGULATOR,)),
    "query.form": _rule([ANALYST, REGULATOR], "The query page.", scope="own", sees_all=(REGULATOR,)),
    "marts.triangle": _rule([ANONYMOUS], "A development triangle from the caller's product (public: the "
                                         "public product).", scope="own", sees_all=(REGULATOR,)),
    "marts.experience": _rule([ANONYMOUS], "Experience rows from the caller's product (public: the public "
                                           "product).", scope="own", sees_all=(REGULATOR,)),
    "marts.page": _rule([ANONYMOUS], "The triangles page.", scope="own", sees_all=(REGULATOR,)),
    "products.download": _rule([ANALYST, REGULATOR], "The caller's own product file (.duckdb).",
                               scope="own", sees_all=(REGULATOR,)),
    "products.public": _rule([ANONYMOUS], "The public product file (.duckdb)."),
    # running the platform
    "members.list": _rule([OPERATOR, REGULATOR], "Registered members."),
    "members.add": _rule([OPERATOR], "Register a member."),
    "users.list": _rule([OPERATOR], "User accounts (never a password or hash)."),
    "users.add": _rule([OPERATOR], "Create a user account."),
    "users.disable": _rule([OPERATOR], "Disable or re-enable a user (ends their sessions and tokens)."),
    "tokens.list": _rule([OPERATOR], "API tokens (never a secret)."),
    "tokens.create": _rule([OPERATOR], "Issue an API token for a user; the secret is shown once."),
    "tokens.revoke": _rule([OPERATOR], "Revoke an API token."),
    "admin.page": _rule([OPERATOR], "The operator's page: members, users, tokens, DAG runs."),
    "dags.runs": _rule([OPERATOR], "Recent runs of a DAG (through Airflow's REST API)."),
    "dags.trigger": _rule([OPERATOR], "Trigger a DAG run (through Airflow's REST API)."),
    # oversight
    "access_log.read": _rule([REGULATOR], "The access log: who did what, from where, with what outcome."),
    "access_log.page": _rule([REGULATOR], "The access log page."),
    "audit.read": _rule([REGULATOR], "The audit trail and whether it verifies."),
}


def rule(name: str) -> Rule:
    """The rule of endpoint ``name``; KeyError (naming the table) when it has none."""
    try:
        return POLICY[name]
    except KeyError:
        raise KeyError(f"Endpoint {name!r} has no entry in pipelines.portal.policy.POLICY") from None


def check_routes(names: Iterable[str]) -> None:
    """Refuse a set of route names with one not in the table (the app calls it at start)."""
    missing = sorted(set(names) - set(POLICY))
    if missing:
        raise RuntimeError(f"Routes without a policy entry: {', '.join(missing)} (add them to "
                           "pipelines.portal.policy.POLICY)")
