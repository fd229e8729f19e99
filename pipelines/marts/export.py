"""Export a mart, or the rows of it that match some filters, to CSV, Parquet or Excel."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb
import pandas as pd

from pipelines import store
from pipelines.config import Settings
from pipelines.core.sql import ident, literal
from pipelines.errors import NotFound, QueryError
from pipelines.marts.build import MARTS, ORDERS

EXPORT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".xlsx": "xlsx"}
XLSX_MAX_ROWS = 1_048_575


def mart_name(name: str) -> str:
    """``triangle`` or ``mart_triangle`` -> ``mart_triangle``; other names are refused."""
    full = name if name.startswith("mart_") else f"mart_{name}"
    if full not in MARTS:
        raise NotFound(f"No mart {name!r}.", hint=f"Marts: {', '.join(m[5:] for m in MARTS)}.")
    return full


def select_mart(con: duckdb.DuckDBPyConnection, name: str, filters: Mapping[str, object]) -> str:
    """SQL selecting the mart's rows that match ``filters`` (column -> value; None ignored)."""
    table = mart_name(name)
    have = [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ? "
        "ORDER BY column_index", [store.LAKE, table]).fetchall()]
    if not have:
        raise NotFound(f"The mart {table} is not built in the lake at this snapshot.",
                       hint="Build it with `insurshare build-marts` (or pick a later --as-of).")
    where = filter_conditions(filters, have, f"The mart {table}")
    return (f"SELECT * FROM {store.LAKE}.{table}" + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY {ORDERS[table]}")


def filter_conditions(filters: Mapping[str, object], have: list[str], what: str) -> list[str]:
    """SQL conditions for ``filters`` (column -> value, compared as text; ``"NULL"`` means IS NULL;
    None ignored) on a relation whose columns are ``have``; a column it lacks is an error."""
    where = []
    for column, value in filters.items():
        if value is None:
            continue
        if column not in have:
            raise QueryError(f"{what} has no column {column!r} to filter on.", hint=f"Its columns: {', '.join(have)}.")
        where.append(f"{ident(column)} IS NULL" if value == "NULL" else f"CAST({ident(column)} AS VARCHAR) = {literal(value)}")
    return where


def read_mart(settings: Settings, name: str, filters: Mapping[str, object] | None = None,
              as_of: str | None = None, *, exact: bool = False) -> pd.DataFrame:
    """The mart's matching rows as a DataFrame: floats (factors, ratios) as the mart's very
    float64 values; DECIMAL amounts as float64 (exact to 15 significant digits: every amount in
    cents below 10**13), or with ``exact`` as Python ``Decimal`` objects with all their digits."""
    from pipelines.store import reader

    with reader(settings, as_of) as con:
        result = con.execute(select_mart(con, name, filters or {}))
        if not exact:
            return result.df()
        table = result.fetch_arrow_table()
    return table.to_pandas(types_mapper=lambda t: pd.ArrowDtype(t) if _is_decimal(t) else None).astype(
        {f.name: object for f in table.schema if _is_decimal(f.type)})


def _is_decimal(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_decimal(kind)


def export_mart(settings: Settings, name: str, to: Path, filters: Mapping[str, object] | None = None,
                as_of: str | None = None) -> int:
    """Write the mart's matching rows to ``to`` (format from its suffix); return the row count."""
    from pipelines.store import reader

    fmt = EXPORT_FORMATS.get(Path(to).suffix.lower())
    if fmt is None:
        raise QueryError(f"Cannot export to {Path(to).name!r}: the file must end in "
                         f"{', '.join(EXPORT_FORMATS)}.")
    with reader(settings, as_of) as con:
        sql = select_mart(con, name, filters or {})
        count = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
        if fmt == "xlsx" and count > XLSX_MAX_ROWS:
            raise QueryError(f"{count:,} rows do not fit in an Excel sheet.",
                             hint="Filter the rows (e.g. --line, --grain) or export to .csv or .parquet.")
        Path(to).parent.mkdir(parents=True, exist_ok=True)
        if fmt == "xlsx":
            table = con.execute(sql).fetch_arrow_table()
            write_xlsx(Path(to), mart_name(name)[5:], table, {
                "mart": mart_name(name), "audience": "regulator", "rows": table.num_rows,
                "lake as of": as_of or "latest snapshot", "filters": describe_filters(filters or {}),
                "note": "for the regulator only: every member's rows and industry values before disclosure control"})
            return int(count)
        options = {"csv": "FORMAT csv, HEADER true", "parquet": "FORMAT parquet"}[fmt]
        con.execute(f"COPY ({sql}) TO {literal(str(to))} ({options})")
    return int(count)


def describe_filters(filters: Mapping[str, object]) -> str:
    """``line_of_business = MCOM, grain = year`` (or ``none``), for a workbook's about sheet."""
    return ", ".join(f"{k} = {v}" for k, v in filters.items() if v is not None) or "none"


def write_xlsx(to: Path, sheet: str, table, about: Mapping[str, object]) -> None:
    """An export workbook: the rows on a sheet named after the mart (number formats, column
    widths, frozen header; ``pipelines.marts.workbook``), then an ``about`` sheet."""
    from pipelines.marts.workbook import about_sheet, arrow_sheet, write_workbook

    write_workbook(to, [arrow_sheet(sheet, table), about_sheet(about)])
