"""The shared store: a DuckLake catalog (SQLite or PostgreSQL) with Parquet data files.

``connect`` opens a DuckDB connection with the lake attached as ``lake``; readers attach it
read-only, optionally at an older snapshot; ``reader`` is the platform's own read-only
connection (never a user's: users' SQL runs in ``pipelines.sandbox``). ``writer_lock`` lets one
writer at a time at a SQLite catalog. Writes themselves go through ``pipelines.lake``
(``Lake.write``/``write_transaction``), which keys and seals them with the audit trail.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import importlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from pipelines import objects
from pipelines.config import Settings
from pipelines.contracts import DatasetContract
from pipelines.core.sql import literal
from pipelines.errors import ConfigError, LakeBusy, QueryError

LAKE = "lake"
EXTENSIONS = ("ducklake", "sqlite_scanner", "postgres_scanner", "excel", "httpfs")  # wheels in pyproject.toml
_BUSY_MARKERS = ("database is locked", "conflict", "could not serialize", "deadlock",
                 "busy", "Transaction conflict")
T = TypeVar("T")

PLATFORM_TABLES = {
    "members": """
        member_id VARCHAR, name VARCHAR, registered_at TIMESTAMP""",
    "submissions": """
        submission_id VARCHAR, member_id VARCHAR, dataset VARCHAR, period VARCHAR,
        version INTEGER, contract_version VARCHAR, status VARCHAR, verdict VARCHAR,
        verdict_reasons VARCHAR[], file_name VARCHAR, file_format VARCHAR, encoding VARCHAR,
        file_bytes BIGINT, sha256 VARCHAR, archive_path VARCHAR, manifest VARCHAR,
        control_totals VARCHAR, rows_total BIGINT, rows_accepted BIGINT,
        rows_quarantined BIGINT, rows_warned BIGINT, error_row_share DOUBLE,
        received_at TIMESTAMP, processed_at TIMESTAMP, timings VARCHAR, snapshot_id BIGINT,
        superseded_by VARCHAR""",
    "rule_results": """
        submission_id VARCHAR, dataset VARCHAR, rule_id VARCHAR, kind VARCHAR,
        severity VARCHAR, checked BIGINT, failed BIGINT, gx_expectation VARCHAR,
        gx_unexpected BIGINT, missing BIGINT""",
    "quarantine": """
        submission_id VARCHAR, member_id VARCHAR, dataset VARCHAR, period VARCHAR,
        source_row BIGINT, rule_ids VARCHAR[], reasons VARCHAR[], record VARCHAR""",
    "validation_results": """
        submission_id VARCHAR, engine VARCHAR, suite_name VARCHAR, success BOOLEAN,
        evaluated INTEGER, successful INTEGER, result VARCHAR""",
    "calendars": """
        member_id VARCHAR, dataset VARCHAR, frequency VARCHAR, from_period VARCHAR,
        until_period VARCHAR, set_at TIMESTAMP""",
    "declarations": """
        declaration_id VARCHAR, kind VARCHAR, member_id VARCHAR, dataset VARCHAR, period VARCHAR,
        reason VARCHAR, until DATE, declared_at TIMESTAMP""",
    "audit_log": """
        seq BIGINT, recorded_at TIMESTAMP, kind VARCHAR, subject VARCHAR, details VARCHAR,
        content_sha256 VARCHAR, prev_sha256 VARCHAR, entry_sha256 VARCHAR""",
    "audit_head": """
        seq BIGINT, entry_sha256 VARCHAR""",
    "access_log": """
        spool_id BIGINT, batch VARCHAR, accessed_at TIMESTAMP, principal_kind VARCHAR, principal_id VARCHAR,
        username VARCHAR, roles VARCHAR, member_id VARCHAR, ip VARCHAR, method VARCHAR, endpoint VARCHAR,
        path VARCHAR, object_id VARCHAR, query_sha256 VARCHAR, status INTEGER, outcome VARCHAR,
        rows_returned BIGINT, duration_ms DOUBLE, detail VARCHAR, row_mac VARCHAR""",
}


def _extension_file(name: str) -> Path:
    module = importlib.import_module(f"duckdb_extension_{name}")
    return Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"


_VERIFIED: set[str] = set()


def _verify(name: str) -> None:
    """Check an extension's signature once per process, in a throwaway connection.

    DuckDB's signature check costs about half a second per extension and connection; after
    one successful check in this process, connections load the same file without repeating it.
    """
    if name not in _VERIFIED:
        probe = duckdb.connect()
        try:
            probe.execute(f"LOAD {literal(str(_extension_file(name)))}")
        finally:
            probe.close()
        _VERIFIED.add(name)


def load_extensions(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> None:
    """Load extensions from their PyPI wheels: nothing is downloaded at run time."""
    loaded = {r[0] for r in con.execute(
        "SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
    for name in names:
        if name not in loaded:
            _verify(name)
            con.execute(f"LOAD {literal(str(_extension_file(name)))}")


def new_connection(settings: Settings, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the platform's extensions and resource limits."""
    config = {"memory_limit": settings.duckdb_memory_limit, "autoinstall_known_extensions": False,
              "autoload_known_extensions": False, "allow_unsigned_extensions": True}
    if settings.duckdb_threads:
        config["threads"] = settings.duckdb_threads
    con = duckdb.connect(database, config=config)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    con.execute("SET temp_directory = ?", [str(settings.work_dir / "duckdb_tmp")])
    con.execute("SET enable_progress_bar = false")
    load_extensions(con, ("ducklake", "postgres_scanner" if settings.catalog_is_postgres else "sqlite_scanner"))
    if settings.data_is_remote:
        load_extensions(con, ("httpfs",))
        objects.configure_duckdb(con, settings)
    return con


