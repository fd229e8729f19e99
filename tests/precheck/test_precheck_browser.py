"""A real browser opens the pre-check report of a defective file from disk: the banner is there,
no console error, no request beyond the page, readable at 1280 and 390 px.

With ``INSURSHARE_DOCS_SCREENSHOT=1`` the page at 1280 px is copied to ``docs/precheck.png`` for
the README (as ``tests/reports/test_browser.py`` does for the dashboard).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import pytest

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.generate import generate
from pipelines.intake import Manifest
from pipelines.keys import create_keys
from pipelines.members import add_members
from pipelines.precheck import BANNER, precheck

SIZES = {1280: 900, 390: 844}
PROBE = ("JSON.stringify({banner: (document.getElementById('precheck') || {}).textContent || null, "
         "top: document.getElementById('precheck') ? document.getElementById('precheck').getBoundingClientRect().top : null})")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The pre-check report of a generated premium file with too many defective rows."""
    root = tmp_path_factory.mktemp("precheck-browser")
    files = root / "generated"
    today = dt.datetime.now(dt.UTC).date()
    current = f"{today.year}Q{(today.month - 1) // 3 + 1}"    # a file of the quarter now open: on time
    result = generate(files, members=1, quarters=2, seed=3, scale=0.05, defect_rate=0.0, end_period=current)
    index = json.loads(result.index.read_text(encoding="utf-8"))
    entry = next(s for s in index["submissions"] if "too many defective rows" in s["notes"])
    settings = Settings(home=root / "home", gx_max_rows=0)
    create_keys(settings)
    add_members(settings, {"M001": "Dongfang Property & Casualty"})
    got = precheck(settings, files / entry["file"], Manifest.from_file(files / entry["manifest"]), out_dir=root / "out")
    assert got.verdict == "rejected"
    return got.report


@pytest.mark.parametrize("width", sorted(SIZES, reverse=True))
def test_precheck_report_opens_offline_with_its_banner(browser, report, tmp_path, width):
    shot = tmp_path / f"precheck-{width}.png"
    visit = browser.visit(report, width, SIZES[width], shot, probe=PROBE)
    assert visit.errors == [], visit.console
    assert visit.requests == [report.resolve().as_uri()]          # the page itself, nothing else
    layout = visit.layout
    assert layout["scrollWidth"] <= width, layout["wide"]
    assert layout["small"] == [] and layout["minFont"] >= 12
    seen = json.loads(visit.probe)
    assert seen["banner"].startswith(BANNER) and 0 < seen["top"] < SIZES[width]   # shown on the first screen
    if width == 1280 and os.environ.get("INSURSHARE_DOCS_SCREENSHOT"):
        shutil.copyfile(shot, PROJECT_ROOT / "docs" / "precheck.png")
