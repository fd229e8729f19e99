"""Values for machine formats (JSON, CSV), written exactly: what was published can be read back.

A terminal table rounds for the eye (``core.tables``); a file or a JSON document must not: a
factor of 2.9195898102688 read back from it must be that very float. So:

- a float (DuckDB ``DOUBLE``) is written as Python's ``repr``, the shortest text that reads back
  as the same float, bit for bit; NaN and infinities, which JSON cannot hold, are ``null`` in
  JSON and empty in CSV (as a missing value);
- a ``DECIMAL`` is written with all its digits and its scale, never through a float
  (``DECIMAL(18,2)`` 1234.50 is ``1234.50``): in JSON as an exact **number** (not a string), so
  that ``json.loads(text, parse_float=decimal.Decimal)`` gives back the very decimal and a plain
  ``json.loads`` its nearest float; in CSV as that same text;
- dates and timestamps are ISO 8601 text; missing values are ``null`` (JSON) or empty (CSV).

The rows come from DuckDB's ``fetchall`` (Python values: ``Decimal`` for DECIMAL), never from a
pandas frame: ``DuckDBPyRelation.df()`` turns DECIMAL into float64, and pandas' ``to_json``
rounds floats to 10 significant decimals (``double_precision``).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math
import re
import uuid
from collections.abc import Sequence


def decimal_text(value: decimal.Decimal) -> str:
    """All the digits of ``value`` at its own scale, without an exponent (``0E-10`` -> ``0.0000000000``)."""
    return format(value, "f")


def records_json(columns: Sequence[str], rows: Sequence[Sequence[object]], *, indent: int | None = 1) -> str:
    """``rows`` as a JSON array of ``{column: value}`` objects, every number exact (module doc)."""
    nonce = uuid.uuid4().hex
    numbers: list[str] = []

    def plain(value: object) -> object:
        if isinstance(value, decimal.Decimal):
            if not value.is_finite():
                return None
            numbers.append(decimal_text(value))
            return f"{nonce}:{len(numbers) - 1}"
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, (dt.date, dt.time)):      # datetime is a date
            return value.isoformat()
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if value is None or isinstance(value, (str, int, bool)):
            return value
        return str(value)                                 # UUID, interval, bytes: their text

    text = json.dumps([{c: plain(v) for c, v in zip(columns, row, strict=True)} for row in rows],
                      ensure_ascii=False, indent=indent, allow_nan=False)
    # the placeholders become bare numbers
    return re.sub(f'"{nonce}:([0-9]+)"', lambda m: numbers[int(m[1])], text) if numbers else text


def csv_value(value: object) -> str:
    """One CSV field: exact numbers, ISO dates, empty for a missing value."""
    if value is None:
        return ""
    if isinstance(value, decimal.Decimal):
        return decimal_text(value) if value.is_finite() else ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def records_csv(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """``rows`` as CSV with a header row, every number exact (module doc); no final newline."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([csv_value(v) for v in row] for row in rows)
    return buf.getvalue().rstrip("\n")
