"""Staging: a typed-later read of a submitted file into an isolated DuckDB database.

A member's file is read on its own connection (``staging_connection``): an in-memory
database with no lake attached, file access only inside the submission's work folder, no
extension loading and its configuration locked, so that nothing in a file can reach the lake,
the keys or another member's data whatever it holds. Member-controlled text never enters SQL
text: columns are read by position (``c0``, ``c1``, ...), the header is taken from what DuckDB
itself read (so the header that is checked is the header that is read, in every format), and
each column is then named by the contract's own name.

Every column is read as text (``raw`` holds the trimmed strings and ``__row``, the data row
number in the file, 1 for the first row under the header); the validation stage casts and
checks them, so a bad date is a flagged row and not a failed read. What cannot be read at all
(wrong encoding, broken CSV structure, a file that is not what its name says, missing or extra
columns) raises ``FileRejected`` with the submission check it fails and where.
"""

from __future__ import annotations

import codecs
import csv
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.config import Settings
from pipelines.contracts import DatasetContract
from pipelines.core.domain import text_encoding
from pipelines.core.sql import ident
from pipelines.errors import FileRejected
from pipelines.store import load_extensions

ENCODINGS = ("utf-8", "gb18030")
_CHUNK = 1 << 20
MAX_LINE_BYTES = 4 << 20
MAX_HEADER_CHARS = 1 << 20
_NESTED = ("STRUCT", "MAP", "UNION", "[]", "LIST", "ARRAY")


@dataclass(frozen=True)
class StagedFile:
    rows: int
    file_format: str
    encoding: str | None
    header: tuple[str, ...]



def normalise_header(name: str) -> str:
    return name.replace("\ufeff", "").strip().lower()


# Planning the checking statement (some 170 CASE expressions) costs about 0.1 s whatever the
# file's size. On a small file three of DuckDB's optimizers take half of that and save nothing
# (measured on 200 rows: 126 ms -> 73 ms per file); they only change how a result is computed.
SMALL_FILE_BYTES = 1 << 20
SMALL_FILE_OPTIMIZERS_OFF = "filter_pushdown,common_subexpressions,in_clause"


@contextmanager
def staging_connection(settings: Settings, folder: Path, *, small: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """An isolated in-memory DuckDB for one submission: files only under ``folder``, no lake.

    The excel reader is loaded before the configuration is locked; after that no extension can
    be loaded, no file outside ``folder`` read or written, and no setting changed. ``small``: a
    file of at most ``SMALL_FILE_BYTES``, planned without the optimizers that only pay on large ones.
    """
    config = {"memory_limit": settings.duckdb_memory_limit, "autoinstall_known_extensions": False,
              "autoload_known_extensions": False, "allow_unsigned_extensions": True}
    if settings.duckdb_threads:
        config["threads"] = settings.duckdb_threads
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:", config=config)
    try:
        load_extensions(con, ("excel",))
        con.execute("SET temp_directory = ?", [str(folder / "spill")])
        con.execute("SET allowed_directories = ?", [[str(folder)]])
        con.execute("SET enable_external_access = false")
        con.execute("SET enable_progress_bar = false")
        if small:
            con.execute(f"SET disabled_optimizers = '{SMALL_FILE_OPTIMIZERS_OFF}'")
        con.execute("SET lock_configuration = true")
        yield con
    finally:
        con.close()


def stage_file(con: duckdb.DuckDBPyConnection, path: Path, *, file_name: str, file_format: str,
               contract: DatasetContract, work_dir: Path, encoding: str | None = None) -> StagedFile:
    """Read ``path`` into table ``raw`` of ``con``; raise ``FileRejected`` when it cannot be."""
    sniffed = sniff_format(path)
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
                           hint="Send the file with its rows; for a period without business, ask the operator to "
                                "declare a nil return (`insurshare declare nil-return`).", file=file_name)
    header = tuple(r[0] for r in con.execute("DESCRIBE raw").fetchall() if r[0] != "__row")
    return StagedFile(rows=rows, file_format=file_format, encoding=used, header=header)


def sniff_format(path: Path) -> str:
    """What the first bytes of ``path`` are: ``parquet``, ``xlsx``, ``text``, ``binary`` or ``empty``."""
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


def _raw_view(con: duckdb.DuckDBPyConnection, header: tuple[str, ...], contract: DatasetContract,
              *, header_row: bool = True, where: str = "") -> None:
    """View ``raw`` over ``raw_file`` (columns ``c0``.., with the header as row 0 unless it came
    from a schema): each column trimmed and named by the contract (never by the file), data rows
    numbered from 1."""
    names = {c.name: c.name for c in contract.columns}
    cols = ", ".join(f"{trimmed_sql(f'CAST(c{i} AS VARCHAR)')} AS {ident(names[h])}" for i, h in enumerate(header))
    number, first = ("rowid", "rowid > 0") if header_row else ("rowid + 1", "true")
    con.execute(f"CREATE VIEW raw AS SELECT {number} AS __row, {cols} FROM raw_file WHERE {first}"
                + (f" AND ({where})" if where else ""))


def trimmed_sql(expr: str) -> str:
    """``NULLIF(trim(expr), '')``, calling ``trim`` only on the values it can change.

    ``trim`` strips Unicode space separators (category Zs: the ASCII space, the no-break and
    ideographic spaces, ...) from both ends and copies every value it is given: most values are
    ASCII and start and end with no space, and pass through as they are (half the cost of
    staging's view on a 1M-row file). Exact: a value not starting or ending with an ASCII space
    and holding only ASCII characters is one ``trim`` leaves unchanged."""
    return (f"CASE WHEN prefix({expr}, ' ') OR suffix({expr}, ' ') OR strlen({expr}) <> length({expr}) "
            f"THEN NULLIF(trim({expr}), '') ELSE NULLIF({expr}, '') END")


def _header_row(con: duckdb.DuckDBPyConnection, width: int) -> tuple[str, ...]:
    """The first row of ``raw_file`` as DuckDB read it: the header, normalised."""
    first = con.execute(f"SELECT {', '.join(f'c{i}' for i in range(width))} FROM raw_file "
                        "WHERE rowid = 0").fetchone() or ()
    values = list(first)
    while values and values[-1] is None:
        values.pop()
    return tuple(normalise_header("" if v is None else str(v)) for v in values)


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
    columns = {f"c{i}": "VARCHAR" for i in range(len(header))}
    try:
        con.execute(
            "CREATE TABLE raw_file AS SELECT * FROM read_csv(?, header = false, delim = ',', quote = '\"', "
            "escape = '\"', auto_detect = false, columns = ?, null_padding = false, "
            f"max_line_size = {MAX_LINE_BYTES}, store_rejects = true, ignore_errors = true, strict_mode = true)",
            [str(source), columns])
    except duckdb.Error as exc:  # the message may quote the line: never pass it on
        too_long = "line size" in str(exc).lower()
        raise FileRejected(
            "SUB-FILE", f"File {file_name!r} cannot be read as CSV"
            + (f": a line is longer than {MAX_LINE_BYTES // (1 << 20)} MB." if too_long else "."),
            hint="Export it again as comma-separated values with a header row.", file=file_name) from None
    _check_rejects(con, file_name, header)
    if _header_row(con, len(header)) != header:
        raise FileRejected("SUB-FILE", f"The header of file {file_name!r} does not read the same way twice "
                           "(its first line is not a plain CSV record).",
                           hint="Export it again as comma-separated values with one header line.", file=file_name)
    _raw_view(con, header, contract)
    if source != path:
        source.unlink(missing_ok=True)
    return used


def _check_rejects(con: duckdb.DuckDBPyConnection, file_name: str, header: tuple[str, ...]) -> None:
    """One message per broken line, naming the columns it lacks (or where it breaks), for the
    first few lines: ``line 1050: missing columns coverage_code, region_code``. DuckDB's own
    messages quote the line (member data) and repeat it per column: never passed on."""
    rows = con.execute("""
        WITH first AS (SELECT DISTINCT line FROM reject_errors ORDER BY line LIMIT ?)
        SELECT line, error_type, list(column_name ORDER BY column_idx) FILTER (WHERE column_name IS NOT NULL)
        FROM reject_errors SEMI JOIN first USING (line)
        GROUP BY line, error_type ORDER BY line, error_type""", [SHOWN_BAD_LINES]).fetchall()
    if not rows:
        return
    count = con.execute("SELECT count(DISTINCT line) FROM reject_errors").fetchone()[0]
    per_line: dict[int, list[str]] = {}
    for line, kind, columns in rows:
        per_line.setdefault(line, []).append(_reject_words(kind, _named(columns or [], header)))
    first = "; ".join(f"line {line}: {', '.join(parts)}" for line, parts in per_line.items())
    raise FileRejected(
        "SUB-FILE", f"File {file_name!r} has {count:,} line(s) that do not split into the header's "
        f"{len(header)} fields ({first}{'; ...' if count > len(per_line) else ''}).",
        hint="Quote fields that contain commas or quotes, and check that the file is complete.",
        file=file_name, line=min(per_line))


