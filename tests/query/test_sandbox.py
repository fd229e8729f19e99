"""Least privilege for every query: no files, no maintenance, bounded time, memory and disk.

Each probe of issue 10 (findings 7, 8 and the ``query`` part of 13) is run against the lake
("full" mode) and the audiences' products, and must be refused with a clear error while the
lake's files stay byte for byte what they were.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipelines import sandbox, workspace
from pipelines.config import Settings
from pipelines.errors import QueryError
from pipelines.products import product_path, query_product
from pipelines.query import run_query

AUDIENCES = ["lake", "member:M002", "public", "regulator"]


def ask(settings: Settings, audience: str, sql: str, **kwargs) -> str:
    if audience == "lake":
        return run_query(settings, sql, **kwargs)
    return query_product(settings, audience, sql, **kwargs)


def fingerprint(settings: Settings) -> dict[str, str]:
    """Every file of the lake (catalog and data) and the products, by SHA-256."""
    files = [*settings.data_path.rglob("*"), Path(settings.catalog), *settings.home.joinpath("products").rglob("*")]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def leftovers(settings: Settings) -> list[str]:
    root = workspace.queries_dir(settings)
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []


PROBES = {
    # finding 7 and 13: the keys and any local file
    "read_text-key": ("SELECT * FROM read_text('{key}')", "read_text(), which reads files"),
    "read_text-archive-key": ("SELECT content FROM read_text('{archive_key}')", "read_text(), which reads files"),
    "read_csv-passwd": ("SELECT * FROM read_csv('/etc/passwd')", "read_csv(), which reads files"),
    "read_blob": ("SELECT * FROM read_blob('{key}')", "read_blob(), which reads files"),
    "replacement-scan": ("SELECT * FROM '{key}'", "as a file; queries read tables only"),
    "glob": ("SELECT * FROM glob('{home}/**')", "glob(), which reads files"),
    "in-subquery": ("SELECT (SELECT content FROM read_text('{key}')) AS k", "read_text(), which reads files"),
    "in-cte": ("WITH k AS (FROM read_text('{key}')) SELECT * FROM k", "read_text(), which reads files"),
    "sqlite_scan": ("SELECT * FROM sqlite_scan('{catalog}', 'ducklake_snapshot')", "sqlite_scan(), which reads files"),
    "sqlite_query": ("SELECT * FROM sqlite_query('{catalog}', 'SELECT 1')", "sqlite_query(), which reads files"),
    "query-fn": ("SELECT * FROM query('SELECT * FROM read_text(''{key}'')')", "query(), which is not allowed"),
    # finding 7: maintenance that writes into the lake
    "flush": ("SELECT * FROM ducklake_flush_inlined_data('lake')", "ducklake_flush_inlined_data(), which maintains"),
    "merge": ("FROM ducklake_merge_adjacent_files('lake')", "ducklake_merge_adjacent_files(), which maintains"),
    "checkpoint": ("SELECT * FROM checkpoint()", "checkpoint(), which maintains"),
    "expire": ("SELECT * FROM ducklake_expire_snapshots('lake', older_than => now())", "which maintains"),
    "cleanup": ("SELECT * FROM ducklake_cleanup_old_files('lake', cleanup_all => true)", "which maintains"),
    # statements other than SELECT
    "CHECKPOINT": ("CHECKPOINT", "not CALL"),
    "ATTACH": ("ATTACH '{catalog}' AS c", "not ATTACH"),
    "COPY": ("COPY (SELECT 1) TO '{home}/out.csv'", "not COPY"),
    "INSTALL": ("INSTALL httpfs", "not LOAD"),
    "LOAD": ("LOAD httpfs", "not LOAD"),
    "SET": ("SET enable_external_access = true", "not SET"),
    "PRAGMA": ("PRAGMA database_list", "Only plain SELECT queries are allowed"),
    "CALL": ("CALL ducklake_merge_adjacent_files('lake')", "not CALL"),
    "secrets": ("SELECT * FROM duckdb_secrets()", "duckdb_secrets(), which is not allowed"),
    "getenv": ("SELECT getenv('HOME')", "getenv(), which is not allowed"),
    "scalar-reader": ("SELECT read_text(1)", "read_text(), which reads files"),
}


@pytest.mark.parametrize("audience", AUDIENCES)
@pytest.mark.parametrize("probe", PROBES, ids=list(PROBES))
def test_sandbox_refuses_every_probe_clearly(market, audience, probe):
    sql, message = PROBES[probe]
    text = sql.format(key=market.key_file, archive_key=market.key_file.with_name("archive.key"),
                      home=market.home, catalog=market.catalog)
    before = fingerprint(market)
    with pytest.raises(QueryError) as caught:
        ask(market, audience, text)
    assert message in str(caught.value)
    assert "Traceback" not in str(caught.value)
    assert fingerprint(market) == before
    assert not (market.home / "out.csv").exists()


@pytest.mark.parametrize("audience", AUDIENCES)
def test_sandbox_answers_ordinary_queries(market, audience):
    table = "policy" if audience in ("lake", "member:M002") else "industry_experience"
    n = ask(market, audience, f"SELECT count(*) AS n FROM {table}", fmt="csv")
    expected = {"lake": 20, "member:M002": 6}.get(audience)
    if expected is not None:        # 10 policies and 10 endorsements; M002: three of each
        assert n == f"n\n{expected}"
    assert ask(market, audience, "SELECT max(i) AS m FROM range(101) t(i)", fmt="csv") == "m\n100"
    assert "name" in ask(market, audience, "SHOW TABLES")
    assert leftovers(market) == []


def test_sandbox_lake_history_functions_stay_allowed(market):
    out = run_query(market, "SELECT count(*) AS n FROM ducklake_snapshots('lake')", fmt="csv")
    assert int(out.split("\n")[1]) >= 5
    assert run_query(market, "SELECT count(*) > 0 AS x FROM snapshots()", fmt="csv") == "x\nTrue"


def test_sandbox_connections_are_the_real_barrier(market, tmp_path):
    """Without the SQL check, the locked connections themselves refuse files and reconfiguration."""
    lake = sandbox.lake_connection(market, snapshot=None, memory="500MB", temp_dir=tmp_path / "spill")
    product = sandbox.product_connection(product_path(market, "member_M002"), memory="500MB", threads=1,
                                         temp_dir=tmp_path / "spill2")
    try:
        assert lake.execute("SELECT count(*) FROM policy").fetchone()[0] == 20
        for con in (lake, product):
            for sql in (f"SELECT * FROM read_text('{market.key_file}')", "SELECT * FROM read_csv('/etc/passwd')",
                        f"SELECT * FROM glob('{market.home}/secrets/*')"):
                with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
                    con.execute(sql)
            with pytest.raises(duckdb.Error, match="configuration has been locked"):
                con.execute("SET enable_external_access = true")
            with pytest.raises(duckdb.Error, match="locked"):
                con.execute(f"SET allowed_directories = ['{market.home}/']")
            with pytest.raises(duckdb.Error):
                con.execute("INSTALL httpfs")
            with pytest.raises(duckdb.Error):
                con.execute(f"COPY (SELECT 1) TO '{tmp_path}/x.csv'")
        assert not (tmp_path / "x.csv").exists()
    finally:
        lake.close()
        product.close()


def test_sandbox_timeout_stops_a_long_query(market):
    quick = market.with_(query_timeout=3.0)
    started = time.monotonic()
    with pytest.raises(QueryError, match=r"ran longer than 3 s and was stopped") as caught:
        run_query(quick, "SELECT count(*) FROM range(1000000000000) t(i) WHERE hash(i) = 42")
    assert time.monotonic() - started < 20
    assert "INSURSHARE_QUERY_TIMEOUT" in str(caught.value)
    assert leftovers(market) == []


@pytest.mark.parametrize("audience", ["lake", "member:M002"])
def test_sandbox_huge_string_fails_cleanly_under_the_memory_limit(market, audience):
    """``repeat('x', 2000000000)`` grew past 7 GiB despite DuckDB's memory_limit; now the process
    cannot grow by more than INSURSHARE_QUERY_MEMORY and says so."""
    with pytest.raises(QueryError, match=r"needed more than its memory \(INSURSHARE_QUERY_MEMORY=1GB\)"):
        ask(market.with_(query_memory="1GB"), audience, "SELECT length(repeat('x', 2000000000)) AS n")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024   # the largest child so far
    assert peak < 1.5e9
    assert leftovers(market) == []


def test_sandbox_memory_limit_still_runs_what_fits(market):
    out = run_query(market.with_(query_memory="1GB"), "SELECT length(repeat('x', 100000000)) AS n", fmt="csv")
    assert out == "n\n100000000"


SPILL = "SELECT count(*) AS n FROM (SELECT i, md5(i::VARCHAR) AS m, md5(m) AS m2 FROM range(6000000) t(i) ORDER BY m)"


def test_sandbox_spill_is_bounded_and_removed(market):
    """DuckDB's own max_temp_directory_size let this sort spill 400 MB past a 48 MB limit."""
    tight = market.with_(query_memory="300MB", query_temp="50MB")
    with pytest.raises(QueryError, match=r"spilled more than 50MB to disk and was stopped"):
        run_query(tight, SPILL)
    assert leftovers(market) == []