def catalog_uri(settings: Settings) -> str:
    if settings.catalog_is_postgres:
        dsn = settings.catalog.split(":", 1)[1] if settings.catalog.startswith(("postgres:", "postgresql:")) else settings.catalog
        return f"ducklake:postgres:{dsn}"
    return f"ducklake:sqlite:{settings.catalog}"


def attach(con: duckdb.DuckDBPyConnection, settings: Settings, *, read_only: bool = False,
           snapshot: int | None = None) -> None:
    """Attach the lake as ``lake``; a reader sees the last committed (or the given) snapshot."""
    if not settings.catalog_is_postgres:
        if read_only and not Path(settings.catalog).exists():
            raise ConfigError(f"No lake at {settings.catalog}.",
                              hint="Submit and ingest data first (see `insurshare --help`), or set INSURSHARE_HOME.")
        Path(settings.catalog).parent.mkdir(parents=True, exist_ok=True)
        if not read_only:
            _use_wal(Path(settings.catalog))
    if not settings.data_is_remote:
        Path(settings.data_path).mkdir(parents=True, exist_ok=True)
    options = [f"DATA_PATH {literal(f'{settings.data_path}/')}"]
    if read_only:
        options.append("READ_ONLY")
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    try:
        con.execute(f"ATTACH {literal(catalog_uri(settings))} AS {LAKE} ({', '.join(options)})")
        if not read_only:
            _owner_only(settings)
    except duckdb.Error as exc:
        if snapshot is not None and "snapshot" in str(exc).lower():
            raise QueryError(f"Snapshot {snapshot} does not exist in the lake.",
                             hint="List snapshots with `insurshare query \"SELECT * FROM snapshots()\"`.") from exc
        if _is_busy(exc):
            raise LakeBusy(f"The lake catalog is busy: {exc}") from exc
        if "data_path" in str(exc).lower() and "match" in str(exc).lower():
            raise ConfigError(
                f"The lake catalog {settings.catalog} records another data path than {settings.data_path}.",
                hint="Put the data files back at the path the catalog names (see the error of DuckLake: "
                     f"{str(exc).splitlines()[0][:300]}), or set INSURSHARE_DATA_PATH to it.") from None
        raise


