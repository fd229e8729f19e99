"""``insurshare build-marts``, ``triangle`` and ``export`` on a lake with built marts."""

from __future__ import annotations

import datetime as dt
import json

import openpyxl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from tests.marts.conftest import insert_rows, policy, query


def run(settings, *args: str):
    return CliRunner().invoke(main, ["--home", str(settings.home), *args], catch_exceptions=False)


def test_cli_triangle_json_equals_the_marts(mart_home):
    result = run(mart_home, "triangle", "--line", "EPROP", "--measure", "incurred", "--grain", "quarter",
                 "--member", "M002", "--format", "json", "--as", "regulator")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    cells = query(mart_home, "SELECT origin, age, value::DOUBLE AS v FROM lake.mart_triangle WHERE scope = 'member' "
                  "AND member_id = 'M002' AND grain = 'quarter' AND line_of_business = 'EPROP' "
                  "AND region_code = 'ALL' AND measure = 'incurred'")
    assert len(cells) == 78
    for row in cells.itertuples(index=False):
        assert doc["values"][doc["origins"].index(row.origin)][doc["ages"].index(row.age)] == row.v
    factors = query(mart_home, "SELECT development, ldf_volume FROM lake.mart_factors WHERE scope = 'member' "
                    "AND member_id = 'M002' AND grain = 'quarter' AND line_of_business = 'EPROP' "
                    "AND region_code = 'ALL' AND measure = 'incurred' AND age_to IS NOT NULL")
    assert doc["ldf"] == pytest.approx(dict(zip(factors.development, factors.ldf_volume, strict=True)), rel=1e-12)
    ults = query(mart_home, "SELECT origin, ultimate, ibnr FROM lake.mart_ultimates WHERE scope = 'member' "
                 "AND member_id = 'M002' AND grain = 'quarter' AND line_of_business = 'EPROP' "
                 "AND region_code = 'ALL' AND measure = 'incurred'")
    assert doc["ultimate"] == pytest.approx(dict(zip(ults.origin, ults.ultimate, strict=True)), rel=1e-12)
    assert doc["ibnr"] == pytest.approx(dict(zip(ults.origin, ults.ibnr, strict=True)), rel=1e-12, abs=1e-6)


def test_cli_triangle_table_shows_cells_factors_and_ultimates(mart_home):
    out = run(mart_home, "triangle", "--line", "MCOM", "--measure", "paid", "--as", "regulator").output
    assert out.startswith("Industry paid triangle, line MCOM, all provinces, year grain, lake snapshot")
    assert out.splitlines()[0].endswith("-- FOR THE REGULATOR ONLY")
    lines = out.splitlines()
    assert lines[2].split() == ["origin", "12", "24", "36", "latest", "cdf", "ultimate", "ibnr"]
    assert [ln.split()[0] for ln in lines[3:8]] == ["2022", "2023", "2024", "LDF", "CDF"]
    assert lines[5].split()[2:4] == ["NULL", "NULL"]  # 2024 has only its age-12 cell


def test_cli_triangle_csv_and_xlsx_hold_the_same_numbers(mart_home, tmp_path):
    csv_text = run(mart_home, "triangle", "--line", "MCOM", "--measure", "closed", "--format", "csv",
                   "--as", "regulator").output
    header, first = csv_text.splitlines()[:2]
    assert header == "origin,12,24,36,latest,cdf,ultimate,ibnr"
    book = tmp_path / "tri.xlsx"
    assert run(mart_home, "triangle", "--line", "MCOM", "--measure", "closed", "--format", "xlsx",
               "--output", str(book), "--as", "regulator").exit_code == 0
    wb = openpyxl.load_workbook(book)
    assert wb.sheetnames == ["triangle", "factors", "ultimates", "about"]
    row = [c.value for c in wb["triangle"][2]]
    assert [str(row[0])] + [float(x) for x in row[1:4]] == [first.split(",")[0]] + [float(x) for x in first.split(",")[1:4]]