SHOWN_BAD_LINES = 5
SHOWN_COLUMNS = 6


def _named(columns: list[str], header: tuple[str, ...]) -> list[str]:
    """DuckDB's positional names (``c3``) as the header's (the contract's) column names."""
    out = []
    for c in dict.fromkeys(columns):
        i = int(c[1:]) if c[:1] == "c" and c[1:].isdigit() else -1
        out.append(header[i] if 0 <= i < len(header) else c)
    return out


def _reject_words(kind: str, columns: list[str]) -> str:
    shown = ", ".join(columns[:SHOWN_COLUMNS]) + (f" and {len(columns) - SHOWN_COLUMNS} more"
                                                   if len(columns) > SHOWN_COLUMNS else "")
    if kind == "MISSING COLUMNS":
        return f"missing column{'s' if len(columns) != 1 else ''} {shown}" if columns else "too few fields"
    words = {"TOO MANY COLUMNS": "too many fields", "UNQUOTED VALUE": "a quote inside an unquoted field",
             "INVALID UNICODE": "invalid text"}.get(kind, kind.lower())
    return f"{words} (column {shown})" if columns and kind != "TOO MANY COLUMNS" else words


def _detect_encoding(path: Path, file_name: str, declared: str | None) -> str:
    candidates = [declared] if declared else list(ENCODINGS)
    failures = []
    for given in candidates:
        enc = text_encoding(given)
        if enc is None:
            raise FileRejected("SUB-ENCODING", f"Encoding {declared!r} of file {file_name!r} is not a text "
                               "encoding the platform knows.", hint="Use UTF-8 or GB18030.", file=file_name)
        problem = _decode_problem(path, enc)
        if problem is None:
            return "utf-8" if enc in ("utf-8", "utf-8-sig") else enc
        failures.append((enc, *problem))
    enc, line, offset = failures[0]
    tried = " or ".join(e.upper() for e, *_ in failures)
    raise FileRejected(
        "SUB-ENCODING", f"File {file_name!r} is not valid {tried} text "
        f"(first bad byte at offset {offset}, line {line}).",
        hint="Save the CSV as UTF-8 (or GB18030) and send it again.", file=file_name, line=line)


def _decode_problem(path: Path, encoding: str) -> tuple[int, int] | None:
    """None when the whole file decodes; else (line, byte offset) of the first bad byte."""
    if encoding in ("utf-8", "utf-8-sig") and _utf8_text(path):
        return None
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


def _utf8_text(path: Path) -> bool:
    """Whether ``path`` is UTF-8 text with no NUL, checked by Arrow's UTF-8 validation (no Python
    string is built: several times faster than decoding). Read in pieces that end at a line break,
    which is never inside a UTF-8 sequence. False means "look closer": ``_decode_problem`` then
    decodes the file to find the first bad byte."""
    rest = b""
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            chunk = rest + chunk
            end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1
            if not end and len(chunk) > MAX_LINE_BYTES:
                return False
            piece, rest = chunk[:end], chunk[end:]
            if not _utf8_piece(piece):
                return False
    return _utf8_piece(rest)


def _utf8_piece(data: bytes) -> bool:
    if b"\0" in data:
        return False
    try:
        pa.array([data], pa.large_binary()).cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _transcode(src: Path, dst: Path, encoding: str) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, encoding=encoding, newline="") as fin, open(dst, "w", encoding="utf-8", newline="") as fout:
        while chunk := fin.read(_CHUNK):
            fout.write(chunk)