def _owner_only(settings: Settings) -> None:
    """The catalog and the data folder are the owner's only (whatever the umask of the caller)."""
    paths = [] if settings.data_is_remote else [Path(settings.data_path)]
    if not settings.catalog_is_postgres:
        catalog = Path(settings.catalog)
        paths += [catalog, *(catalog.with_name(catalog.name + s) for s in ("-wal", "-shm"))]
    for path in paths:
        try:
            if path.exists() and not path.is_symlink() and path.stat().st_mode & 0o077:
                os.chmod(path, 0o700 if path.is_dir() else 0o600)
        except PermissionError:
            pass   # not ours to change (a shared catalog): its owner keeps it private


_WAL: set[Path] = set()


def _use_wal(path: Path) -> None:
    """Put a SQLite catalog in write-ahead-log mode (once; the mode is kept in the file).

    In SQLite's default rollback-journal mode a reader's shared lock blocks a writer's commit:
    a process reading the catalog while it waits for the writer lock and another process holding
    the writer lock while it waits to commit block each other (four parallel ``submit`` runs hung
    for minutes). In WAL mode readers never block the writer nor the writer them; writers still
    take turns through ``writer_lock``.
    """
    if path in _WAL:
        return
    try:
        db = sqlite3.connect(path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
        finally:
            db.close()
        _WAL.add(path)
    except sqlite3.Error:
        pass   # busy now: the next writer sets it


def connect(settings: Settings, *, read_only: bool = True, snapshot: int | None = None,
            database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    con = new_connection(settings, database)
    attach(con, settings, read_only=read_only, snapshot=snapshot)
    return con


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(m.lower() in text for m in _BUSY_MARKERS)


@contextmanager
def writer_lock(settings: Settings) -> Iterator[None]:
    """One writer at a time on this machine for a SQLite catalog (it cannot take two), in turns.

    A plain ``flock`` is not fair: a process that commits file after file (a bulk submit) releases
    the lock and takes it again before a waiting process (a marts build) is scheduled, which then
    waits for minutes. So writers pass a turnstile first (``lake-writer.turnstile``): the one
    writer standing in it holds it while it waits for the lock itself, and lets it go once it has
    the lock. A writer that just released the lock and wants it again must pass the turnstile,
    which the waiting writer holds: the waiting writer goes first. Two writers alternate commit
    by commit; neither starves.

    A PostgreSQL catalog takes concurrent writers from many machines: DuckLake detects
    conflicting commits and ``lake.write_transaction`` retries them, so no lock is taken here.
    """
    if settings.catalog_is_postgres:
        yield
        return
    settings.locks_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.locks_dir / "lake-writer.turnstile", "a+") as door, \
            open(settings.locks_dir / "lake-writer.lock", "a+") as lock:
        fcntl.flock(door, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        finally:
            fcntl.flock(door, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def file_lock(settings: Settings, name: str) -> Iterator[None]:
    """An exclusive lock between processes of this machine: ``$INSURSHARE_HOME/locks/<name>.lock``."""
    settings.locks_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.locks_dir / f"{name}.lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def lake_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The names of the tables the attached lake holds."""
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ?",
                                      [LAKE]).fetchall()}


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(f"SELECT id FROM ducklake_current_snapshot('{LAKE}')").fetchone()[0]


def latest_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    """The lake's latest snapshot id, read from the catalog itself (2 ms; outside any transaction's
    pinned snapshot, so a query run after it reads this snapshot or a later one)."""
    return con.execute(f"SELECT max(snapshot_id) FROM __ducklake_metadata_{LAKE}.ducklake_snapshot").fetchone()[0]


def dataset_table_columns(contract: DatasetContract) -> list[tuple[str, str]]:
    """Columns of a dataset's table of accepted rows: platform columns, then the contract's."""
    return [("member_id", "VARCHAR"), ("period", "VARCHAR"), ("submission_id", "VARCHAR"),
            ("source_row", "BIGINT"),
            *((c.name, c.sql_type) for c in contract.columns),
            ("dq_warnings", "VARCHAR[]")]


def ensure_tables(con: duckdb.DuckDBPyConnection, contracts: list[DatasetContract]) -> None:
    """Create missing tables and add columns that a newer contract version introduced."""
    existing = lake_tables(con)
    have = set(con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ?",
                           [LAKE]).fetchall())
    for name, ddl in PLATFORM_TABLES.items():
        if name not in existing:
            con.execute(f"CREATE TABLE {LAKE}.{name} ({ddl})")
            continue
        for column, sql_type in _platform_columns(name):   # a column this version added
            if (name, column) not in have:
                con.execute(f"ALTER TABLE {LAKE}.{name} ADD COLUMN {column} {sql_type}")
    for contract in contracts:
        cols = dataset_table_columns(contract)
        if contract.dataset not in existing:
            body = ", ".join(f"{n} {t}" for n, t in cols)
            con.execute(f"CREATE TABLE {LAKE}.{contract.dataset} ({body})")
            continue
        have = {r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ?",
            [LAKE, contract.dataset]).fetchall()}
        for n, t in cols:
            if n not in have:
                con.execute(f"ALTER TABLE {LAKE}.{contract.dataset} ADD COLUMN {n} {t}")


