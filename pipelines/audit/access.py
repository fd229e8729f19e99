"""The access log's seal: every row of ``access_log`` is vouched for by the audit chain.

The portal spools each request it serves and moves the spool into the lake table ``access_log``
in batches (``pipelines.portal.accesslog``). Each row carries an HMAC under the audit key over
its content and its spool id (``row_mac``), so a writer to the lake cannot edit a row and fix its
MAC; each batch is sealed by one ``access-batch`` entry of the audit chain whose content digest
covers the (spool id, MAC) of every row of the batch and whose details name the batch and its
spool ids. ``verify_access_log`` then names an edited row (its MAC fails), a deleted row (its
batch's entry lists it, the table no longer has it) and an inserted one (no entry lists it).

This module is the format of that seal, shared by the writer (the portal) and by
``insurshare audit verify``; it sits with the audit chain so the verifier needs no portal code.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import duckdb

from pipelines.audit import Problem, content_digest
from pipelines.audit.key import AuditKey
from pipelines.store import LAKE

KIND = "access-batch"
TABLE = f"{LAKE}.access_log"   # created with the platform's tables (pipelines.store.PLATFORM_TABLES)

# the sealed columns, in the order of the lake table (row_mac and batch are not part of a row's content)
SEALED = ("spool_id", "accessed_at", "principal_kind", "principal_id", "username", "roles", "member_id", "ip",
          "method", "endpoint", "path", "object_id", "query_sha256", "status", "outcome", "rows_returned",
          "duration_ms", "detail")


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    return value


def row_text(row: Sequence[object]) -> str:
    """The canonical text of a row's sealed columns (``SEALED`` order), as its MAC covers it."""
    return json.dumps([_plain(v) for v in row], ensure_ascii=False, separators=(",", ":"))


def row_mac(key: AuditKey, row: Sequence[object]) -> str:
    """The MAC a row stores: it covers the spool id, so a row cannot be moved onto another id."""
    return key.mac(row_text(row))


def batch_digest(sealed: Iterable[tuple[int, str]]) -> str:
    """What the batch's audit entry vouches for: the (spool id, MAC) of every row, in id order."""
    return content_digest([[int(i), m] for i, m in sorted(sealed)])


def id_ranges(ids: Iterable[int]) -> list[list[int]]:
    """Spool ids as ``[[first, last], ...]`` runs: a batch's ids are mostly consecutive."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs


def _expand(runs: list[list[int]]) -> set[int]:
    return {i for first, last in runs for i in range(int(first), int(last) + 1)}


def verify_access_log(con: duckdb.DuckDBPyConnection, key: AuditKey) -> tuple[int, list[Problem]]:
    """Hold every ``access_log`` row against its MAC and its batch's audit entry.

    Returns the number of rows checked and the problems (empty: every row is as it was sealed).
    """
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ?",
                                        [LAKE]).fetchall()}
    if "access_log" not in tables:
        return 0, []
    entries = {}
    for seq, details, digest in con.execute(f"SELECT seq, details, content_sha256 FROM {LAKE}.audit_log "
                                            "WHERE kind = ? ORDER BY seq", [KIND]).fetchall():
        info = json.loads(details)
        entries[info["batch"]] = (seq, info, digest)
    rows = con.execute(f"SELECT {', '.join(SEALED)}, batch, row_mac FROM {TABLE} ORDER BY spool_id").fetchall()
    problems: list[Problem] = []
    by_batch: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in rows:
        spool_id, batch, mac = row[0], row[-2], row[-1]
        where = f"access_log row {spool_id} (batch {batch})"
        if batch not in entries:
            problems.append(Problem(None, f"{where} is sealed by no audit entry: it was inserted outside the platform"))
            continue
        by_batch[batch].append((spool_id, mac))
        if not key.check(row_text(row[:len(SEALED)]), str(mac or "")):
            problems.append(Problem(entries[batch][0], f"{where} was edited: its content no longer matches its MAC"))
    for batch, (seq, info, digest) in entries.items():
        problems += _check_batch(batch, seq, info, digest, by_batch.get(batch, []))
    return len(rows), problems


def _check_batch(batch: str, seq: int, info: dict, digest: str, sealed: list[tuple[int, str]]) -> list[Problem]:
    """A batch must hold exactly the ids its entry lists, once each, with the (id, MAC) it sealed."""
    listed, held = _expand(info.get("ids", [])), [i for i, _ in sealed]
    where = f"access log batch {batch} (audit entry {seq})"
    problems = [Problem(seq, f"access_log row {i} of {where} was deleted") for i in sorted(listed - set(held))]
    problems += [Problem(seq, f"access_log row {i} appears in {where} although its entry does not list it: "
                              "it was inserted outside the platform") for i in sorted(set(held) - listed)]
    repeated = sorted(i for i, n in Counter(held).items() if n > 1)
    problems += [Problem(seq, f"access_log row {i} of {where} appears more than once: a copy was inserted")
                 for i in repeated]
    if not problems and batch_digest(sealed) != digest:
        problems.append(Problem(seq, f"{where} no longer matches the digest its audit entry sealed"))
    return problems
