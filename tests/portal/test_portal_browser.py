"""A real browser walks the portal: a submitter uploads, follows its file to the verdict, the
report and the quarantined rows; an analyst queries its product; the regulator reads the access log.

Headless Chromium (as the report tests: ``tests/reports/cdp.py``; skipped cleanly when it cannot
be installed) drives a real uvicorn server on a free port of 127.0.0.1, in a thread of this
process, so that ingestion runs in-process between two clicks. With
``INSURSHARE_DOCS_SCREENSHOT=1`` the submissions page is also saved to
``docs/portal-submissions.png`` for the README.
"""

from __future__ import annotations

import csv
import os
import shutil
import threading
import time

import httpx
import pytest
import uvicorn

from pipelines.airflow.scheduler import free_port
from pipelines.config import PROJECT_ROOT, Settings
from pipelines.ingest import process_submission
from pipelines.keys import create_keys
from pipelines.marts.build import build_marts
from pipelines.members import add_members
from pipelines.portal import db
from pipelines.portal.app import create_app
from pipelines.products.build import build_products
from tests.conftest import policy_row, submit, write_csv
from tests.portal.conftest import PASSWORD, add_user, bearer, token_for
from tests.reports.cdp import Tab

FORMULA = '=HYPERLINK("http://evil.example","x")'
Q2_ROWS = 12


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(settings, base URL) of a portal serving a platform where M001 already has an accepted
    2024Q2 premium file (``Q2_ROWS`` rows) and built products; users sam (submitter M001), sue
    (submitter M002), ann (analyst M001) and reg (regulator)."""
    root = tmp_path_factory.mktemp("portal-site")
    settings = Settings(home=root / "home", gx_max_rows=0)
    create_keys(settings)
    add_members(settings, {"M001": "Member One", "M002": "Member Two"})
    rows = [policy_row(transaction_id=f"Q{i:04d}", policy_no=f"Q{i:04d}", accounting_date="2024-05-10",
                       effective_date="2024-05-10", expiry_date="2025-05-10") for i in range(Q2_ROWS)]
    process_submission(settings, submit(settings, write_csv(root / "policy_2024Q2.csv", rows),
                                        period="2024Q2").submission.submission_id)
    build_marts(settings)
    build_products(settings)
    for name, role, member in (("sam", "submitter", "M001"), ("sue", "submitter", "M002"),
                               ("ann", "analyst", "M001"), ("reg", "regulator", None)):
        add_user(settings, name, role, member)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the portal did not start"
        time.sleep(0.05)
    try:
        yield settings, f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(30)
        db.dispose()


def _log_in(tab: Tab, base: str, username: str) -> None:
    tab.open(f"{base}/login")
    tab.fill({"#username": username, "#password": PASSWORD})
    tab.click("form[action='/login'] button")
    assert tab.url == f"{base}/", tab.text()
    assert f"Welcome, {username}" in tab.text()


def _log_out(tab: Tab, base: str) -> None:
    tab.click("header form[action='/logout'] button")
    assert tab.url == f"{base}/login"


def test_submitter_uploads_and_follows_the_file_to_its_verdict_report_and_quarantine(site, browser, tmp_path):
    settings, base = site
    rows = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}") for i in range(20)]
    rows.append(policy_row(transaction_id="TBAD1", policy_no="PBAD1", region_code="999999", product_name=FORMULA))
    upload = write_csv(tmp_path / "policy_2024Q1.csv", rows)
    with browser.tab(1280, 400) as tab:
        _log_in(tab, base, "sam")
        tab.open(f"{base}/submissions/new")
        tab.fill({"#dataset": "policy", "#period": "2024Q1", "#rows": str(len(rows))})
        tab.set_files("#file", [upload])
        tab.click("form[action='/submissions/new'] button")
        assert "?note=received" in tab.url, tab.text()
        sid = tab.url.split("/submissions/")[1].split("?")[0]
        assert sid == "M001-policy-2024Q1-v1"
        assert "Received: the file is archived" in tab.text() and "received" in tab.evaluate(
            "document.getElementById('status').textContent")

        process_submission(settings, sid)          # the ingestion run, in-process

        tab.open(f"{base}/submissions/{sid}")
        assert tab.evaluate("document.getElementById('verdict').textContent") == "accepted"
        assert "POL-CODE-region_code" in tab.text()
        saved = tab.download("#quarantine-csv", tmp_path / "downloads")
        assert saved.name == f"{sid}-quarantine.csv"
        got = list(csv.DictReader(saved.open(encoding="utf-8")))
        assert [r["transaction_id"] for r in got] == ["TBAD1"] and got[0]["product_name"] == "'" + FORMULA
        tab.click("#report-link")
        assert tab.url == f"{base}/api/v1/submissions/{sid}/report"
        assert sid in tab.text() and "Accepted" in tab.text()

        tab.open(f"{base}/submissions")
        assert sid in tab.text() and "M001-policy-2024Q2-v1" in tab.text()
        shot = tab.screenshot(tmp_path / "portal-submissions.png")
        if os.environ.get("INSURSHARE_DOCS_SCREENSHOT") == "1":
            shutil.copyfile(shot, PROJECT_ROOT / "docs" / "portal-submissions.png")
        _log_out(tab, base)


def test_analyst_runs_a_query_on_its_own_product(site, browser):
    _settings, base = site
    with browser.tab() as tab:
        _log_in(tab, base, "ann")
        tab.open(f"{base}/query")
        tab.fill({"#sql": "SELECT count(*) AS n FROM policy"})
        tab.click("form[action='/query'] button")
        cells = tab.evaluate("[...document.querySelectorAll('#result td')].map(td => td.textContent)")
        assert cells == [str(Q2_ROWS)], tab.text()
        _log_out(tab, base)


def test_regulator_reads_the_access_log_with_a_refused_attempt(site, browser):
    settings, base = site
    sue = bearer(token_for(settings, "sue"))
    probe = httpx.get(f"{base}/api/v1/submissions/M001-policy-2024Q2-v1/report", headers=sue)
    assert probe.status_code == 404                      # another member's report: not found
    with browser.tab() as tab:
        _log_in(tab, base, "reg")
        tab.open(f"{base}/access-log")
        rows = tab.evaluate("[...document.querySelectorAll('table tbody tr')].map(tr => tr.innerText)")
        theirs = [r for r in rows if "sue" in r and "submissions.report" in r]
        assert theirs and "not_found" in theirs[0] and "M001-policy-2024Q2-v1" in theirs[0], rows[:5]
        assert any("reg" in r and "auth.login" in r for r in rows)
        _log_out(tab, base)
