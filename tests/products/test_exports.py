"""Exports and triangles for an audience (issue 10, findings 6 and 13): a member's export holds
nothing its product withholds (nor ``max_member_share``), the lake's numbers need ``--as
regulator`` and say they are for the regulator only, and ``insurshare triangle`` shows the
public or a member the industry triangle as their product publishes it.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.products import open_product

KEY = ["metric", "grain", "period", "development", "line_of_business", "region_code"]


def run(settings, *args: str):
    return CliRunner().invoke(main, ["--home", str(settings.home), *args])


def product(settings, audience: str, sql: str) -> pd.DataFrame:
    con = open_product(settings, audience)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def lake(settings, sql: str) -> pd.DataFrame:
    from tests.marts.conftest import query

    return query(settings, sql)


def test_member_benchmark_export_is_the_members_product(market, tmp_path):
    target = tmp_path / "bench.parquet"
    result = run(market, "export", "benchmark", "--to", str(target), "--as", "member:M004")
    assert result.exit_code == 0, result.output
    got = pq.read_table(target).to_pandas()
    want = product(market, "member:M004", "SELECT * FROM mart_benchmark")
    assert result.output.strip() == f"wrote {len(want):,} rows of benchmark as published to member:M004 to {target}"
    assert "max_member_share" not in got.columns and set(got.columns) == set(want.columns)
    assert set(got.member_id) == {"M004"}
    merged = got.merge(want, on=KEY, suffixes=("", "_product"), how="outer", indicator=True)
    assert (merged["_merge"] == "both").all() and len(merged) == len(want)
    withheld = merged[merged["suppressed_product"]]
    assert len(withheld) > 50
    assert withheld["industry_value"].isna().all() and withheld["rank"].isna().all()
    # the lake's benchmark (what the old export wrote) has those industry values
    raw = lake(market, "SELECT * FROM lake.mart_benchmark WHERE member_id = 'M004'")
    leaked = withheld.merge(raw, on=KEY, suffixes=("", "_lake"))
    assert len(leaked) == len(withheld) and leaked["industry_value_lake"].notna().sum() > 50


@pytest.mark.parametrize("audience", ["member:M002", "public"])
def test_experience_export_withholds_what_the_product_withholds(market, tmp_path, audience):
    target = tmp_path / "xp.csv"
    result = run(market, "export", "experience", "--to", str(target), "--as", audience, "--scope", "industry",
                 "--grain", "year")
    assert result.exit_code == 0, result.output
    got = pd.read_csv(target, dtype={"period": str, "region_code": str})
    want = product(market, audience, "SELECT * FROM industry_experience WHERE grain = 'year'")
    assert len(got) == len(want) and "max_member_share" not in got.columns
    truth = lake(market, "SELECT * FROM lake.mart_experience WHERE scope = 'industry' AND grain = 'year'")
    rows = got.merge(truth, on=["period", "line_of_business", "region_code"], suffixes=("", "_lake"))
    hidden = 0
    for row in rows.itertuples():
        listed = dict(p.split(": ")[:2] for p in row.suppression.split("; ")) if isinstance(row.suppression, str) else {}
        for m in ("earned_premium", "incurred_loss", "claim_count"):
            if m in listed:
                hidden += 1
                assert math.isnan(getattr(row, m))
            else:
                assert getattr(row, m) == pytest.approx(float(getattr(row, f"{m}_lake")), abs=0.006)
    assert hidden > 10


def test_member_export_with_own_rows_holds_no_other_member(market, tmp_path):
    target = tmp_path / "tri.parquet"
    assert run(market, "export", "triangle", "--to", str(target), "--as", "member:M005").exit_code == 0
    got = pq.read_table(target).to_pandas()
    assert set(got.scope) == {"member", "industry"}
    assert set(got[got.scope == "member"].member_id) == {"M005"}
    industry = got[got.scope == "industry"]
    assert industry[industry.suppressed & industry.held_from_release.isna()]["value"].isna().all()


@pytest.mark.parametrize("args, message", [
    ([], "insurshare export needs an audience"),
    (["--as", "member:M001", "--member", "M002"], "--member M002 is not the audience member:M001"),
    (["--as", "public", "--scope", "member"], "The public product holds no member's rows."),
    (["--as", "member:M001", "--as-of", "1"], "--as-of reads the lake"),
])
def test_export_refusals(market, tmp_path, args, message):
    result = run(market, "export", "experience", "--to", str(tmp_path / "x.csv"), *args)
    assert result.exit_code == 1 and message in result.output
    assert not (tmp_path / "x.csv").exists()


def test_benchmark_export_refuses_the_public_and_the_old_member_filter(market, tmp_path):
    old = run(market, "export", "benchmark", "--to", str(tmp_path / "b.csv"), "--member", "M001")
    assert old.exit_code == 1 and "--as regulator" in old.output and "regulator only" in old.output
    public = run(market, "export", "benchmark", "--to", str(tmp_path / "b.csv"), "--as", "public")
    assert public.exit_code == 1 and "export it --as member:<M>" in public.output


def test_regulator_export_says_it_is_for_the_regulator(market, tmp_path):
    target = tmp_path / "b.csv"
    result = run(market, "export", "benchmark", "--to", str(target), "--member", "M001", "--as", "regulator")
    assert result.exit_code == 0, result.output
    assert "(for the regulator only: every member's rows and industry values before disclosure control" in result.output
    assert "max_member_share" in pd.read_csv(target).columns


def test_triangle_needs_an_audience(market):
    result = run(market, "triangle", "--line", "MCOM")
    assert result.exit_code == 1 and "needs an audience" in result.output and "--as regulator" in result.output


@pytest.mark.parametrize("audience", ["public", "member:M003"])
def test_triangle_as_published(market, audience):
    result = run(market, "triangle", "--line", "EPROP", "--measure", "incurred", "--grain", "quarter",
                 "--format", "json", "--as", audience)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    cells = product(market, audience, "SELECT origin, age, value::DOUBLE AS v, suppressed FROM industry_triangle "
                    "WHERE grain = 'quarter' AND line_of_business = 'EPROP' AND region_code = 'ALL' "
                    "AND measure = 'incurred'")
    assert doc["audience"] == audience and doc["withheld"] == int(cells.suppressed.sum())
    for row in cells.itertuples(index=False):
        shown = doc["values"][doc["origins"].index(row.origin)][doc["ages"].index(row.age)]
        assert shown is None if row.suppressed or math.isnan(row.v) else shown == row.v
    regulator = json.loads(run(market, "triangle", "--line", "EPROP", "--measure", "incurred", "--grain",
                                "quarter", "--format", "json", "--as", "regulator").output)
    assert regulator["audience"] == "regulator"
    grid = [v for r in regulator["values"] for v in r if v is not None]
    shown = [v for r in doc["values"] for v in r if v is not None]
    assert len(shown) < len(grid)                        # the regulator sees the cells the product withholds
    table = run(market, "triangle", "--line", "EPROP", "--as", audience).output
    assert f"-- as published to {audience}" in table.splitlines()[0] and "disclosure control:" in table


def test_triangle_all_lines_as_published_is_disclosure_controlled(market):
    """Line ALL (every line's claims summed) is published like any line: its cells pass the
    primary rules or are withheld, and the triangle command shows what the product holds."""
    cells = product(market, "regulator", "SELECT t.value::DOUBLE AS v, t.suppressed, d.contributors, d.max_share "
                    "FROM industry_triangle t JOIN disclosure_cells d USING (grain, line_of_business, region_code, "
                    "measure, origin, age) WHERE d.mart = 'triangle' AND line_of_business = 'ALL' AND NOT d.missing")
    assert len(cells) > 50
    published = cells[~cells.suppressed]
    assert ((published.contributors >= 3) | (published.contributors == 0)).all()
    assert (published.max_share.fillna(0) <= 0.5).all()
    result = run(market, "triangle", "--line", "ALL", "--measure", "paid", "--format", "json", "--as", "public")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["line"] == "ALL" and doc["audience"] == "public"
    regulator = json.loads(run(market, "triangle", "--line", "ALL", "--measure", "paid", "--format", "json",
                                "--as", "regulator").output)
    assert len([v for r in doc["values"] for v in r if v is not None]) <= len(
        [v for r in regulator["values"] for v in r if v is not None])


def test_triangle_member_sees_only_its_own(market):
    other = run(market, "triangle", "--line", "EPROP", "--as", "member:M001", "--member", "M002")
    assert other.exit_code == 1 and "a member sees only its own triangle" in other.output
    own = run(market, "triangle", "--line", "EPROP", "--as", "member:M001", "--member", "M001")
    assert own.exit_code == 0 and own.output.startswith("Member M001 paid triangle")
    knobs = run(market, "triangle", "--line", "EPROP", "--as", "public", "--tail", "1.05")
    assert knobs.exit_code == 1 and "for the regulator only" in knobs.output


def test_member_filter_keeps_the_members_own_rows(market, tmp_path):
    target = tmp_path / "own.csv"
    result = run(market, "export", "experience", "--to", str(target), "--as", "member:M001", "--member", "M001")
    assert result.exit_code == 0, result.output
    got = pd.read_csv(target)
    want = product(market, "member:M001", "SELECT count(*) AS n FROM mart_experience").n[0]
    assert set(got.scope) == {"member"} and set(got.member_id) == {"M001"} and len(got) == want


def test_public_experience_workbook_is_the_product_with_formats(market, tmp_path):
    import openpyxl

    target = tmp_path / "xp.xlsx"
    result = run(market, "export", "experience", "--to", str(target), "--as", "public", "--grain", "year")
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["experience", "about"] and book["experience"].freeze_panes == "A2"
    sheet = book["experience"]
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=2, values_only=True)]
    want = product(market, "public", "SELECT period, line_of_business, region_code, earned_premium::DOUBLE AS ep, "
                   "suppression FROM industry_experience WHERE grain = 'year'")
    assert len(rows) == len(want)
    got = {(r["period"], r["line_of_business"], r["region_code"]): r for r in rows}
    for row in want.itertuples(index=False):
        cell = got[(row.period, row.line_of_business, row.region_code)]
        assert cell["earned_premium"] == (None if math.isnan(row.ep) else pytest.approx(row.ep, rel=1e-15))
        assert cell["suppression"] == (row.suppression if isinstance(row.suppression, str) else None)
    first = dict(zip(header, sheet[2], strict=True))
    assert first["earned_premium"].number_format == "#,##0.00" and first["period_start"].is_date
    about = {r[0]: r[1] for r in book["about"].iter_rows(min_row=2, values_only=True)}
    assert about["audience"] == "public" and "disclosure-controlled" in about["note"]
