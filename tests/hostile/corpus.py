"""A corpus of malformed submissions: every way a file can be broken that we could think of.

``build_corpus(folder)`` writes at least 200 files and returns, for each, the file, the
dataset it claims to be and a short label. Made deterministically from a seed.
"""

from __future__ import annotations

import hashlib
import json
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import claim_row, policy_row, write_csv


@dataclass(frozen=True)
class Hostile:
    path: Path
    dataset: str
    label: str
    manifest: Path | None = None


def _valid_policy_rows(n: int = 40) -> list[dict]:
    return [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}") for i in range(n)]


def _valid_files(folder: Path) -> dict[str, bytes]:
    rows = _valid_policy_rows()
    csv_path = write_csv(folder / "valid.csv", rows)
    pq_path = folder / "valid.parquet"
    pq.write_table(pa.Table.from_pylist(rows), pq_path)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(rows[0]))
    for r in rows:
        ws.append(list(r.values()))
    xlsx_path = folder / "valid.xlsx"
    wb.save(xlsx_path)
    return {"csv": csv_path.read_bytes(), "parquet": pq_path.read_bytes(), "xlsx": xlsx_path.read_bytes()}


def _truncations(folder: Path, valid: dict[str, bytes], rng: random.Random) -> list[Hostile]:
    out = []
    for fmt, blob in valid.items():
        cuts = sorted({1, 2, 4, 8, 16, len(blob) // 2, len(blob) - 1, len(blob) - 7,
                       *(rng.randrange(1, len(blob)) for _ in range(24))})
        for cut in cuts:
            p = folder / f"trunc_{cut}.{fmt}"
            p.write_bytes(blob[:cut])
            out.append(Hostile(p, "policy", f"{fmt} truncated at {cut} bytes"))
    return out


def _byte_flips(folder: Path, valid: dict[str, bytes], rng: random.Random) -> list[Hostile]:
    out = []
    for fmt, blob in valid.items():
        for n in range(20):
            data = bytearray(blob)
            for _ in range(rng.choice([1, 3, 50])):
                i = rng.randrange(len(data))
                data[i] = rng.randrange(256)
            p = folder / f"flip_{n}.{fmt}"
            p.write_bytes(bytes(data))
            out.append(Hostile(p, "policy", f"{fmt} with flipped bytes #{n}"))
    return out


def _encodings(folder: Path) -> list[Hostile]:
    """Encodings other than UTF-8 and GB18030, each with text that really needs them."""
    texts = {"utf-16": "机动车商业保险", "utf-16-le": "机动车商业保险", "utf-16-be": "机动车商业保险",
             "utf-32": "机动车商业保险", "cp500": "Assurance café société", "latin-1": "Assurance café société",
             "cp1252": "Assurance “crédit” société", "shift_jis": "自動車保険", "big5": "汽車保險"}
    out = []
    for enc, text in texts.items():
        rows = [policy_row(transaction_id=f"T{i:04d}", product_name=text) for i in range(5)]
        p = folder / f"enc_{enc}.csv"
        write_csv(p, rows, encoding=enc)
        legacy_cjk = enc in ("shift_jis", "big5")  # byte-compatible with GB18030: may decode as mojibake
        out.append(Hostile(p, "policy", f"CSV in {enc}" + (" (legacy CJK)" if legacy_cjk else "")))
    return out


def _structure(folder: Path, valid: dict[str, bytes]) -> list[Hostile]:
    header = ",".join(policy_row())
    line = ",".join(policy_row().values())
    cases = {
        "empty": b"",
        "only newlines": b"\n\n\n\n",
        "bom only": b"\xef\xbb\xbf",
        "header only": header.encode() + b"\n",
        "nul bytes": valid["csv"][:200] + b"\0\0\0" + valid["csv"][200:],
        "nul only": b"\0" * 4096,
        "ten megabyte field": (header + "\n" + line.replace("机动车商业保险", "x" * (10 << 20)) + "\n").encode(),
        "hundred thousand columns": (",".join(f"c{i}" for i in range(100_000)) + "\n" + "1," * 99_999 + "1\n").encode(),
        "a million commas": (header + "\n" + "," * 1_000_000 + "\n").encode(),
        "unterminated quote": (header + "\n\"" + line + "\n").encode(),
        "quotes everywhere": (header + "\n" + "\"\"\"," * 19 + "\"\n").encode(),
        "semicolon separated": (header.replace(",", ";") + "\n" + line.replace(",", ";") + "\n").encode(),
        "tab separated": (header.replace(",", "\t") + "\n" + line.replace(",", "\t") + "\n").encode(),
        "random text": b"lorem ipsum dolor sit amet\n" * 100,
        "html page": b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
        "json instead of csv": json.dumps([policy_row()]).encode(),
        "duplicated header": (header + "," + header + "\n" + line + "," + line + "\n").encode(),
        "header of the other dataset": (",".join(claim_row()) + "\n" + ",".join(claim_row().values()) + "\n").encode(),
        "carriage-return line ends (valid)": (header + "\r" + line + "\r").encode(),
        "very long line of one field": b"x" * (6 << 20) + b"\n",
    }
    out = []
    for n, (label, blob) in enumerate(cases.items()):
        p = folder / f"struct_{n}.csv"
        p.write_bytes(blob)
        out.append(Hostile(p, "policy", label))
    for n in range(8):
        p = folder / f"garbage_{n}.{('csv', 'parquet', 'xlsx')[n % 3]}"
        p.write_bytes(random.Random(n).randbytes(1000 * (n + 1)))
        out.append(Hostile(p, "policy", f"random bytes #{n} named {p.suffix}"))
    return out