def _csv_header(path: Path, file_name: str) -> tuple[str, ...]:
    """The fields of the first line, which must end within ``MAX_HEADER_CHARS`` characters."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        head = f.read(MAX_HEADER_CHARS + 1)
    ends = [i for i in (head.find("\n"), head.find("\r")) if i >= 0]
    end = min(ends) if ends else len(head)
    if end > MAX_HEADER_CHARS:
        raise FileRejected(
            "SUB-FILE", f"The first line of file {file_name!r} is longer than {MAX_HEADER_CHARS // (1 << 20)} MB "
            "of text: it cannot be a header.",
            hint="The first line must be the header: the contract's column names separated by commas.",
            file=file_name)
    if not head[:end].strip():
        raise FileRejected("SUB-EMPTY", f"File {file_name!r} is empty or starts with a blank line.",
                           hint="The first line must be the header with the contract's column names.",
                           file=file_name)
    try:
        first = next(csv.reader([head[:end]], strict=True))
    except csv.Error:
        raise FileRejected("SUB-FILE", f"The first line of file {file_name!r} is not a CSV header (its quotes "
                           "do not close).", hint="The first line must be the header: the contract's column "
                           "names separated by commas.", file=file_name) from None
    return tuple(normalise_header(h) for h in first)


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
    header = tuple(normalise_header(r[0]) for r in described)
    check_header(header, contract, file_name)
    nested = [h for h, r in zip(header, described, strict=True) if any(t in r[1].upper() for t in _NESTED)]
    if nested:
        raise FileRejected("SUB-FILE", f"File {file_name!r} holds nested values (lists, structs or maps) in "
                           f"column(s) {', '.join(nested[:10])}; each column must hold one plain value per row.",
                           hint="Write strings, numbers and dates as plain Parquet columns.", file=file_name,
                           column=nested[0])
    # Columns by position, never by the name in the file; bytes must be UTF-8 text.
    cols = ", ".join((f"decode(#{i + 1})" if r[1].upper() == "BLOB" else f"CAST(#{i + 1} AS VARCHAR)") + f" AS c{i}"
                     for i, r in enumerate(described))
    try:
        con.execute(f"CREATE TABLE raw_file AS SELECT {cols} FROM read_parquet(?)", [str(path)])
    except duckdb.Error as exc:
        not_text = "utf" in str(exc).lower() or "unicode" in str(exc).lower()
        raise FileRejected("SUB-FILE", f"File {file_name!r} holds binary values that are not UTF-8 text."
                           if not_text else f"File {file_name!r} is a damaged Parquet file (its data pages "
                           "cannot be read).", hint="Write the file again and send it again.", file=file_name) from None
    _reject_nul(con, file_name, header)
    _raw_view(con, header, contract, header_row=False)


def _reject_nul(con: duckdb.DuckDBPyConnection, file_name: str, header: tuple[str, ...]) -> None:
    """A NUL character is not text (a CSV holding one fails its encoding check): refuse it in
    the other formats too, naming the first row and column."""
    hit = " OR ".join(f"contains(c{i}, chr(0))" for i in range(len(header)))
    first = con.execute(f"SELECT rowid + 1, [{', '.join(f'contains(c{i}, chr(0))' for i in range(len(header)))}] "
                        f"FROM raw_file WHERE {hit} ORDER BY rowid LIMIT 1").fetchone()
    if first:
        column = header[first[1].index(True)]
        raise FileRejected("SUB-FILE", f"File {file_name!r} holds a NUL character in row {first[0]:,}, column "
                           f"{column}: it is not text.", hint="Remove the control characters and send it again.",
                           file=file_name, row=first[0], column=column)


def _check_workbook(path: Path, file_name: str) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            if not any(n.startswith("xl/worksheets/") for n in z.namelist()):
                raise zipfile.BadZipFile("no worksheet")
    # a damaged archive fails in many ways: an unsupported zip version is NotImplementedError,
    # an impossible entry RuntimeError or KeyError
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError,
            RuntimeError, KeyError):
        raise FileRejected("SUB-FILE", f"File {file_name!r} is not a readable XLSX workbook.",
                           hint="Save it again from the spreadsheet program as .xlsx and send it again.",
                           file=file_name) from None


def _stage_xlsx(con: duckdb.DuckDBPyConnection, path: Path, file_name: str,
                contract: DatasetContract) -> None:
    """The first sheet, read once by DuckDB with no header: its first row is the header checked."""
    _check_workbook(path, file_name)
    try:
        width = len(con.execute("DESCRIBE SELECT * FROM read_xlsx(?, header = false, all_varchar = true, "
                                "stop_at_empty = false)", [str(path)]).fetchall())
        cols = ", ".join(f"#{i + 1} AS c{i}" for i in range(width))
        con.execute(f"CREATE TABLE raw_file AS SELECT {cols} FROM read_xlsx(?, header = false, all_varchar = true, "
                    "stop_at_empty = false)", [str(path)])
    except duckdb.Error:
        raise FileRejected("SUB-FILE", f"The first sheet of {file_name!r} cannot be read.",
                           hint="Save it again as .xlsx with the data on the first sheet.", file=file_name) from None
    header = _header_row(con, width)
    if not header:
        raise FileRejected("SUB-EMPTY", f"The first sheet of {file_name!r} has no header row.",
                           hint="The first row must hold the contract's column names.", file=file_name)
    check_header(header, contract, file_name)
    not_blank = " OR ".join(f"NULLIF(trim(c{i}), '') IS NOT NULL" for i in range(len(header)))
    _raw_view(con, header, contract, where=not_blank)
