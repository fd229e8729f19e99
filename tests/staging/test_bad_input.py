"""Bad files: a clear verdict naming the file (and row and column), the raw file archived,
nothing published but the submission's record and quarantine."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import archive
from tests.conftest import policy_row, submit_and_process, write_csv


def _lake_state(lake, sid):
    con = lake()
    try:
        status, reasons, sha = con.execute(
            "SELECT status, verdict_reasons, sha256 FROM lake.submissions WHERE submission_id = ?",
            [sid]).fetchone()
        published = con.execute("SELECT count(*) FROM lake.policy").fetchone()[0]
        return status, " ".join(reasons or []), sha, published
    finally:
        con.close()


def _expect_rejected(settings, lake, path, check_id, *words, **kwargs):
    outcome = submit_and_process(settings, path, **kwargs)
    status, reasons, sha, published = _lake_state(lake, outcome.submission_id)
    assert (outcome.status, status, published) == ("rejected", "rejected", 0)
    assert reasons.startswith(check_id), reasons
    for word in (repr(path.name), *words):
        assert word in reasons
    assert archive.restore(settings, sha, path.with_suffix(".back")).read_bytes() == path.read_bytes()
    return reasons


def test_bad_input_utf16_is_refused_as_wrong_encoding(settings, lake, tmp_path):
    path = write_csv(tmp_path / "p.csv", [policy_row()], encoding="utf-16")
    _expect_rejected(settings, lake, path, "SUB-ENCODING", "UTF-8 or GB18030")


def test_bad_input_declared_encoding_that_does_not_fit(settings, lake, tmp_path):
    path = write_csv(tmp_path / "p.csv", [policy_row()], encoding="gb18030")
    _expect_rejected(settings, lake, path, "SUB-ENCODING", "line 2", encoding="utf-8")


def test_bad_input_gb18030_is_read_when_detected(settings, lake, tmp_path):
    path = write_csv(tmp_path / "p.csv", [policy_row(product_name="机动车商业保险（2020版）")], encoding="gb18030")
    outcome = submit_and_process(settings, path)
    assert outcome.status == "accepted"
    con = lake()
    assert con.execute("SELECT product_name FROM lake.policy").fetchone()[0] == "机动车商业保险（2020版）"


def test_bad_input_missing_column_is_named(settings, lake, tmp_path):
    row = policy_row()
    del row["accounting_date"]
    path = write_csv(tmp_path / "p.csv", [row])
    _expect_rejected(settings, lake, path, "SUB-COLUMNS-MISSING", "accounting_date", "schemas/policy.yaml")


def test_bad_input_extra_column_is_named(settings, lake, tmp_path):
    path = write_csv(tmp_path / "p.csv", [{**policy_row(), "agent_name": "x"}])
    _expect_rejected(settings, lake, path, "SUB-COLUMNS-EXTRA", "agent_name")


def test_bad_input_repeated_column_is_named(settings, lake, tmp_path):
    row = policy_row()
    header = list(row) + ["channel"]
    path = tmp_path / "p.csv"
    path.write_text(",".join(header) + "\n" + ",".join(row.values()) + ",AGENT\n", encoding="utf-8")
    _expect_rejected(settings, lake, path, "SUB-COLUMNS-DUPLICATE", "channel")


def test_bad_input_header_names_are_matched_loosely(settings, lake, tmp_path):
    row = policy_row()
    path = tmp_path / "p.csv"
    header = ",".join(f" {h.upper()} " for h in row)
    path.write_text("\ufeff" + header + "\n" + ",".join(row.values()) + "\n", encoding="utf-8")
    assert submit_and_process(settings, path).status == "accepted"


def test_bad_input_empty_file(settings, lake, tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"")
    _expect_rejected(settings, lake, path, "SUB-EMPTY", "0 bytes")


def test_bad_input_header_only(settings, lake, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(",".join(policy_row()) + "\n", encoding="utf-8")
    _expect_rejected(settings, lake, path, "SUB-EMPTY", "no data rows")


def test_bad_input_truncated_csv_names_the_line(settings, lake, tmp_path):
    rows = [policy_row(transaction_id=f"T{n:04d}") for n in range(5)]
    path = write_csv(tmp_path / "p.csv", rows)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    _expect_rejected(settings, lake, path, "SUB-FILE", "line 6")


def test_bad_input_truncated_at_line_end_fails_row_count(settings, lake, tmp_path):
    rows = [policy_row(transaction_id=f"T{n:04d}") for n in range(5)]
    path = write_csv(tmp_path / "p.csv", rows[:4])
    _expect_rejected(settings, lake, path, "SUB-ROW-COUNT", "4 data rows", "says 5", row_count=5)


def test_bad_input_control_total_mismatch(settings, lake, tmp_path):
    path = write_csv(tmp_path / "p.csv", [policy_row()])
    _expect_rejected(settings, lake, path, "SUB-CONTROL-TOTAL", "written_premium", "1,200.00", "1,300",
                     control_totals={"written_premium": "1300", "written_exposure": "1"})


def test_bad_input_binary_named_csv(settings, lake, tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(bytes(range(256)) * 10)
    _expect_rejected(settings, lake, path, "SUB-FILE", "binary")


def test_bad_input_csv_named_parquet(settings, lake, tmp_path):
    path = write_csv(tmp_path / "p.parquet", [policy_row()])
    _expect_rejected(settings, lake, path, "SUB-FILE", "a text file")


def test_bad_input_truncated_parquet(settings, lake, tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist([policy_row(transaction_id=f"T{n:04d}") for n in range(50)]), path)
    path.write_bytes(path.read_bytes()[:300])
    _expect_rejected(settings, lake, path, "SUB-FILE", "Parquet")


def test_bad_input_truncated_xlsx(settings, lake, tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(policy_row()))
    ws.append(list(policy_row().values()))
    path = tmp_path / "p.xlsx"
    wb.save(path)
    path.write_bytes(path.read_bytes()[:500])
    _expect_rejected(settings, lake, path, "SUB-FILE", "XLSX")


def test_bad_input_xlsx_of_an_unsupported_zip_version(settings, lake, tmp_path):
    """A flipped byte in the central directory's 'version needed' made zipfile raise
    NotImplementedError, which was recorded as a platform failure (SUB-PROCESSING)."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(list(policy_row()))
    wb.active.append(list(policy_row().values()))
    path = tmp_path / "p.xlsx"
    wb.save(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")                   # first central directory entry
    data[at + 6:at + 8] = (208).to_bytes(2, "little")  # version needed to extract: 20.8
    path.write_bytes(bytes(data))
    _expect_rejected(settings, lake, path, "SUB-FILE", "XLSX")


def test_bad_input_wrong_types_quarantine_rows_naming_row_and_column(settings, lake, tmp_path):
    rows = [policy_row(transaction_id=f"T{n:04d}") for n in range(40)]
    rows[6] = policy_row(transaction_id="T0006", effective_date="2024-13-01")
    outcome = submit_and_process(settings, write_csv(tmp_path / "p.csv", rows))
    assert (outcome.status, outcome.rows_accepted, outcome.rows_quarantined) == ("accepted", 39, 1)
    con = lake()
    row, reasons = con.execute("SELECT source_row, reasons FROM lake.quarantine").fetchone()
    assert row == 7
    assert reasons == ["POL-TYPE-effective_date: effective_date '2024-13-01' is not a date (YYYY-MM-DD): there is no "
                       "such day; check the month and day"]


@pytest.mark.parametrize("payload", ["=cmd|' /C calc'!A0", "@SUM(A1:A2)", "+HYPERLINK(\"http://x\")", "-2+3"])
def test_bad_input_formula_cells_are_quarantined(settings, lake, tmp_path, payload):
    rows = [policy_row(transaction_id=f"T{n:04d}") for n in range(30)]
    rows[2] = policy_row(transaction_id="T0002", product_name=payload)
    outcome = submit_and_process(settings, write_csv(tmp_path / "p.csv", rows))
    assert (outcome.status, outcome.rows_quarantined) == ("accepted", 1)
    con = lake()
    row, ids, reasons = con.execute("SELECT source_row, rule_ids, reasons FROM lake.quarantine").fetchone()
    assert (row, ids) == (3, ["POL-SAFE-product_name"])
    assert "spreadsheet formula" in reasons[0]
    assert con.execute("SELECT count(*) FROM lake.policy WHERE product_name = ?", [payload]).fetchone()[0] == 0


@pytest.mark.parametrize("rows, bad", [(20, 1), (20, 3), (10, 3)], ids=["1-of-20", "3-of-20", "3-of-10"])
def test_bad_input_few_error_rows_in_a_small_file_are_quarantined_not_rejected(settings, lake, tmp_path, rows, bad):
    """Above 5% of rows but not above the minimum count (3): quarantined, the rest published."""
    data = [policy_row(transaction_id=f"T{n:04d}", region_code="999999" if n < bad else "110000")
            for n in range(rows)]
    outcome = submit_and_process(settings, write_csv(tmp_path / "p.csv", data))
    assert outcome.status == "accepted", outcome.reasons
    con = lake()
    assert con.execute("SELECT count(*) FROM lake.policy").fetchone()[0] == rows - bad
    assert con.execute("SELECT count(*) FROM lake.quarantine").fetchone()[0] == bad


def test_bad_input_too_many_errors_rejects_and_publishes_only_quarantine(settings, lake, tmp_path):
    rows = [policy_row(transaction_id=f"T{n:04d}", region_code="999999" if n % 10 == 0 else "110000")
            for n in range(40)]
    outcome = submit_and_process(settings, write_csv(tmp_path / "p.csv", rows))
    assert outcome.status == "rejected"
    assert outcome.reasons[0].startswith("SUB-ERROR-SHARE: 10.0% of the rows of file 'p.csv' (4 of 40)")
    con = lake()
    assert con.execute("SELECT count(*) FROM lake.policy").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM lake.quarantine").fetchone()[0] == 4


def test_bad_input_broken_lines_are_named_once_with_their_missing_columns(settings, lake, tmp_path):
    rows = [policy_row(transaction_id=f"T{n:04d}") for n in range(4)]
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(r.values()) for r in rows]
    lines[2] = lines[2].rsplit(",", 3)[0]             # file line 3: its last three fields are missing
    lines[3] += ",extra"                              # line 4: one field too many
    lines[4] = lines[4].rsplit(",", 1)[0]             # line 5: its last field is missing
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reasons = _expect_rejected(settings, lake, path, "SUB-FILE")
    a, b, c = header[-3:]
    assert reasons == (
        f"SUB-FILE: File 'p.csv' has 3 line(s) that do not split into the header's {len(header)} fields "
        f"(line 3: missing columns {a}, {b}, {c}; line 4: too many fields; line 5: missing column {c}). "
        "Quote fields that contain commas or quotes, and check that the file is complete.")
    assert (a, b, c) == ("phone", "channel", "product_name")


def test_bad_input_many_broken_lines_name_the_first_five(settings, lake, tmp_path):
    rows = [policy_row(transaction_id=f"T{n:04d}") for n in range(8)]
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(r.values()).rsplit(",", 9)[0] for r in rows]   # 9 fields short
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reasons = _expect_rejected(settings, lake, path, "SUB-FILE")
    missing = ", ".join(header[-9:-3]) + " and 3 more"
    shown = "; ".join(f"line {n}: missing columns {missing}" for n in range(2, 7))
    assert reasons == (f"SUB-FILE: File 'p.csv' has 8 line(s) that do not split into the header's {len(header)} "
                       f"fields ({shown}; ...). Quote fields that contain commas or quotes, and check that the file "
                       "is complete.")
