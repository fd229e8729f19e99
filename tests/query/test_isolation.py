"""What a query can see and change: nothing written, one member's rows only through
``--as member:X``, and the lake as it was at a snapshot with ``--as-of``.

The sandbox's refusals of file access and maintenance are in ``test_sandbox.py``; here every
expectation is computed from the rows the fixtures wrote, not from the platform's answers.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.config import Settings
from pipelines.errors import QueryError
from pipelines.products import query_product
from pipelines.query import run_query
from tests.marts.conftest import insert_rows, policy
from tests.products.conftest import SMALL_CLAIMS, SMALL_PREMIUM
from tests.query.test_sandbox import fingerprint

MEMBERS = sorted({m for m, _ in SMALL_PREMIUM})


def ask(settings: Settings, audience: str, sql: str) -> list[dict]:
    if audience == "lake":
        return json.loads(run_query(settings, sql, fmt="json"))
    return json.loads(query_product(settings, audience, sql, fmt="json"))


def own_premium(member: str) -> float:
    """A member's written premium in the fixture: each policy plus its endorsement of a tenth."""
    return round(sum(p * 1.1 for (m, _), p in SMALL_PREMIUM.items() if m == member), 2)


# -- read-only ---------------------------------------------------------------------------------

WRITES = {
    "insert": ("INSERT INTO policy SELECT * FROM policy", "not INSERT"),
    "update": ("UPDATE policy SET written_premium = 0", "not UPDATE"),
    "delete": ("DELETE FROM policy", "not DELETE"),
    "create": ("CREATE TABLE stolen AS SELECT * FROM policy", "not CREATE"),
    "drop": ("DROP TABLE policy", "not DROP"),
    "alter": ("ALTER TABLE policy RENAME TO p2", "not ALTER"),
    "create-view": ("CREATE VIEW v AS SELECT 1", "not CREATE"),
    "select-then-delete": ("SELECT 1; DELETE FROM policy", "Give exactly one statement."),
    "delete-then-select": ("DELETE FROM policy; SELECT 1", "Give exactly one statement."),
}


@pytest.mark.parametrize("audience", ["lake", "member:M002"])
@pytest.mark.parametrize("write", WRITES, ids=list(WRITES))
def test_a_query_writes_nothing(market, audience, write):
    sql, message = WRITES[write]
    before = fingerprint(market)
    with pytest.raises(QueryError) as caught:
        ask(market, audience, sql)
    assert message in str(caught.value)
    assert fingerprint(market) == before


# -- one member's rows -------------------------------------------------------------------------


@pytest.mark.parametrize("member", ["M002", "M004"])    # three provinces and two claims; one and one
def test_a_member_sees_its_own_rows_and_no_other(market, member):
    audience = f"member:{member}"
    columns = ask(market, audience, "SELECT table_name, column_name FROM information_schema.columns")
    with_member = sorted({c["table_name"] for c in columns if c["column_name"] == "member_id"})
    assert {"policy", "claim", "submissions"} <= set(with_member)
    seen = " UNION ALL ".join(f"SELECT DISTINCT '{t}' AS t, member_id FROM {t}" for t in with_member)
    got = ask(market, audience, f"""
        WITH seen AS ({seen})
        SELECT (SELECT count(*) FROM policy) AS n,
               (SELECT sum(written_premium) FROM policy)::DOUBLE AS premium,
               (SELECT count(DISTINCT claim_no) FROM claim) AS claims,
               (SELECT list(DISTINCT member_id ORDER BY member_id) FROM seen) AS members""")[0]
    provinces = sum(1 for m, _ in SMALL_PREMIUM if m == member)
    assert (got["n"], round(got["premium"], 2), got["claims"], got["members"]) == (
        2 * provinces, own_premium(member), sum(1 for m, _ in SMALL_CLAIMS if m == member), [member])


def test_the_lake_holds_every_members_rows(market):
    """The figures above are a member's share of these, so a leak would have shown."""
    rows = ask(market, "lake", "SELECT member_id, count(*) AS n, sum(written_premium)::DOUBLE AS premium "
                               "FROM policy GROUP BY ALL ORDER BY member_id")
    assert [(r["member_id"], r["n"], round(r["premium"], 2)) for r in rows] == [
        (m, 2 * sum(1 for x, _ in SMALL_PREMIUM if x == m), own_premium(m)) for m in MEMBERS]


