"""Run a user's SQL with least privilege: no files, no catalog maintenance, bounded in time,
memory and disk, and stoppable.

Every query a person types (``insurshare query``, with or without ``--as``) runs here, in
three layers:

1. ``check_sql`` parses the query in the parent and refuses, with a message, anything but one
   SELECT whose table functions are on ``TABLE_FUNCTIONS`` (so no ``read_text``, ``glob``,
   ``sqlite_scan``, ``query``, ``checkpoint`` or ``ducklake_flush_inlined_data``) and whose
   scalar functions do not reach outside the query. This is defence in depth: a clear error
   before any work is done.
2. The connection is the real barrier. The lake (attached read-only, before the lock) or the
   product file is the only thing it can read: ``enable_external_access = false`` with only the
   lake's data folder in ``allowed_directories``, remote and pipe file systems disabled, no
   extension autoloading, no persistent secrets, and ``lock_configuration = true`` so that
   nothing can be turned back on. (DuckLake's maintenance functions still write Parquet files
   into a read-only lake, and ``sqlite_scan`` reads SQLite files past ``enable_external_access``:
   only layer 1 stops those, which is why it is an allow-list.)
3. The query runs in a child process (``sandbox.main``) in a new session, so that
   the parent can always stop it: its address space is capped (``RLIMIT_AS``: DuckDB's
   ``memory_limit`` does not bound a ``repeat('x', 2000000000)``), it is killed after
   ``INSURSHARE_QUERY_TIMEOUT`` seconds, when its scratch folder grows past
   ``INSURSHARE_QUERY_TEMP`` (DuckDB's own ``max_temp_directory_size`` is set too, but a sort
   spilled past it) or when the user presses Ctrl-C, and it dies with its parent. Its spill
   files and result live in a folder of its own under ``work/queries/``, removed when the query
   ends and swept at the start of the next query if a killed run left it behind.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines import store, workspace
from pipelines.config import PROJECT_ROOT, Settings
from pipelines.core.exact import records_csv, records_json
from pipelines.core.tables import frame_text
from pipelines.errors import QueryError

# Table functions a query may call: generators and read-only views of the catalog and the
# lake's history. Anything else (file readers, ``query``, ``sqlite_scan``, maintenance) is refused.
TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest", "repeat", "repeat_row", "json_each", "json_tree",
    "duckdb_tables", "duckdb_columns", "duckdb_views", "duckdb_schemas", "duckdb_databases",
    "duckdb_types", "duckdb_functions", "duckdb_keywords", "duckdb_constraints", "duckdb_indexes",
    "pragma_table_info", "snapshots", "current_snapshot", "last_committed_snapshot",
    "ducklake_snapshots", "ducklake_table_info", "ducklake_table_changes", "ducklake_table_insertions",
    "ducklake_table_deletions", "ducklake_list_files", "ducklake_current_snapshot",
    "ducklake_last_committed_snapshot",
})
# Scalar functions that reach outside the query (the environment, the settings' paths).
SCALAR_FUNCTIONS_REFUSED = frozenset({"getenv", "current_setting", "checkpoint", "force_checkpoint"})
_FILE_READERS = ("read_", "glob", "parquet_", "sniff_csv", "iceberg_", "delta_", "sqlite_", "postgres_")
_MAINTENANCE = ("ducklake_", "checkpoint", "force_checkpoint")
_FILE_LIKE = (".csv", ".tsv", ".txt", ".parquet", ".json", ".jsonl", ".ndjson", ".xlsx", ".gz", ".zst",
              ".db", ".duckdb", ".sqlite", ".key", ".arrow")
# Remote and pipe file systems are switched off; the local one is needed for the lake's files
# and for spilling, and enable_external_access keeps it to those.
DISABLED_FILESYSTEMS = ("HTTPFileSystem,S3FileSystem,HuggingFaceFileSystem,AzureBlobStorageFileSystem,"
                        "GCSFileSystem,PipeFileSystem")
# DuckDB's buffer manager gets the query's memory less this headroom (at most half of it goes
# to headroom): the rest is for what it does not count (long strings, the formatted result).
# Measured: a spilling sort grows the process by DuckDB's memory_limit plus about 110 MB.
HEADROOM = 512 * 2**20


def duckdb_memory(budget: int) -> int:
    """DuckDB's ``memory_limit`` for a query process that may grow by ``budget`` bytes."""
    return max(budget // 2, budget - HEADROOM)


# ---------------------------------------------------------------------------------------------
# Layer 1: the SQL check


def check_sql(sql: str) -> None:
    """Refuse anything but one SELECT that calls only allowed functions and reads no file."""
    parser = duckdb.connect(config={"enable_external_access": False, "autoload_known_extensions": False})
    try:
        _check_one_select(parser, sql)
        tree = json.loads(parser.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    finally:
        parser.close()
    if tree.get("error"):
        raise QueryError("Only plain SELECT queries are allowed, not PRAGMA or other statements in SELECT's clothing.",
                         hint="Use SHOW TABLES, DESCRIBE <table> or a SELECT.")
    for kind, name in _calls(tree["statements"]):
        _check_call(kind, name)


def _check_one_select(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    check_read_only(con, sql)


def _calls(node: object):
    """Every (``table``/``scalar``/``file``, name) the parsed query calls or reads, at any depth."""
    if isinstance(node, list):
        for item in node:
            yield from _calls(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "TABLE_FUNCTION" and isinstance(node.get("function"), dict):
        fn = node["function"]
        yield "table", str(fn.get("function_name", "")).lower()
        yield from _calls(fn.get("children", []))
        return
    if node.get("type") == "BASE_TABLE":
        yield "file", str(node.get("table_name", ""))
    if node.get("class") == "FUNCTION" and "function_name" in node:
        yield "scalar", str(node["function_name"]).lower()
    for value in node.values():
        yield from _calls(value)


def _check_call(kind: str, name: str) -> None:
    if kind == "file":
        if any(c in name for c in "/\\:") or name.lower().endswith(_FILE_LIKE):
            raise QueryError(f"The query reads {name!r} as a file; queries read tables only.",
                             hint="List the tables with SHOW TABLES.")
        return
    if kind == "table" and name in TABLE_FUNCTIONS:
        return
    if kind == "scalar" and name not in SCALAR_FUNCTIONS_REFUSED and not name.startswith(_MAINTENANCE + _FILE_READERS):
        return
    if name.startswith(_FILE_READERS):
        why = "reads files"
    elif name.startswith(_MAINTENANCE):
        why = "maintains or changes the lake"
    else:
        why = "is not allowed in a query"
    raise QueryError(f"The query calls {name}(), which {why}; queries are read-only and read tables only.",
                     hint="Read the tables (SHOW TABLES); table functions such as range, unnest, snapshots "
                          "and ducklake_snapshots are allowed.")


# ---------------------------------------------------------------------------------------------
# Layer 2: locked-down connections


def lock(con: duckdb.DuckDBPyConnection, allowed_directories: list[str] | None = None,
         disabled: str = DISABLED_FILESYSTEMS) -> None:
    """No file outside ``allowed_directories``, no remote file system (but those a lake in object
    storage needs, kept to its prefix), no configuration change."""
    if allowed_directories:
        con.execute("SET allowed_directories = ?", [allowed_directories])
    con.execute(f"SET disabled_filesystems = '{disabled}'")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _spill_to(con: duckdb.DuckDBPyConnection, temp_dir: Path, temp_limit: int | None) -> None:
    """Spill into ``temp_dir`` (at most ``temp_limit`` bytes); set before the lock, which forbids it."""
    con.execute("SET temp_directory = ?", [str(temp_dir)])
    if temp_limit:
        con.execute(f"SET max_temp_directory_size = '{int(temp_limit)}B'")


def product_connection(path: Path, *, memory: str, threads: int, temp_dir: Path,
                       temp_limit: int | None = None) -> duckdb.DuckDBPyConnection:
    """A product file, read-only and locked: it reads its own tables and nothing else.

    Spill files go to ``temp_dir``, never next to the product (DuckDB's default ``<file>.tmp/``
    inside ``products/`` is what broke ``products build``).
    """
    config = {"autoload_known_extensions": False, "autoinstall_known_extensions": False,
              "allow_community_extensions": False, "allow_persistent_secrets": False, "memory_limit": memory}
    if threads:
        config["threads"] = threads
    con = duckdb.connect(str(path), read_only=True, config=config)
    try:
        _spill_to(con, temp_dir, temp_limit)
        lock(con)
    except BaseException:
        con.close()
        raise
    return con


def lake_connection(settings: Settings, *, snapshot: int | None, memory: str, temp_dir: Path,
                    temp_limit: int | None = None) -> duckdb.DuckDBPyConnection:
    """The lake attached read-only (at ``snapshot``) as the default schema, then locked: only the
    lake's data folder stays readable."""
    con = store.new_connection(settings.with_(duckdb_memory_limit=memory))
    try:
        _spill_to(con, temp_dir, temp_limit)
        con.execute("SET allow_persistent_secrets = false")
        store.attach(con, settings, read_only=True, snapshot=snapshot)
        con.execute(f"USE {store.LAKE}")
        if settings.data_is_remote:   # the lake's prefix in object storage, and no other object or file
            lock(con, [f"{settings.data_path}/"], disabled=DISABLED_FILESYSTEMS.replace("S3FileSystem,", ""))
        else:
            lock(con, [f"{Path(settings.data_path).absolute()}/"])
    except BaseException:
        con.close()
        raise
    return con


# ---------------------------------------------------------------------------------------------
# Layer 3: the child process


@dataclass(frozen=True)
class Request:
    """What the child runs: ``sql`` on the lake (``product`` None) or on a product file."""

    sql: str
    fmt: str
    limit: int
    snapshot: int | None = None
    product: str | None = None

    def to_json(self, settings: Settings, scratch: Path) -> str:
        return json.dumps({
            "sql": self.sql, "fmt": self.fmt, "limit": self.limit, "snapshot": self.snapshot,
            "product": self.product, "scratch": str(scratch), "parent": os.getpid(),
            "settings": {"home": str(settings.home), "catalog": settings.catalog,
                         "data_path": str(settings.data_path), "storage": settings.storage,
                         "schemas_dir": str(settings.schemas_dir),
                         "duckdb_threads": settings.duckdb_threads, "query_memory": settings.query_memory,
                         "query_temp": settings.query_temp},
        })


def run(settings: Settings, request: Request, output: Path | None = None) -> str:
    """Run ``request`` in a sandboxed child; return its formatted result (or ``wrote <output>``).

    Raises ``QueryError`` when the query is refused, fails, runs out of time, memory or disk, or
    is interrupted; the child is gone and its scratch folder removed by then.
    """
    check_sql(request.sql)
    settings.query_memory_bytes, settings.query_temp_bytes  # noqa: B018 - bad sizes fail here, clearly
    root = workspace.queries_dir(settings)
    with workspace.claim(settings, f"q{uuid.uuid4().hex[:12]}", root=root) as scratch:
        status = _supervise(settings, request, scratch)
        if not status.get("ok"):
            raise QueryError(status.get("message", "The query failed."), hint=status.get("hint", ""))
        result = scratch / status["file"]
        if output is not None:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(result), str(output))
            return f"wrote {output}"
        return result.read_text(encoding="utf-8")


# Isolated mode (-I: no PYTHONPATH, no user site, not the working directory) with this
# checkout first on the path, so that the child runs this very code however the CLI was started.
_CHILD = f"import sys; sys.path.insert(0, {str(PROJECT_ROOT)!r}); from pipelines.sandbox import main; main()"


def _supervise(settings: Settings, request: Request, scratch: Path) -> dict:
    """Start the child and watch it: time, scratch size, Ctrl-C. Return its status."""
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}   # glibc reserves 64 MB of address space per arena
    with open(scratch / "stdout", "wb") as out, open(scratch / "stderr", "wb") as err:
        child = subprocess.Popen([sys.executable, "-I", "-c", _CHILD], stdin=subprocess.PIPE,
                                 stdout=out, stderr=err, cwd=scratch, env=env, start_new_session=True)
    try:
        try:
            child.stdin.write(request.to_json(settings, scratch).encode("utf-8"))
            child.stdin.close()
        except BrokenPipeError:
            pass   # it died at start-up: its stderr says why, below
        stopped = _watch(child, scratch, settings)
    except KeyboardInterrupt:
        _kill(child)
        raise QueryError("Interrupted: the query was stopped and its temporary files removed.") from None
    except BaseException:
        _kill(child)
        raise
    if stopped:
        return {"ok": False, **stopped}
    status_file = scratch / "status.json"
    if status_file.exists():
        return json.loads(status_file.read_text(encoding="utf-8"))
    tail = (scratch / "stderr").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
    code = child.returncode
    how = f"signal {-code}" if code < 0 else f"exit code {code}"
    return {"ok": False, "message": f"The query process ended without a result ({how}"
            + (f": {tail[0][:300]}" if tail else "") + ").",
            "hint": f"It may have run out of memory (INSURSHARE_QUERY_MEMORY={settings.query_memory})."}


def _watch(child: subprocess.Popen, scratch: Path, settings: Settings) -> dict | None:
    """Wait for the child; kill it and say why when it runs too long or spills too much."""
    deadline = time.monotonic() + settings.query_timeout
    temp_limit = settings.query_temp_bytes
    while True:
        try:
            child.wait(timeout=0.2)
            return None
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() > deadline:
            _kill(child)
            return {"message": f"The query ran longer than {settings.query_timeout:g} s and was stopped.",
                    "hint": "Narrow it (fewer rows, a WHERE on period or member), or raise INSURSHARE_QUERY_TIMEOUT."}
        if _disk_use(scratch) > temp_limit:
            _kill(child)
            return _spilled(settings)


def _spilled(settings: Settings) -> dict:
    return {"ok": False, "message": f"The query spilled more than {settings.query_temp} to disk and was stopped.",
            "hint": "Narrow it, or raise INSURSHARE_QUERY_TEMP."}


def _kill(child: subprocess.Popen) -> None:
    """Kill the child's whole session (it is its leader) and reap it."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        child.kill()
    child.wait()


def _disk_use(folder: Path) -> int:
    """Bytes on disk under `folder`; DuckDB creates and removes spill files and folders while
    this walks, so whatever vanishes mid-walk counts as nothing (os.walk skips unreadable folders)."""
    total = 0
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


# ---------------------------------------------------------------------------------------------
# The child's side


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to kill this process when its parent dies (Linux), and check it has not."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def _address_space() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _cap_memory(budget: int) -> None:
    """Let the process grow by at most ``budget`` bytes of address space from here on."""
    limit = _address_space() + budget
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _execute(req: dict) -> dict:
    s = req["settings"]
    data_path = s["data_path"] if s["data_path"].startswith("s3://") else Path(s["data_path"])
    settings = Settings(home=Path(s["home"]), catalog=s["catalog"], data_path=data_path, storage=s["storage"],
                        schemas_dir=Path(s["schemas_dir"]), duckdb_threads=int(s["duckdb_threads"]),
                        query_memory=s["query_memory"], query_temp=s["query_temp"])
    scratch = Path(req["scratch"])
    budget = settings.query_memory_bytes
    memory = f"{duckdb_memory(budget)}B"
    spill = scratch / "spill"
    if req["product"]:
        con = product_connection(Path(req["product"]), memory=memory, threads=settings.duckdb_threads,
                                 temp_dir=spill, temp_limit=settings.query_temp_bytes)
        hint = "A product reads only its own tables; list them with `insurshare products show AUDIENCE`."
    else:
        con = lake_connection(settings, snapshot=req["snapshot"], memory=memory, temp_dir=spill,
                              temp_limit=settings.query_temp_bytes)
        hint = "List tables with `insurshare query \"SHOW TABLES\"`."
    try:
        check_sql(req["sql"])
        import pandas  # noqa: F401 - imported before the cap: the cap is for the query
        import pyarrow.parquet  # noqa: F401

        _cap_memory(budget)
        try:
            rel = con.sql(req["sql"])
            if req["fmt"] == "parquet":
                import pyarrow.parquet as pq

                pq.write_table(rel.fetch_arrow_table(), str(scratch / "result.parquet"))
                return {"ok": True, "file": "result.parquet"}
            text = format_relation(rel, req["fmt"], limit=req["limit"])
        except (duckdb.OutOfMemoryException, MemoryError) as exc:
            if "max_temp_directory_size" in str(exc):
                return _spilled(settings)
            return {"ok": False, "message": f"The query needed more than its memory "
                    f"(INSURSHARE_QUERY_MEMORY={settings.query_memory}) and was stopped.",
                    "hint": "Narrow it, or raise INSURSHARE_QUERY_MEMORY."}
        except duckdb.Error as exc:
            return {"ok": False, "message": f"The query failed: {str(exc).splitlines()[0]}", "hint": hint}
        (scratch / "result.txt").write_text(text, encoding="utf-8")
        return {"ok": True, "file": "result.txt"}
    finally:
        con.close()


def main() -> None:
    """The child: read the request on stdin, run it, leave ``status.json`` in the scratch folder."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides when to stop
    req = json.loads(sys.stdin.read())
    _die_with_parent(int(req["parent"]))
    os.umask(0o077)
    try:
        status = _execute(req)
    except QueryError as exc:
        status = {"ok": False, "message": exc.message, "hint": exc.hint}
    except duckdb.Error as exc:
        status = {"ok": False, "message": f"The query failed: {str(exc).splitlines()[0]}"}
    except MemoryError:
        status = {"ok": False, "message": "The query ran out of memory and was stopped.",
                  "hint": "Narrow it, or raise INSURSHARE_QUERY_MEMORY."}
    Path(req["scratch"], "status.json").write_text(json.dumps(status), encoding="utf-8")


if __name__ == "__main__":
    main()


FORMATS = ("table", "csv", "json", "parquet")


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Exactly one statement, and a SELECT (the first of ``sandbox.check_sql``'s checks)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"The query does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryError("Give exactly one statement.", hint="Run statements one by one.")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise QueryError(f"Only read-only SELECT queries are allowed, not {statements[0].type.name}.",
                         hint="The lake is changed only by submissions and the pipelines.")


def format_relation(rel: duckdb.DuckDBPyRelation, fmt: str, *, limit: int = 1000,
                    output: Path | None = None) -> str:
    """``rel`` as a terminal table (its first ``limit`` rows, rounded for the eye), or all of it
    as CSV or JSON with every float and DECIMAL exact (``pipelines.core.exact``)."""
    if fmt == "table":
        frame = rel.limit(limit + 1).df()
        if frame.empty:
            return "  ".join(frame.columns) + "\n(no rows)"
        more = len(frame) > limit
        text = frame_text(frame.head(limit))
        return text + (f"\n... (first {limit} rows shown; use --format csv for all)" if more else "")
    columns, rows = rel.columns, rel.fetchall()          # exact values, never through pandas (core.exact)
    text = records_csv(columns, rows) if fmt == "csv" else records_json(columns, rows)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        return f"wrote {output}"
    return text
