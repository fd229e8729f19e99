"""A tamper-evident audit log in the lake: each entry holds the HMAC of the one before.

Entries are appended inside the same DuckLake transaction as the change they record (a
receipt, a verdict, a publish, a mart or product build, a key rotation), so a change and its
entry commit together or not at all. Each entry's hash is an HMAC-SHA-256 under the audit key
(``pipelines.audit.key``), which is kept apart from the lake: a writer to the lake can edit an
entry but cannot recompute its HMAC nor those after it. ``verify`` recomputes the chain and
names the first entry that was edited, deleted or moved; the head of the chain is also written
into each snapshot's commit information and, with a seal of every new data file, into the
anchor file outside the catalog (``pipelines.audit.anchor``), so cutting entries off the end,
rolling the catalog back to an older copy, a change made through DuckLake by someone else and
a rewritten or missing data file are detected too.

Entries written before the audit key existed hold a plain SHA-256 chain; the first keyed entry
of such a lake is an ``audit-upgrade`` entry that vouches for them (its content is the digest
of their hashes), so they can no longer be rewritten either.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from pipelines.audit.key import AuditKey
from pipelines.errors import ConfigError
from pipelines.store import LAKE

GENESIS = "0" * 64
TABLE = f"{LAKE}.audit_log"   # created with the platform's tables (pipelines.store)
HEAD = f"{LAKE}.audit_head"
UPGRADE = "audit-upgrade"

_KEY: contextvars.ContextVar[tuple[AuditKey, bool] | None] = contextvars.ContextVar("insurshare_audit_key",
                                                                                      default=None)


@contextmanager
def keyed(key: AuditKey, *, may_upgrade: bool) -> Iterator[None]:
    """Let ``append`` key the entries of this write (``lake.write_transaction`` sets it).

    ``may_upgrade``: whether a log of plain entries may be vouched for; never once the lake is
    anchored (a keyed log that became plain was rewritten, and must not be blessed).
    """
    token = _KEY.set((key, may_upgrade))
    try:
        yield
    finally:
        _KEY.reset(token)


def _signer() -> tuple[AuditKey, bool]:
    signer = _KEY.get()
    if signer is None:
        raise ConfigError("An audit entry can only be appended inside lake.write_transaction (which "
                          "loads the audit key).")
    return signer


def _canonical(seq: int, at: str, kind: str, subject: str, details: str, content: str, prev: str) -> str:
    return json.dumps([seq, at, kind, subject, details, content, prev], ensure_ascii=False, separators=(",", ":"))


def entry_hash(seq: int, at: str, kind: str, subject: str, details: str, content: str, prev: str) -> str:
    """The plain SHA-256 of an entry (entries written before the audit key existed)."""
    return hashlib.sha256(_canonical(seq, at, kind, subject, details, content, prev).encode("utf-8")).hexdigest()


def entry_mac(key: AuditKey, seq: int, at: str, kind: str, subject: str, details: str, content: str,
              prev: str) -> str:
    """``<audit key id>:<HMAC-SHA-256>`` of an entry: what a keyed entry stores as its hash."""
    return key.mac(_canonical(seq, at, kind, subject, details, content, prev))


def is_keyed(stored: str) -> bool:
    return ":" in stored


def content_digest(payload: object) -> str:
    """SHA-256 of a canonical JSON rendering of what an entry vouches for."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False,
                                     separators=(",", ":")).encode("utf-8")).hexdigest()


def legacy_digest(rows: list[tuple[int, str]]) -> str:
    """What an ``audit-upgrade`` entry vouches for: the (seq, hash) of every plain entry before it."""
    return content_digest([[int(seq), h] for seq, h in rows])


