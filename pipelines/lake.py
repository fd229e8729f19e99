"""The lake as one object: a connection with the lake attached, its settings, and its writes.

``Lake`` replaces the hand-written ``store.connect`` ... ``finally: con.close()`` blocks::

    with Lake(settings, read_only=False) as lake:
        result, snapshot = lake.write(lambda con: publish(con, ...), message="publish M001 policy 2024Q4")

``write`` (``write_transaction``) is the only way the platform changes the lake: one DuckLake
transaction, retried while the catalog is busy or a concurrent commit conflicts, its audit
entries keyed with the audit key, and the commit sealed in the anchor file. That is why this
module sits above ``store`` (connections, tables) and ``audit`` (the chain and its anchor).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

from pipelines import store
from pipelines.audit import keyed, last_entry
from pipelines.audit.anchor import check_before_write, seal, seal_token
from pipelines.audit.key import AuditKey, load_or_create_key
from pipelines.config import Settings
from pipelines.contracts import DatasetContract, datasets, load_contract
from pipelines.errors import LakeBusy

T = TypeVar("T")


class Lake:
    """A connection with the lake attached (read-only unless asked), closed on leaving the block."""

    def __init__(self, settings: Settings, *, read_only: bool = True, snapshot: int | None = None,
                 database: str = ":memory:") -> None:
        self.settings = settings
        self._options = dict(read_only=read_only, snapshot=snapshot, database=database)
        self.con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> Lake:
        self.con = store.connect(self.settings, **self._options)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None

    def execute(self, sql: str, parameters: object = None) -> duckdb.DuckDBPyConnection:
        return self.con.execute(sql, parameters) if parameters is not None else self.con.execute(sql)

    def write(self, work: Callable[[duckdb.DuckDBPyConnection], T], message: str = "", *,
              extra: str = "{}") -> tuple[T, int]:
        """``work(con)`` in one lake transaction (see ``write_transaction``): its result and the new snapshot."""
        return write_transaction(self.con, self.settings, work, message=message, extra=extra)

    def ensure(self) -> None:
        """Create the lake's tables (and columns of newer contract versions) if missing."""
        ensure_lake(self.con, self.settings)


def write_transaction(con: duckdb.DuckDBPyConnection, settings: Settings,
                      work: Callable[[duckdb.DuckDBPyConnection], T], *,
                      message: str = "", extra: str = "{}", attempts: int = 40,
                      reseal: bool = False, anchor_note: dict | None = None) -> tuple[T, int]:
    """Run ``work(con)`` in one lake transaction; return its result and the new snapshot id.

    ``con`` must have the lake attached read-write. Busy catalogs and commit conflicts are
    retried with jittered exponential backoff (capped at 5 s, so 40 attempts wait about three
    minutes: several writers publishing at once on a PostgreSQL catalog conflict on the audit
    head and must each get through); after ``attempts`` the error is raised as ``LakeBusy``.
    Audit entries appended by ``work`` are keyed with the audit key, and the commit is sealed
    in the anchor file (see ``pipelines.audit.anchor``; ``reseal``: seal every live file and the
    whole catalog again, after maintenance rewrote them; ``anchor_note``: what maintenance
    declares in the anchor line, e.g. the snapshots it expired). Waiting for the writer lock (a SQLite
    catalog: ``store.writer_lock``, in turns) is not an attempt: only a busy catalog or a
    conflicting commit counts.
    """
    key = load_or_create_key(settings)   # before BEGIN: every commit is keyed and sealed
    delay = 0.05
    for attempt in range(1, attempts + 1):
        with store.writer_lock(settings):
            try:
                may_upgrade = check_before_write(con, settings)
                con.execute("BEGIN TRANSACTION")
                with keyed(key, may_upgrade=may_upgrade):
                    result = work(con)
                _set_commit_message(con, message, extra, key)
                con.execute("COMMIT")
                snap = con.execute(
                    f"SELECT id FROM ducklake_last_committed_snapshot('{store.LAKE}')").fetchone()
                snap = snap[0] if snap and snap[0] is not None else store.current_snapshot(con)
            except duckdb.Error as exc:
                _rollback(con)
                if not store._is_busy(exc) or attempt == attempts:
                    if store._is_busy(exc):
                        raise LakeBusy(f"The lake stayed busy after {attempts} attempts: {exc}") from exc
                    raise
            except BaseException:
                _rollback(con)
                raise
            else:   # committed: seal it in the anchor (outside the retry: the work must not run twice)
                seal(con, settings, key, snap, whole=reseal, note=anchor_note)
                return result, snap
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


def _set_commit_message(con: duckdb.DuckDBPyConnection, message: str, extra: str, key: AuditKey) -> None:
    """Name the commit, and record in it the audit chain's head (see ``pipelines.audit``) and a seal
    token: a fresh nonce with its HMAC under the audit key, by which a later seal knows the commit
    as the platform's own when its own seal could not be written (``audit.anchor.seal``)."""
    info = json.loads(extra or "{}")
    info["seal"] = seal_token(key)
    try:
        head = last_entry(con)
    except duckdb.CatalogException:   # the lake's first commit creates the table
        head = None
    if head:
        info["audit_head"] = head[1]
    if message or info:
        con.execute(f"CALL {store.LAKE}.set_commit_message('insurshare', ?, extra_info => ?)",
                    [message, json.dumps(info)])


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def ensure_lake(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Create the lake's tables (and columns of newer contract versions) if missing."""
    contracts = [load_contract(d, None, settings.schemas_dir) for d in datasets(settings.schemas_dir)]
    wanted = set(store.PLATFORM_TABLES) | {c.dataset for c in contracts}
    if wanted <= store.lake_tables(con) and _columns_complete(con, contracts):
        return
    write_transaction(con, settings, lambda c: store.ensure_tables(c, contracts), message="ensure tables")


def _columns_complete(con: duckdb.DuckDBPyConnection, contracts: list[DatasetContract]) -> bool:
    have = set(con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ?",
                           [store.LAKE]).fetchall())
    return (all((c.dataset, n) in have for c in contracts for n, _ in store.dataset_table_columns(c))
            and all((t, n) in have for t in store.PLATFORM_TABLES for n, _ in store._platform_columns(t)))
