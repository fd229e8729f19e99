"""Staging: a typed-later read of a submitted file into a local DuckDB table ``raw``.

Every column is read as text (``raw`` holds the trimmed strings and ``__row``, the data row
number in the file, 1 for the first row under the header); the validation stage casts and
checks them, so a bad date is a flagged row and not a failed read. What cannot be read at all
(wrong encoding, broken CSV structure, a file that is not what its name says, missing or extra
columns) raises ``FileRejected`` with the submission check it fails and where.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.contracts import DatasetContract
from pipelines.errors import FileRejected
from pipelines.store import load_extensions

FORMATS = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".xlsx": "xlsx"}
ENCODINGS = ("utf-8", "gb18030")
_CHUNK = 1 << 20
MAX_LINE_BYTES = 4 << 20


@dataclass(frozen=True)
class StagedFile:
    rows: int
    file_format: str
    encoding: str | None
    header: tuple[str, ...]


def format_of(name: str) -> str | None:
    return FORMATS.get(Path(name).suffix.lower())


def normalise_header(name: str) -> str:
    return name.replace("\ufeff", "").strip().lower()


def stage_file(con: duckdb.DuckDBPyConnection, path: Path, *, file_name: str, file_format: str,
               contract: DatasetContract, work_dir: Path, encoding: str | None = None) -> StagedFile:
    """Read ``path`` into table ``raw`` of ``con``; raise ``FileRejected`` when it cannot be."""
    sniffed = _sniff_format(path)
    if sniffed == "empty":
        raise FileRejected("SUB-EMPTY", f"File {file_name!r} is empty (0 bytes).",
                           hint="Check that the upload finished and send the file again.", file=file_name)
    if sniffed != file_format and not (file_format == "csv" and sniffed == "text"):
        what = {"text": "a text file", "binary": "a binary file of unknown type", "empty": "empty"}.get(
            sniffed, f"a {sniffed.upper()} file")
        raise FileRejected("SUB-FILE", f"File {file_name!r} is named as {file_format.upper()} but is {what}.",
                           hint="Send the file in the format its name says.", file=file_name)
    if file_format == "csv":
        used = _stage_csv(con, path, file_name, contract, work_dir, encoding)
    elif file_format == "parquet":
        used = None
        _stage_parquet(con, path, file_name, contract)
    else:
        used = None
        _stage_xlsx(con, path, file_name, contract)
    rows = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    if rows == 0:
        raise FileRejected("SUB-EMPTY", f"File {file_name!r} has a header but no data rows.",
                           hint="Send the file with its rows.", file=file_name)
    header = tuple(r[0] for r in con.execute("DESCRIBE raw").fetchall() if r[0] != "__row")
    return StagedFile(rows=rows, file_format=file_format, encoding=used, header=header)


def _sniff_format(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(8192)
    if not head:
        return "empty"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "text"  # UTF-16 with a byte-order mark: the encoding check names it
    if b"\0" in head:
        return "binary"
    return "text"


# -- CSV ---------------------------------------------------------------------------------

def _stage_csv(con: duckdb.DuckDBPyConnection, path: Path, file_name: str,
               contract: DatasetContract, work_dir: Path, encoding: str | None) -> str:
    used = _detect_encoding(path, file_name, encoding)
    source = path
    if used != "utf-8":
        source = work_dir / "transcoded.csv"
        _transcode(path, source, used)
    header = _csv_header(source, file_name)
    check_header(header, contract, file_name)
    columns = {name: "VARCHAR" for name in header}
    try:
        con.execute(
            "CREATE TABLE raw_file AS SELECT * FROM read_csv(?, header = true, delim = ',', quote = '\"', "
            "escape = '\"', auto_detect = false, columns = ?, null_padding = false, "
            f"max_line_size = {MAX_LINE_BYTES}, store_rejects = true, ignore_errors = true, strict_mode = true)",
            [str(source), columns])
    except duckdb.Error as exc:  # the message may quote the line: never pass it on
        too_long = "line size" in str(exc).lower()
        raise FileRejected(
            "SUB-FILE", f"File {file_name!r} cannot be read as CSV"
            + (f": a line is longer than {MAX_LINE_BYTES // (1 << 20)} MB." if too_long else "."),
            hint="Export it again as comma-separated values with a header row.", file=file_name) from None
    rejects = con.execute(
        "SELECT line, error_type, column_name FROM reject_errors ORDER BY line LIMIT 5").fetchall()
    if rejects:
        count = con.execute("SELECT count(DISTINCT line) FROM reject_errors").fetchone()[0]
        first = "; ".join(f"line {line}: {kind.lower()}" + (f" at column {col}" if col else "")
                          for line, kind, col in rejects)
        raise FileRejected(
            "SUB-FILE", f"File {file_name!r} has {count} line(s) that do not split into the header's "
            f"{len(header)} fields ({first}).",
            hint="Quote fields that contain commas or quotes, and check that the file is complete.",
            file=file_name, line=rejects[0][0])
    con.execute(f"CREATE VIEW raw AS SELECT rowid + 1 AS __row, {_trimmed(header)} FROM raw_file")
    return used


def _detect_encoding(path: Path, file_name: str, declared: str | None) -> str:
    candidates = [declared.lower()] if declared else list(ENCODINGS)
    failures = []
    for enc in candidates:
        try:
            codecs.lookup(enc)
        except LookupError:
            raise FileRejected("SUB-ENCODING", f"Encoding {declared!r} of file {file_name!r} is not known.",
                               hint="Use UTF-8 or GB18030.", file=file_name) from None
        problem = _decode_problem(path, enc)
        if problem is None:
            return "utf-8" if enc in ("utf-8", "utf8", "utf-8-sig") else enc
        failures.append((enc, *problem))
    enc, line, offset = failures[0]
    tried = " or ".join(e.upper() for e, *_ in failures)
    raise FileRejected(
        "SUB-ENCODING", f"File {file_name!r} is not valid {tried} text "
        f"(first bad byte at offset {offset}, line {line}).",
        hint="Save the CSV as UTF-8 (or GB18030) and send it again.", file=file_name, line=line)


def _decode_problem(path: Path, encoding: str) -> tuple[int, int] | None:
    """None when the whole file decodes; else (line, byte offset) of the first bad byte."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = lines = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                prefix = chunk[: max(exc.start, 0)]
                return lines + prefix.count(b"\n") + 1, offset + max(exc.start, 0)
            if "\0" in text:
                pos = text.index("\0")
                return lines + text[:pos].count("\n") + 1, offset + pos
            lines += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return lines + 1, offset
    return None


