"""Export and triangle workbooks read like an actuary's exhibit (issue 13): named sheets, a frozen
header, column widths, number formats (amounts with thousands separators, factors to 4 places,
counts whole), dates stored as dates, unrounded values equal to the mart's numbers."""

from __future__ import annotations

import datetime as dt
import json

import openpyxl
import pyarrow as pa
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.marts.workbook import AMOUNT, DATE, FACTOR, NUMBER, RATIO, TIMESTAMP, WHOLE, column_format
from tests.marts.conftest import query


def run(settings, *args: str):
    return CliRunner().invoke(main, ["--home", str(settings.home), *args], catch_exceptions=False)


def _rows(sheet) -> list[dict]:
    header = [c.value for c in sheet[1]]
    return [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2, values_only=True)]


@pytest.mark.parametrize("name, kind, expected", [
    ("ldf_volume", pa.float64(), FACTOR), ("cdf", pa.float64(), FACTOR), ("tail", pa.float64(), FACTOR),
    ("loss_ratio", pa.float64(), RATIO), ("max_member_share", pa.float64(), RATIO),
    ("earned_premium", pa.decimal128(38, 2), AMOUNT), ("severity", pa.float64(), AMOUNT),
    ("claim_count", pa.int64(), WHOLE), ("written_premium", pa.decimal128(38, 0), WHOLE),
    ("age", pa.int32(), NUMBER), ("source_snapshot", pa.int64(), NUMBER),
    ("period_start", pa.date32(), DATE), ("built_at", pa.timestamp("us"), TIMESTAMP),
    ("line_of_business", pa.string(), None), ("suppressed", pa.bool_(), None)])
def test_workbook_number_format_of_each_kind_of_column(name, kind, expected):
    assert column_format(name, kind) == expected


def test_export_workbook_has_named_sheets_formats_dates_and_the_marts_values(mart_home, tmp_path):
    target = tmp_path / "xp.xlsx"
    result = run(mart_home, "export", "experience", "--to", str(target), "--scope", "industry", "--grain", "quarter",
                 "--as", "regulator")
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["experience", "about"]
    sheet = book["experience"]
    assert sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["scope", "member_id", "grain"] and all(c.font.bold for c in sheet[1])
    width = {h: sheet.column_dimensions[openpyxl.utils.get_column_letter(i)].width for i, h in enumerate(header, 1)}
    assert width["line_of_business"] >= len("line_of_business") and width["period_start"] >= len("2024-01-01")
    cells = {h: c for h, c in zip(header, sheet[2], strict=True)}
    assert cells["earned_premium"].number_format == AMOUNT and cells["claim_count"].number_format == WHOLE
    assert cells["loss_ratio"].number_format == RATIO
    start = cells["period_start"]
    assert start.is_date and start.number_format == DATE and start.value.time() == dt.time(0)
    want = query(mart_home, "SELECT period, line_of_business, region_code, earned_premium::DOUBLE AS earned, "
                 "loss_ratio, claim_count, period_start FROM lake.mart_experience "
                 "WHERE scope = 'industry' AND grain = 'quarter'")
    got = {(r["period"], r["line_of_business"], r["region_code"]): r for r in _rows(sheet)}
    assert len(got) == len(want) > 20
    for row in want.itertuples(index=False):
        cell = got[(row.period, row.line_of_business, row.region_code)]
        assert cell["earned_premium"] == row.earned                     # the full value, not a rounded one
        assert cell["claim_count"] == row.claim_count
        # unrounded: to the 16 significant digits a cell keeps (openpyxl writes %.16g; Excel shows 15)
        assert cell["loss_ratio"] == (None if row.loss_ratio != row.loss_ratio else pytest.approx(row.loss_ratio,
                                                                                                   rel=1e-15))
        assert cell["period_start"].date() == row.period_start.date()
    assert any(r["loss_ratio"] is not None and round(r["loss_ratio"], 3) != r["loss_ratio"] for r in got.values())
    about = {r["field"]: r["value"] for r in _rows(book["about"])}
    assert about["mart"] == "mart_experience" and about["filters"] == "scope = industry, grain = quarter"
    assert "regulator only" in about["note"]


