"""The identity database: users, API tokens, sessions, login failures and the access spool.

It is a plain SQL database beside the lake's catalog, shared by every API process: the catalog's
own PostgreSQL database when the catalog is PostgreSQL (tables prefixed ``portal_``), else a
SQLite file beside the catalog (WAL mode, so readers never wait for a writer). Set
``INSURSHARE_IDENTITY_DB`` to put it elsewhere. Each module that keeps tables here declares them
(``ensure``) and reads and writes them through ``engine(settings)``, SQLAlchemy Core with
named parameters, so the same SQL runs on both.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text

from pipelines.config import Settings

_ENGINES: dict[str, Engine] = {}
_ENSURED: set[tuple[str, str]] = set()
_LOCK = threading.Lock()


def _is_postgres(location: str) -> bool:
    return location.startswith(("postgres:", "postgresql:", "dbname=", "host="))


def location(settings: Settings) -> str:
    """Where the identity database is: a PostgreSQL connection string or a SQLite path."""
    configured = settings.raw("INSURSHARE_IDENTITY_DB")
    if configured:
        return configured
    if settings.catalog_is_postgres:
        return settings.catalog
    return str(Path(settings.catalog).parent / "identity.sqlite")


def _postgres_dsn(text_: str) -> str:
    return text_.split(":", 1)[1] if text_.startswith(("postgres:", "postgresql:")) and "://" not in text_ else text_


def engine(settings: Settings) -> Engine:
    """The process's engine for the identity database (one per location, thread-safe)."""
    where = location(settings)
    with _LOCK:
        eng = _ENGINES.get(where)
        if eng is None:
            eng = _make(where)
            _ENGINES[where] = eng
        return eng


def _make(where: str) -> Engine:
    if _is_postgres(where):
        import psycopg

        dsn = _postgres_dsn(where)
        return create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn),
                             pool_size=10, max_overflow=20, pool_pre_ping=True)
    path = Path(where)
    path.parent.mkdir(parents=True, exist_ok=True)
    eng = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30},
                        pool_size=10, max_overflow=20)

    @event.listens_for(eng, "connect")
    def _pragmas(dbapi_con, _record) -> None:
        cur = dbapi_con.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    if path.exists():
        path.chmod(0o600)
    return eng


def ensure(settings: Settings, name: str, ddl: list[str]) -> Engine:
    """Create the tables of ``ddl`` (``CREATE TABLE IF NOT EXISTS ...`` statements, portable
    between SQLite and PostgreSQL) once per process and module ``name``; return the engine."""
    eng = engine(settings)
    marker = (location(settings), name)
    if marker not in _ENSURED:
        with eng.begin() as con:
            for statement in ddl:
                con.execute(text(statement))
        with _LOCK:
            _ENSURED.add(marker)
        if not _is_postgres(location(settings)):
            Path(location(settings)).chmod(0o600)
    return eng


def dispose() -> None:
    """Close every pooled connection (tests that delete a home, a process about to fork)."""
    with _LOCK:
        for eng in _ENGINES.values():
            eng.dispose()
        _ENGINES.clear()
        _ENSURED.clear()
