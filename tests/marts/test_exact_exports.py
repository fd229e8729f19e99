"""A factor read back from every machine format is the mart's float, bit for bit, and a DECIMAL
comes back with all its digits (``pipelines.core.exact``).

The factor picked is the mart's LDF with the longest decimal text, so that any rounding (pandas'
``to_json`` kept 10 decimals; openpyxl writes ``%.16g``) changes it.
"""

from __future__ import annotations

import csv
import decimal
import io
import json

import openpyxl
import pyarrow.parquet as pq
import pytest

from pipelines.marts.export import export_mart
from pipelines.marts.formats import format_report
from pipelines.marts.reserving import triangle_report
from pipelines.query import run_query
from tests.marts.conftest import query

KEY = ("scope = 'industry' AND grain = 'quarter' AND line_of_business = 'MCOM' AND region_code = 'ALL' "
       "AND measure = 'paid'")
FACTOR_SQL = (f"SELECT development, ldf_volume FROM lake.mart_factors WHERE {KEY} AND age_to IS NOT NULL "
              "ORDER BY length(CAST(ldf_volume AS VARCHAR)) DESC, development LIMIT 1")


@pytest.fixture(scope="module")
def factor(mart_home) -> tuple[str, float]:
    """(development, LDF) of the mart's factor with the longest text."""
    row = query(mart_home, FACTOR_SQL).iloc[0]
    value = float(row.ldf_volume)
    assert len(repr(value)) > 14, "the factor must have more digits than a rounding keeps"
    return str(row.development), value


def same_float(got: object, want: float) -> bool:
    return isinstance(got, float) and got.hex() == want.hex()


def _sandbox_sql(development: str) -> str:
    return (f"SELECT ldf_volume FROM mart_factors WHERE {KEY} AND development = '{development}'")


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_exact_query_text_formats_give_back_the_factor(mart_home, factor, fmt):
    development, want = factor
    text = run_query(mart_home, _sandbox_sql(development), fmt=fmt)
    got = json.loads(text)[0]["ldf_volume"] if fmt == "json" else float(text.splitlines()[1])
    assert same_float(got, want), (got, want)


def test_exact_query_parquet_gives_back_the_factor(mart_home, factor, tmp_path):
    development, want = factor
    run_query(mart_home, _sandbox_sql(development), fmt="parquet", output=tmp_path / "f.parquet")
    assert same_float(pq.read_table(tmp_path / "f.parquet").column("ldf_volume").to_pylist()[0], want)


def _exported(settings, path) -> list[dict]:
    filters = {"scope": "industry", "grain": "quarter", "line_of_business": "MCOM", "region_code": "ALL",
               "measure": "paid"}
    export_mart(settings, "factors", path, filters)
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    sheet = openpyxl.load_workbook(path, read_only=True)["factors"]
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_exact_export_gives_back_the_factor(mart_home, factor, tmp_path, suffix):
    development, want = factor
    row = next(r for r in _exported(mart_home, tmp_path / f"factors{suffix}") if r["development"] == development)
    got = float(row["ldf_volume"]) if suffix == ".csv" else row["ldf_volume"]
    assert same_float(got, want), (got, want)


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx"])
def test_exact_triangle_report_gives_back_the_factor(mart_home, factor, tmp_path, fmt):
    development, want = factor
    report = triangle_report(mart_home, "MCOM", "paid", grain="quarter")
    assert same_float(report.ldf[development], want)
    out = tmp_path / f"tri.{fmt}"
    format_report(report, fmt, out)
    age = development.split("-")[0]
    if fmt == "json":
        got = json.loads(out.read_text(encoding="utf-8"))["ldf"][development]
    elif fmt == "csv":
        row = next(r for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))) if r["origin"] == "LDF")
        got = float(row[age])
    else:
        rows = list(openpyxl.load_workbook(out, read_only=True)["factors"].iter_rows(values_only=True))
        got = next(r[1] for r in rows if r[0] == development)
    assert same_float(got, want), (got, want)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_exact_query_keeps_every_digit_of_a_decimal(mart_home, fmt):
    sql = ("SELECT CAST('12345678901234567.25' AS DECIMAL(38, 2)) AS big, CAST(1234.5 AS DECIMAL(18, 2)) AS cents, "
           "CAST(0 AS DECIMAL(38, 10)) AS zero")
    text = run_query(mart_home, sql, fmt=fmt)
    if fmt == "json":
        assert '"big": 12345678901234567.25' in text        # a number, not a string
        row = json.loads(text, parse_float=decimal.Decimal)[0]
    else:
        row = next(csv.DictReader(io.StringIO(text)))
    assert [decimal.Decimal(str(row[k])) for k in ("big", "cents", "zero")] == [
        decimal.Decimal("12345678901234567.25"), decimal.Decimal("1234.50"), decimal.Decimal("0E-10")]
    assert ("1234.50" in text) and ("0.0000000000" in text)                     # the scale kept


def test_exact_python_api_gives_back_the_factor_and_decimal_digits(mart_home, factor):
    from pipelines import api

    development, want = factor
    frame = api.factors(settings=mart_home, scope="industry", grain="quarter", line_of_business="MCOM",
                        region_code="ALL", measure="paid")
    assert same_float(float(frame.set_index("development").ldf_volume[development]), want)
    exact = api.mart("triangle", settings=mart_home, exact=True, scope="industry", grain="year",
                     line_of_business="MCOM", region_code="ALL", measure="paid")
    want_values = query(mart_home, "SELECT CAST(value AS VARCHAR) AS v FROM lake.mart_triangle WHERE scope = "
                        "'industry' AND grain = 'year' AND line_of_business = 'MCOM' AND region_code = 'ALL' "
                        "AND measure = 'paid' ORDER BY origin_start, age").v.tolist()
    assert [str(v) for v in exact.value] == want_values
    assert all(isinstance(v, decimal.Decimal) for v in exact.value)
