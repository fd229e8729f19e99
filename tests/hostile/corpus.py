"""A corpus of hostile and damaged submissions, each with the outcome it must get and why.

``build_corpus(folder)`` writes 300+ files, deterministically from a seed, and returns one
``Hostile`` per file: the file, its manifest (fields, or a JSON file to read), the outcome it
must end in (``refused`` at intake, ``rejected`` at ingestion, or ``accepted``), the check
or words its message must carry, and why. Classes:

- *hostile*: files made to attack the platform (SQL in headers and sheet names, two-faced
  workbooks, zip bombs, nested Parquet, markup and formulas in values, manifests with values
  that crashed the old intake): never accepted;
- *damaged, declared*: truncated or bit-flipped copies of a valid file, sent with the manifest of
  the original (its row count, control totals and sha256): refused, since the bytes are not the
  bytes the manifest describes;
- *damaged, undeclared*: the same damage sent with no row count, totals or sha256: the outcome
  depends on where the damage fell (a flipped byte inside a name cannot be seen), so the
  expectation is only *recorded* (accepted or rejected, never a traceback, never stuck); these
  exercise the readers;
- *valid oddities*: unusual but valid files (CR line ends, strings stored as Parquet BINARY):
  accepted.
"""

from __future__ import annotations

import hashlib
import json
import random
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import claim_row, policy_row, write_csv
from tests.hostile.crafted import INJECTION, two_faced_xlsx

RECORDED = "recorded"    # accepted or rejected, whichever the damage allows


