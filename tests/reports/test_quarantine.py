"""Quarantined rows as CSV and XLSX: what the lake holds, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import json
import re

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
    assert values[0][:7] == ["source_row", "policy_no", "transaction_id", "rule_ids", "reasons", "how_to_fix",
                             "transaction_type"]
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


def _sent_row(scenario, name: str, source_row: int) -> dict:
    """Data row ``source_row`` (1 = the first row under the header) of the file the member sent."""
    with open(scenario.files / f"{name}.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))[source_row - 1]


@pytest.mark.parametrize(("name", "expected"), [
    ("m1_pol_q1", [
        ["source_row", "policy_no", "transaction_id", "rule_ids", "reasons", "how_to_fix"],
        ["51", "PBAD1", "TBAD1", "POL-CODE-region_code",
         "POL-CODE-region_code: region_code '999999' is not in code list region",
         "POL-CODE-region_code: Use a code of the 'region' code list; each submission report lists every code "
         "with its name under Code lists."],
        ["52", "PBAD2", "TBAD2", "POL-SAFE-product_name",
         "POL-SAFE-product_name: product_name starts with '=' (a spreadsheet formula)",
         "POL-SAFE-product_name: Remove the leading formula character from product_name."]]),
    ("m1_clm_q1", [
        ["source_row", "claim_no", "policy_no", "rule_ids", "reasons", "how_to_fix"],
        ["26", "C9999", "PNOPE", "CLM-D01", "CLM-D01: policy_no 'PNOPE' is not in the member's accepted policy data",
         "CLM-D01: Submit (or correct) the premium transactions of the policy first, then send the claims again."]]),
])
def test_quarantine_download_starts_with_the_row_number_and_the_member_business_keys(scenario, tmp_path, name,
                                                                                     expected):
    sid = scenario.ids[name]
    assert _export(scenario, sid, tmp_path / "rows.csv").exit_code == 0
    assert _export(scenario, sid, tmp_path / "rows.xlsx").exit_code == 0
    got = list(csv.reader(open(tmp_path / "rows.csv", encoding="utf-8")))
    assert [r[:6] for r in got] == expected
    sheet = [[c.value for c in row] for row in load_workbook(tmp_path / "rows.xlsx").active.iter_rows()]
    assert [r[:6] for r in sheet] == expected
    # the keys are those of the row the member sent at that row number; every other column follows once
    contract = load_contract(scenario.submission(name)["submission"]["dataset"])
    keys = list(contract.business_keys)
    for row in got[1:]:
        sent = _sent_row(scenario, name, int(row[0]))
        assert row[1:1 + len(keys)] == [sent[k] for k in keys]
    assert sorted(got[0]) == sorted(["source_row", "rule_ids", "reasons", "how_to_fix", *contract.column_names])
    # identifiers after them are the member's pseudonyms, full length
    idents = [got[0].index(c) for c in contract.identifier_columns if c in got[0]]
    assert idents and all(re.fullmatch(r"m:[0-9a-f]{64}", row[i]) for row in got[1:] for i in idents if row[i])


def test_report_samples_show_the_member_business_keys(scenario):
    rules = {r["id"]: r for r in scenario.submission("m1_pol_q1")["rules"]}
    assert rules["POL-CODE-region_code"]["samples"] == [{
        "source_row": 51, "reason": "region_code '999999' is not in code list region",
        "values": {"policy_no": "PBAD1", "transaction_id": "TBAD1", "region_code": "999999"}}]
    claim = scenario.submission("m1_clm_q1")["rules"][0]
    assert claim["samples"] == [{"source_row": 26, "reason": "policy_no 'PNOPE' is not in the member's accepted "
                                 "policy data", "values": {"claim_no": "C9999", "policy_no": "PNOPE"}}]
    html = scenario.built.submissions[scenario.ids["m1_pol_q1"]].read_text()
    assert ('<th class="n">row</th><th>policy_no</th><th>transaction_id</th><th>region_code</th><th>why</th>'
            in html)
    assert "each starts with its row number in your file (1 = the first row under the header) and your " \
           "policy_no, transaction_id, then what is wrong" in html
