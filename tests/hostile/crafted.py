"""Crafted files that attack the reader rather than the rules.

``two_faced_xlsx`` writes a workbook whose two shared-string tables disagree: openpyxl finds
the table through ``[Content_Types].xml``, DuckDB's ``read_xlsx`` always reads
``xl/sharedStrings.xml``. A reader that checks the header with one and reads the data with the
other checks one header and reads another.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

# Breaks out of a double-quoted identifier, runs a statement on whatever the reading
# connection can reach, and comments out the rest of the line.
INJECTION = ('rowid" AS "zz" FROM raw_file; UPDATE lake.policy SET written_premium = written_premium * 10 '
             "WHERE member_id = 'M002'; --")
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_SST_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def _col(i: int) -> str:
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name


def _sst(strings: list[str]) -> str:
    items = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
    return f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{_MAIN}" count="{len(strings)}" uniqueCount="{len(strings)}">{items}</sst>'


def two_faced_xlsx(path: Path, rows: list[dict[str, str]], hidden: dict[str, str],
                   sheet_name: str = "Sheet1") -> Path:
    """An XLSX of ``rows`` (every cell a shared string) whose header, as DuckDB reads it, has
    ``hidden[name]`` instead of ``name``; openpyxl reads the honest header."""
    header = list(rows[0])
    strings: list[str] = []
    index: dict[str, int] = {}

    def ref(value: str) -> int:
        if value not in index:
            index[value] = len(strings)
            strings.append(value)
        return index[value]

    lines = [header] + [[str(v) for v in r.values()] for r in rows]
    xml_rows = []
    for n, values in enumerate(lines, 1):
        cells = "".join(f'<c r="{_col(i)}{n}" t="s"><v>{ref(v)}</v></c>' for i, v in enumerate(values) if v != "")
        xml_rows.append(f'<row r="{n}">{cells}</row>')
    hostile = [hidden.get(s, s) if i < len(header) else s for i, s in enumerate(strings)]
    sheet = f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_MAIN}"><sheetData>{"".join(xml_rows)}</sheetData></worksheet>'
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            f'<Override PartName="/xl/honest.xml" ContentType="{_SST_TYPE}"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
            f'<sheet name="{escape(sheet_name, {chr(34): "&quot;"})}" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{_REL}/sharedStrings" Target="honest.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": sheet,
        "xl/honest.xml": _sst(strings),
        "xl/sharedStrings.xml": _sst(hostile),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path
