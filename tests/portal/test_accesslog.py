"""The access log: recorded in the spool, sealed into the lake in batches, tamper-evident."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines import store
from pipelines.cli import main
from pipelines.portal import accesslog, db


def _access(n: int, **overrides: object) -> accesslog.Access:
    values = dict(principal_kind="user", principal_id=f"u-{n % 3}", username=f"user{n % 3}", roles="submitter",
                  member_id="M001", ip="127.0.0.1", method="GET", endpoint="submissions.list",
                  path=f"/api/v1/submissions?page={n}", object_id=None, query_sha256=None, status=200,
                  outcome="allowed", rows=n, duration_ms=1.25 + n, detail="",
                  at=dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=n))
    values.update(overrides)
    return accesslog.Access(**values)


@pytest.fixture(autouse=True)
def _fresh_engines():
    yield
    db.dispose()


def _verify(settings):
    return CliRunner().invoke(main, ["--home", str(settings.home), "audit", "verify"])


def _tamper(settings, sql):
    con = store.connect(settings, read_only=False)
    try:
        con.execute(sql)   # an intruder writing the lake through DuckDB, outside write_transaction
    finally:
        con.close()


def test_accesslog_record_flush_read(settings):
    for n in range(5):
        accesslog.record(settings, _access(n, outcome="denied" if n == 3 else "allowed"))
    assert accesslog.pending(settings) == 5
    got = accesslog.read(settings)   # flushes first
    assert accesslog.pending(settings) == 0
    assert [r["path"] for r in got] == [f"/api/v1/submissions?page={n}" for n in (4, 3, 2, 1, 0)]
    assert got[0]["at"] == dt.datetime(2026, 1, 15, 12, 0, 4) and got[0]["rows"] == 4
    assert got[0]["duration_ms"] == 5.25 and got[0]["member_id"] == "M001"
    assert [r["spool_id"] for r in accesslog.read(settings, outcome="denied")] == [got[1]["spool_id"]]
    assert {r["username"] for r in accesslog.read(settings, username="user1")} == {"user1"}
    since = accesslog.read(settings, since=dt.datetime(2026, 1, 15, 12, 0, 3, tzinfo=dt.UTC))
    assert len(since) == 2


def test_accesslog_batch_is_one_audit_entry(settings, lake):
    for n in range(3):
        accesslog.record(settings, _access(n))
    assert accesslog.flush(settings) == 3
    assert accesslog.flush(settings) == 0   # nothing left: no empty batch, no entry
    con = lake()
    entries = con.execute("SELECT subject, details FROM lake.audit_log WHERE kind = 'access-batch'").fetchall()
    assert len(entries) == 1 and entries[0][0].startswith("access log rows ")
    assert '"rows": 3' in entries[0][1]
    assert _verify(settings).exit_code == 0


def test_accesslog_flush_takes_a_bounded_batch_oldest_first(settings):
    for n in range(7):
        accesslog.record(settings, _access(n))
    assert accesslog.flush(settings, limit=3) == 3
    assert accesslog.pending(settings) == 4
    with store.reader(settings) as con:
        assert [r[0] for r in con.execute("SELECT rows_returned FROM access_log ORDER BY spool_id").fetchall()] \
            == [0, 1, 2]


@pytest.fixture
def sealed(settings):
    for n in range(6):
        accesslog.record(settings, _access(n))
    accesslog.flush(settings, limit=3)
    accesslog.flush(settings, limit=3)
    result = _verify(settings)
    assert result.exit_code == 0, result.output
    assert "6 access log rows match their seals" in result.output
    return settings


def test_accesslog_verify_names_an_edited_row(sealed):
    _tamper(sealed, "UPDATE lake.access_log SET outcome = 'allowed', status = 200, username = 'someone' "
                    "WHERE spool_id = 2")
    result = _verify(sealed)
    assert result.exit_code == 1
    assert "TAMPERED: access_log row 2 (batch c-" in result.output
    assert "was edited: its content no longer matches its MAC" in result.output


def test_accesslog_verify_names_a_deleted_row(sealed):
    _tamper(sealed, "DELETE FROM lake.access_log WHERE spool_id = 5")
    result = _verify(sealed)
    assert result.exit_code == 1
    assert "TAMPERED: access_log row 5 of access log batch c-" in result.output and "was deleted" in result.output


def test_accesslog_verify_names_an_inserted_row(sealed):
    _tamper(sealed, "INSERT INTO lake.access_log SELECT 99 AS spool_id, * EXCLUDE (spool_id) "
                    "FROM lake.access_log WHERE spool_id = 1")
    result = _verify(sealed)
    assert result.exit_code == 1
    assert "access_log row 99 appears in access log batch c-" in result.output


def test_accesslog_concurrent_flushes_write_each_row_once(settings):
    for n in range(60):
        accesslog.record(settings, _access(n))
    barrier, written, errors = threading.Barrier(3), [], []

    def flusher():
        barrier.wait()
        try:
            while (n := accesslog.flush(settings, limit=7)):
                written.append(n)
        except Exception as exc:   # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=flusher) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sum(written) == 60 and accesslog.pending(settings) == 0
    with store.reader(settings) as con:
        ids = [r[0] for r in con.execute("SELECT spool_id FROM access_log ORDER BY spool_id").fetchall()]
    assert ids == sorted(set(ids)) and len(ids) == 60
    assert _verify(settings).exit_code == 0


def test_accesslog_flusher_thread_flushes_on_stop(settings):
    flusher = accesslog.Flusher().start(settings, every=30)
    accesslog.record(settings, _access(1))
    flusher.stop()
    assert accesslog.pending(settings) == 0
    with store.reader(settings) as con:
        assert con.execute("SELECT count(*) FROM access_log").fetchone()[0] == 1


def _flush_in_a_process(home: str, barrier, results) -> None:
    from pipelines.config import Settings

    settings, total = Settings(home=Path(home), gx_max_rows=0), 0
    barrier.wait()
    while n := accesslog.flush(settings, limit=5):
        total += n
    results.put(total)


def test_accesslog_concurrent_flushes_from_two_processes(settings):
    for n in range(40):
        accesslog.record(settings, _access(n))
    db.dispose()   # no pooled connection crosses into the children
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_flush_in_a_process, args=(str(settings.home), barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    assert results.get(timeout=5) + results.get(timeout=5) == 40
    with store.reader(settings) as con:
        ids = [r[0] for r in con.execute("SELECT spool_id FROM access_log ORDER BY spool_id").fetchall()]
    assert len(ids) == 40 == len(set(ids)) and accesslog.pending(settings) == 0
    assert _verify(settings).exit_code == 0


def test_accesslog_read_before_any_lake_is_empty(tmp_path):
    from pipelines.config import Settings

    assert accesslog.read(Settings(home=tmp_path / "empty")) == []


def test_accesslog_read_waits_for_rows_another_flusher_has_claimed(settings):
    """A regulator's read must include every access spooled before it, even those another API
    process's flusher has claimed but not yet written (here: it gives them back after a moment)."""
    accesslog.record(settings, _access(1))
    eng = db.engine(settings)
    claim, rows = accesslog._claim(eng, accesslog.BATCH)
    assert [r[0] for r in rows] and accesslog.flush(settings) == 0     # claimed: not this call's to write
    releaser = threading.Timer(0.5, accesslog._release, args=(eng, claim), kwargs={"delete": False})
    releaser.start()
    try:
        got = accesslog.read(settings)
    finally:
        releaser.join()
    assert [r["path"] for r in got] == [_access(1).path]
    assert accesslog.pending(settings) == 0