def last_entry(con: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    """The chain's last entry (seq, stored hash), or None for an empty log.

    Read as the row whose ``seq`` is the greatest: DuckLake answers ``max(seq)`` from its column
    statistics and prunes the log's data files by them, so the cost does not grow with the log
    (``ORDER BY seq DESC LIMIT 1`` read every entry: 0.1-0.2 s per commit after some thousands).
    """
    return con.execute(f"SELECT seq, entry_sha256 FROM {TABLE} WHERE seq = (SELECT max(seq) FROM {TABLE}) "
                       "LIMIT 1").fetchone()


def append(con: duckdb.DuckDBPyConnection, kind: str, subject: str, details: dict,
           content: object = None) -> str:
    """Append one entry (call inside the write transaction of the change); return its hash.

    The chain's head is also one row of ``audit_head`` that every append replaces: two
    writers appending at the same time (several workers on a PostgreSQL catalog) both change
    that row, so DuckLake refuses the second commit and ``lake.write_transaction`` retries it
    on top of the first; the chain never forks. A log that predates the audit key is first
    vouched for by an ``audit-upgrade`` entry.
    """
    return append_many(con, [(kind, subject, details, content)])[0]


def _refuse_unless(may_upgrade: bool) -> None:
    if not may_upgrade:
        raise ConfigError("The audit log ends with an entry that is not keyed, although this lake's audit "
                          "log was keyed and anchored: it was rewritten.",
                          hint="Run `insurshare audit verify` and restore the lake from backup.")


def _vouch_for_legacy(con: duckdb.DuckDBPyConnection, key: AuditKey) -> str:
    rows = con.execute(f"SELECT seq, entry_sha256 FROM {TABLE} ORDER BY seq").fetchall()
    return _append(con, key, UPGRADE, f"entries 1-{rows[-1][0]}",
                   {"entries": len(rows), "reason": "the log predates the audit key; this keyed entry vouches "
                                                    "for the plain SHA-256 chain before it"},
                   content=None, digest=legacy_digest(rows))


def upgrade(con: duckdb.DuckDBPyConnection) -> int:
    """Inside a write transaction: vouch for a log that predates the audit key (0 if nothing to do)."""
    key, may_upgrade = _signer()
    last = last_entry(con)
    if not last or is_keyed(last[1]):
        return 0
    _refuse_unless(may_upgrade)
    _vouch_for_legacy(con, key)
    return int(last[0])


def _append(con: duckdb.DuckDBPyConnection, key: AuditKey, kind: str, subject: str, details: dict,
            content: object, digest: str | None = None) -> str:
    row = _entry(key, last_entry(con), kind, subject, details, content, digest)
    con.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(row))
    _replace_head(con, row)
    return row[-1]


