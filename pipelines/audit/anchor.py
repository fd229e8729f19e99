"""The anchor: an append-only file outside the catalog that seals every commit the platform makes.

After each commit of ``lake.write_transaction`` one line is appended to the anchor file
(``$INSURSHARE_HOME/audit/anchor.jsonl``): the snapshot, the audit chain's head at it (seq and
HMAC), and the path, size and SHA-256 of each data or delete file that the commit added to the
lake. Each line carries an HMAC under the audit key over its content and the previous line's
HMAC, so a writer to the lake can neither forge nor edit a line.

``verify_lake`` holds the lake against its anchor:

- a snapshot of the catalog that no line seals is a change made outside the platform (for
  instance a row of ``policy`` edited through DuckLake);
- a sealed snapshot, or a sealed head, that the catalog no longer has means the catalog was
  rolled back to an older copy (or replaced);
- every live data file must exist with the size and SHA-256 of its seal: a missing, damaged or
  rewritten file is named.

The first line of a lake (its first audited write, or the first after an upgrade) seals every
live file: the snapshots before it are the lake's history before the anchor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines import objects
from pipelines.audit import Problem, is_keyed, last_entry
from pipelines.audit.key import AuditKey, anchor_exists, anchor_file
from pipelines.config import Settings
from pipelines.errors import ConfigError, InsurShareError
from pipelines.store import LAKE, file_lock

META = f"__ducklake_metadata_{LAKE}"
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class LakeFile:
    path: str          # relative to the data path when under it, else absolute
    catalog_size: int
    begin_snapshot: int
    table: str = ""    # the lake table whose rows (or deletes) the file holds


def _join(base: str, path: str, relative: bool) -> str:
    return (base.rstrip("/") + "/" + path) if relative else path


def catalog_files(con: duckdb.DuckDBPyConnection, settings: Settings, *, added_at: int | None = None) -> list[LakeFile]:
    """The lake's live data and delete files (or those a snapshot added), as the catalog names them."""
    where = ("f.begin_snapshot = ?" if added_at is not None
             else "f.end_snapshot IS NULL AND t.end_snapshot IS NULL")
    rows = con.execute(f"""
        WITH f AS (
            SELECT table_id, begin_snapshot, end_snapshot, path, path_is_relative, file_size_bytes
            FROM {META}.ducklake_data_file
            UNION ALL
            SELECT table_id, begin_snapshot, end_snapshot, path, path_is_relative, file_size_bytes
            FROM {META}.ducklake_delete_file),
        t AS (SELECT DISTINCT ON (table_id) table_id, schema_id, table_name, path, path_is_relative, end_snapshot
              FROM {META}.ducklake_table ORDER BY table_id, begin_snapshot DESC),
        s AS (SELECT DISTINCT ON (schema_id) schema_id, path, path_is_relative
              FROM {META}.ducklake_schema ORDER BY schema_id, begin_snapshot DESC)
        SELECT f.path, f.path_is_relative, t.path, t.path_is_relative, s.path, s.path_is_relative,
               f.file_size_bytes, f.begin_snapshot, t.table_name
        FROM f JOIN t USING (table_id) JOIN s USING (schema_id)
        WHERE {where} ORDER BY f.path""", [added_at] if added_at is not None else []).fetchall()
    root = str(settings.data_path).rstrip("/") + "/"
    out = []
    for fpath, frel, tpath, trel, spath, srel, size, begin, table in rows:
        full = _join(_join(_join(root, spath or "", srel), tpath or "", trel), fpath, frel)
        out.append(LakeFile(full[len(root):] if full.startswith(root) else full, int(size or 0), int(begin), table))
    return out


