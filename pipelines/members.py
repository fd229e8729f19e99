"""The member registry: who may submit. Kept in the lake table ``members``."""

from __future__ import annotations

import datetime as dt

from pipelines import audit, store
from pipelines.config import Settings
from pipelines.errors import SubmissionError
from pipelines.intake import MEMBER_RE
from pipelines.lake import Lake


def add_members(settings: Settings, members: dict[str, str]) -> list[str]:
    """Register members (id -> name); ids already registered are left as they are."""
    for member_id in members:
        if not MEMBER_RE.fullmatch(member_id):
            raise SubmissionError(f"Member id {member_id!r} is not valid: an upper-case letter then "
                                  "2-15 upper-case letters or digits.")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    def work(c):
        have = {r[0] for r in c.execute(f"SELECT member_id FROM {store.LAKE}.members").fetchall()}
        new = [m for m in members if m not in have]
        for m in new:
            c.execute(f"INSERT INTO {store.LAKE}.members VALUES (?, ?, ?)", [m, members[m], now])
            audit.append(c, "member", m, {"name": members[m]})
        return new

    with Lake(settings, read_only=False) as lake:
        lake.ensure()
        added, _ = lake.write(work, "register members")
    return added


def list_members(settings: Settings) -> list[tuple[str, str]]:
    with Lake(settings) as lake:
        return lake.execute(f"SELECT member_id, name FROM {store.LAKE}.members ORDER BY member_id").fetchall()