def _platform_columns(table: str) -> list[tuple[str, str]]:
    """(name, type) of each column of a platform table, from its DDL."""
    return [tuple(part.split(None, 1)) for part in (" ".join(PLATFORM_TABLES[table].split())).split(", ")]


@contextmanager
def reader(settings: Settings, as_of: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with the lake attached read-only (at snapshot ``as_of``) as the default schema.

    For the platform's own SQL (reports, exports, summaries), never for a user's: that runs in
    ``pipelines.sandbox``.
    """
    snapshot = None
    con = new_connection(settings)
    try:
        if as_of is not None:
            snapshot = resolve_snapshot(settings, as_of)
        attach(con, settings, read_only=True, snapshot=snapshot)
        con.execute(f"USE {LAKE}")
        yield con
    finally:
        con.close()


_SHARED: dict[tuple[str, str], duckdb.DuckDBPyConnection] = {}
_SHARED_LOCK = threading.Lock()


@contextmanager
def shared_reader(settings: Settings, *, use_lake: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """Like ``reader`` at the latest snapshot, on a connection the process keeps open.

    For a long-running server (the portal): attaching the lake costs a few hundred milliseconds,
    a query on an attached lake a few. Each call gets its own cursor (safe across threads); every
    query reads the lake's latest snapshot, as DuckLake starts each transaction at the current
    one. A connection that fails is dropped, and the next call attaches afresh. ``use_lake=False``
    skips making the lake the default schema (4 ms): the caller names tables ``lake.<name>``.
    """
    key = (settings.catalog, str(settings.data_path))
    with _SHARED_LOCK:
        con = _SHARED.get(key)
        if con is None:
            con = new_connection(settings)
            attach(con, settings, read_only=True)
            _SHARED[key] = con
        cur = con.cursor()
    try:
        if use_lake:
            cur.execute(f"USE {LAKE}")
        yield cur
    except duckdb.Error:
        with _SHARED_LOCK:
            if _SHARED.get(key) is con:
                del _SHARED[key]
        raise
    finally:
        cur.close()


def resolve_snapshot(settings: Settings, as_of: str) -> int:
    """A snapshot id from an id or a timestamp (the last snapshot at or before it)."""
    if str(as_of).isdigit():
        return int(as_of)
    try:
        when = dt.datetime.fromisoformat(str(as_of))
    except ValueError:
        raise QueryError(f"--as-of {as_of!r} is neither a snapshot id nor an ISO timestamp.",
                         hint="Use e.g. --as-of 42 or --as-of 2025-04-01T12:00:00.") from None
    con = connect(settings, read_only=True)
    try:
        row = con.execute(
            f"SELECT max(snapshot_id) FROM ducklake_snapshots('{LAKE}') "
            "WHERE snapshot_time <= ?::TIMESTAMPTZ", [when.isoformat()]).fetchone()
    finally:
        con.close()
    if row[0] is None:
        raise QueryError(f"The lake has no snapshot at or before {as_of}.")
    return int(row[0])
