"""Tables for a terminal: one way to show a missing value, and no reason cut short.

Every table the CLI prints (``query``, ``products query``/``show``, ``triangle``, ``summary``,
``audit``) shows a missing value (SQL NULL, pandas' ``NaN``/``<NA>``/``NaT``, Python's ``None``)
as ``NULL``, whatever the column's type, and a withheld value is missing: ``NULL`` in a table is
never a zero. Long text is cut to ``MAX_WIDTH`` characters (ending in ``…``) except in the
columns that explain a value (``suppression``, ``reason``, ``description``): those are shown whole.
"""

from __future__ import annotations

MISSING = "NULL"
MAX_WIDTH = 60
WHOLE = ("suppression", "reason", "description")


def is_missing(value: object) -> bool:
    """Whether ``value`` is a missing value of any kind (None, NaN, ``pd.NA``, ``NaT``)."""
    if value is None:
        return True
    try:
        return bool(value != value)          # NaN, NaT
    except (TypeError, ValueError):         # pd.NA and arrays
        import pandas as pd

        return bool(pd.isna(value)) if pd.api.types.is_scalar(value) else False


def frame_text(frame, *, formatters: dict | None = None, max_width: int = MAX_WIDTH) -> str:
    """``frame`` (a pandas DataFrame) as a terminal table without its index: ``NULL`` for every
    missing value, text longer than ``max_width`` cut (``…``) except in ``WHOLE`` columns."""
    import pandas as pd

    shown = frame.copy()
    for name in shown.columns:
        column = shown[name]
        whole = any(w in str(name).lower() for w in WHOLE)
        if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(column.dtype):
            continue                                             # NaT: na_rep
        if column.dtype == object or isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
            values = column.astype(object)
            shown[name] = [MISSING if is_missing(v) else _cut(v, None if whole else max_width) for v in values]
    return shown.to_string(index=False, na_rep=MISSING, formatters=formatters)


def _cut(value: object, width: int | None) -> object:
    if width is None or not isinstance(value, str) or len(value) <= width:
        return value
    return value[:width - 1] + "…"
