"""Files under the home are the owner's only, and leftovers of a killed run never break a build."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import Settings
from pipelines.products import build_products, product_path, products_dir, query_product
from pipelines.reports.html import write_if_changed
from tests.products.conftest import built, small_rows


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    """A caller with the usual umask 022, as a library user or a test would have."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Settings:
    old = os.umask(0o022)
    try:
        return built(tmp_path_factory.mktemp("files") / "home", *small_rows())
    finally:
        os.umask(old)


def test_products_catalog_and_lake_files_are_owner_only(market):
    products = sorted(products_dir(market).glob("*.duckdb"))
    assert len(products) == 6                       # regulator, public and four members
    assert {p.name: mode(p) for p in products} == {p.name: 0o600 for p in products}
    assert mode(products_dir(market)) == 0o700
    assert mode(Path(market.catalog)) == 0o600
    assert mode(market.data_path) == 0o700


def test_report_files_are_owner_only(tmp_path, loose_umask):
    page = tmp_path / "reports" / "index.html"
    assert write_if_changed(page, "<p>M001 quarantined 3 rows</p>")
    assert mode(page) == 0o600
    os.chmod(page, 0o644)                           # a report of an older version
    assert not write_if_changed(page, "<p>M001 quarantined 3 rows</p>")
    assert mode(page) == 0o600


def test_cli_sets_an_owner_only_umask(tmp_path, loose_umask):
    """Files and folders nobody chmods (the generator's) are the owner's when the CLI wrote them."""
    home = tmp_path / "home"
    env = {**os.environ, "INSURSHARE_HOME": str(home)}
    subprocess.run([sys.executable, "-m", "pipelines", "generate", "--members", "1", "--quarters", "1",
                    "--scale", "0.01"], env=env, check=True, capture_output=True)
    written = list(home.rglob("*"))
    assert sum(p.suffix == ".csv" for p in written) >= 2
    loose = {str(p.relative_to(home)): oct(mode(p)) for p in written if mode(p) & 0o077}
    assert loose == {}


def test_query_output_file_is_owner_only(market, tmp_path, loose_umask):
    out = tmp_path / "mine.csv"
    assert query_product(market, "member:M002", "SELECT 1 AS one", fmt="csv", output=out) == f"wrote {out}"
    assert out.read_text() == "one\n1" and mode(out) == 0o600


def test_products_build_removes_what_a_killed_run_left(market):
    """A spilling product query killed after 60 s left 8 GB in ``member_M001.duckdb.tmp/`` and
    the next build failed with IsADirectoryError; a killed build leaves ``*.duckdb.tmp`` files."""
    folder = products_dir(market)
    spill = folder / "member_M001.duckdb.tmp"
    spill.mkdir()
    (spill / "duckdb_temp_storage_S32K-0.tmp").write_bytes(b"\0" * 4096)
    (folder / "public.duckdb.tmp").write_bytes(b"half a product")
    (folder / "public.duckdb.tmp.wal").write_bytes(b"")
    result = build_products(market)
    assert set(result.rows) == {"regulator", "public", "member_M001", "member_M002", "member_M003", "member_M004"}
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.duckdb" for n in result.rows)
    assert query_product(market, "member:M001", "SELECT count(*) AS n FROM policy", fmt="csv") == "n\n6"  # 3 policies, 3 endorsements
    assert not list(folder.glob("*.tmp"))           # the query spilled (if at all) under work/, not here
    assert product_path(market, "member_M001").exists()
