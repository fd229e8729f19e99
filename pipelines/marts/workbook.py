"""Excel workbooks that read like an exhibit: named sheets, a bold frozen header row, column
widths, and number formats chosen per column, while every cell keeps its full value.

Number formats (``column_format``), by column name first, then by type:

| columns | format | shows |
|---|---|---|
| factors: ``ldf_*``, ``cdf_*``, ``tail``, ``relativity`` | ``0.0000`` | 1.2346 |
| ratios and shares: ``loss_ratio``, ``frequency``, ``*_share``, ``percentile`` | ``0.000`` | 0.734 |
| a benchmark's ``member_value`` / ``industry_value`` (a ratio or an amount) | ``#,##0.0000`` | 1,234.5678 |
| ages, snapshot and release numbers | ``0`` | 24 |
| counts and whole amounts (integers, DECIMAL without places) | ``#,##0`` | 1,234 |
| amounts (DECIMAL with places, other floats) | ``#,##0.00`` | 1,234.57 |
| dates | ``yyyy-mm-dd`` (stored as dates, not date-times) | 2024-03-31 |
| timestamps | ``yyyy-mm-dd hh:mm:ss`` | |

A format changes what Excel shows, never the stored number: values are written unrounded, a
float as the text that reads back as the same float and a DECIMAL with all its digits.
Text is always text: a value that starts with ``=`` is never written as a formula.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from pipelines.core.exact import decimal_text

FACTOR, RATIO, MIXED = "0.0000", "0.000", "#,##0.0000"
AMOUNT, WHOLE, NUMBER = "#,##0.00", "#,##0", "0"
DATE, TIMESTAMP = "yyyy-mm-dd", "yyyy-mm-dd hh:mm:ss"
_FACTORS = ("ldf", "cdf", "tail", "relativity", "factor")
_RATIOS = ("loss_ratio", "frequency", "percentile", "share", "max_member_share", "missing_share")
_MIXED = ("member_value", "industry_value")
_NUMBERS = ("age", "age_from", "age_to", "latest_age", "release", "held_from_release", "snapshot",
            "lake_snapshot", "source_snapshot", "year")
MAX_WIDTH, SAMPLE_ROWS = 60, 2000


@dataclass
class Sheet:
    """One sheet: its ``name``, a header and rows (``columns``, ``rows``), the format of each
    column (``formats``: name -> Excel number format; None: text), and whether it has a header
    row to freeze and embolden (``header``). ``bold_rows`` are other rows (1-based, after the
    header) to embolden, e.g. a sub-header inside an exhibit."""

    name: str
    columns: list[str]
    rows: list[list]
    formats: dict[str, str | None] = field(default_factory=dict)
    header: bool = True
    bold_rows: frozenset[int] = frozenset()
    row_formats: Mapping[int, str] = field(default_factory=dict)   # row (1-based, after the header) -> format


def column_format(name: str, kind: pa.DataType | None) -> str | None:
    """The number format of a column named ``name`` of Arrow type ``kind`` (see the module doc)."""
    low = name.lower()
    if kind is not None and pa.types.is_date(kind):
        return DATE
    if kind is not None and pa.types.is_timestamp(kind):
        return TIMESTAMP
    numeric = kind is None or pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    if not numeric:
        return None
    if low in _MIXED:
        return MIXED
    if low.split("_")[0] in _FACTORS or low in _FACTORS:
        return FACTOR
    if low in _RATIOS or low.endswith("_share"):
        return RATIO
    if low in _NUMBERS or low.endswith("_snapshot"):
        return NUMBER
    if kind is None:
        return AMOUNT
    if pa.types.is_integer(kind) or (pa.types.is_decimal(kind) and kind.scale == 0):
        return WHOLE
    return AMOUNT


def arrow_sheet(name: str, table: pa.Table) -> Sheet:
    """A sheet of an Arrow table, every column with its ``column_format``."""
    formats = {f.name: column_format(f.name, f.type) for f in table.schema}
    rows = [list(r) for r in zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True)] \
        if table.num_columns else []
    return Sheet(name, list(table.column_names), rows, formats)


def about_sheet(fields: Mapping[str, object]) -> Sheet:
    """The ``about`` sheet: what the workbook holds, as field / value rows (text)."""
    return Sheet("about", ["field", "value"], [[k, "" if v is None else str(v)] for k, v in fields.items()],
                 {"field": None, "value": None})


def write_workbook(path: Path, sheets: Sequence[Sheet]) -> None:
    """Write ``sheets`` to ``path`` (write-only: large exports stream)."""
    book = Workbook(write_only=True)
    for sheet in sheets:
        ws = book.create_sheet(_title(sheet.name))
        formats = [sheet.formats.get(c) for c in sheet.columns]
        for i, width in enumerate(_widths(sheet, formats), start=1):
            ws.column_dimensions[get_column_letter(i)].width = width
        if sheet.header:
            ws.freeze_panes = "A2"
            ws.append([_cell(ws, c, None, bold=True, header=True) for c in sheet.columns])
        for n, row in enumerate(sheet.rows, start=1):
            row_format = sheet.row_formats.get(n)
            ws.append([_cell(ws, v, row_format or f, bold=n in sheet.bold_rows)
                       for v, f in zip(row, formats, strict=False)])
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)


def _title(name: str) -> str:
    """A valid sheet title (at most 31 characters, none of ``[]:*?/\\``)."""
    clean = "".join("_" if ch in "[]:*?/\\" else ch for ch in name)[:31]
    return clean or "data"


def _value(value):
    """What the cell stores: numbers as numbers (a Decimal as the nearest float, for the cell's
    type; ``_exact`` writes its digits), time zones dropped, NaN and infinities empty."""
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _cell(ws, value, fmt: str | None, *, bold: bool = False, header: bool = False) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=_value(value))
    stored = cell.value
    if cell.data_type == "f":
        cell.data_type = "s"            # text, never a formula (a value that starts with "=")
    if isinstance(stored, dt.datetime):
        cell.number_format = TIMESTAMP if fmt != DATE else DATE
    elif isinstance(stored, dt.date):
        cell.number_format = DATE
    elif fmt and isinstance(stored, (int, float)) and not isinstance(stored, bool):
        cell.number_format = fmt
    if isinstance(stored, float):
        _exact(cell, value)
    if bold:
        cell.font = Font(bold=True)
    if header:
        cell.alignment = Alignment(horizontal="center", wrap_text=False)
    return cell


def _exact(cell: WriteOnlyCell, value: float | decimal.Decimal) -> None:
    """Store the number's exact text in the cell: openpyxl writes numbers with ``%.16g``, which
    does not read back as the same float (0.30000000000000004 becomes 0.3); ``repr`` does, and a
    Decimal keeps all its digits (``core.exact``). The cell stays a number (type ``n``)."""
    cell._value = decimal_text(value) if isinstance(value, decimal.Decimal) else repr(float(value))


def _shown(value, fmt: str | None) -> str:
    """Roughly what Excel shows, to size the column."""
    value = _value(value)
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and fmt:
        places = len(fmt.split(".")[1]) if "." in fmt else 0
        return f"{value:{',' if ',' in fmt else ''}.{places}f}"
    return str(value)


def _widths(sheet: Sheet, formats: list[str | None]) -> list[float]:
    """Each column's width: its longest header or value (of the first rows), plus a margin."""
    out = []
    for i, (name, fmt) in enumerate(zip(sheet.columns, formats, strict=True)):
        longest = max([len(str(name)) if sheet.header else 0,
                       *(len(_shown(r[i], sheet.row_formats.get(n) or fmt))
                         for n, r in enumerate(sheet.rows[:SAMPLE_ROWS], start=1) if i < len(r))])
        out.append(min(MAX_WIDTH, longest + 2))
    return out
