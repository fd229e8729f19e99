"""Member input never becomes code: the trust boundary of staging.

A file is read on an isolated connection (no lake, no file outside its work folder, no
extension loading, configuration locked); the header that is checked is the header that is
read; member text never enters SQL text. Checked with a crafted two-faced workbook (the attack
that broke the old reader), probes run on the staging connection itself, and hypothesis
fuzzing of headers, sheet names and values in every format.
"""

from __future__ import annotations

import csv
import string
import unicodedata
from pathlib import Path

import duckdb
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipelines import store
from pipelines.config import Settings
from pipelines.contracts import load_contract
from pipelines.errors import FileRejected
from pipelines.staging import stage_file, staging_connection
from tests.conftest import policy_row, submit_and_process, write_csv
from tests.hostile.crafted import INJECTION, two_faced_xlsx

CONTRACT = load_contract("policy")
HEADER = list(policy_row())


def _rows(prefix: str, n: int = 5) -> list[dict[str, str]]:
    return [policy_row(transaction_id=f"{prefix}{i:04d}", policy_no=f"{prefix}P{i:04d}") for i in range(n)]


def _premiums(lake) -> dict[str, object]:
    con = lake()
    try:
        return dict(con.execute("SELECT member_id, sum(written_premium) FROM lake.policy GROUP BY ALL").fetchall())
    finally:
        con.close()


def test_trust_two_faced_xlsx_runs_no_sql_and_ends_recorded(settings, lake, tmp_path):
    assert submit_and_process(settings, write_csv(tmp_path / "m2.csv", _rows("B")), member="M002").status == "accepted"
    before = _premiums(lake)
    evil = two_faced_xlsx(tmp_path / "evil.xlsx", _rows("A"), {"product_name": INJECTION})
    assert openpyxl.load_workbook(evil).active["T1"].value == "product_name"   # the honest face

    outcome = submit_and_process(settings, evil, member="M001")

    assert outcome.status == "rejected" and outcome.reasons[0].startswith("SUB-COLUMNS-")
    assert _premiums(lake) == before                       # the old reader multiplied them by 10
    con = lake()
    assert con.execute("SELECT status FROM lake.submissions WHERE submission_id = ?",
                       [outcome.submission_id]).fetchone()[0] == "rejected"   # not stuck in received


def test_trust_two_faced_xlsx_cannot_read_the_key(settings, lake, tmp_path):
    key_hex = Path(settings.key_file).read_text().strip().split(":")[1]
    steal = (f"rowid\" AS \"zz\", (SELECT content FROM read_text('{settings.key_file}')) AS \"product_name\" "
             "FROM raw_file; --")
    evil = two_faced_xlsx(tmp_path / "steal.xlsx", _rows("A"), {"product_name": steal})
    outcome = submit_and_process(settings, evil, member="M001")
    assert outcome.status == "rejected"
    con = lake()
    for table in ("policy", "quarantine", "submissions", "audit_log"):
        dump = con.execute(f"SELECT string_agg(CAST(t AS VARCHAR), '') FROM lake.{table} t").fetchone()[0] or ""
        assert key_hex not in dump, table


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_text('{key}')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM glob('{home}/*')",
    "ATTACH '{catalog}' AS other",
    "ATTACH 'ducklake:sqlite:{catalog}' AS lake2",
    "COPY (SELECT 1) TO '{home}/out.csv'",
    "LOAD '{ext}'",
    "SET enable_external_access = true",
    "SET allowed_directories = ['/']",
    "RESET lock_configuration",
])
def test_trust_staging_connection_reaches_nothing_but_its_folder(settings, tmp_path, sql):
    folder = tmp_path / "work"
    ext = store._extension_file("ducklake")
    with staging_connection(settings, folder) as con:
        assert {r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()} \
            == {"memory", "system", "temp"}
        with pytest.raises(duckdb.Error):
            con.execute(sql.format(key=settings.key_file, home=settings.home, catalog=settings.catalog, ext=ext))
        (folder / "ok.csv").write_text("a\n1\n")
        assert con.execute("SELECT count(*) FROM read_csv(?)", [str(folder / "ok.csv")]).fetchone()[0] == 1


# -- fuzzing -------------------------------------------------------------------------------

NASTY = ['"', "'", ";", "--", "/*", "*/", "\\", ",", "\n", "\t", " ", "\u00a0", "\ufeff", "机", "é",
         '") ; DROP TABLE x; --', "' OR 1=1 --", "${x}", "%s", "\x00"]


def _nasty_text(allow_nul: bool = True, allow_cr: bool = True) -> st.SearchStrategy[str]:
    pieces = [p for p in NASTY if (allow_nul or p != "\x00")]
    chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="" if allow_nul else "\x00")
    text = st.lists(st.one_of(st.sampled_from(pieces), st.text(chars, max_size=6)), max_size=6).map("".join)
    return text if allow_cr else text.map(lambda s: s.replace("\r", ""))


