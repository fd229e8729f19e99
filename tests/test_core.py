"""The core: SQL quoting checked by DuckDB reading it back, the domain words, and the Lake object."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from pipelines import audit
from pipelines.core.domain import DECIDED, WAITING, RuleKind, SubmissionStatus, format_of, parse_period
from pipelines.core.sql import ident, literal
from pipelines.errors import SubmissionError
from pipelines.lake import Lake

NASTY = ["plain", "O'Brien", "''", "a\"b", "x'); DROP TABLE t; --", "back\\slash", "换行\n和\t制表", "", " "]


@pytest.mark.parametrize("text", NASTY)
def test_a_literal_reads_back_as_the_same_text(text):
    con = duckdb.connect()
    assert con.execute(f"SELECT {literal(text)}").fetchone()[0] == text


@pytest.mark.parametrize("value", [0, -7, 2**62, 1.25, -0.5, Decimal("1234.50"), dt.date(2024, 2, 29),
                                   dt.datetime(2024, 3, 31, 23, 59, 58), True, False, None])
def test_a_literal_reads_back_as_the_same_value(value):
    """Floats come back as DuckDB reads ``1.25``: an exact DECIMAL of the same value."""
    got = duckdb.connect().execute(f"SELECT {literal(value)}").fetchone()[0]
    if value is None:
        assert got is None
    else:
        assert got == value and type(got) is (Decimal if isinstance(value, float) else type(value))


def test_non_finite_numbers_are_not_pasted_as_words():
    """``repr(float('nan'))`` is ``nan``, a column name to SQL: it becomes a string instead."""
    assert literal(float("nan")) == "'nan'" and literal(float("inf")) == "'inf'"


@pytest.mark.parametrize("name", NASTY[:-2] + ["select", "Mixed Case"])
def test_an_identifier_names_exactly_that_column(name):
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({ident(name)} INTEGER)")
    assert con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 't'").fetchone()[0] == name


def test_periods():
    q = parse_period(" 2024q2 ")
    assert (q.label, q.grain, q.start, q.end) == ("2024Q2", "quarter", dt.date(2024, 4, 1), dt.date(2024, 6, 30))
    y = parse_period("2023")
    assert (y.grain, y.start, y.end) == ("year", dt.date(2023, 1, 1), dt.date(2023, 12, 31))
    for bad in ("2024Q5", "24Q1", "0000", "2024-Q1", None):
        with pytest.raises(SubmissionError):
            parse_period(bad)


def test_statuses_are_the_words_in_the_lake(settings):
    assert [s.value for s in WAITING] == ["received", "held"]
    assert {s.value for s in DECIDED} == {"accepted", "rejected", "superseded"}
    assert not SubmissionStatus.HELD.settled and SubmissionStatus.REFUSED.settled
    assert SubmissionStatus.ACCEPTED.sql == "'accepted'"
    with Lake(settings) as lake:   # the enum binds as its text and compares equal to the stored text
        assert lake.execute("SELECT ? = 'superseded'", [SubmissionStatus.SUPERSEDED]).fetchone()[0] is True


def test_rule_kinds_are_the_contract_words():
    assert RuleKind("exists_in") is RuleKind.EXISTS_IN and RuleKind.EXISTS_IN.cross_dataset
    assert not RuleKind.PATTERN.cross_dataset
    with pytest.raises(ValueError):
        RuleKind("regex")


def test_file_formats():
    assert [format_of(n) for n in ("a.CSV", "b.txt", "c.parquet", "d.xlsx", "e.xls", "f")] == \
        ["csv", "csv", "parquet", "xlsx", None, None]


def test_lake_closes_its_connection_and_writes_one_audited_snapshot(settings):
    with Lake(settings, read_only=False) as lake:
        before = lake.execute("SELECT count(*) FROM lake.audit_log").fetchone()[0]
        n, snapshot = lake.write(lambda c: (audit.append(c, "test", "core", {"n": 1}), 41)[1], "core test")
        con = lake.con
    assert n == 41 and lake.con is None
    with pytest.raises(duckdb.ConnectionException):
        con.execute("SELECT 1")
    with Lake(settings) as lake:
        after, last = lake.execute("SELECT count(*), max(seq) FROM lake.audit_log").fetchone()
        kind = lake.execute("SELECT kind FROM lake.audit_log WHERE seq = ?", [last]).fetchone()[0]
        message = lake.execute("SELECT commit_message FROM ducklake_snapshots('lake') WHERE snapshot_id = ?",
                               [snapshot]).fetchone()[0]
    assert (after - before, kind, message) == (1, "test", "core test")


def test_a_read_only_lake_refuses_a_write(settings):
    with Lake(settings) as lake, pytest.raises(duckdb.Error):
        lake.execute("DELETE FROM lake.members")
