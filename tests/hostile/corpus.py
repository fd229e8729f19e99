"""A corpus of hostile and damaged submissions, each with the outcome it must get and why.

``build_corpus(folder)`` writes 300+ files, deterministically from a seed, and returns one
``Hostile`` per file: the file, its manifest (fields, or a JSON file to read), its kind, the
outcome it must end in (``refused`` at intake, ``rejected`` at ingestion with the named check,
or ``accepted`` with so many rows quarantined), the words a refusal must carry, and why. Kinds:

- ``HOSTILE``: files made to attack the platform (SQL in headers, two-faced workbooks, zip bombs,
  nested Parquet, markup, formulas and SQL in values, resource exhaustion, manifests with values
  that crashed the old intake): refused or rejected, never accepted;
- ``DAMAGED``: truncated or bit-flipped copies of a valid file. Sent with the manifest of the
  original (its row count, control totals and sha256) they are refused, since the bytes are not
  the bytes the manifest describes. Sent with no row count, totals or sha256, where the damage
  fell decides; the seed makes it the same every run, and ``UNDECLARED`` states each file's
  outcome as the readers give it today (five are accepted: see there);
- ``CARELESS``: what a member's export gets wrong without meaning harm (another encoding or
  separator, an empty file, the other dataset's header, a web page saved as CSV): rejected with
  the check that tells the member what to fix, except two legacy CJK encodings whose bytes are
  valid GB18030 (accepted, the text read as other characters);
- ``VALID``: unusual but valid files (CR line ends, strings stored as Parquet BINARY, and valid
  rows in a workbook whose sheet has an attacker's name, which is never read as code): accepted.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import claim_row, policy_row, write_csv
from tests.hostile.crafted import INJECTION, two_faced_xlsx

HOSTILE, DAMAGED, CARELESS, VALID = "hostile", "damaged", "careless", "valid"
SAME_BYTES = "same bytes as an earlier file"


@dataclass(frozen=True)
class Hostile:
    path: Path
    dataset: str
    label: str
    expect: str                      # refused | rejected | accepted
    check: str = ""                  # rejected: the check id the reason starts with
    words: str = ""                  # refused: words the message holds
    kind: str = HOSTILE              # HOSTILE | DAMAGED | CARELESS | VALID
    quarantined: int = 0             # accepted: rows quarantined
    why: str = ""
    manifest: Path | None = None     # a manifest file to read (else built from ``fields``)
    fields: dict = field(default_factory=dict)
    member: str = "M001"


# The checks that reject CSV files in encodings other than UTF-8 and GB18030 (cp500, EBCDIC,
# decodes as GB18030 into a header with none of the contract's names).
ENCODING_CHECKS = {"utf-16": "SUB-ENCODING", "utf-16-le": "SUB-FILE", "utf-16-be": "SUB-FILE",
                   "utf-32": "SUB-ENCODING", "cp500": "SUB-COLUMNS-MISSING", "latin-1": "SUB-ENCODING",
                   "cp1252": "SUB-ENCODING"}

# What the readers make today of each damaged file sent without a manifest's row count, totals
# and sha256 (the damage is the same every run: seed 7): rejected with the check named, or
# accepted with so many rows quarantined. Five are accepted (published rows compared with the
# original's when this table was written):
# - trunc_3235.csv is cut inside its 16th row, after the first character of the product name:
#   16 rows of 40 published as if complete, the last with product name '机'. Without a manifest
#   nothing tells this truncation from a short file: a real gap (row count or sha256 catch it);
# - trunc_7765.csv loses only its final line end: the same 40 rows, harmless;
# - flip_3.parquet, flip_8.xlsx: the flips fell where the readers do not look: the same 40 rows;
# - flip_11.parquet: the flip turned one transaction id into 'T00\t1', quarantined by
#   POL-FMT-transaction_id; the other 39 rows are the original's.
# An outcome that changes here is a change in how the readers meet damage: look at it, then
# update this table.
UNDECLARED: dict[str, tuple[str, str | int]] = {
    "trunc_1.csv": ("rejected", "SUB-COLUMNS-MISSING"),
    "trunc_2.csv": ("rejected", "SUB-COLUMNS-MISSING"),
    "trunc_4.csv": ("rejected", "SUB-COLUMNS-MISSING"),
    "trunc_8.csv": ("rejected", "SUB-COLUMNS-MISSING"),
    "trunc_16.csv": ("rejected", "SUB-COLUMNS-MISSING"),
    "trunc_396.csv": ("rejected", "SUB-FILE"),
    "trunc_594.csv": ("rejected", "SUB-FILE"),
    "trunc_772.csv": ("rejected", "SUB-FILE"),
    "trunc_1236.csv": ("rejected", "SUB-FILE"),
    "trunc_2653.csv": ("rejected", "SUB-FILE"),
    "trunc_2996.csv": ("rejected", "SUB-FILE"),
    "trunc_3235.csv": ("accepted", 0),
    "trunc_3883.csv": ("rejected", "SUB-FILE"),
    "trunc_4390.csv": ("rejected", "SUB-FILE"),
    "trunc_4775.csv": ("rejected", "SUB-FILE"),
    "trunc_5333.csv": ("rejected", "SUB-FILE"),
    "trunc_6728.csv": ("rejected", "SUB-FILE"),
    "trunc_7760.csv": ("rejected", "SUB-ENCODING"),
    "trunc_7765.csv": ("accepted", 0),
    "flip_0.csv": ("rejected", "SUB-ENCODING"),
    "flip_1.csv": ("rejected", "SUB-FILE"),
    "flip_2.csv": ("rejected", "SUB-ENCODING"),
    "flip_3.csv": ("rejected", "SUB-ENCODING"),
    "flip_4.csv": ("rejected", "SUB-ENCODING"),
    "flip_5.csv": ("rejected", "SUB-ENCODING"),
    "flip_6.csv": ("rejected", "SUB-ENCODING"),
    "flip_7.csv": ("rejected", "SUB-ENCODING"),
    "flip_8.csv": ("rejected", "SUB-ENCODING"),
    "flip_9.csv": ("rejected", "SUB-ENCODING"),
    "flip_10.csv": ("rejected", "SUB-ENCODING"),
    "flip_11.csv": ("rejected", "SUB-ENCODING"),
    "trunc_1.parquet": ("rejected", "SUB-FILE"),
    "trunc_2.parquet": ("rejected", "SUB-FILE"),
    "trunc_4.parquet": ("rejected", "SUB-FILE"),
    "trunc_8.parquet": ("rejected", "SUB-FILE"),
    "trunc_16.parquet": ("rejected", "SUB-FILE"),
    "trunc_660.parquet": ("rejected", "SUB-FILE"),
    "trunc_837.parquet": ("rejected", "SUB-FILE"),
    "trunc_1612.parquet": ("rejected", "SUB-FILE"),
    "trunc_1675.parquet": ("rejected", "SUB-FILE"),
    "trunc_1807.parquet": ("rejected", "SUB-FILE"),
    "trunc_1859.parquet": ("rejected", "SUB-FILE"),
    "trunc_2767.parquet": ("rejected", "SUB-FILE"),
    "trunc_2864.parquet": ("rejected", "SUB-FILE"),
    "trunc_2988.parquet": ("rejected", "SUB-FILE"),
    "trunc_3022.parquet": ("rejected", "SUB-FILE"),
    "trunc_3851.parquet": ("rejected", "SUB-FILE"),
    "trunc_3954.parquet": ("rejected", "SUB-FILE"),
    "trunc_5924.parquet": ("rejected", "SUB-FILE"),
    "trunc_6038.parquet": ("rejected", "SUB-FILE"),
    "flip_0.parquet": ("rejected", "SUB-FILE"),
    "flip_1.parquet": ("rejected", "SUB-FILE"),
    "flip_2.parquet": ("rejected", "SUB-FILE"),
    "flip_3.parquet": ("accepted", 0),
    "flip_4.parquet": ("rejected", "SUB-FILE"),
    "flip_5.parquet": ("rejected", "SUB-FILE"),
    "flip_6.parquet": ("rejected", "SUB-FILE"),
    "flip_7.parquet": ("rejected", "SUB-FILE"),
    "flip_8.parquet": ("rejected", "SUB-FILE"),
    "flip_9.parquet": ("rejected", "SUB-FILE"),
    "flip_10.parquet": ("rejected", "SUB-FILE"),
    "flip_11.parquet": ("accepted", 1),
    "trunc_2.xlsx": ("rejected", "SUB-FILE"),
    "trunc_4.xlsx": ("rejected", "SUB-FILE"),
    "trunc_8.xlsx": ("rejected", "SUB-FILE"),
    "trunc_16.xlsx": ("rejected", "SUB-FILE"),
    "trunc_1220.xlsx": ("rejected", "SUB-FILE"),
    "trunc_1556.xlsx": ("rejected", "SUB-FILE"),
    "trunc_2043.xlsx": ("rejected", "SUB-FILE"),
    "trunc_2177.xlsx": ("rejected", "SUB-FILE"),
    "trunc_2340.xlsx": ("rejected", "SUB-FILE"),
    "trunc_2586.xlsx": ("rejected", "SUB-FILE"),
    "trunc_3574.xlsx": ("rejected", "SUB-FILE"),
    "trunc_4085.xlsx": ("rejected", "SUB-FILE"),
    "trunc_4186.xlsx": ("rejected", "SUB-FILE"),
    "trunc_5202.xlsx": ("rejected", "SUB-FILE"),
    "trunc_5423.xlsx": ("rejected", "SUB-FILE"),
    "trunc_7665.xlsx": ("rejected", "SUB-FILE"),
    "trunc_7955.xlsx": ("rejected", "SUB-FILE"),
    "trunc_8163.xlsx": ("rejected", "SUB-FILE"),
    "flip_0.xlsx": ("rejected", "SUB-FILE"),
    "flip_1.xlsx": ("rejected", "SUB-FILE"),
    "flip_2.xlsx": ("rejected", "SUB-FILE"),
    "flip_3.xlsx": ("rejected", "SUB-FILE"),
    "flip_4.xlsx": ("rejected", "SUB-FILE"),
    "flip_5.xlsx": ("rejected", "SUB-FILE"),
    "flip_6.xlsx": ("rejected", "SUB-FILE"),
    "flip_7.xlsx": ("rejected", "SUB-FILE"),
    "flip_8.xlsx": ("accepted", 0),
    "flip_9.xlsx": ("rejected", "SUB-FILE"),
    "flip_10.xlsx": ("rejected", "SUB-FILE"),
    "flip_11.xlsx": ("rejected", "SUB-FILE"),
}


def _valid_rows(n: int = 40) -> list[dict[str, str]]:
    return [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}") for i in range(n)]


def _declared(rows: list[dict[str, str]], blob: bytes) -> dict:
    total = sum(Decimal(r["written_premium"]) for r in rows)
    exposure = sum(Decimal(r["written_exposure"]) for r in rows)
    return {"row_count": len(rows), "sha256": hashlib.sha256(blob).hexdigest(),
            "control_totals": {"written_premium": str(total), "written_exposure": str(exposure)}}


def _valid_files(folder: Path, rows: list[dict[str, str]]) -> dict[str, bytes]:
    csv_path = write_csv(folder / "valid.csv", rows)
    pq_path = folder / "valid.parquet"
    pq.write_table(pa.Table.from_pylist(rows), pq_path)
    xlsx_path = _xlsx(folder / "valid.xlsx", [list(rows[0]), *(list(r.values()) for r in rows)])
    return {"csv": csv_path.read_bytes(), "parquet": pq_path.read_bytes(), "xlsx": xlsx_path.read_bytes()}


def _xlsx(path: Path, lines: list[list[object]], title: str = "Sheet1") -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for r, values in enumerate(lines, 1):
        for c, v in enumerate(values, 1):
            cell = ws.cell(r, c)
            cell.value = v
            if isinstance(v, str):
                cell.data_type = "s"
    wb.save(path)
    return _same_bytes_every_run(path)


def _same_bytes_every_run(path: Path) -> Path:
    """Rewrite a workbook with fixed times (openpyxl stamps the time of saving into the zip and
    docProps/core.xml), so that a damaged copy is the same every run and so is its outcome."""
    with zipfile.ZipFile(path) as z:
        entries = [(info.filename, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            if name == "docProps/core.xml":
                data = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2024-01-01T00:00:00Z", data)
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return path


# -- damage ------------------------------------------------------------------------------------

def _damage(folder: Path, valid: dict[str, bytes], declared: dict, rng: random.Random) -> list[Hostile]:
    """Truncations and flipped bytes of the valid files, each sent twice: with the original's
    manifest (refused: its sha256 does not match) and with none (the readers must cope)."""
    out = []
    for fmt, blob in valid.items():
        cuts = sorted({1, 2, 4, 8, 16, len(blob) // 2, len(blob) - 7, *(rng.randrange(1, len(blob) - 1)
                                                                      for _ in range(12))})
        variants = [(f"trunc_{cut}", blob[:cut], f"{fmt} truncated at {cut} bytes") for cut in cuts]
        for n in range(12):
            data = bytearray(blob)
            for _ in range(rng.choice([1, 3, 50])):
                i = rng.randrange(len(data))
                data[i] = (data[i] + rng.randrange(1, 256)) % 256   # always a different byte
            variants.append((f"flip_{n}", bytes(data), f"{fmt} with flipped bytes #{n}"))
        for stem, data, label in variants:
            p = folder / f"{stem}.{fmt}"
            p.write_bytes(data)
            out.append(Hostile(p, "policy", f"{label}, declared", "refused", words="not the file its manifest describes",
                               kind=DAMAGED, why="the manifest's sha256 is the original's", fields=declared))
            # not in the table: the same bytes as an earlier file (a zip and a Parquet file cut after
            # one byte are both b"P"), one submission, dropped by build_corpus
            expect, check = UNDECLARED.get(p.name, (SAME_BYTES, ""))
            out.append(Hostile(p, "policy", f"{label}, undeclared", expect, **(
                {"quarantined": check} if expect == "accepted" else {"check": check}),
                kind=DAMAGED, why="where the damage fell decides (see UNDECLARED)"))
    return out


# -- text and structure ------------------------------------------------------------------------

def _encodings(folder: Path) -> list[Hostile]:
    """Encodings other than UTF-8 and GB18030, each with text that really needs them."""
    texts = {"utf-16": "机动车商业保险", "utf-16-le": "机动车商业保险", "utf-16-be": "机动车商业保险",
             "utf-32": "机动车商业保险", "cp500": "Assurance café société", "latin-1": "Assurance café société",
             "cp1252": "Assurance “crédit” société", "shift_jis": "自動車保険", "big5": "汽車保險"}
    out = []
    for enc, text in texts.items():
        rows = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}", product_name=text) for i in range(5)]
        p = folder / f"enc_{enc}.csv"
        write_csv(p, rows, encoding=enc)
        if enc in ("shift_jis", "big5"):   # byte-compatible with GB18030: decodes, as other characters
            out.append(Hostile(p, "policy", f"CSV in {enc} (legacy CJK)", "accepted", kind=CARELESS,
                               why="the bytes are valid GB18030; the text reads as other characters"))
        else:
            out.append(Hostile(p, "policy", f"CSV in {enc}", "rejected", ENCODING_CHECKS[enc], kind=CARELESS,
                               why="not UTF-8 or GB18030 text"))
    rows = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}") for i in range(3)]
    for enc in ("rot13", "hex", "zip", "base64", "no-such-codec"):
        p = folder / f"declared_{enc}.csv"
        write_csv(p, rows)
        out.append(Hostile(p, "policy", f"encoding declared as {enc}", "refused", words="text encoding",
                           why="not a text encoding (crashed the old ingestion)", fields={"encoding": enc}))
    return out


def _structure(folder: Path, valid: dict[str, bytes]) -> list[Hostile]:
    header = ",".join(policy_row())
    line = ",".join(policy_row().values())
    long_header = ",".join(policy_row()) + "," + ",".join(f"extra_{i:06d}" for i in range(8000))
    cases = [
        ("empty", b"", "rejected", "SUB-EMPTY", CARELESS),
        ("only newlines", b"\n\n\n\n", "rejected", "SUB-EMPTY", CARELESS),
        ("bom only", b"\xef\xbb\xbf", "rejected", "SUB-EMPTY", CARELESS),
        ("header only", header.encode() + b"\n", "rejected", "SUB-EMPTY", CARELESS),
        ("nul bytes", valid["csv"][:200] + b"\0\0\0" + valid["csv"][200:], "rejected", "SUB-FILE", HOSTILE),
        ("nul only", b"\0" * 4096, "rejected", "SUB-FILE", HOSTILE),
        ("ten megabyte field", (header + "\n" + line.replace("机动车商业保险", "x" * (10 << 20)) + "\n").encode(),
         "rejected", "SUB-FILE", HOSTILE),
        ("hundred thousand columns", (",".join(f"c{i}" for i in range(100_000)) + "\n" + "1," * 99_999 + "1\n").encode(),
         "rejected", "SUB-COLUMNS-MISSING", HOSTILE),
        ("header over 64 KB", (long_header + "\n" + line + "," * 8000 + "\n").encode(), "rejected", "SUB-COLUMNS-EXTRA", HOSTILE),
        ("header over 1 MB", (header + ",x" * 600_000 + "\n" + line + "\n").encode(), "rejected", "SUB-FILE", HOSTILE),
        ("a million commas on four lines", (header + "\n" + ("," * 250_000 + "\n") * 4).encode(), "rejected",
         "SUB-ERROR-SHARE", HOSTILE),
        ("unterminated quote", (header + "\n\"" + line + "\n").encode(), "rejected", "SUB-FILE", CARELESS),
        ("quote in the header", ('"' + header + "\n" + line + "\n").encode(), "rejected", "SUB-FILE", CARELESS),
        ("header spread over two lines", (header.replace(",", '",\n"', 1) + "\n" + line + "\n").encode(),
         "rejected", "SUB-COLUMNS-MISSING", CARELESS),
        ("quotes everywhere", (header + "\n" + "\"\"\"," * 19 + "\"\n").encode(), "rejected", "SUB-FILE", HOSTILE),
        ("semicolon separated", (header.replace(",", ";") + "\n" + line.replace(",", ";") + "\n").encode(),
         "rejected", "SUB-COLUMNS-MISSING", CARELESS),
        ("tab separated", (header.replace(",", "\t") + "\n" + line.replace(",", "\t") + "\n").encode(),
         "rejected", "SUB-COLUMNS-MISSING", CARELESS),
        ("random text", b"lorem ipsum dolor sit amet\n" * 100, "rejected", "SUB-COLUMNS-MISSING", CARELESS),
        ("html page", b"<html><body><h1>502 Bad Gateway</h1></body></html>\n", "rejected", "SUB-COLUMNS-MISSING",
         CARELESS),
        ("json instead of csv", json.dumps([policy_row()]).encode(), "rejected", "SUB-COLUMNS-MISSING", CARELESS),
        ("duplicated header", (header + "," + header + "\n" + line + "," + line + "\n").encode(),
         "rejected", "SUB-COLUMNS-DUPLICATE", CARELESS),
        ("header of the other dataset", (",".join(claim_row()) + "\n" + ",".join(claim_row().values()) + "\n").encode(),
         "rejected", "SUB-COLUMNS-MISSING", CARELESS),
        ("very long line of one field", b"x" * (6 << 20) + b"\n", "rejected", "SUB-FILE", HOSTILE),
        ("carriage-return line ends (valid)", (header + "\r" + line + "\r").encode(), "accepted", "", VALID),
        ("a data line with too many fields", (header + "\n" + line + ",extra\n").encode(), "rejected", "SUB-FILE",
         CARELESS),
        ("a data line with too few fields", (header + "\n" + line.rsplit(",", 3)[0] + "\n").encode(),
         "rejected", "SUB-FILE", CARELESS),
    ]
    out = []
    for n, (label, blob, expect, check, kind) in enumerate(cases):
        p = folder / f"struct_{n}.csv"
        p.write_bytes(blob)
        out.append(Hostile(p, "policy", label, expect, check, kind=kind, why="structure"))
    for n in range(8):
        p = folder / f"garbage_{n}.{('csv', 'parquet', 'xlsx')[n % 3]}"
        p.write_bytes(random.Random(n).randbytes(1000 * (n + 1)))
        out.append(Hostile(p, "policy", f"random bytes #{n} named {p.suffix}", "rejected", "SUB-FILE", kind=DAMAGED,
                           why="not a file of its format"))
    return out


# -- attacks on the reader ---------------------------------------------------------------------

SQL_NAMES = [
    'policy_no" , (SELECT 1) AS "x', 'x"; DROP TABLE lake.policy; --', "policy_no'); DELETE FROM lake.policy; --",
    INJECTION, 'product_name"--', "product_name\u0000", '" OR 1=1 --', "${jndi:ldap://x}", "product_name; ATTACH 'x'",
    "read_text('/etc/passwd')", "*", "#1",
]


def _sql_headers(folder: Path) -> list[Hostile]:
    """The contract's header with its last name replaced by SQL, in every format; and
    two-faced workbooks that show one header to one reader and another to the other."""
    out = []
    rows = _valid_rows(5)
    names = list(rows[0])
    for n, evil in enumerate(SQL_NAMES):
        header = [*names[:-1], evil]
        lines = [list(r.values()) for r in rows]
        if "\u0000" not in evil:
            p = folder / f"sqlhdr_{n}.csv"
            write_csv(p, [dict(zip(header, v, strict=True)) for v in lines], header=header)
            out.append(Hostile(p, "policy", f"CSV header with SQL #{n}", "rejected", "SUB-COLUMNS-MISSING",
                               why="a header name that is not the contract's"))
            p = folder / f"sqlhdr_{n}.xlsx"
            _xlsx(p, [header, *lines])
            out.append(Hostile(p, "policy", f"XLSX header with SQL #{n}", "rejected", "SUB-COLUMNS-MISSING",
                               why="a header name that is not the contract's"))
        p = folder / f"sqlhdr_{n}.parquet"
        pq.write_table(pa.table({f"c{i}": [v[i] for v in lines] for i in range(len(header))})
                       .rename_columns(header), p)
        out.append(Hostile(p, "policy", f"Parquet column name with SQL #{n}", "rejected", "SUB-COLUMNS-MISSING",
                           why="a column name that is not the contract's"))
        if "\u0000" in evil:
            continue
        p = two_faced_xlsx(folder / f"twofaced_{n}.xlsx", rows, {names[-1]: evil})
        out.append(Hostile(p, "policy", f"two-faced XLSX #{n}", "rejected", "SUB-COLUMNS-MISSING",
                           why="the header DuckDB reads is the one checked"))
    for n, sheet in enumerate(["'; DROP TABLE x; --", "Sheet1\" OR \"1", "../../etc", "<script>x</script>"]):
        p = two_faced_xlsx(folder / f"sheet_{n}.xlsx", rows, {}, sheet_name=sheet)
        out.append(Hostile(p, "policy", f"sheet named {sheet!r}", "accepted", kind=VALID,
                           why="valid rows; the sheet name, the only odd thing, is never read as code nor shown: "
                               "harmless, so accepted"))
    return out


def _values(folder: Path) -> list[Hostile]:
    """Markup, formulas and SQL in every row's values: the rows are quarantined with reasons
    (so the file is rejected above the error share), and nothing is executed or rendered."""
    payloads = {"markup": "<script>document.title='pwned'</script>", "image": "<img src=x onerror=alert(1)>",
                "formula": "=HYPERLINK(\"http://x\",\"y\")", "sql": "'); DROP TABLE lake.policy; --",
                "template": "{{7*7}}", "nul": "A\u0000B"}
    out = []
    for name, payload in payloads.items():
        rows = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}", region_code=payload,
                           channel=payload) for i in range(10)]
        for fmt in ("csv", "parquet", "xlsx"):
            if name == "nul" and fmt != "parquet":
                continue
            p = folder / f"val_{name}.{fmt}"
            if fmt == "csv":
                write_csv(p, rows)
            elif fmt == "parquet":
                pq.write_table(pa.Table.from_pylist(rows), p)
            else:
                _xlsx(p, [list(rows[0]), *(list(r.values()) for r in rows)])
            if name == "nul":
                out.append(Hostile(p, "policy", f"{name} in values ({fmt})", "rejected", "SUB-FILE",
                                   why="a NUL character is not text"))
                continue
            out.append(Hostile(p, "policy", f"{name} in values ({fmt})", "rejected", "SUB-ERROR-SHARE",
                               why="every row breaks the region and channel code lists"))
    return out


def _containers(folder: Path) -> list[Hostile]:
    out = []
    p = folder / "bomb.xlsx"   # a sheet that inflates to about 1 GB from a few MB
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        z.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets><sheet name="s" sheetId="1"/></sheets></workbook>')
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            f.write(b'<?xml version="1.0"?><worksheet><sheetData>')
            row = b'<row><c t="inlineStr"><is><t>' + b"A" * 1000 + b"</t></is></c></row>"
            chunk = row * 1000
            for _ in range(1000):
                f.write(chunk)
            f.write(b"</sheetData></worksheet>")
    out.append(Hostile(p, "policy", "XLSX zip bomb (1 GB sheet)", "rejected", "SUB-FILE", why="cannot be read in bounds"))
    for n, members in enumerate([{"hello.txt": "hi"}, {"xl/worksheets/sheet1.xml": "not xml at all"}]):
        p = folder / f"badzip_{n}.xlsx"
        with zipfile.ZipFile(p, "w") as z:
            for name, text in members.items():
                z.writestr(name, text)
        out.append(Hostile(p, "policy", f"zip that is not a workbook #{n}", "rejected", "SUB-FILE", kind=CARELESS,
                           why="no sheet"))
    base = {k: [v] for k, v in policy_row().items()}
    cases = [
        ("no columns of the contract", pa.table({"a": [1, 2, 3]}), "rejected", "SUB-COLUMNS-MISSING", CARELESS),
        ("zero rows", pa.Table.from_pylist([], schema=pa.schema([(k, pa.string()) for k in policy_row()])),
         "rejected", "SUB-EMPTY", CARELESS),
        ("a list column", pa.table({**base, "written_premium": [[1.0, 2.0]]}), "rejected", "SUB-FILE", HOSTILE),
        ("a struct column", pa.table({**base, "channel": [{"a": 1}]}), "rejected", "SUB-FILE", HOSTILE),
        ("a map column", pa.table({**base, "channel": pa.array([[("k", "v")]], pa.map_(pa.string(), pa.string()))}),
         "rejected", "SUB-FILE", HOSTILE),
        ("binary that is not UTF-8", pa.table({**base, "product_name": pa.array([b"\xff\xfe\x00"], pa.binary())}),
         "rejected", "SUB-FILE", HOSTILE),
        ("strings stored as binary (valid)", pa.table({k: pa.array([v.encode()], pa.binary())
                                                       for k, v in policy_row().items()}), "accepted", "", VALID),
    ]
    for n, (label, table, expect, check, kind) in enumerate(cases):
        p = folder / f"pq_{n}.parquet"
        pq.write_table(table, p)
        out.append(Hostile(p, "policy", f"Parquet: {label}", expect, check, kind=kind, why="Parquet types"))
    return out


# -- manifests ---------------------------------------------------------------------------------

def _manifests(folder: Path, valid: dict[str, bytes]) -> list[Hostile]:
    out = []
    files = {
        "deeply nested": ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        "huge": (json.dumps({"member_id": "M001", "dataset": "policy", "period": "2024Q1",
                             "padding": "x" * (5 << 20)}), "larger than 1 MB"),
        "not an object": (json.dumps([1, 2, 3]), "must be a JSON object"),
        "not json": ("member_id: M001", "not valid JSON"),
        "binary": ("\x00\x01\x02", "not valid JSON"),
    }
    careless = {"not an object", "not json"}
    for n, (label, (body, words)) in enumerate(files.items()):
        data = folder / f"man_{n}.csv"
        data.write_bytes(valid["csv"])
        m = folder / f"man_{n}.csv.manifest.json"
        m.write_text(body, encoding="utf-8")
        out.append(Hostile(data, "policy", f"manifest: {label}", "refused", words=words, manifest=m,
                           kind=CARELESS if label in careless else HOSTILE))
    fields = {
        "control totals not a mapping": ({"control_totals": [1, 2]}, "must be a mapping"),
        "row count not a number": ({"row_count": "many"}, "is not a whole number"),
        "row count negative": ({"row_count": -1}, "is not a whole number"),
        "path-like member": ({"member_id": "../../etc"}, "is not a member id"),
        "another member's id": ({"member_id": "M999"}, "is not registered"),
        "SQL as member": ({"member_id": "M001' OR '1'='1"}, "is not a member id"),
        "SQL as dataset": ({"dataset": "policy; DROP TABLE x"}, "is not one of"),
        "unknown contract version": ({"contract_version": "9.9"}, "version"),
        "period 9999Q4": ({"period": "9999Q4"}, "has not started yet"),
        "period 0000": ({"period": "0000"}, "calendar year"),
        "period in words": ({"period": "last quarter"}, "is not a quarter"),
        "period of the wrong grain": ({"period": "2024"}, "is not a quarter"),
        "control total NaN": ({"control_totals": {"written_premium": "NaN"}}, "is not an amount"),
        "control total infinite": ({"control_totals": {"written_premium": "-Infinity"}}, "is not an amount"),
        "control total of another column": ({"control_totals": {"case_reserve": "1"}}, "not defined"),
        "sha256 not hex": ({"sha256": "z" * 64}, "64 hexadecimal digits"),
        "sha256 of other bytes": ({"sha256": "0" * 64}, "not the file its manifest describes"),
    }
    careless = {"row count not a number", "unknown contract version", "period in words", "period of the wrong grain",
                "control total of another column", "sha256 not hex", "sha256 of other bytes"}
    for n, (label, (extra, words)) in enumerate(fields.items()):
        data = folder / f"manf_{n}.csv"
        data.write_bytes(valid["csv"] + b"\n" * (n + 1))   # distinct bytes, same rows
        out.append(Hostile(data, "policy", f"manifest: {label}", "refused", words=words, fields=extra,
                           kind=CARELESS if label in careless else HOSTILE))
    bad_name = folder / "valid.exe"
    bad_name.write_bytes(valid["csv"])
    out.append(Hostile(bad_name, "policy", "file named .exe", "refused", words="is not .csv"))
    return out


def build_corpus(folder: Path, seed: int = 7) -> list[Hostile]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = _valid_rows()
    valid = _valid_files(folder, rows)
    declared = {fmt: _declared(rows, blob) for fmt, blob in valid.items()}
    damage = [h for fmt in valid for h in _damage(folder, {fmt: valid[fmt]}, declared[fmt], rng)]
    items = (damage + _encodings(folder) + _structure(folder, valid) + _sql_headers(folder) + _values(folder)
             + _containers(folder) + _manifests(folder, valid))
    seen, unique = set(), []
    for item in items:   # the same bytes and manifest twice would be one submission (intake's no-op)
        key = (hashlib.sha256(item.path.read_bytes()).hexdigest(), item.label.rsplit(", ", 1)[-1],
               item.manifest.read_text(errors="replace") if item.manifest else json.dumps(item.fields, sort_keys=True))
        if key not in seen:
            seen.add(key)
            unique.append(item)
    assert not [i.path.name for i in unique if i.expect == SAME_BYTES], "damaged files missing from UNDECLARED"
    return unique