def _catalog_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, bool]]:
    """The catalog tables that hold data or name files, each with whether it has ``end_snapshot``:
    the data and delete file lists, the inlined rows (small inserts live in the catalog, not in
    files) and the inlined deletes.

    The inlined deletes' tables are probed by name: the catalog database's tables are not listed
    by ``duckdb_columns()`` (a SQLite catalog lists none, so a digest of what it lists would seal
    nothing), and a table without inlined deletes is a failed lookup (about 0.01 s)."""
    names = ["ducklake_data_file", "ducklake_delete_file"]
    names += [r[0] for r in con.execute(f"SELECT table_name FROM {META}.ducklake_inlined_data_tables "
                                        "ORDER BY table_name").fetchall()]
    names += [f"ducklake_inlined_delete_{r[0]}" for r in con.execute(
        f"SELECT DISTINCT table_id FROM {META}.ducklake_table ORDER BY table_id").fetchall()]
    out = []
    for name in names:
        if not re.fullmatch(r"ducklake_[a-z_0-9]+", name):
            continue
        try:
            columns = {r[0] for r in con.execute(f"DESCRIBE {META}.{name}").fetchall()}
        except duckdb.CatalogException:   # a table without inlined deletes
            continue
        out.append((name, "end_snapshot" in columns))
    return out


_CHUNKS = 4   # 4 x 60 bits of each row's keyed SHA-256, summed apart (a 240-bit multiset hash)
_MOD = 1 << 60


def catalog_digest(con: duckdb.DuckDBPyConnection, key: AuditKey, *, snapshot: int | None = None,
                   previous: str | None = None) -> str:
    """A keyed digest of the catalog's rows that hold data or name files (``_catalog_tables``).

    These change only through a commit; sealed after each commit, they show an edit made straight
    in the catalog database (no snapshot, no data file) once the next verify compares them.

    The digest is a sum (modulo 2^60, in four parts) of one keyed SHA-256 per row (``H``, of the
    row without its ``end_snapshot``) and one per ended row (``G``, of the row and the snapshot
    that ended it): a change of any column, a row added or removed changes it, and without the
    audit key no edit can be made to cancel out. Being a sum, it can be carried forward: given
    the digest ``previous`` sealed at ``snapshot - 1``, only the rows that commit ``snapshot``
    added or ended are read (``begin_snapshot`` or ``end_snapshot`` equal to it), so sealing a
    commit costs the same at the 100th snapshot as at the 10,000th. Without ``previous`` every
    row is read (``verify``, and after maintenance, which removes rows).
    """
    salt = key.mac("insurshare catalog digest")
    sums = [int(x, 16) for x in previous.split(":")] if previous else [0] * _CHUNKS
    delta = snapshot is not None and previous is not None
    parts, args = [], []
    for table, has_end in _catalog_tables(con):
        t = f"{META}.{table}"
        rows = f"SELECT * EXCLUDE (end_snapshot) FROM {t}" if has_end else f"SELECT * FROM {t}"
        parts.append(f"SELECT sha256(? || 'H{table}' || CAST(x AS VARCHAR)) AS h FROM "
                     f"({rows}{' WHERE begin_snapshot = ?' if delta else ''}) x")
        args += [salt, *([snapshot] if delta else [])]
        if has_end:
            parts.append(f"SELECT sha256(? || 'G{table}' || CAST(x AS VARCHAR) || '@' || CAST(e AS VARCHAR)) AS h "
                         f"FROM (SELECT * EXCLUDE (end_snapshot), end_snapshot AS e FROM {t} WHERE "
                         + ("end_snapshot = ?" if delta else "end_snapshot IS NOT NULL") + ") x")
            args += [salt, *([snapshot] if delta else [])]
    if parts:   # one query for every table (a query on the catalog costs a round trip)
        chunks = ", ".join(f"sum(('0x' || substr(h, {1 + 15 * i}, 15))::BIGINT::HUGEINT)" for i in range(_CHUNKS))
        got = con.execute(f"SELECT {chunks} FROM ({' UNION ALL '.join(parts)})", args).fetchone()
        sums = [(a + int(b or 0)) % _MOD for a, b in zip(sums, got, strict=True)]
    return ":".join(f"{x:015x}" for x in sums)


def _resolve(settings: Settings, path: str) -> str:
    """A data file's full path, or its ``s3://`` URL when the lake's files are in object storage."""
    if os.path.isabs(path) or "://" in path:
        return path
    return f"{str(settings.data_path).rstrip('/')}/{path}"