def test_cli_triangle_xlsx_needs_an_output_file(mart_home):
    result = CliRunner().invoke(main, ["--home", str(mart_home.home), "triangle", "--line", "MCOM", "--format", "xlsx",
                                       "--as", "regulator"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: The xlsx format writes a workbook. Add --output FILE.xlsx."


def test_cli_triangle_of_a_line_without_claims_says_which_lines_have_some(mart_home):
    result = CliRunner().invoke(main, ["--home", str(mart_home.home), "triangle", "--line", "HULL", "--as", "regulator"])
    assert result.exit_code == 1
    assert "No claims of line HULL in the lake at snapshot" in result.output
    assert "Lines with claims: EPROP, MCOM." in result.output


@pytest.mark.parametrize("suffix", ["csv", "parquet", "xlsx"])
def test_cli_export_writes_the_filtered_rows(mart_home, tmp_path, suffix):
    """Industry paid factors by year over all provinces: lines EPROP, MCOM and ALL, three ages each."""
    target = tmp_path / f"factors.{suffix}"
    result = run(mart_home, "export", "factors", "--to", str(target), "--scope", "industry", "--grain", "year",
                 "--measure", "paid", "--region", "ALL", "--as", "regulator")
    want = query(mart_home, "SELECT count(*) AS n FROM lake.mart_factors WHERE scope = 'industry' AND grain = 'year' "
                 "AND measure = 'paid' AND region_code = 'ALL'").n[0]
    assert want == 9 and result.output.startswith(f"wrote {want} rows of mart_factors to {target} (for the regulator only")
    if suffix == "parquet":
        table = pq.read_table(target)
        assert table.num_rows == want and set(table.column("grain").to_pylist()) == {"year"}
    elif suffix == "csv":
        assert len(target.read_text().splitlines()) == want + 1
    else:
        sheet = openpyxl.load_workbook(target).active
        assert sheet.max_row == want + 1 and sheet.cell(1, 1).value == "scope"


def test_cli_export_refuses_a_filter_the_mart_lacks(mart_home, tmp_path):
    result = CliRunner().invoke(main, ["--home", str(mart_home.home), "export", "experience", "--to",
                                       str(tmp_path / "x.csv"), "--measure", "paid", "--as", "regulator"])
    assert result.exit_code == 1 and "The mart mart_experience has no column 'measure' to filter on." in result.output


def test_cli_export_before_any_build_says_how_to_build(fresh_home, tmp_path):
    insert_rows(fresh_home, "policy", [policy("M001", dt.date(2024, 1, 1), dt.date(2025, 1, 1), 100.0)])
    result = CliRunner().invoke(main, ["--home", str(fresh_home.home), "export", "triangle", "--to",
                                       str(tmp_path / "t.csv"), "--as", "regulator"])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: The mart mart_triangle is not built in the lake at this snapshot. "
                                     "Build it with `insurshare build-marts` (or pick a later --as-of).")


def test_cli_build_marts_reports_rows_then_up_to_date(fresh_home):
    insert_rows(fresh_home, "policy", [policy("M001", dt.date(2024, 1, 1), dt.date(2025, 1, 1), 100.0)])
    first = run(fresh_home, "build-marts").output
    assert first.startswith("built marts from snapshot 2 in ") and "mart_experience 6, mart_triangle 0," in first
    assert run(fresh_home, "build-marts").output.strip() == (
        "marts are up to date: built from snapshot 2 (use --force to build again)")


def test_cli_triangle_all_lines_sums_every_line(mart_home):
    """``--line ALL`` (it used to say "No claims of line ALL"): every line's cells summed."""
    result = run(mart_home, "triangle", "--line", "ALL", "--measure", "paid", "--format", "json", "--as", "regulator")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["line"] == "ALL"
    lines = [json.loads(run(mart_home, "triangle", "--line", line, "--measure", "paid", "--format", "json",
                            "--as", "regulator").output) for line in ("MCOM", "EPROP")]
    for i, origin in enumerate(doc["origins"]):
        for j, age in enumerate(doc["ages"]):
            parts = [d["values"][d["origins"].index(origin)][d["ages"].index(age)]
                     for d in lines if origin in d["origins"] and age in d["ages"]]
            present = [p for p in parts if p is not None]
            assert doc["values"][i][j] == (pytest.approx(sum(present), rel=1e-12) if present else None)
    assert query(mart_home, "SELECT count(*) AS n FROM lake.mart_factors WHERE line_of_business = 'ALL' "
                 "AND scope = 'member'").n[0] > 0