def _xlsx_bombs(folder: Path) -> list[Hostile]:
    out = []
    # A sheet that inflates to about 1 GB from a few MB.
    p = folder / "bomb.xlsx"
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
    out.append(Hostile(p, "policy", "XLSX zip bomb (1 GB sheet)"))
    # Zip with no worksheet, and a workbook whose sheet is plain text.
    for n, members in enumerate([{"hello.txt": "hi"}, {"xl/worksheets/sheet1.xml": "not xml at all"}]):
        p = folder / f"badzip_{n}.xlsx"
        with zipfile.ZipFile(p, "w") as z:
            for name, text in members.items():
                z.writestr(name, text)
        out.append(Hostile(p, "policy", f"zip that is not a workbook #{n}"))
    return out


def _parquet_oddities(folder: Path) -> list[Hostile]:
    out = []
    cases = {
        "no columns of the contract": pa.table({"a": [1, 2, 3]}),
        "zero rows": pa.Table.from_pylist([], schema=pa.schema([(k, pa.string()) for k in policy_row()])),
        "nested columns": pa.table({**{k: [v] for k, v in policy_row().items()},
                                    "written_premium": [[1.0, 2.0]]}),
        "strings stored as binary (valid)": pa.table({k: [v.encode()] for k, v in policy_row().items()}),
    }
    for n, (label, table) in enumerate(cases.items()):
        p = folder / f"pq_{n}.parquet"
        pq.write_table(table, p)
        out.append(Hostile(p, "policy", f"Parquet: {label}"))
    return out


def _manifests(folder: Path, valid: dict[str, bytes]) -> list[Hostile]:
    out = []
    bodies = {
        "deeply nested": "[" * 100_000 + "]" * 100_000,
        "huge": json.dumps({"member_id": "M001", "dataset": "policy", "period": "2024Q1",
                            "padding": "x" * (5 << 20)}),
        "not an object": json.dumps([1, 2, 3]),
        "not json": "member_id: M001",
        "binary": "\x00\x01\x02",
        "control totals not a mapping": json.dumps({"member_id": "M001", "dataset": "policy",
                                                    "period": "2024Q1", "control_totals": [1, 2]}),
        "row count not a number": json.dumps({"member_id": "M001", "dataset": "policy", "period": "2024Q1",
                                              "row_count": "many"}),
        "path-like member": json.dumps({"member_id": "../../etc", "dataset": "policy", "period": "2024Q1"}),
    }
    for n, (label, body) in enumerate(bodies.items()):
        data = folder / f"man_{n}.csv"
        data.write_bytes(valid["csv"])
        m = folder / f"man_{n}.csv.manifest.json"
        m.write_text(body, encoding="utf-8")
        out.append(Hostile(data, "policy", f"manifest: {label}", manifest=m))
    return out


def build_corpus(folder: Path, seed: int = 7) -> list[Hostile]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    valid = _valid_files(folder)
    items = (_truncations(folder, valid, rng) + _byte_flips(folder, valid, rng) + _encodings(folder)
             + _structure(folder, valid) + _xlsx_bombs(folder) + _parquet_oddities(folder)
             + _manifests(folder, valid))
    seen, unique = set(), []
    for item in items:  # the same bytes twice would be one submission (intake's no-op)
        key = (hashlib.sha256(item.path.read_bytes()).hexdigest(),
               item.manifest.read_text(errors="replace") if item.manifest else None)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique
