"""The portal's long-lived read-only connection sees every commit made after it was opened."""

from __future__ import annotations

import threading

from pipelines import store
from pipelines.members import add_members


def _members(settings) -> int:
    with store.shared_reader(settings) as con:
        return con.execute("SELECT count(*) FROM members").fetchone()[0]


def test_shared_reader_reads_the_latest_snapshot_and_is_shared(settings):
    assert _members(settings) == 3
    add_members(settings, {"M004": "Member Four"})          # committed by another connection
    assert _members(settings) == 4
    key = (settings.catalog, str(settings.data_path))
    first = store._SHARED[key]
    counts: list[int] = []
    threads = [threading.Thread(target=lambda: counts.append(_members(settings))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == [4] * 8 and store._SHARED[key] is first   # one attach, cursors per call