def _write(fmt: str, path: Path, header: list[str], rows: list[list[str]], sheet: str = "Sheet1") -> Path:
    if fmt == "csv":
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
    elif fmt == "parquet":
        pq.write_table(pa.table({f"__{i}": [r[i] for r in rows] for i in range(len(header))})
                       .rename_columns(header), path)
    else:
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = sheet
        for r, values in enumerate([header, *rows], 1):
            for c, v in enumerate(values, 1):
                cell = ws.cell(r, c)
                cell.value = v
                cell.data_type = "s"   # a leading '=' stays text
        wb.save(path)
    return path


def _stage(settings: Settings, folder: Path, path: Path, fmt: str):
    """Stage ``path`` (which lies in ``folder``, as an archived file restored for ingestion does)."""
    with staging_connection(settings, folder) as con:
        try:
            stage_file(con, path, file_name=path.name, file_format=fmt, contract=CONTRACT, work_dir=folder)
        except FileRejected as exc:
            return exc, None
        cols = [r[0] for r in con.execute("DESCRIBE raw").fetchall()]
        return None, (cols, con.execute("SELECT * EXCLUDE (__row) FROM raw ORDER BY __row").fetchall())


# What DuckDB's trim() removes: the Unicode space separators (not tabs or line breaks).
SPACES = "".join(chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Zs")
_XLSX_SAFE = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")


@pytest.fixture(scope="module")
def fuzz_settings(tmp_path_factory):
    return Settings(home=tmp_path_factory.mktemp("fuzz") / "home")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_trust_fuzzed_headers_are_refused_by_name_never_executed(fuzz_settings, tmp_path_factory, fmt, data):
    """Random header names full of quotes, NULs and SQL: a FileRejected naming the columns, or
    (when they happen to be the contract's) the contract's columns; nothing else."""
    allow_nul, allow_cr = fmt == "parquet", fmt != "xlsx"
    alphabet = _nasty_text(allow_nul, allow_cr) if fmt != "xlsx" else st.text(_XLSX_SAFE, max_size=12)
    names = data.draw(st.lists(st.one_of(alphabet, st.sampled_from(HEADER)), min_size=1, max_size=25), "header")
    if fmt == "csv":
        names = [n.replace("\x00", "") for n in names]
    if fmt == "parquet" and len(set(names)) != len(names):
        names = [f"{n}{i}" if names.index(n) != i else n for i, n in enumerate(names)]
    folder = tmp_path_factory.mktemp("hdr") / "work"
    folder.mkdir()
    sheet = data.draw(st.text(string.ascii_letters + "'\" ;-()=<>&%", min_size=1, max_size=31), "sheet") \
        if fmt == "xlsx" else "Sheet1"
    path = _write(fmt, folder / f"f.{fmt}", names, [["x"] * len(names)], sheet=sheet.strip("'") or "S")
    rejected, staged = _stage(fuzz_settings, folder, path, fmt)
    if rejected is not None:
        assert rejected.check_id.startswith("SUB-"), rejected
    else:
        assert staged[0] == ["__row", *CONTRACT.column_names]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_trust_fuzzed_values_are_read_as_data(fuzz_settings, tmp_path_factory, fmt, data):
    """Values full of quotes, separators and SQL under the contract's header are read back
    exactly (trimmed of spaces; empty as NULL), in every format."""
    text = _nasty_text(allow_nul=fmt == "parquet", allow_cr=fmt != "xlsx") if fmt != "xlsx" \
        else st.text(_XLSX_SAFE, max_size=20)
    rows = data.draw(st.lists(st.lists(text, min_size=len(HEADER), max_size=len(HEADER)), min_size=1, max_size=4))
    if fmt == "csv":
        rows = [[v.replace("\x00", "") for v in r] for r in rows]
    folder = tmp_path_factory.mktemp("val") / "work"
    folder.mkdir()
    path = _write(fmt, folder / f"v.{fmt}", HEADER, rows)
    rejected, staged = _stage(fuzz_settings, folder, path, fmt)
    if fmt == "xlsx":   # a row of only blanks is not a data row in a sheet
        rows = [r for r in rows if any(v.strip(SPACES) for v in r)]
        if not rows:
            assert rejected is not None and rejected.check_id == "SUB-EMPTY"
            return
    if any("\x00" in v for r in rows for v in r):   # a NUL is not text, in any format
        assert rejected is not None and rejected.check_id == "SUB-FILE" and "NUL" in str(rejected)
        return
    assert rejected is None, rejected
    expected = [tuple((v.strip(SPACES) or None) for v in r) for r in rows]
    assert staged[1] == expected
