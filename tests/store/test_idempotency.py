"""Idempotency: doing a day's work again leaves the lake exactly as it was."""

from __future__ import annotations

import datetime as dt
import json

from pipelines import store
from pipelines.generate import generate
from pipelines.ingest import pending, process_submission, repair_snapshot_ids
from pipelines.intake import Manifest, intake_connection, receive
from pipelines.marts.build import build_marts
from pipelines.members import add_members


def _day(settings, out):
    """Receive every file of the data set, process what is pending, build the marts."""
    index = json.loads((out / "index.json").read_text())
    add_members(settings, {m["member_id"]: m["name"] for m in index["members"]})
    with intake_connection(settings) as con:
        for s in index["submissions"]:
            receive(settings, out / s["file"], Manifest.from_file(out / s["manifest"]),
                    received_at=dt.datetime.fromisoformat(s["submitted_at"]), con=con)
    repair_snapshot_ids(settings)
    while ids := pending(settings):
        for sid in ids:
            process_submission(settings, sid)
    build_marts(settings)


def _state(settings):
    con = store.connect(settings)
    try:
        return (store.current_snapshot(con),
                con.execute("SELECT count(*), sum(written_premium) FROM lake.policy").fetchone(),
                con.execute("SELECT count(*), sum(paid_to_date) FROM lake.claim").fetchone(),
                con.execute("SELECT count(*) FROM lake.submissions").fetchone()[0],
                con.execute("SELECT count(*) FROM lake.audit_log").fetchone()[0])
    finally:
        con.close()


def test_a_whole_day_again_changes_nothing(settings, tmp_path):
    out = tmp_path / "incoming"
    generate(out, members=3, quarters=2, scale=0.04, seed=5)
    _day(settings, out)
    first = _state(settings)
    _day(settings, out)                                   # the same files, the same runs
    assert _state(settings) == first
    for sid in json.loads((out / "index.json").read_text())["submissions"][:3]:
        outcome = process_submission(settings, f"{sid['member_id']}-{sid['dataset']}-{sid['period']}-v{sid['version']}")
        assert outcome.already_done                       # a task run again is a no-op
    assert _state(settings) == first
