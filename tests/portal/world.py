"""A whole platform for the access-matrix and attack tests, built once per module.

Members M001 ("own") and M002 ("other") each have a submitter and an analyst; there are a
regulator and an operator. The lake holds the product tests' small market (members M001-M004,
marts and products built) and one processed policy submission of M001, so that every endpoint
has a real object to read: a submission with its report, rule results and quarantine, and a
product per audience. Every actor but the anonymous one calls with an API token of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient

from pipelines.config import Settings
from pipelines.members import add_members
from pipelines.portal import identity
from pipelines.portal.app import create_app
from tests.conftest import policy_row, submit_and_process, write_csv
from tests.products.conftest import built, small_rows

OWN, OTHER = "M001", "M002"
PASSWORD = "correct horse battery staple"
MISSING_SUBMISSION = "M001-policy-2099Q1-v1"


@dataclass(frozen=True)
class Actor:
    name: str
    roles: frozenset[str]
    member_id: str | None = None
    secret: str | None = None          # its API token (None: anonymous)

    @property
    def anonymous(self) -> bool:
        return self.secret is None

    def headers(self) -> dict[str, str]:
        return {} if self.secret is None else {"Authorization": f"Bearer {self.secret}"}


@dataclass
class World:
    settings: Settings
    client: TestClient
    actors: dict[str, Actor]
    submission: str                     # a processed submission of member OWN
    files: Path
    counter: list[int] = field(default_factory=lambda: [0])

    def unique(self, prefix: str) -> str:
        self.counter[0] += 1
        return f"{prefix}{self.counter[0]}"

    def call(self, actor: Actor, method: str, path: str, **kwargs):
        """One request as ``actor``: no cookie left from an earlier call, no redirect followed."""
        self.client.cookies.clear()
        headers = {**actor.headers(), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, follow_redirects=False, **kwargs)


ACTORS = {
    "anonymous": (frozenset({"anonymous"}), None),
    "submitter_own": (frozenset({"submitter"}), OWN),
    "submitter_other": (frozenset({"submitter"}), OTHER),
    "analyst_own": (frozenset({"analyst"}), OWN),
    "analyst_other": (frozenset({"analyst"}), OTHER),
    "regulator": (frozenset({"regulator"}), None),
    "operator": (frozenset({"operator"}), None),
}


def policy_file(folder: Path, name: str = "policy_2024Q1.csv", rows: int = 3) -> Path:
    """A clean premium file of ``rows`` transactions for period 2024Q1."""
    return write_csv(folder / name, [policy_row(policy_no=f"P{i:04d}", transaction_id=f"T{i:04d}")
                                     for i in range(1, rows + 1)])


def build_world(root: Path) -> World:
    settings = built(root / "home", *small_rows()).with_(gx_max_rows=0)
    add_members(settings, {OWN: "Member One", OTHER: "Member Two"})
    files = root / "files"
    files.mkdir()
    got = submit_and_process(settings, policy_file(files), member=OWN)
    actors = {}
    for name, (roles, member) in ACTORS.items():
        if name == "anonymous":
            actors[name] = Actor(name, roles)
            continue
        user = name.replace("_", "-")
        identity.create_user(settings, user, roles, member_id=member, password=PASSWORD)
        actors[name] = Actor(name, roles, member, identity.create_token(settings, user, "matrix")[1])
    identity.create_user(settings, "visitor", ["submitter"], member_id=OTHER, password=PASSWORD)
    client = TestClient(create_app(settings))
    assert got.status == "accepted", got.reasons
    return World(settings, client, actors, got.submission_id, files)
