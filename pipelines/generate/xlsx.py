"""A minimal XLSX writer: one sheet, inline strings, date and number cells, identical bytes.

Spreadsheet libraries stamp the clock into a workbook (document properties, zip entry
times) and are slow on tens of thousands of rows; a single plain sheet needs only seven
small XML parts, written here with fixed times. Text is always a text cell, also text that
starts with ``=``; dates are serial day numbers with a ``yyyy-mm-dd`` format; amounts are
number cells written with their exact decimals.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

ZIP_TIME = (1980, 1, 1, 0, 0, 0)
EPOCH = dt.date(1899, 12, 30)
SERIAL_RANGE = (10_000, 99_999)   # 1927-05-18 .. 2173-10-13 as day numbers
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

CONTENT_TYPES = HEAD + (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/docProps/core.xml" '
    'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    '<Override PartName="/docProps/app.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
    '</Types>')
ROOT_RELS = HEAD + (
    f'<Relationships xmlns="{PKG_REL}">'
    f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>'
    f'<Relationship Id="rId2" Type="{PKG_REL}/metadata/core-properties" Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{REL}/extended-properties" Target="docProps/app.xml"/>'
    '</Relationships>')
WORKBOOK_RELS = HEAD + (
    f'<Relationships xmlns="{PKG_REL}">'
    f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{REL}/styles" Target="styles.xml"/>'
    '</Relationships>')
STYLES = HEAD + (
    f'<styleSheet xmlns="{MAIN}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>')


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _cell(ref: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        serial = (value - EPOCH).days
        if SERIAL_RANGE[0] <= serial <= SERIAL_RANGE[1]:
            return f'<c r="{ref}" s="1"><v>{serial}</v></c>'
        value = value.isoformat()     # the platform reads five-digit serials only
    if isinstance(value, (Decimal, int, float)) and not isinstance(value, bool):
        return f'<c r="{ref}"><v>{format(value, "f") if isinstance(value, Decimal) else value}</v></c>'
    text = escape(str(value))
    space = ' xml:space="preserve"' if text != text.strip() else ""
    return f'<c r="{ref}" t="inlineStr"><is><t{space}>{text}</t></is></c>'


def sheet_xml(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    letters = [column_letter(i) for i in range(len(header))]
    last = f"{letters[-1]}{len(rows) + 1}"
    parts = [HEAD, f'<worksheet xmlns="{MAIN}"><dimension ref="A1:{last}"/><sheetData>']
    for r, values in enumerate([header, *rows], start=1):
        cells = "".join(_cell(f"{letter}{r}", v) for letter, v in zip(letters, values, strict=True))
        parts.append(f'<row r="{r}">{cells}</row>')
    parts.append("</sheetData></worksheet>")
    return "".join(parts)


def _workbook(sheet_name: str) -> str:
    return HEAD + (f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>'
                   f'<sheet name="{escape(sheet_name)}" sheetId="1" r:id="rId1"/></sheets></workbook>')


def _core(author: str, stamp: dt.datetime) -> str:
    when = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return HEAD + (
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
        'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f'<dc:creator>{escape(author)}</dc:creator><cp:lastModifiedBy>{escape(author)}</cp:lastModifiedBy>'
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{when}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{when}</dcterms:modified>'
        '</cp:coreProperties>')


def _app() -> str:
    return HEAD + ('<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
                   'extended-properties"><Application>InsurShare generator</Application></Properties>')


def write_workbook(path: Path, sheet_name: str, header: Sequence[str], rows: Sequence[Sequence[object]],
                   *, author: str, stamp: dt.datetime) -> None:
    """Write a one-sheet workbook; ``stamp`` is its created and modified time."""
    parts = {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": ROOT_RELS,
        "docProps/app.xml": _app(),
        "docProps/core.xml": _core(author, stamp),
        "xl/workbook.xml": _workbook(sheet_name),
        "xl/_rels/workbook.xml.rels": WORKBOOK_RELS,
        "xl/styles.xml": STYLES,
        "xl/worksheets/sheet1.xml": sheet_xml(header, rows),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, text.encode("utf-8"))