def _transcode(src: Path, dst: Path, encoding: str) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, encoding=encoding, newline="") as fin, open(dst, "w", encoding="utf-8", newline="") as fout:
        while chunk := fin.read(_CHUNK):
            fout.write(chunk)


def _csv_header(path: Path, file_name: str) -> tuple[str, ...]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        first = f.readline(1 << 16)
    if not first.strip():
        raise FileRejected("SUB-EMPTY", f"File {file_name!r} is empty or starts with a blank line.",
                           hint="The first line must be the header with the contract's column names.",
                           file=file_name)
    return tuple(normalise_header(h) for h in next(csv.reader(io.StringIO(first))))


def _trimmed(header: tuple[str, ...]) -> str:
    return ", ".join(f"NULLIF(trim(CAST(\"{h}\" AS VARCHAR)), '') AS \"{h}\"" for h in header)


def check_header(header: tuple[str, ...], contract: DatasetContract, file_name: str) -> None:
    """Missing, extra and repeated columns are fatal, each with the names involved."""
    seen, dupes = set(), []
    for h in header:
        if h in seen:
            dupes.append(h)
        seen.add(h)
    if dupes:
        raise FileRejected("SUB-COLUMNS-DUPLICATE",
                           f"File {file_name!r} repeats column(s) {', '.join(sorted(set(dupes)))} in its header.",
                           hint="Keep one column of each name.", file=file_name)
    expected = contract.column_names
    missing = [c for c in expected if c not in seen]
    if missing:
        raise FileRejected(
            "SUB-COLUMNS-MISSING",
            f"File {file_name!r} lacks required column(s) {', '.join(missing)} of contract "
            f"{contract.dataset} {contract.version}.",
            hint=f"Add them (empty where unknown and not required; see {contract.source}) and submit again.",
            file=file_name, column=missing[0])
    extra = [h for h in header if h not in expected]
    if extra:
        shown = ", ".join(extra[:10]) + (f" and {len(extra) - 10} more" if len(extra) > 10 else "")
        raise FileRejected(
            "SUB-COLUMNS-EXTRA",
            f"File {file_name!r} has column(s) {shown} that contract {contract.dataset} "
            f"{contract.version} does not define.",
            hint=f"Remove them (see {contract.source}) and submit again.", file=file_name, column=extra[0])