def file_sha256(settings: Settings, where: str) -> tuple[int, str] | None:
    """The size and sha256 of a data file (local or in object storage); None when it is missing."""
    digest, size = hashlib.sha256(), 0
    try:
        f = objects.open_read(settings, where) if where.startswith("s3://") else open(where, "rb")
    except FileNotFoundError:
        return None
    with f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _sealed(settings: Settings, path: str) -> list:
    found = file_sha256(settings, _resolve(settings, path))
    if found is None:
        raise LakeFileError(f"A data file the commit just wrote is missing: {path}.",
                            hint="Check the lake's storage; the commit is not sealed.")
    return [path, *found]


def _line_mac(key: AuditKey, line: dict) -> str:
    body = {k: v for k, v in line.items() if k != "mac"}
    return key.mac(json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")))


def read_lines(settings: Settings) -> list[dict]:
    where = anchor_file(settings)
    if isinstance(where, str):
        return [_parse(objects.read_bytes(settings, url), n)
                for n, url in enumerate(objects.list_urls(settings, where), 1)]
    if not where.exists():
        return []
    return [_parse(text, n) for n, text in enumerate(where.read_bytes().splitlines(), 1)]


def _parse(text: bytes, n: int) -> dict:
    """Anchor line ``n``, or ``{"unreadable": n}`` when it is not one of ours."""
    try:
        line = json.loads(text)
        return line if isinstance(line, dict) else {"unreadable": n}
    except ValueError:
        return {"unreadable": n}


def _last_line(settings: Settings) -> tuple[dict | None, str | None]:
    """The anchor's last line, and (on S3) the URL of its object."""
    where = anchor_file(settings)
    if isinstance(where, str):
        url = objects.last_under(settings, where, after=_LAST_OBJECT.get(where))
        if url is None:
            return None, None
        _LAST_OBJECT[where] = url
        return _readable(_parse(objects.read_bytes(settings, url), 0), url), url
    return _readable(_last_local(where), where), None


# The last line object each S3 anchor was seen to have in this process: the next look lists only newer ones.
_LAST_OBJECT: dict[str, str] = {}


def _readable(line: dict | None, where: object) -> dict | None:
    if line is not None and "unreadable" in line:   # never continue from a line that is not ours
        raise ConfigError(f"The last line of the audit anchor {where} is unreadable.",
                          hint="Run `insurshare audit verify`; restore the anchor from backup.")
    return line


def _last_local(path: Path) -> dict | None:
    """The anchor file's last line, read from the end (the file grows by one line per commit)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        block, tail = 1 << 16, b""
        while True:
            start = max(0, end - block)
            f.seek(start)
            tail = f.read(end - start)
            if tail.rstrip(b"\n").count(b"\n") or start == 0:
                break
            block *= 4
    return _parse(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1], 0)


def _next_url(where: str, last_url: str | None) -> str:
    """The object of the line after ``last_url``: ``<prefix>/<n, 12 digits>.json``, in key order."""
    n = int(last_url.rsplit("/", 1)[-1].split(".")[0]) + 1 if last_url else 1
    return f"{where}/{n:012d}.json"


def check_before_write(con: duckdb.DuckDBPyConnection, settings: Settings) -> bool:
    """Before a write: refuse when the lake was anchored but its anchor file is gone.

    Return whether a log of plain entries may still be vouched for (only before the first anchor).
    """
    if anchor_exists(settings):
        return False
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ?",
                                        [LAKE]).fetchall()}
    if "audit_log" in tables:
        keyed = con.execute(f"SELECT count(*) FROM {LAKE}.audit_log WHERE entry_sha256 LIKE '%:%'").fetchone()[0]
        if keyed:
            raise ConfigError(f"The audit anchor {anchor_file(settings)} is missing, although the lake's audit "
                              f"log holds {keyed} keyed entries.",
                              hint="Restore the anchor file from backup (it is append-only: never edit it), "
                                   "then run `insurshare audit verify`.")
    return True


def seal(con: duckdb.DuckDBPyConnection, settings: Settings, key: AuditKey, snapshot: int, *,
         whole: bool = False, note: dict | None = None) -> None:
    """After a commit (under the writer lock): append the anchor line of ``snapshot``.

    The line seals the files the commit added and carries the catalog's digest forward from the
    line before (``catalog_digest``); ``whole`` (after maintenance, which rewrites and removes
    files and catalog rows) seals every live file and digests the whole catalog again. ``note``
    (maintenance: ``{"expired": [[first, last], ...]}``, the snapshots it expired) goes into the
    line as ``maintenance``.
    """
    where = anchor_file(settings)
    with file_lock(settings, "audit-anchor"):
        while True:
            last, last_url = _last_line(settings)
            if last is not None and last.get("snapshot") == snapshot:
                return   # an empty transaction: nothing was committed
            late = _unsealed_commits(con, key, last, snapshot)
            line = (_late_line(con, settings, key, late[0], last) if late
                    else _line(con, settings, key, snapshot, last, whole=whole, note=note))
            text = json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"
            if not isinstance(where, str):
                _append_local(where, text)
                written = True
            else:   # another machine may seal between our look and our write: the store takes one
                # line per key, so the loser reads the new last line and chains after it
                written = objects.put_once(settings, _next_url(where, last_url), text.encode("utf-8"))
            if written and not late:
                return


def seal_token(key: AuditKey) -> dict:
    """What a commit carries (in its extra info) to be known later as the platform's own."""
    nonce = os.urandom(16).hex()
    return {"nonce": nonce, "mac": key.mac(f"seal:{nonce}")}


def _unsealed_commits(con: duckdb.DuckDBPyConnection, key: AuditKey, last: dict | None, snapshot: int) -> list[int]:
    """The platform's commits after the last sealed snapshot and before ``snapshot`` that no line
    seals: their seal failed after they committed (the anchor's store could not be reached). Each
    proves itself by its seal token (an HMAC under the audit key, whose nonce no other commit
    carries): a commit made outside the platform has none, stays unsealed and is reported."""
    if last is None or "snapshot" not in last or last["snapshot"] >= snapshot - 1:
        return []
    rows = con.execute(f"SELECT snapshot_id, commit_extra_info FROM ducklake_snapshots('{LAKE}') "
                       "WHERE snapshot_id > ? AND snapshot_id < ? ORDER BY snapshot_id",
                       [last["snapshot"], snapshot]).fetchall()
    found = []
    for snap, extra in rows:
        try:
            token = json.loads(extra or "{}").get("seal") or {}
        except ValueError:
            continue
        nonce, mac = token.get("nonce"), token.get("mac")
        if not (isinstance(nonce, str) and isinstance(mac, str) and key.check(f"seal:{nonce}", mac)):
            continue
        uses = con.execute(f"SELECT count(*) FROM ducklake_snapshots('{LAKE}') WHERE contains(commit_extra_info, ?)",
                           [nonce]).fetchone()[0]
        if uses == 1:   # a token copied into another commit proves neither
            found.append(snap)
    return found


def _late_line(con: duckdb.DuckDBPyConnection, settings: Settings, key: AuditKey, snapshot: int,
               last: dict) -> dict:
    """The line of a commit sealed after a later commit: the files it added, marked ``late``. It
    carries no catalog digest: the next line digests the whole catalog again."""
    line = {"snapshot": snapshot, "seq": None, "head": None,
            "files": [_sealed(settings, f.path) for f in catalog_files(con, settings, added_at=snapshot)],
            "baseline": False, "late": True, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "prev": last.get("mac")}
    line["mac"] = _line_mac(key, line)
    return line


def _line(con: duckdb.DuckDBPyConnection, settings: Settings, key: AuditKey, snapshot: int, last: dict | None, *,
          whole: bool, note: dict | None) -> dict:
    """The anchor line of ``snapshot``, following ``last``."""
    first = last is None
    files = catalog_files(con, settings, added_at=None if first or whole else snapshot)
    head = _head(con)
    follows = not whole and last is not None and last.get("snapshot") == snapshot - 1 and "catalog_sum" in last
    line = {"snapshot": snapshot, "seq": head[0] if head else None, "head": head[1] if head else None,
            "files": [_sealed(settings, f.path) for f in files],
            "catalog_sum": catalog_digest(con, key, snapshot=snapshot,
                                          previous=last["catalog_sum"] if follows else None),
            "baseline": first, **({"whole": True} if whole else {}),
            **({"maintenance": note} if note else {}),
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "prev": last.get("mac") if last else None}
    line["mac"] = _line_mac(key, line)
    return line


def _append_local(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _head(con: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    """The chain's head just after this connection's commit (under the writer lock: at its snapshot)."""
    try:
        return last_entry(con)
    except duckdb.CatalogException:   # the lake's first commit creates the table
        return None


@dataclass(frozen=True)
class LakeCheck:
    problems: list[Problem]
    lines: int
    files: int
    last_snapshot: int | None


def verify_lake(con: duckdb.DuckDBPyConnection, settings: Settings, key: AuditKey,
                entries: dict[int, str]) -> LakeCheck:
    """Hold the catalog and the data files against the anchor (``entries``: seq -> stored hash)."""
    lines = read_lines(settings)
    if not lines:
        keyed = sum(1 for h in entries.values() if is_keyed(h))
        problems = [Problem(None, f"the anchor file {anchor_file(settings)} is missing or empty, although the "
                                  f"log holds {keyed} keyed entries")] if keyed else []
        return LakeCheck(problems, 0, 0, None)
    problems = _check_lines(key, lines)
    good = [line for line in lines if "snapshot" in line]
    problems += _check_snapshots(con, good, entries)
    problems += _check_catalog(con, key, good)
    file_problems, n_files = _check_files(con, settings, good)
    return LakeCheck(problems + file_problems, len(lines), n_files, max(line["snapshot"] for line in good))


def _check_lines(key: AuditKey, lines: list[dict]) -> list[Problem]:
    problems, prev = [], None
    for n, line in enumerate(lines, 1):
        if "unreadable" in line or not isinstance(line.get("mac"), str):
            problems.append(Problem(None, f"anchor line {n} is unreadable: the anchor file was edited"))
        elif line["mac"].split(":", 1)[0] != key.key_id:
            problems.append(Problem(None, f"anchor line {n} was keyed with audit key "
                                          f"{line['mac'].split(':', 1)[0]!r}, not {key.key_id!r}"))
        elif not key.check(json.dumps({k: v for k, v in line.items() if k != "mac"}, sort_keys=True,
                                      ensure_ascii=False, separators=(",", ":")), line["mac"]):
            problems.append(Problem(None, f"anchor line {n} (snapshot {line.get('snapshot')}) was edited"))
        elif line.get("prev") != prev:
            problems.append(Problem(None, f"anchor line {n} (snapshot {line.get('snapshot')}) does not follow "
                                          "the line before it: anchor lines were removed or reordered"))
        prev = line.get("mac")
    return problems


def _check_snapshots(con: duckdb.DuckDBPyConnection, lines: list[dict], entries: dict[int, str]) -> list[Problem]:
    snapshots = {r[0]: (r[1], r[2]) for r in con.execute(
        f"SELECT snapshot_id, CAST(changes AS VARCHAR), commit_message FROM ducklake_snapshots('{LAKE}')").fetchall()}
    newest = max(snapshots)
    problems = []
    expired = [r for line in lines for r in (line.get("maintenance") or {}).get("expired", [])]
    gone = [line for line in lines if line["snapshot"] not in snapshots
            and not any(first <= line["snapshot"] <= last for first, last in expired)]
    if gone:
        problems.append(Problem(None, f"the lake's catalog was rolled back or replaced: {len(gone)} sealed "
                                      f"snapshot(s) are gone from it (the anchor sealed snapshot "
                                      f"{max(line['snapshot'] for line in gone)} on {gone[-1].get('at')}; "
                                      f"the catalog ends at snapshot {newest})"))
    lost = [line for line in lines if line.get("seq") is not None and entries.get(line["seq"]) != line["head"]]
    if lost:
        first = min(lost, key=lambda line: line["seq"])
        problems.append(Problem(first["seq"], f"the audit log no longer holds the head the anchor sealed at "
                                              f"snapshot {first['snapshot']} (entry {first['seq']}, "
                                              f"{first['head'][:20]}): the catalog was rolled back or the log "
                                              "rewritten"))
    baseline = min(line["snapshot"] for line in lines)
    sealed = {line["snapshot"] for line in lines}
    for snap in sorted(s for s in snapshots if s > baseline and s not in sealed):
        changes, message = snapshots[snap]
        problems.append(Problem(None, f"unaudited change to the lake at snapshot {snap}: {changes}"
                                      + (f" ({message})" if message else "")
                                      + " was committed outside the platform"))
    return problems


def _check_catalog(con: duckdb.DuckDBPyConnection, key: AuditKey, lines: list[dict]) -> list[Problem]:
    """With no commit after the last sealed one, the catalog's data rows must be as sealed.

    (A line written before the digest was carried forward holds ``catalog`` instead of
    ``catalog_sum``: such a lake is checked from its next commit on.)"""
    last = max(lines, key=lambda line: line["snapshot"])
    newest = con.execute(f"SELECT max(snapshot_id) FROM ducklake_snapshots('{LAKE}')").fetchone()[0]
    if newest != last["snapshot"] or "catalog_sum" not in last or catalog_digest(con, key) == last["catalog_sum"]:
        return []
    return [Problem(None, f"the catalog was edited outside DuckLake after snapshot {newest}: its inlined rows "
                          "or its list of data files differ from what that commit sealed")]


def _check_files(con: duckdb.DuckDBPyConnection, settings: Settings, lines: list[dict]) -> tuple[list[Problem], int]:
    seals: dict[str, tuple[int, str]] = {}
    for line in lines:
        for path, size, sha in line.get("files", []):
            seals[path] = (size, sha)
    live = catalog_files(con, settings)
    problems = []
    for f in live:
        seal_ = seals.get(f.path)
        found = file_sha256(settings, _resolve(settings, f.path)) if seal_ is not None else None
        if seal_ is None:
            problems.append(Problem(None, f"data file {f.path} (snapshot {f.begin_snapshot}) has no seal: it was "
                                          "written outside the platform"))
        elif found is None:
            problems.append(Problem(None, f"data file {f.path} of table {f.table} is missing "
                                          "(restore it from backup)"))
        else:
            size, sha = found
            if size != seal_[0]:
                problems.append(Problem(None, f"data file {f.path} of table {f.table} is damaged or rewritten: {size:,} bytes, "
                                              f"sealed with {seal_[0]:,}"))
            elif sha != seal_[1]:
                problems.append(Problem(None, f"data file {f.path} of table {f.table} was rewritten or damaged: its sha256 "
                                              f"{sha[:12]} is not the sealed {seal_[1][:12]}"))
    return problems, len(live)


class LakeFileError(InsurShareError):
    """A data file of the lake is missing or damaged."""


_PATH_IN_MESSAGE = re.compile(r"""["']([^"']+\.parquet)["']""")


def _stored_url(path: str, storage: str) -> str:
    """DuckDB names an object it reached over HTTP by its URL: name it by its ``s3://`` address
    (path-style URL under the ``storage`` setting), as the catalog and ``audit verify`` do."""
    m = re.match(r"https?://[^/]+/(.+)", path)
    if m and storage.startswith("s3://") and f"s3://{m.group(1)}".startswith(storage + "/"):
        return f"s3://{m.group(1)}"
    return path


def lake_file_error(exc: BaseException, storage: str = "") -> LakeFileError | None:
    """The clear error for DuckDB's error about a missing or damaged lake data file (else None);
    ``storage`` is the caller's ``Settings.storage``, to name an object by its ``s3://`` address."""
    if not isinstance(exc, duckdb.Error):
        return None
    text = str(exc)
    m = _PATH_IN_MESSAGE.search(text)
    if not m or "ducklake-" not in m.group(1):
        return None
    kind = "missing" if ("No files found" in text or "No such file" in text or "does not exist" in text
                         or "404" in text) else "damaged or unreadable"
    path = _stored_url(m.group(1), storage)
    table = path.rsplit("/", 2)[-2] if path.count("/") >= 2 else ""
    return LakeFileError(f"A data file of the lake is {kind}: {path}."
                         + (f" It holds rows of table {table}." if table.isidentifier() else ""),
                         hint="Run `insurshare audit verify` to list every missing, damaged or rewritten "
                              "file, then restore the lake (its data files and catalog) from backup.")
