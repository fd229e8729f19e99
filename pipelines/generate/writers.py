"""Write submission files as members send them, and their manifests.

CSV: header of the contract's column names, dates ``YYYY-MM-DD``, plain decimals, empty
fields for missing values, quoted where needed; UTF-8 or GB18030. Parquet: typed columns
(date32, decimal128, strings). XLSX: first sheet, header row, real date and number cells,
text as text cells (also text that starts with ``=``). Every writer gives the same bytes for
the same rows: no clock time goes into a file (XLSX properties and zip entry times are fixed,
see ``xlsx``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.contracts import Column, DatasetContract
from pipelines.generate import xlsx


def csv_text(contract: DatasetContract, rows: Sequence[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = contract.column_names
    writer.writerow(names)
    # The csv module writes None as an empty field and a date as YYYY-MM-DD (its str).
    writer.writerows([format(v, "f") if type(v) is Decimal else v for v in map(row.get, names)]
                     for row in rows)
    return out.getvalue()


def write_csv(path: Path, contract: DatasetContract, rows: Sequence[dict], encoding: str) -> None:
    path.write_bytes(csv_text(contract, rows).encode(encoding))


def write_truncated_csv(path: Path, contract: DatasetContract, rows: Sequence[dict], encoding: str,
                        keep: float = 0.9) -> int:
    """The CSV cut in the middle of the line after the first ``keep`` share of rows.

    Returns the number of whole data rows left in the file.
    """
    lines = csv_text(contract, rows).split("\n")
    whole = min(math.ceil(keep * len(rows)), len(rows) - 1)
    partial = lines[1 + whole]
    cut = partial.find(",", partial.find(",", partial.find(",") + 1) + 1) + 4
    text = "\n".join(lines[: 1 + whole]) + "\n" + partial[:cut]
    path.write_bytes(text.encode(encoding))
    return whole


def _arrow_type(column: Column) -> pa.DataType:
    if column.base_type == "date":
        return pa.date32()
    if column.base_type == "decimal":
        precision, scale = (int(x) for x in column.type[column.type.index("(") + 1:-1].split(","))
        return pa.decimal128(precision, scale)
    if column.base_type == "integer":
        return pa.int64()
    return pa.string()


def _arrow_column(column: Column, rows: Sequence[dict]) -> pa.Array:
    values = [row.get(column.name) for row in rows]
    kind = _arrow_type(column)
    if column.base_type == "decimal":       # through text: exact, and much faster than Decimal objects
        return pa.array([None if v is None else format(v, "f") for v in values], pa.string()).cast(kind)
    return pa.array(values, type=kind)


def write_parquet(path: Path, contract: DatasetContract, rows: Sequence[dict]) -> None:
    arrays = [_arrow_column(c, rows) for c in contract.columns]
    table = pa.Table.from_arrays(arrays, names=list(contract.column_names))
    pq.write_table(table, path, compression="snappy")


def write_xlsx(path: Path, contract: DatasetContract, rows: Sequence[dict], *,
               stamp: dt.datetime, author: str) -> None:
    """One sheet named after the dataset, created and modified at ``stamp``."""
    names = contract.column_names
    xlsx.write_workbook(path, contract.dataset, names, [[row.get(c) for c in names] for row in rows],
                        author=author, stamp=stamp)


def control_totals(contract: DatasetContract, rows: Sequence[dict]) -> dict[str, str]:
    """Sums of the contract's control-total columns over the values as written."""
    totals = {}
    for column in contract.control_totals:
        total = sum((_number(row.get(column)) for row in rows), Decimal(0))
        totals[column] = format(total, "f")
    return totals


def _number(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value)) if isinstance(value, str) and value.strip() else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def write_manifest(path: Path, *, member_id: str, contract: DatasetContract, period: str,
                   rows: Sequence[dict], encoding: str | None) -> None:
    manifest = {"member_id": member_id, "dataset": contract.dataset, "period": period,
                "contract_version": contract.version, "row_count": len(rows),
                "control_totals": control_totals(contract, rows)}
    if encoding:
        manifest["encoding"] = encoding
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
