"""Quarantined rows as CSV and XLSX: what the lake holds, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from pipelines.cli import main
from pipelines.contracts import load_contract
from pipelines.reports.pseudonyms import member_scoped_text
from pipelines.reports.quarantine import neutralise
from tests.conftest import resident_id
from tests.reports.conftest import FORMULA


@pytest.mark.parametrize(("value", "shown"), [
    ("=1+1", "'=1+1"), (FORMULA, "'" + FORMULA), ("+86 13812345678", "'+86 13812345678"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"), ("-5.00", "-5.00"), ("+12", "+12"), ("-1e3", "-1e3"), ("- 5", "'- 5"), ("abc", "abc"),
    ("", ""), (None, ""),
], ids=["formula", "hyperlink", "plus", "at", "tab", "negative", "signed", "exponent", "dash-text", "text",
        "empty", "null"])
def test_quarantine_neutralises_formulas_but_not_numbers(value, shown):
    assert neutralise(value) == shown


def _export(scenario, sid: str, to) -> object:
    runner = CliRunner()
    return runner.invoke(main, ["--home", str(scenario.settings.home), "quarantine", sid, "--to", str(to)],
                         catch_exceptions=False)


def _lake_rows(scenario, sid: str) -> list[tuple[int, list, dict]]:
    con = scenario.lake()
    return [(r[0], r[1], json.loads(r[2])) for r in con.execute(
        "SELECT source_row, rule_ids, record FROM lake.quarantine WHERE submission_id = ? ORDER BY source_row",
        [sid]).fetchall()]


def test_quarantine_csv_holds_the_lake_rows_pseudonymised(scenario, tmp_path):
    sid = scenario.ids["m1_pol_q1"]
    result = _export(scenario, sid, tmp_path / "rows.csv")
    assert result.exit_code == 0 and result.output == f"wrote 2 quarantined row(s) of {sid} to {tmp_path / 'rows.csv'}\n"
    rows = list(csv.DictReader(open(tmp_path / "rows.csv", encoding="utf-8")))
    lake = _lake_rows(scenario, sid)
    assert [(int(r["source_row"]), r["rule_ids"]) for r in rows] == [(n, "; ".join(ids)) for n, ids, _ in lake]
    assert [r["rule_ids"] for r in rows] == ["POL-CODE-region_code", "POL-SAFE-product_name"]
    idents = set(load_contract("policy").identifier_columns)
    con = scenario.lake()
    for got, (_, _, record) in zip(rows, lake, strict=True):
        plain = set(record) - idents - {"product_name"}
        assert {c: got[c] for c in plain} == {c: neutralise(record[c]) for c in plain}
        # identifiers: the member's own pseudonym of the lake's platform token, never the token
        assert {c: got[c] for c in idents} == {c: member_scoped_text(con, "M001", record[c]) for c in idents}
        assert got["insured_id"].startswith("m:") and resident_id() not in got.values()
    assert rows[1]["product_name"] == "'" + FORMULA and rows[1]["written_premium"] == "-5.00"
    assert (scenario.built.root / "submissions" / sid / "quarantine.csv").read_text() == \
        (tmp_path / "rows.csv").read_text()


def test_quarantine_xlsx_cells_are_text_never_formulas(scenario, tmp_path):
    sid = scenario.ids["m2_pol_q2"]
    assert _export(scenario, sid, tmp_path / "rows.xlsx").exit_code == 0
    sheet = load_workbook(tmp_path / "rows.xlsx").active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][:4] == ["source_row", "rule_ids", "reasons", "policy_no"]
    assert len(values) == 1 + 20 == 1 + len(_lake_rows(scenario, sid))
    assert {c.data_type for row in sheet.iter_rows() for c in row if c.value is not None} == {"s"}
    header = values[0]
    assert {r[header.index("region_code")] for r in values[1:]} == {"999999"}
    assert all(r[header.index("rule_ids")].startswith("POL-CODE-region_code") for r in values[1:])


def test_quarantine_xlsx_in_the_report_folder_neutralises_formulas(scenario):
    path = scenario.built.root / "submissions" / scenario.ids["m1_pol_q1"] / "quarantine.xlsx"
    sheet = load_workbook(path).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    product = rows[0].index("product_name")
    assert rows[2][product] == "'" + FORMULA and sheet.cell(3, product + 1).data_type == "s"


@pytest.mark.parametrize(("sid", "to", "message"), [
    ("M001-policy-2024Q1-v1", "rows.txt", "Cannot write quarantined rows as 'rows.txt'. Name the file .csv or .xlsx."),
    ("M009-policy-2024Q1-v1", "rows.csv", "Submission 'M009-policy-2024Q1-v1' does not exist."),
], ids=["bad-format", "unknown-submission"])
def test_quarantine_command_says_what_to_do(scenario, tmp_path, sid, to, message):
    result = CliRunner().invoke(main, ["--home", str(scenario.settings.home), "quarantine", sid,
                                       "--to", str(tmp_path / to)])
    assert result.exit_code == 1 and message in result.output
    assert not (tmp_path / to).exists()
