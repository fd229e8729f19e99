"""A real browser opens the reports from disk: no console error, no network, readable at 390 px.

Headless Chromium (Debian's ``chromium``; ``scripts/install-chromium.sh`` installs it when it
is missing) is driven over the Chrome DevTools Protocol (``cdp.py``). Screenshots are saved
under the test's temporary folder; with ``INSURSHARE_DOCS_SCREENSHOT=1`` the dashboard at
1280 px is also copied to ``docs/dashboard.png`` for the README. ``docs/report-summary.png`` is
the demo's rejected ``M002-policy-2025Q1-v1`` (32 failing rules), taken with
``python -m tests.reports.cdp`` (see ``cdp.main``).
"""

from __future__ import annotations

import json
import os
import shutil
import struct

import pytest

from pipelines.config import PROJECT_ROOT
from tests.reports.cdp import Visit

SIZES = {1280: 900, 390: 844}
MIN_FONT_PX = 12


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


def _png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_browser_harness_catches_console_errors_and_network_requests(browser, tmp_path, shots):
    bad = tmp_path / "bad.html"
    bad.write_text('<!doctype html><title>bad</title><script>console.error("boom")</script>'
                   '<img src="http://127.0.0.1:9/x.png"><p style="font-size:8px">tiny</p>')
    visit = browser.visit(bad, 390, 844, shots / "bad.png")
    assert [m["text"] for m in visit.errors if m["text"] == "boom"] == ["boom"]
    assert visit.outside_requests == ["http://127.0.0.1:9/x.png"]
    assert visit.layout["minFont"] == 8


PAGES = {
    "dashboard": lambda s: s.built.dashboard,
    "submission": lambda s: s.built.submissions[s.ids["m1_pol_q1"]],
    "rejected": lambda s: s.built.submissions[s.ids["m2_pol_q2"]],
    "scorecard": lambda s: s.built.scorecards["M001"],
}


@pytest.mark.parametrize("width", sorted(SIZES, reverse=True))
@pytest.mark.parametrize("page", sorted(PAGES))
def test_browser_opens_report_offline_and_readable(scenario, browser, shots, page, width):
    path = PAGES[page](scenario)
    shot = shots / f"{page}-{width}.png"
    visit: Visit = browser.visit(path, width, SIZES[width], shot)
    assert visit.errors == [], visit.console
    assert visit.requests == [path.resolve().as_uri()]          # the page itself, nothing else
    layout = visit.layout
    assert layout["viewport"] and layout["text"] > 500 and "InsurShare" in layout["title"]
    assert layout["scrollWidth"] <= width, layout["wide"]        # no sideways scrolling of the page
    assert layout["wide"] == [] and layout["small"] == [] and layout["svgText"] == []
    assert layout["minFont"] >= MIN_FONT_PX
    assert _png_size(shot) == (width, SIZES[width])
    if page == "dashboard" and width == 1280 and os.environ.get("INSURSHARE_DOCS_SCREENSHOT"):
        (PROJECT_ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, PROJECT_ROOT / "docs" / "dashboard.png")


PROBE = ("JSON.stringify({title: document.title, xss: window.xss === undefined ? null : window.xss, "
         "injected: document.querySelectorAll('[id^=XSS],[class^=XSS],iframe,body[onload],svg[onload]').length})")


def test_browser_probe_sees_a_payload_that_runs(browser, tmp_path, shots):
    from tests.reports.hostile import PAYLOADS

    page = tmp_path / "raw.html"
    page.write_text(f"<!doctype html><title>raw</title><p>{PAYLOADS[0]}</p><p>{PAYLOADS[7]}</p>", encoding="utf-8")
    got = json.loads(browser.visit(page, 390, 844, shots / "raw.png", probe=PROBE).probe)
    assert got == {"title": "XSS01", "xss": 1, "injected": 1}


@pytest.mark.parametrize("page", ["policy_gx", "policy_counts", "claim_gx", "report"])
def test_browser_runs_no_member_script_in_reports_or_data_docs(hostile, browser, shots, page):
    from tests.reports.test_hostile_reports import _gx_page

    path = hostile.built.submissions[hostile.ids["policy_gx"]] if page == "report" else _gx_page(hostile, page)
    visit = browser.visit(path, 1280, 900, shots / f"hostile-{page}.png", probe=PROBE)
    got = json.loads(visit.probe)
    assert "XSS" not in got["title"].upper() and got["xss"] is None and got["injected"] == 0, got
    assert [r for r in visit.requests if r.startswith("javascript:")] == []
