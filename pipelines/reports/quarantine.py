"""A submission's quarantined rows as CSV or XLSX, for the member to correct and send again.

Rows come from the lake's ``quarantine`` table. The first columns are what a member needs to
find the row in its file and its own systems: the row number in the file (1 for the first
row under the header, as in the reports) and the contract's business keys (``business_keys``: policy number,
transaction id, claim number...), then the rule ids the row broke, why, and how to fix it;
then the rest of the row as received. Identifiers are the member's own pseudonyms
(``pseudonyms``: the lake's platform tokens never reach a member); business keys that are not
personal identifiers are the member's own numbers, as it sent them.
Text that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage
return, and not a plain number) is written with a leading single quote, in both formats.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import duckdb

from pipelines.config import Settings
from pipelines.contracts import DatasetContract, load_contract
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.errors import NotFound, QueryError
from pipelines.reports.pseudonyms import member_scoped_sql

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?")
_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
FORMATS = ("csv", "xlsx")


def neutralise(value: object) -> str:
    """``value`` as text a spreadsheet shows and never evaluates."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def quarantine_rows(con: duckdb.DuckDBPyConnection, submission_id: str, contract: DatasetContract,
                    table: str = "quarantine", member: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and neutralised rows of the submission's quarantine, in file order.

    With ``member``, tokens in the records become that member's pseudonyms; without, ``table``
    must already hold them (the reports' ``r_quarantine``).
    """
    keys = list(contract.business_keys)
    rest = [c for c in contract.column_names if c not in keys]
    header = ["source_row", *keys, "rule_ids", "reasons", "how_to_fix", *rest]
    fixes = {r.id: r.fix for r in contract.rules}
    record_sql = member_scoped_sql(member, "record") if member is not None else "record"
    out = []
    for source_row, rule_ids, reasons, record in con.execute(
            f"SELECT source_row, rule_ids, reasons, {record_sql} FROM {table} WHERE submission_id = ? "
            "ORDER BY source_row", [submission_id]).fetchall():
        values = json.loads(record or "{}")
        how = " | ".join(f"{rid}: {fixes[rid]}" for rid in rule_ids or [] if fixes.get(rid))
        out.append([str(source_row), *(neutralise(values.get(c)) for c in keys), "; ".join(rule_ids or []),
                    neutralise(" | ".join(reasons or [])), neutralise(how),
                    *(neutralise(values.get(c)) for c in rest)])
    return header, out


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_xlsx(path: Path, header: list[str], rows: list[list[str]], *, title: str = "quarantine") -> None:
    """One sheet, every cell a text cell (never a formula)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])

    def cells(values: list[str]) -> list:
        out = []
        for v in values:
            cell = WriteOnlyCell(ws, value=_ILLEGAL_XLSX.sub("", v))
            cell.data_type = "s"
            out.append(cell)
        return out

    ws.append(cells(header))
    for row in rows:
        ws.append(cells(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")   # concurrent runs never share one
    wb.save(tmp)
    tmp.replace(path)


def export_quarantine(settings: Settings, submission_id: str, to: Path) -> int:
    """Write the quarantined rows of ``submission_id`` to ``to`` (.csv or .xlsx), identifiers as the
    submitting member's pseudonyms; return the count."""
    from pipelines.store import reader

    fmt = to.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise QueryError(f"Cannot write quarantined rows as {to.name!r}.", hint="Name the file .csv or .xlsx.")
    with reader(settings) as con:
        found = con.execute("SELECT dataset, contract_version, member_id FROM submissions WHERE submission_id = ? "
                            f"AND status <> {Status.REFUSED.sql}", [submission_id]).fetchone()
        if found is None:
            raise NotFound(f"Submission {submission_id!r} does not exist.",
                           hint="List submissions with `insurshare status`.")
        contract = load_contract(found[0], found[1], settings.schemas_dir)
        header, rows = quarantine_rows(con, submission_id, contract, member=found[2])
    if fmt == "csv":
        to.parent.mkdir(parents=True, exist_ok=True)
        to.write_text(csv_text(header, rows), encoding="utf-8")
    else:
        write_xlsx(to, header, rows, title=submission_id)
    return len(rows)