def append_many(con: duckdb.DuckDBPyConnection, entries: Sequence[tuple[str, str, dict, object]]) -> list[str]:
    """``append`` for several entries (kind, subject, details, content), chained in their order;
    return their hashes. The chain's last entry is read once and the entries are inserted in one
    statement, so a commit that publishes many small submissions pays for the log once."""
    if not entries:
        return []
    key, may_upgrade = _signer()
    last = last_entry(con)
    if last and not is_keyed(last[1]):
        _refuse_unless(may_upgrade)
        _vouch_for_legacy(con, key)
        last = last_entry(con)
    rows = []
    for kind, subject, details, content in entries:
        rows.append(_entry(key, last, kind, subject, details, content))
        last = (rows[-1][0], rows[-1][-1])
    types = ("BIGINT", "TIMESTAMP", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR")
    con.execute(f"INSERT INTO {TABLE} SELECT {', '.join(f'unnest(?::{t}[])' for t in types)}",
                [list(column) for column in zip(*rows, strict=True)])
    _replace_head(con, rows[-1])
    return [row[-1] for row in rows]


def _entry(key: AuditKey, last: tuple[int, str] | None, kind: str, subject: str, details: dict,
           content: object, digest: str | None = None) -> tuple:
    """The row of the entry that follows ``last`` (None: the first)."""
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    body = json.dumps(details, sort_keys=True, default=str, ensure_ascii=False)
    digest = digest or content_digest(content if content is not None else details)
    h = entry_mac(key, seq, at, kind, subject, body, digest, prev)
    return (seq, dt.datetime.fromisoformat(at), kind, subject, body, digest, prev, h)


def _replace_head(con: duckdb.DuckDBPyConnection, row: tuple) -> None:
    con.execute(f"DELETE FROM {HEAD}")
    con.execute(f"INSERT INTO {HEAD} VALUES (?, ?)", [row[0], row[-1]])


@dataclass(frozen=True)
class Problem:
    seq: int | None
    what: str


def verify(con: duckdb.DuckDBPyConnection, key: AuditKey | None = None) -> tuple[int, list[Problem]]:
    """Check the chain; return the number of entries and the problems found (empty: intact).

    Without ``key`` only the plain hashes are checked (no keyed entry can then be trusted).
    """
    rows = con.execute(f"SELECT seq, recorded_at, kind, subject, details, content_sha256, prev_sha256, entry_sha256 "
                       f"FROM {TABLE} ORDER BY seq").fetchall()
    problems: list[Problem] = []
    prev, expected_seq, legacy, after_keyed = GENESIS, 1, [], False
    for seq, at, kind, subject, details, content, prev_sha, stored in rows:
        if seq != expected_seq:
            problems.append(Problem(seq, f"entry {seq} follows entry {expected_seq - 1}: "
                                         f"{'an entry is missing' if seq > expected_seq else 'entries repeat'}"))
        if prev_sha != prev:
            problems.append(Problem(seq, f"entry {seq} does not continue the chain: it names "
                                         f"{prev_sha[:12]} as previous, the previous entry is {prev[:12]} "
                                         "(an entry before it was deleted, moved or edited)"))
        fields = (seq, at.isoformat(timespec="microseconds"), kind, subject, details, content, prev_sha)
        problems += _check_entry(key, fields, stored, legacy, kind, after_keyed)
        if not is_keyed(stored) and not after_keyed:
            legacy.append((seq, stored))
        after_keyed = after_keyed or is_keyed(stored)
        prev, expected_seq = stored, seq + 1
    if legacy and len(legacy) == len(rows):
        problems.append(Problem(None, f"entries 1-{legacy[-1][0]} predate the audit key and nothing vouches for "
                                      "them: run `insurshare audit upgrade`"))
    problems += _check_head(con, rows)
    return len(rows), problems


def _check_entry(key: AuditKey | None, fields: tuple, stored: str, legacy: list[tuple[int, str]],
                 kind: str, after_keyed: bool) -> list[Problem]:
    seq, subject = fields[0], fields[3]
    edited = Problem(seq, f"entry {seq} ({kind} {subject}) was edited: its content no longer matches its hash")
    if not is_keyed(stored):
        if after_keyed:
            return [Problem(seq, f"entry {seq} ({kind} {subject}) has a plain hash after keyed entries: "
                                 "it was written without the audit key")]
        return [edited] if entry_hash(*fields) != stored else []
    key_id = stored.split(":", 1)[0]
    if key is None:   # the structure only (the CLI never verifies keyed entries without the key)
        return []
    if key_id != key.key_id:
        return [Problem(seq, f"entry {seq} ({kind} {subject}) was keyed with audit key {key_id!r}, not with "
                             f"{key.key_id!r}: it was forged, or the audit key was replaced")]
    if not key.check(_canonical(*fields), stored):
        return [edited]
    if kind == UPGRADE and legacy and fields[5] != legacy_digest(legacy):
        return [Problem(seq, f"entries 1-{legacy[-1][0]} were edited after entry {seq} vouched for them")]
    if legacy and kind != UPGRADE and not after_keyed:
        return [Problem(seq, f"entries 1-{legacy[-1][0]} predate the audit key and nothing vouches for them")]
    return []


def _check_head(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> list[Problem]:
    """The newest head recorded in a snapshot's commit information must still be in the chain."""
    recorded = con.execute(
        f"SELECT json_extract_string(commit_extra_info, '$.audit_head') FROM ducklake_snapshots('{LAKE}') "
        "WHERE json_extract_string(commit_extra_info, '$.audit_head') IS NOT NULL "
        "ORDER BY snapshot_id DESC LIMIT 1").fetchone()
    if not recorded:
        return []
    present = {r[7] for r in rows}
    if recorded[0] not in present:
        return [Problem(None, f"the chain's last recorded head {recorded[0][:12]} is gone: "
                              "entries were removed from the end of the log")]
    return []
