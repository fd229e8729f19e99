"""A tamper-evident audit log in the lake: each entry holds the SHA-256 of the one before.

Entries are appended inside the same DuckLake transaction as the change they record (a
receipt, a verdict, a publish, a mart or product build, a key rotation), so a change and its
entry commit together or not at all. ``verify`` recomputes the chain and names the first
entry that was edited, deleted or moved; the head of the chain is also written into each
snapshot's commit information, so cutting entries off the end is detected too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

import duckdb

from pipelines.store import LAKE

GENESIS = "0" * 64
TABLE = f"{LAKE}.audit_log"   # created with the platform's tables (pipelines.store)
HEAD = f"{LAKE}.audit_head"


def entry_hash(seq: int, at: str, kind: str, subject: str, details: str, content: str, prev: str) -> str:
    canonical = json.dumps([seq, at, kind, subject, details, content, prev], ensure_ascii=False,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def content_digest(payload: object) -> str:
    """SHA-256 of a canonical JSON rendering of what an entry vouches for."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False,
                                     separators=(",", ":")).encode("utf-8")).hexdigest()


def append(con: duckdb.DuckDBPyConnection, kind: str, subject: str, details: dict,
           content: object = None) -> str:
    """Append one entry (call inside the write transaction of the change); return its hash.

    The chain's head is also one row of ``audit_head`` that every append replaces: two
    writers appending at the same time (several workers on a PostgreSQL catalog) both change
    that row, so DuckLake refuses the second commit and ``store.write_transaction`` retries it
    on top of the first; the chain never forks.
    """
    last = con.execute(f"SELECT seq, entry_sha256 FROM {TABLE} ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    body = json.dumps(details, sort_keys=True, default=str, ensure_ascii=False)
    digest = content_digest(content if content is not None else details)
    h = entry_hash(seq, at, kind, subject, body, digest, prev)
    con.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [seq, dt.datetime.fromisoformat(at), kind, subject, body, digest, prev, h])
    con.execute(f"DELETE FROM {HEAD}")
    con.execute(f"INSERT INTO {HEAD} VALUES (?, ?)", [seq, h])
    return h


@dataclass(frozen=True)
class Problem:
    seq: int | None
    what: str


def verify(con: duckdb.DuckDBPyConnection) -> tuple[int, list[Problem]]:
    """Check the chain; return the number of entries and the problems found (empty: intact)."""
    rows = con.execute(f"SELECT seq, recorded_at, kind, subject, details, content_sha256, prev_sha256, entry_sha256 "
                       f"FROM {TABLE} ORDER BY seq").fetchall()
    problems: list[Problem] = []
    prev, expected_seq = GENESIS, 1
    for seq, at, kind, subject, details, content, prev_sha, stored in rows:
        if seq != expected_seq:
            problems.append(Problem(seq, f"entry {seq} follows entry {expected_seq - 1}: "
                                         f"{'an entry is missing' if seq > expected_seq else 'entries repeat'}"))
        if prev_sha != prev:
            problems.append(Problem(seq, f"entry {seq} does not continue the chain: it names "
                                         f"{prev_sha[:12]} as previous, the previous entry is {prev[:12]} "
                                         "(an entry before it was deleted, moved or edited)"))
        actual = entry_hash(seq, at.isoformat(timespec="microseconds"), kind, subject, details, content, prev_sha)
        if actual != stored:
            problems.append(Problem(seq, f"entry {seq} ({kind} {subject}) was edited: its content no "
                                         "longer matches its hash"))
        prev, expected_seq = stored, seq + 1
    problems += _check_head(con, rows)
    return len(rows), problems


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