def test_triangle_workbook_reads_like_an_exhibit(mart_home, tmp_path):
    args = ["triangle", "--line", "MCOM", "--measure", "paid", "--as", "regulator"]
    doc = json.loads(run(mart_home, *args, "--format", "json").output)
    target = tmp_path / "tri.xlsx"
    assert run(mart_home, *args, "--format", "xlsx", "--output", str(target)).exit_code == 0
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["triangle", "factors", "ultimates", "about"]
    sheet = book["triangle"]
    assert sheet.freeze_panes == "A2"
    ages = [str(a) for a in doc["ages"]]
    assert ages == ["12", "24", "36"]
    assert [c.value for c in sheet[1]] == ["Accident year", *ages, "Latest", "CDF to ultimate", "Ultimate", "IBNR"]
    for i, origin in enumerate(doc["origins"], start=2):
        row = [c for c in sheet[i]]
        assert row[0].value == origin
        for j, value in enumerate(doc["values"][i - 2], start=1):
            if value is None:
                assert row[j].value is None
            else:
                assert row[j].value == pytest.approx(value, rel=1e-15) and row[j].number_format == AMOUNT
        assert row[len(ages) + 3].value == pytest.approx(doc["ultimate"][origin], rel=1e-15)
    n = len(doc["origins"]) + 1
    labels = [c.value for c in sheet[n + 2]]
    assert labels[:len(ages) + 1] == ["Development", "12-24", "24-36", "Tail"]
    ldf = [c for c in sheet[n + 3]]
    assert ldf[0].value == "LDF (volume average)"
    assert [c.value for c in ldf[1:3]] == pytest.approx([doc["ldf"]["12-24"], doc["ldf"]["24-36"]], rel=1e-15)
    assert ldf[3].value == doc["tail"] and all(c.number_format == FACTOR for c in ldf[1:4])
    cdf = [c for c in sheet[n + 4]]
    assert cdf[0].value == "CDF to ultimate"
    assert [c.value for c in cdf[1:4]] == pytest.approx([doc["cdf"][f"{a}-Ult"] for a in ages], rel=1e-15)
    factors = _rows(book["factors"])
    assert [r["Development"] for r in factors] == ["12-24", "24-36", "Tail"]
    assert [r["CDF to ultimate"] for r in factors] == pytest.approx([doc["cdf"][f"{a}-Ult"] for a in ages], rel=1e-15)
    assert book["factors"]["B2"].number_format == FACTOR and "Ult" not in str(list(book["factors"].values))
    ultimates = _rows(book["ultimates"])
    assert {r["Accident year"]: r["IBNR"] for r in ultimates} == pytest.approx(doc["ibnr"], rel=1e-15)


def test_triangle_workbook_of_counts_shows_whole_numbers(mart_home, tmp_path):
    target = tmp_path / "closed.xlsx"
    assert run(mart_home, "triangle", "--line", "MCOM", "--measure", "closed", "--format", "xlsx",
               "--output", str(target), "--as", "regulator").exit_code == 0
    assert openpyxl.load_workbook(target)["triangle"]["B2"].number_format == WHOLE


def test_workbook_text_is_never_a_formula(tmp_path):
    from pipelines.marts.workbook import Sheet, write_workbook

    target = tmp_path / "t.xlsx"
    write_workbook(target, [Sheet("rows", ["note", "n"], [["=HYPERLINK(\"http://x\")", 1.5]], {"n": AMOUNT})])
    cell = openpyxl.load_workbook(target)["rows"]["A2"]
    assert cell.data_type == "s" and cell.value == "=HYPERLINK(\"http://x\")"