@pytest.mark.parametrize("sql, message", [
    ("SELECT * FROM lake.policy", 'Table with name "lake.policy" does not exist'),
    ("SELECT * FROM member_M001.policy", 'Table with name "member_M001.policy" does not exist'),
    ("SELECT * FROM regulator.policy", 'Table with name "regulator.policy" does not exist'),
    ("SELECT * FROM linked_claims", "Table with name linked_claims does not exist"),
], ids=["lake", "other-member", "regulator", "linked-claims"])
def test_a_member_cannot_name_another_catalog(market, sql, message):
    with pytest.raises(QueryError) as caught:
        query_product(market, "member:M002", sql)
    assert message in str(caught.value)
    assert str(caught.value).endswith("A product reads only its own tables; list them with "
                                      "`insurshare products show AUDIENCE`.")


def test_a_member_product_is_one_database(market):
    rows = ask(market, "member:M002", "SELECT database_name FROM duckdb_databases() WHERE NOT internal")
    assert rows == [{"database_name": "member_M002"}]


def test_cli_query_as_a_member_prints_its_rows_only(market):
    result = CliRunner().invoke(main, ["--home", str(market.home), "query", "--as", "member:M002", "--format",
                                       "csv", "SELECT member_id, count(*) AS n FROM policy GROUP BY ALL"])
    assert result.exit_code == 0, result.output
    assert result.output == "member_id,n\nM002,6\n"


def test_cli_query_as_a_member_has_no_snapshots(market):
    result = CliRunner().invoke(main, ["--home", str(market.home), "query", "--as", "member:M002", "--as-of", "1",
                                       "SELECT count(*) FROM policy"])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: --as-of reads the lake; a product holds one snapshot "
                                     "(see `insurshare products list`).")


# -- snapshots ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Settings, int, int, dt.datetime]:
    """A lake written twice: three policies of M001, then two of M002 (and the time between)."""
    settings = Settings(home=tmp_path_factory.mktemp("history") / "home")
    d = dt.date(2024, 1, 1)
    first = insert_rows(settings, "policy", [policy("M001", d, dt.date(2025, 1, 1), 100.0 * i) for i in (1, 2, 3)])
    between = dt.datetime.now(dt.UTC)
    second = insert_rows(settings, "policy", [policy("M002", d, dt.date(2025, 1, 1), 1000.0) for _ in range(2)])
    return settings, first, second, between


SUMS = "SELECT member_id, count(*) AS n, sum(written_premium)::DOUBLE AS premium FROM policy GROUP BY ALL ORDER BY 1"


def test_as_of_a_snapshot_reads_the_lake_as_it_was(history):
    settings, first, second, _ = history
    assert second > first
    m001 = {"member_id": "M001", "n": 3, "premium": 600.0}
    m002 = {"member_id": "M002", "n": 2, "premium": 2000.0}
    assert json.loads(run_query(settings, SUMS, fmt="json", as_of=str(first))) == [m001]
    assert json.loads(run_query(settings, SUMS, fmt="json", as_of=str(second))) == [m001, m002]
    assert json.loads(run_query(settings, SUMS, fmt="json")) == [m001, m002]


def test_as_of_a_time_reads_the_last_snapshot_before_it(history):
    settings, _, _, between = history
    assert json.loads(run_query(settings, SUMS, fmt="json", as_of=between.isoformat())) == [
        {"member_id": "M001", "n": 3, "premium": 600.0}]
    with pytest.raises(QueryError, match="The lake has no snapshot at or before 2000-01-01"):
        run_query(settings, SUMS, as_of="2000-01-01")
    with pytest.raises(QueryError, match="--as-of 'yesterday' is neither a snapshot id nor an ISO timestamp"):
        run_query(settings, SUMS, as_of="yesterday")


def test_cli_as_of_reads_the_older_snapshot(history):
    settings, first, _, _ = history
    result = CliRunner().invoke(main, ["--home", str(settings.home), "query", "--as-of", str(first), "--format",
                                       "csv", "SELECT count(*) AS n FROM policy"])
    assert result.exit_code == 0, result.output
    assert result.output == "n\n3\n"
