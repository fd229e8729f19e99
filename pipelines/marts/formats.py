"""A triangle report as text, CSV, JSON or an Excel workbook."""

from __future__ import annotations

import io
import json
from pathlib import Path

from pipelines.core.tables import MISSING, is_missing
from pipelines.errors import QueryError
from pipelines.marts.reserving import COUNT_MEASURES, TriangleReport
from pipelines.marts.workbook import AMOUNT, WHOLE

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
             f"{MISSING} where no cell exists",
             "LDF: age-to-age factor from that age, over the members present at both ages; "
             "CDF: cumulative factor to ultimate; "
             "ibnr = ultimate - latest" + (" (unpaid)" if report.measure == "paid" else "")]
    if report.audience == "regulator" and not report.member:
        notes.append("regulator only: industry values before disclosure control; members and the public see "
                     "`insurshare triangle --as public` (or --as member:<M>)")
    elif report.audience != "regulator":
        notes.append(f"disclosure control: {MISSING} also where the product withholds a cell or holds it at an earlier "
                     f"release's value ({report.withheld} cells); factors and ultimates that use one are withheld")
    flags = report.flag_lines()
    if len(flags) > MAX_FLAG_LINES:
        flags = [*flags[:MAX_FLAG_LINES], f"... and {len(flags) - MAX_FLAG_LINES} more (--format json lists them)"]
    if flags:
        notes += ["", "cells with members missing (completed from their own values and the matched factors, "
                  "or not shown) or with quarantined claims carried forward:", *(f"  {f}" for f in flags)]
    return "\n".join([report.title(), "", shown.to_string(index=False), *notes])


def _fmt(value, pattern: str) -> str:
    if is_missing(value):
        return MISSING
    return pattern.format(value)


def development_labels(report: TriangleReport) -> list[str]:
    """The factor under each age, as an actuary's exhibit labels it: ``12-24``, ``24-36``, ...,
    and ``Tail`` for the factor beyond the last age."""
    ages = [str(a) for a in report.ages]
    return [f"{a}-{b}" for a, b in zip(ages, ages[1:], strict=False)] + (["Tail"] if ages else [])


def write_workbook(report: TriangleReport, path: Path) -> None:
    """Sheets ``triangle`` (the exhibit: accident periods by development age in months, then
    the age-to-age factors labelled ``12-24``, ..., ``Tail`` and the ``CDF to ultimate`` under
    the age they develop from), ``factors``, ``ultimates`` and ``about``; amounts to the cent
    (counts whole), factors to 4 places, every value unrounded in its cell."""
    from pipelines.marts.workbook import FACTOR, Sheet, about_sheet
    from pipelines.marts.workbook import write_workbook as write_sheets

    amount = WHOLE if report.measure in COUNT_MEASURES else AMOUNT
    period = "Accident year" if report.grain == "year" else "Accident quarter"
    ages = [str(a) for a in report.ages]
    labels = development_labels(report)
    ldf = [*(report.ldf.get(k) for k in labels[:-1]), report.tail] if ages else []
    cdf = [report.cdf.get(f"{a}-Ult") for a in ages]
    tail = ["Latest", "CDF to ultimate", "Ultimate", "IBNR"]
    rows = [[o, *v, report.latest.get(o), report._cdf_at_latest(o), report.ultimate.get(o), report.ibnr.get(o)]
            for o, v in zip(report.origins, report.values, strict=True)]
    n = len(rows)
    rows += [[None] * (len(ages) + 5), ["Development", *labels, *[None] * 4],
             [f"LDF ({report.average} average)", *ldf, *[None] * 4], ["CDF to ultimate", *cdf, *[None] * 4]]
    triangle = Sheet("triangle", [period, *ages, *tail], rows,
                     {period: None, **dict.fromkeys(ages, amount), "Latest": amount, "CDF to ultimate": FACTOR,
                      "Ultimate": AMOUNT, "IBNR": AMOUNT},
                     bold_rows=frozenset({n + 2}), row_formats={n + 3: FACTOR, n + 4: FACTOR})
    factors = Sheet("factors", ["Development", f"LDF ({report.average} average)", "CDF to ultimate"],
                    [[k, f, c] for k, f, c in zip(labels, ldf, cdf, strict=True)],
                    {"Development": None, f"LDF ({report.average} average)": FACTOR, "CDF to ultimate": FACTOR})
    ultimates = Sheet("ultimates", [period, "Latest", "CDF to ultimate", "Ultimate", "IBNR"],
                      [[o, report.latest.get(o), report._cdf_at_latest(o), report.ultimate.get(o), report.ibnr.get(o)]
                       for o in report.origins],
                      {period: None, "Latest": amount, "CDF to ultimate": FACTOR, "Ultimate": AMOUNT, "IBNR": AMOUNT})
    about = about_sheet({"title": report.title(), "line": report.line, "measure": report.measure,
                         "grain": report.grain, "member": report.member or "industry", "region": report.region,
                         "snapshot": report.snapshot, "average": report.average,
                         "diagonals": report.diagonals or "all", "tail": report.tail,
                         "ages": "development age in months from the start of the accident period",
                         "empty cells": "no cell at that age, or withheld by disclosure control"
                                        if report.audience != "regulator" else "no cell at that age"})
    write_sheets(path, [triangle, factors, ultimates, about])