@dataclass(frozen=True)
class Hostile:
    path: Path
    dataset: str
    label: str
    expect: str                      # refused | rejected | accepted | recorded
    check: str = ""                  # rejected: the check id the reason starts with (a prefix)
    words: str = ""                  # refused: words the message holds
    why: str = ""
    manifest: Path | None = None     # a manifest file to read (else built from ``fields``)
    fields: dict = field(default_factory=dict)
    member: str = "M001"


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
                               why="the manifest's sha256 is the original's", fields=declared))
            out.append(Hostile(p, "policy", f"{label}, undeclared", RECORDED,
                               why="where the damage fell decides; it must end recorded"))
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
            out.append(Hostile(p, "policy", f"CSV in {enc} (legacy CJK)", "accepted",
                               why="the bytes are valid GB18030; the text reads as other characters"))
        elif enc == "utf-16":
            out.append(Hostile(p, "policy", f"CSV in {enc}", "rejected", "SUB-ENCODING", why="not UTF-8 or GB18030"))
        else:
            out.append(Hostile(p, "policy", f"CSV in {enc}", "rejected", "SUB-", why="not UTF-8 or GB18030 text"))
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
        ("empty", b"", "rejected", "SUB-EMPTY"),
        ("only newlines", b"\n\n\n\n", "rejected", "SUB-EMPTY"),
        ("bom only", b"\xef\xbb\xbf", "rejected", "SUB-EMPTY"),
        ("header only", header.encode() + b"\n", "rejected", "SUB-EMPTY"),
        ("nul bytes", valid["csv"][:200] + b"\0\0\0" + valid["csv"][200:], "rejected", "SUB-"),
        ("nul only", b"\0" * 4096, "rejected", "SUB-FILE"),
        ("ten megabyte field", (header + "\n" + line.replace("机动车商业保险", "x" * (10 << 20)) + "\n").encode(),
         "rejected", "SUB-FILE"),
        ("hundred thousand columns", (",".join(f"c{i}" for i in range(100_000)) + "\n" + "1," * 99_999 + "1\n").encode(),
         "rejected", "SUB-COLUMNS-"),
        ("header over 64 KB", (long_header + "\n" + line + "," * 8000 + "\n").encode(), "rejected", "SUB-COLUMNS-EXTRA"),
        ("header over 1 MB", (header + ",x" * 600_000 + "\n" + line + "\n").encode(), "rejected", "SUB-FILE"),
        ("a million commas on four lines", (header + "\n" + ("," * 250_000 + "\n") * 4).encode(), "rejected", "SUB-"),
        ("unterminated quote", (header + "\n\"" + line + "\n").encode(), "rejected", "SUB-FILE"),
        ("quote in the header", ('"' + header + "\n" + line + "\n").encode(), "rejected", "SUB-"),
        ("header spread over two lines", (header.replace(",", '",\n"', 1) + "\n" + line + "\n").encode(),
         "rejected", "SUB-"),
        ("quotes everywhere", (header + "\n" + "\"\"\"," * 19 + "\"\n").encode(), "rejected", "SUB-FILE"),
        ("semicolon separated", (header.replace(",", ";") + "\n" + line.replace(",", ";") + "\n").encode(),
         "rejected", "SUB-COLUMNS-MISSING"),
        ("tab separated", (header.replace(",", "\t") + "\n" + line.replace(",", "\t") + "\n").encode(),
         "rejected", "SUB-COLUMNS-MISSING"),
        ("random text", b"lorem ipsum dolor sit amet\n" * 100, "rejected", "SUB-COLUMNS-MISSING"),
        ("html page", b"<html><body><h1>502 Bad Gateway</h1></body></html>\n", "rejected", "SUB-"),
        ("json instead of csv", json.dumps([policy_row()]).encode(), "rejected", "SUB-"),
        ("duplicated header", (header + "," + header + "\n" + line + "," + line + "\n").encode(),
         "rejected", "SUB-COLUMNS-DUPLICATE"),
        ("header of the other dataset", (",".join(claim_row()) + "\n" + ",".join(claim_row().values()) + "\n").encode(),
         "rejected", "SUB-COLUMNS-MISSING"),
        ("very long line of one field", b"x" * (6 << 20) + b"\n", "rejected", "SUB-FILE"),
        ("carriage-return line ends (valid)", (header + "\r" + line + "\r").encode(), "accepted", ""),
        ("a data line with too many fields", (header + "\n" + line + ",extra\n").encode(), "rejected", "SUB-FILE"),
        ("a data line with too few fields", (header + "\n" + line.rsplit(",", 3)[0] + "\n").encode(),
         "rejected", "SUB-FILE"),
    ]
    out = []
    for n, (label, blob, expect, check) in enumerate(cases):
        p = folder / f"struct_{n}.csv"
        p.write_bytes(blob)
        out.append(Hostile(p, "policy", label, expect, check, why="structure"))
    for n in range(8):
        p = folder / f"garbage_{n}.{('csv', 'parquet', 'xlsx')[n % 3]}"
        p.write_bytes(random.Random(n).randbytes(1000 * (n + 1)))
        out.append(Hostile(p, "policy", f"random bytes #{n} named {p.suffix}", "rejected", "SUB-",
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
            out.append(Hostile(p, "policy", f"CSV header with SQL #{n}", "rejected", "SUB-COLUMNS-",
                               why="a header name that is not the contract's"))
            p = folder / f"sqlhdr_{n}.xlsx"
            _xlsx(p, [header, *lines])
            out.append(Hostile(p, "policy", f"XLSX header with SQL #{n}", "rejected", "SUB-COLUMNS-",
                               why="a header name that is not the contract's"))
        p = folder / f"sqlhdr_{n}.parquet"
        pq.write_table(pa.table({f"c{i}": [v[i] for v in lines] for i in range(len(header))})
                       .rename_columns(header), p)
        out.append(Hostile(p, "policy", f"Parquet column name with SQL #{n}", "rejected", "SUB-COLUMNS-",
                           why="a column name that is not the contract's"))
        if "\u0000" in evil:
            continue
        p = two_faced_xlsx(folder / f"twofaced_{n}.xlsx", rows, {names[-1]: evil})
        out.append(Hostile(p, "policy", f"two-faced XLSX #{n}", "rejected", "SUB-COLUMNS-",
                           why="the header DuckDB reads is the one checked"))
    for n, sheet in enumerate(["'; DROP TABLE x; --", "Sheet1\" OR \"1", "../../etc", "<script>x</script>"]):
        p = two_faced_xlsx(folder / f"sheet_{n}.xlsx", rows, {}, sheet_name=sheet)
        out.append(Hostile(p, "policy", f"sheet named {sheet!r}", "accepted", why="a sheet name is never read as code"))
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
        out.append(Hostile(p, "policy", f"zip that is not a workbook #{n}", "rejected", "SUB-FILE", why="no sheet"))
    base = {k: [v] for k, v in policy_row().items()}
    cases = [
        ("no columns of the contract", pa.table({"a": [1, 2, 3]}), "rejected", "SUB-COLUMNS-MISSING"),
        ("zero rows", pa.Table.from_pylist([], schema=pa.schema([(k, pa.string()) for k in policy_row()])),
         "rejected", "SUB-EMPTY"),
        ("a list column", pa.table({**base, "written_premium": [[1.0, 2.0]]}), "rejected", "SUB-FILE"),
        ("a struct column", pa.table({**base, "channel": [{"a": 1}]}), "rejected", "SUB-FILE"),
        ("a map column", pa.table({**base, "channel": pa.array([[("k", "v")]], pa.map_(pa.string(), pa.string()))}),
         "rejected", "SUB-FILE"),
        ("binary that is not UTF-8", pa.table({**base, "product_name": pa.array([b"\xff\xfe\x00"], pa.binary())}),
         "rejected", "SUB-FILE"),
        ("strings stored as binary (valid)", pa.table({k: pa.array([v.encode()], pa.binary())
                                                       for k, v in policy_row().items()}), "accepted", ""),
    ]
    for n, (label, table, expect, check) in enumerate(cases):
        p = folder / f"pq_{n}.parquet"
        pq.write_table(table, p)
        out.append(Hostile(p, "policy", f"Parquet: {label}", expect, check, why="Parquet types"))
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
    for n, (label, (body, words)) in enumerate(files.items()):
        data = folder / f"man_{n}.csv"
        data.write_bytes(valid["csv"])
        m = folder / f"man_{n}.csv.manifest.json"
        m.write_text(body, encoding="utf-8")
        out.append(Hostile(data, "policy", f"manifest: {label}", "refused", words=words, manifest=m))
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
    for n, (label, (extra, words)) in enumerate(fields.items()):
        data = folder / f"manf_{n}.csv"
        data.write_bytes(valid["csv"] + b"\n" * (n + 1))   # distinct bytes, same rows
        out.append(Hostile(data, "policy", f"manifest: {label}", "refused", words=words, fields=extra))
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
    return unique