# -- Parquet and XLSX ----------------------------------------------------------------------

def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path, file_name: str,
                   contract: DatasetContract) -> None:
    try:
        described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    except duckdb.Error:
        raise FileRejected("SUB-FILE", f"File {file_name!r} is not a readable Parquet file.",
                           hint="Write the file again with a Parquet writer and send it again.",
                           file=file_name) from None
    names = [r[0] for r in described]
    header = tuple(normalise_header(n) for n in names)
    check_header(header, contract, file_name)
    cols = ", ".join(f"\"{n}\" AS \"{h}\"" for n, h in zip(names, header, strict=False))
    try:
        con.execute(f"CREATE TABLE raw_file AS SELECT {cols} FROM read_parquet(?)", [str(path)])
    except duckdb.Error:
        raise FileRejected("SUB-FILE", f"File {file_name!r} is a damaged Parquet file (its data pages cannot be read).",
                           hint="Write the file again and send it again.", file=file_name) from None
    con.execute(f"CREATE VIEW raw AS SELECT rowid + 1 AS __row, {_trimmed(header)} FROM raw_file")


def _xlsx_header(path: Path, file_name: str) -> tuple[str, ...]:
    try:
        with zipfile.ZipFile(path) as z:
            if not any(n.startswith("xl/worksheets/") for n in z.namelist()):
                raise zipfile.BadZipFile("no worksheet")
        import openpyxl

        with open(path, "rb") as f:  # a file object: the archive path has no .xlsx suffix
            wb = openpyxl.load_workbook(f, read_only=True)
            try:
                first = next(wb.worksheets[0].iter_rows(max_row=1, values_only=True), ())
            finally:
                wb.close()
    except Exception:
        raise FileRejected("SUB-FILE", f"File {file_name!r} is not a readable XLSX workbook.",
                           hint="Save it again from the spreadsheet program as .xlsx and send it again.",
                           file=file_name) from None
    while first and first[-1] is None:
        first = first[:-1]
    if not first:
        raise FileRejected("SUB-EMPTY", f"The first sheet of {file_name!r} has no header row.",
                           hint="The first row must hold the contract's column names.", file=file_name)
    return tuple(normalise_header(str(h or "")) for h in first)


def _stage_xlsx(con: duckdb.DuckDBPyConnection, path: Path, file_name: str,
                contract: DatasetContract) -> None:
    header = _xlsx_header(path, file_name)
    check_header(header, contract, file_name)
    load_extensions(con, ("excel",))
    try:
        con.execute("CREATE TABLE raw_file AS SELECT * FROM read_xlsx(?, header = true, all_varchar = true, "
                    "stop_at_empty = false)", [str(path)])
    except duckdb.Error:
        raise FileRejected("SUB-FILE", f"The first sheet of {file_name!r} cannot be read.",
                           hint="Save it again as .xlsx with the data on the first sheet.", file=file_name) from None
    names = [r[0] for r in con.execute("DESCRIBE raw_file").fetchall()]
    renamed = ", ".join(f"\"{n}\" AS \"{normalise_header(n)}\"" for n in names)
    not_blank = " OR ".join(f"NULLIF(trim(\"{h}\"), '') IS NOT NULL" for h in header)
    con.execute(f"CREATE TABLE raw_sheet AS SELECT rowid + 1 AS __row, {renamed} FROM raw_file")
    con.execute(f"CREATE VIEW raw AS SELECT __row, {_trimmed(header)} FROM raw_sheet "
                f"WHERE {not_blank}")
