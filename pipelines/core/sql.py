"""The one way to put a name or a value into SQL text.

Names and values that come from contracts, settings or member files are never pasted into SQL
as they are: a header such as ``x") ; ATTACH ...`` or a home folder such as ``/srv/o'brien``
must stay a name or a value. Values are bound as parameters wherever DuckDB allows it; where
it does not (DDL, ``ATTACH`` options, ``VALUES`` lists of reference tables, rule expressions
compiled into one statement), they go through :func:`literal`, and names through :func:`ident`.

>>> print(ident('x" FROM t; --'), ident("policy_no"))
"x"" FROM t; --" "policy_no"
>>> literal("O'Brien")
"'O''Brien'"
>>> literal(12), literal(1.5), literal(None)
('12', '1.5', 'NULL')
>>> import datetime as dt; literal(dt.date(2025, 3, 31))
"DATE '2025-03-31'"
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal


def ident(name: str) -> str:
    """A quoted SQL identifier: ``"name"`` with embedded double quotes doubled."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(value: object) -> str:
    """A SQL literal: numbers as numbers, dates as ``DATE '...'``, ``None`` as NULL, anything else
    as a quoted string with embedded single quotes doubled."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, Decimal) and value.is_finite():
        return str(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
