"""Tables in the CLI's output (issue 13): one display of a missing value (``NULL``) whatever the
column's type, and the suppression reason shown whole."""

from __future__ import annotations

import datetime as dt
import json
import re

import duckdb
import pandas as pd
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.core.tables import MAX_WIDTH, MISSING, frame_text
from pipelines.products import query_product

OTHER_MISSING = re.compile(r"<NA>|\b(None|NaN|NaT|nan)\b")     # pandas' and Python's displays


def run(settings, *args: str):
    return CliRunner().invoke(main, ["--home", str(settings.home), *args])


def test_frame_text_shows_null_for_every_kind_of_missing_value():
    frame = duckdb.sql("""SELECT * FROM (VALUES
        (1::INTEGER, 1.5::DOUBLE, 'a', DATE '2024-01-01', true, 1.25::DECIMAL(10, 2), TIMESTAMP '2024-01-01 10:00'),
        (NULL, NULL, NULL, NULL, NULL, NULL, NULL)) t(i, d, s, dt, b, dec, ts)""").df()
    frame["obj"] = pd.Series([dt.date(2024, 1, 1), None], dtype=object)
    text = frame_text(frame)
    last = text.splitlines()[2].split()
    assert last == [MISSING] * 8
    assert not OTHER_MISSING.search(text)


def test_frame_text_cuts_long_text_but_never_a_reason():
    reason = "; ".join(f"{m}: secondary" for m in ("written_premium", "earned_premium", "claim_count", "paid_loss"))
    frame = pd.DataFrame({"note": ["x" * 100], "suppression": [reason]})
    text = frame_text(frame)
    assert reason in text and "x" * (MAX_WIDTH - 1) + "…" in text and "x" * MAX_WIDTH not in text


def test_query_table_shows_withheld_values_as_null_and_reasons_whole(small_market):
    sql = ("SELECT period, region_code, claim_count, members, suppressed, suppression FROM industry_experience "
           "WHERE grain = 'year' AND line_of_business = 'MCOM' ORDER BY region_code")
    rows = json.loads(query_product(small_market, "public", sql, fmt="json"))
    result = run(small_market, "query", sql, "--as", "public")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()[1:]
    assert len(lines) == len(rows) and not OTHER_MISSING.search(result.output)
    longest = max(rows, key=lambda r: len(r["suppression"] or ""))
    assert len(longest["suppression"]) > 100                            # what a 60-character column used to cut
    for row, line in zip(rows, lines, strict=True):
        assert line.split()[:2] == [row["period"], row["region_code"]]
        assert line.split()[2] == (MISSING if row["claim_count"] is None else str(row["claim_count"]))
        assert line.split()[3] == (MISSING if row["members"] is None else str(row["members"]))
        assert line.rstrip().endswith(row["suppression"] or MISSING)


def test_products_show_and_triangle_use_the_same_missing_value(small_market):
    shown = run(small_market, "products", "show", "public")
    assert shown.exit_code == 0, shown.output
    sample = shown.output.split("Industry experience 2024, all provinces")[1]
    assert MISSING in sample and not OTHER_MISSING.search(sample)
    reasons = json.loads(query_product(small_market, "public", "SELECT suppression FROM industry_experience "
                                       "WHERE grain = 'year' AND region_code = 'ALL' AND suppression IS NOT NULL",
                                       fmt="json"))
    assert reasons and all(r["suppression"] in sample for r in reasons)
    triangle = run(small_market, "triangle", "--line", "MCOM", "--grain", "quarter", "--as", "public")
    assert triangle.exit_code == 0, triangle.output
    grid = triangle.output.split("\n\n")[1]
    assert MISSING in grid and "-" not in grid.replace("--", "") and not OTHER_MISSING.search(grid)
    assert f"{MISSING} where no cell exists" in triangle.output