def test_sandbox_spill_within_bounds_is_answered_and_cleaned(market):
    roomy = market.with_(query_memory="300MB", query_temp="4GB")
    assert run_query(roomy, SPILL, fmt="csv") == "n\n6000000"
    assert leftovers(market) == []
    assert not list(market.home.joinpath("products").glob("*.tmp"))


def _cli(settings: Settings, *args: str) -> subprocess.Popen:
    env = {**os.environ, "INSURSHARE_HOME": str(settings.home)}
    return subprocess.Popen([sys.executable, "-m", "pipelines", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_scratch(settings: Settings, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        found = leftovers(settings)
        if found and (workspace.queries_dir(settings) / found[0] / "stdout").exists():
            time.sleep(1.5)   # the child is running the query by now
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no query started: {proc.communicate()}")


LONG = "SELECT count(*) FROM range(1000000000000) t(i) WHERE hash(i) = 42"


def test_sandbox_ctrl_c_stops_the_query_and_removes_its_scratch(market):
    proc = _cli(market, "query", "--as", "member:M002", LONG)
    folder = _wait_for_scratch(market, proc)
    child = _running_in(workspace.queries_dir(market) / folder)
    assert len(child) == 1
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert not Path(f"/proc/{child[0]}").exists()
    assert proc.returncode == 1
    assert "Interrupted: the query was stopped" in err and "Traceback" not in err
    assert leftovers(market) == []


def _running_in(folder: Path) -> list[int]:
    """Processes whose working directory is ``folder`` (the query's child runs in its scratch)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")) == folder:
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_sandbox_killed_parent_takes_the_query_down_and_next_query_sweeps(market):
    proc = _cli(market, "query", LONG)
    folder = _wait_for_scratch(market, proc)
    child = _running_in(workspace.queries_dir(market) / folder)
    assert len(child) == 1
    proc.kill()                      # no chance to clean up
    proc.wait()
    deadline = time.monotonic() + 10
    while _running_in(workspace.queries_dir(market) / folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _running_in(workspace.queries_dir(market) / folder) == []   # died with its parent (PDEATHSIG)
    assert leftovers(market) == [folder]
    assert run_query(market, "SELECT 1 AS one", fmt="csv") == "one\n1"
    assert leftovers(market) == []   # swept at the start of the next query


def test_sandbox_unknown_snapshot_is_a_clear_error(market):
    with pytest.raises(QueryError, match="Snapshot 9999 does not exist"):
        run_query(market, "SELECT 1", as_of="9999")


def test_sandbox_bad_sizes_are_config_errors(market):
    from pipelines.errors import ConfigError

    with pytest.raises(ConfigError, match="is not a size"):
        run_query(market.with_(query_memory="lots"), "SELECT 1")


def test_sandbox_settings_come_from_the_environment(tmp_path):
    s = Settings.from_env({"INSURSHARE_HOME": str(tmp_path), "INSURSHARE_QUERY_TIMEOUT": "7.5",
                           "INSURSHARE_QUERY_MEMORY": "512MB", "INSURSHARE_QUERY_TEMP": "1GiB"})
    assert (s.query_timeout, s.query_memory_bytes, s.query_temp_bytes) == (7.5, 512_000_000, 2**30)
    d = Settings(home=tmp_path)
    assert (d.query_timeout, d.query_memory_bytes, d.query_temp_bytes) == (300.0, 2_000_000_000, 4_000_000_000)


def test_sandbox_watchdog_kills_a_child_that_fills_its_scratch(market, tmp_path):
    """The parent's own bound, for spill files DuckDB does not count (a real process writes 64 MB)."""
    writer = ("import sys, time\n"
              "with open('big', 'wb') as f:\n"
              "    for _ in range(64): f.write(b'x' * 2**20); f.flush()\n"
              "time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", writer], cwd=tmp_path, start_new_session=True)
    started = time.monotonic()
    stopped = sandbox._watch(child, tmp_path, market.with_(query_temp="16MB"))
    assert stopped["message"] == "The query spilled more than 16MB to disk and was stopped."
    assert child.returncode == -signal.SIGKILL and time.monotonic() - started < 30


def test_sandbox_bad_timeout_is_a_config_error(tmp_path):
    from pipelines.errors import ConfigError

    with pytest.raises(ConfigError, match="INSURSHARE_QUERY_TIMEOUT='soon' is not a number of seconds"):
        Settings.from_env({"INSURSHARE_HOME": str(tmp_path), "INSURSHARE_QUERY_TIMEOUT": "soon"})


@pytest.mark.parametrize("args", [
    ("query", "SELECT * FROM read_csv('/etc/passwd')"),
    ("query", "SELECT content FROM read_text('{key}')"),
    ("query", "--as", "member:M002", "SELECT content FROM read_text('{key}')"),
], ids=["passwd", "key", "key-as-member"])
def test_cli_query_refuses_file_reads_in_one_line(market, args):
    """Finding 13: plain ``insurshare query`` read any local file, the keys included."""
    from click.testing import CliRunner

    from pipelines.cli import main

    result = CliRunner().invoke(main, ["--home", str(market.home), *(a.format(key=market.key_file) for a in args)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: The query calls read_") and "which reads files" in result.output
    assert market.key_file.read_text().split(":")[1][:16] not in result.output
    assert len(result.output.strip().splitlines()) == 1
