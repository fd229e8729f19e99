"""A triangle report as text, CSV, JSON or an Excel workbook."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd

from pipelines.errors import QueryError
from pipelines.marts.reserving import COUNT_MEASURES, TriangleReport

FORMATS = ("table", "csv", "json", "xlsx")
MAX_FLAG_LINES = 12


def format_report(report: TriangleReport, fmt: str = "table", output: Path | None = None) -> str:
    """The report as ``fmt``; written to ``output`` when given (``xlsx`` needs it)."""
    if fmt not in FORMATS:
        raise QueryError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if fmt == "xlsx":
        if output is None:
            raise QueryError("The xlsx format writes a workbook.", hint="Add --output FILE.xlsx.")
        write_workbook(report, Path(output))
        return f"wrote {output}"
    if fmt == "json":
        text = json.dumps(report.to_dict(), ensure_ascii=False, indent=1, allow_nan=False)
    elif fmt == "csv":
        buf = io.StringIO()
        report.frame().to_csv(buf, index=False)
        text = buf.getvalue().rstrip("\n")
    else:
        text = table_text(report)
    if output is not None:
        Path(output).write_text(text + "\n", encoding="utf-8")
        return f"wrote {output}"
    return text


def table_text(report: TriangleReport) -> str:
    """The triangle for a terminal: amounts to the cent, counts whole, factors to 4 places."""
    frame = report.frame()
    amount = "{:,.0f}" if report.measure in COUNT_MEASURES else "{:,.2f}"
    factor_rows = frame["origin"].isin(["LDF", "CDF"])
    shown = frame.astype(object)
    for col in frame.columns[1:]:
        is_factor = col == "cdf"
        shown[col] = [_fmt(v, "{:.4f}" if is_factor or factor_rows[i] else amount)
                      for i, v in enumerate(frame[col])]
    notes = ["", "cells: cumulative sums over the claims of each accident period at each age (months); "
             "'-' where no cell exists",
             "LDF: age-to-age factor from that age, over the members present at both ages; "
             "CDF: cumulative factor to ultimate; "
             "ibnr = ultimate - latest" + (" (unpaid)" if report.measure == "paid" else "")]
    if report.audience == "regulator" and not report.member:
        notes.append("regulator only: industry values before disclosure control; members and the public see "
                     "`insurshare triangle --as public` (or --as member:<M>)")
    elif report.audience != "regulator":
        notes.append(f"disclosure control: '-' also where the product withholds a cell or holds it at an earlier "
                     f"release's value ({report.withheld} cells); factors and ultimates that use one are withheld")
    flags = report.flag_lines()
    if len(flags) > MAX_FLAG_LINES:
        flags = [*flags[:MAX_FLAG_LINES], f"... and {len(flags) - MAX_FLAG_LINES} more (--format json lists them)"]
    if flags:
        notes += ["", "cells with members missing (completed from their own values and the matched factors, "
                  "or not shown) or with quarantined claims carried forward:", *(f"  {f}" for f in flags)]
    return "\n".join([report.title(), "", shown.to_string(index=False), *notes])


def _fmt(value, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return pattern.format(value)


def write_workbook(report: TriangleReport, path: Path) -> None:
    """Sheets ``triangle``, ``factors``, ``ultimates`` and ``about``."""
    factors = pd.DataFrame({"development": list(report.cdf),
                            "ldf": [report.ldf.get(_pair(k, report)) for k in report.cdf],
                            "cdf": list(report.cdf.values())})
    ultimates = pd.DataFrame({"origin": report.origins, "latest": [report.latest[o] for o in report.origins],
                              "ultimate": [report.ultimate[o] for o in report.origins],
                              "ibnr": [report.ibnr[o] for o in report.origins]})
    about = pd.DataFrame({"field": ["title", "line", "measure", "grain", "member", "region", "snapshot",
                                    "average", "diagonals", "tail"],
                          "value": [report.title(), report.line, report.measure, report.grain,
                                    report.member or "industry", report.region, report.snapshot,
                                    report.average, report.diagonals or "all", report.tail]})
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        report.frame().to_excel(xl, sheet_name="triangle", index=False)
        factors.to_excel(xl, sheet_name="factors", index=False)
        ultimates.to_excel(xl, sheet_name="ultimates", index=False)
        about.astype(str).to_excel(xl, sheet_name="about", index=False)


def _pair(cdf_key: str, report: TriangleReport) -> str:
    """``'12-Ult'`` -> the LDF key developing from the same age (``'12-24'``), if any."""
    age = cdf_key.split("-")[0]
    return next((k for k in report.ldf if k.split("-")[0] == age), "")
