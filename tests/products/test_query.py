"""Querying a product as its audience: SELECT only, and no way out to other files."""

from __future__ import annotations

import json

import duckdb
import pyarrow.parquet as pq
import pytest

from pipelines.errors import NotFound, QueryError
from pipelines.products import Audience, open_product, product_path, query_product


def test_query_member_reads_its_product(small_market):
    out = query_product(small_market, "member:M002", "SELECT count(*) AS n FROM policy", fmt="json")
    assert json.loads(out) == [{"n": 6}]          # three policies and three endorsements


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_parquet('{lake_file}')",
    "SELECT * FROM '{lake_file}'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('{other_product}')",
    "SELECT * FROM glob('{home}/*')",
], ids=["read_parquet", "replacement-scan", "read_csv", "read_text", "glob"])
def test_query_member_cannot_read_other_files(small_market, sql):
    lake_file = next(small_market.data_path.rglob("*.parquet"))
    text = sql.format(lake_file=lake_file, other_product=product_path(small_market, "member_M003"),
                      home=small_market.home)
    with pytest.raises(QueryError, match=r"reads files|as a file; queries read tables only"):
        query_product(small_market, "member:M002", text)


@pytest.mark.parametrize("sql, kind", [
    ("CREATE TABLE x AS SELECT 1", "CREATE"),
    ("INSERT INTO policy SELECT * FROM policy", "INSERT"),
    ("COPY policy TO '/tmp/stolen.csv'", "COPY"),
    ("ATTACH '{other_product}' AS other", "ATTACH"),
    ("SET enable_external_access = true", "SET"),
], ids=["create", "insert", "copy", "attach", "set"])
def test_query_member_cannot_write_attach_or_reconfigure(small_market, sql, kind):
    text = sql.format(other_product=product_path(small_market, "member_M003"))
    with pytest.raises(QueryError, match=f"Only read-only SELECT queries are allowed, not {kind}"):
        query_product(small_market, "member:M002", text)


def test_query_product_connection_is_locked(small_market):
    con = open_product(small_market, "member:M002")
    try:
        with pytest.raises(duckdb.Error, match="configuration has been locked"):
            con.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM policy")
    finally:
        con.close()


def test_query_linked_claims_are_the_regulators_only(small_market):
    with pytest.raises(QueryError, match="linked_claims does not exist"):
        query_product(small_market, "member:M002", "SELECT * FROM linked_claims")
    out = query_product(small_market, "regulator", "SELECT count(*) AS n FROM linked_claims", fmt="csv")
    assert out == "n\n3"


def test_query_product_writes_parquet_outside_the_database(small_market, tmp_path):
    target = tmp_path / "benchmark.parquet"
    assert query_product(small_market, "member:M002", "SELECT * FROM mart_benchmark", fmt="parquet",
                         output=target) == f"wrote {target}"
    assert pq.read_table(target).num_rows > 0


@pytest.mark.parametrize("audience, error, message", [
    ("member:M009", NotFound, "There is no product for member:M009"),
    ("members", QueryError, "Unknown audience 'members'"),
    ("member:../lake", QueryError, "Unknown audience"),
], ids=["no-such-member", "typo", "path"])
def test_query_audience_errors_say_how_to_list_without_naming_members(small_market, audience, error, message):
    with pytest.raises(error, match=message) as caught:
        query_product(small_market, audience, "SELECT 1")
    text = str(caught.value)
    assert not any(m in text for m in ("M001", "M002", "M003", "M004")), text   # whoever typed it may be any member
    if error is NotFound:
        assert "`insurshare products list`" in text


def test_query_audience_parses():
    assert (Audience.parse("member:M001").product, str(Audience.parse(" public "))) == ("member_M001", "public")
