"""Building the products: one file per audience, described, audited, replaced atomically."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from pipelines import audit, store
from pipelines.cli import main
from pipelines.config import Settings
from pipelines.errors import NotFound
from pipelines.products import build_products, open_product, product_path, products_dir
from tests.marts.conftest import insert_rows
from tests.products.conftest import small_rows

AUDIENCES = ["regulator", "public", "member:M001", "member:M002", "member:M003", "member:M004"]


def _cli(settings, *args):
    return CliRunner().invoke(main, ["--home", str(settings.home), *args])


def test_build_writes_one_file_per_audience_and_no_temporary_file(small_market):
    names = sorted(p.name for p in products_dir(small_market).iterdir())
    assert names == ["member_M001.duckdb", "member_M002.duckdb", "member_M003.duckdb", "member_M004.duckdb",
                     "public.duckdb", "regulator.duckdb"]


@pytest.mark.parametrize("audience", AUDIENCES)
def test_build_product_info_and_catalog_describe_the_product(small_market, audience):
    con = open_product(small_market, audience)
    try:
        info = con.execute("SELECT audience, member_id, lake_snapshot, marts_source_snapshot, disclosure_profile, "
                           "min_members, max_share FROM product_info").fetchone()
        catalog = dict(con.execute("SELECT table_name, rows FROM catalog").fetchall())
        actual = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                  for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()
    lake = store.connect(small_market)
    try:
        marts = lake.execute("SELECT source_snapshot FROM lake.mart_builds").fetchone()[0]
        audited = json.loads(lake.execute("SELECT details FROM lake.audit_log WHERE kind = 'products' "
                                          "ORDER BY seq DESC LIMIT 1").fetchone()[0])
    finally:
        lake.close()
    kind, _, member = audience.partition(":")
    assert info == (kind, member or None, audited["lake_snapshot"], marts, "default", 3, 0.5)
    assert catalog == actual


def test_build_appends_an_audit_entry_vouching_for_every_file(small_market):
    lake = store.connect(small_market)
    try:
        entry = lake.execute("SELECT subject, details, content_sha256 FROM lake.audit_log WHERE kind = 'products' "
                             "ORDER BY seq DESC LIMIT 1").fetchone()
    finally:
        lake.close()
    files = {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in products_dir(small_market).glob("*.duckdb")}
    details = json.loads(entry[1])
    assert entry[0] == f"snapshot {details['lake_snapshot']}"
    assert entry[2] == audit.content_digest(files)
    assert set(details["products"]) == set(files) and details["units_withheld"]["members"] > 0
    result = _cli(small_market, "audit", "verify")
    assert result.exit_code == 0 and "audit log intact" in result.output


def test_build_without_marts_says_to_build_them(tmp_path):
    settings = Settings(home=tmp_path / "home")
    insert_rows(settings, "policy", small_rows()[0])
    with pytest.raises(NotFound, match="has no marts to build products from.*insurshare build-marts"):
        build_products(settings)


def test_build_cli_shows_what_a_member_can_see(small_market):
    result = _cli(small_market, "products", "show", "member:M002")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Product for member:M002: {product_path(small_market, 'member_M002')}"
    assert "disclosure default: at least 3 members per cell, largest member's share at most 50%" in lines
    assert ("own claims linked to other members' claims: 1 (each with at most 2 other members; "
            "who they are is not shown)") in lines
    assert any(line.split()[:2] == ["own_linked_claims", "1"] for line in lines)
    assert "Loss ratio 2024, all provinces: yours and the industry's" in lines


def test_build_cli_lists_products_and_explains_a_wrong_audience(small_market):
    listed = _cli(small_market, "products", "list")
    assert listed.exit_code == 0 and len(listed.output.splitlines()) == 6
    assert listed.output.splitlines()[0].startswith("member:M001      lake snapshot")
    wrong = _cli(small_market, "products", "show", "everyone")
    assert wrong.exit_code == 1
    assert wrong.output.strip() == ("Error: Unknown audience 'everyone'. "
                                    "An audience is regulator, public or member:<member id>.")


def _lake_counts(settings) -> tuple[int, int]:
    con = store.connect(settings)
    try:
        return (con.execute("SELECT count(*) FROM ducklake_snapshots('lake')").fetchone()[0],
                con.execute("SELECT count(*) FROM lake.audit_log WHERE kind = 'products'").fetchone()[0])
    finally:
        con.close()


def _files(settings) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in products_dir(settings).glob("*.duckdb")}


def test_build_again_with_nothing_changed_writes_nothing(tmp_path):
    """Skipped only while the lake, the rules and the files are as the last build left them."""
    from pipelines.marts.build import build_marts
    from pipelines.products.disclosure import resolve_rules
    from tests.products.conftest import built

    settings = built(tmp_path / "home", *small_rows())
    counts, files = _lake_counts(settings), _files(settings)
    again = build_products(settings)
    assert again.skipped and "products are up to date" in again.lines()[0]
    assert (_lake_counts(settings), _files(settings)) == (counts, files)
    # other rules: built
    assert not build_products(settings, resolve_rules("strict")).skipped
    assert _lake_counts(settings) == (counts[0] + 1, counts[1] + 1)
    assert not build_products(settings).skipped and build_products(settings).skipped
    # a product file that is not the one the build vouched for: built again
    counts = _lake_counts(settings)
    product_path(settings, "public").write_bytes(b"tampered")
    assert not build_products(settings).skipped
    public = open_product(settings, "public")
    try:
        assert public.execute("SELECT count(*) FROM catalog").fetchone()[0] > 0
    finally:
        public.close()
    # new data in the lake (marts rebuilt): built; --force: built
    insert_rows(settings, "policy", small_rows()[0][:1])
    build_marts(settings)
    assert not build_products(settings).skipped
    assert not build_products(settings, force=True).skipped
    assert _lake_counts(settings)[1] == counts[1] + 3
    result = _cli(settings, "products", "build")
    assert result.exit_code == 0 and result.output.startswith("products are up to date"), result.output


def test_portal_bookkeeping_does_not_make_the_products_stale(tmp_path):
    """The portal seals every access into the lake (access_log and an audit entry) and audits
    credential changes: such commits leave the products up to date; a data commit does not."""
    from pipelines.portal import accesslog
    from tests.products.conftest import built

    settings = built(tmp_path / "home", *small_rows())
    accesslog.record(settings, accesslog.Access(
        principal_kind="user", principal_id="u-1", username="reg", roles="regulator", member_id=None,
        ip="127.0.0.1", method="GET", endpoint="submissions.list", path="/api/v1/submissions", object_id=None,
        query_sha256=None, status=200, outcome="allowed", rows=3, duration_ms=1.0))
    assert accesslog.flush(settings) == 1
    files = _files(settings)
    again = build_products(settings)
    assert again.skipped, again.lines()
    assert _files(settings) == files
    insert_rows(settings, "policy", small_rows()[0][:1])
    assert not build_products(settings).skipped
