"""A member's submissions through the API and the pages: list, record, report, rule results,
quarantined rows; another member's submission is the same 404 as a missing one."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from pipelines.config import Settings
from pipelines.contracts import load_contract
from pipelines.ingest import process_submission
from pipelines.keys import create_keys
from pipelines.members import add_members
from pipelines.portal import db
from pipelines.portal.app import create_app
from tests.conftest import policy_row, resident_id, submit, write_csv
from tests.portal.conftest import add_user, bearer, log_in, token_for

FORMULA = '=HYPERLINK("http://evil.example","x")'
MISSING = "M001-policy-2099Q1-v1"
USERS = {"sam": ("submitter", "M001"), "sue": ("submitter", "M002"), "ann": ("analyst", "M001"),
         "reg": ("regulator", None), "op": ("operator", None)}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """M001 sent 20 good policy rows and one with an unknown region and a formula (quarantined);
    M002 sent 10 good rows; both were ingested. One API token per user of ``USERS``."""
    root = tmp_path_factory.mktemp("portal")
    settings = Settings(home=root / "home", gx_max_rows=0)
    create_keys(settings)
    add_members(settings, {"M001": "Member One", "M002": "Member Two", "M003": "Member Three"})
    rows = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}") for i in range(20)]
    rows.append(policy_row(transaction_id="TBAD1", policy_no="PBAD1", region_code="999999", product_name=FORMULA))
    ids = {}
    for member, sent in (("M001", rows), ("M002", rows[:10])):
        folder = root / member
        folder.mkdir()
        got = submit(settings, write_csv(folder / "policy_2024Q1.csv", sent), member=member)
        ids[member] = got.submission.submission_id
        process_submission(settings, ids[member])
    tokens = {}
    for name, (role, member) in USERS.items():
        add_user(settings, name, role, member)
        tokens[name] = bearer(token_for(settings, name))
    with TestClient(create_app(settings)) as client:
        yield settings, client, ids, tokens
    db.dispose()


def test_list_shows_a_submitter_only_its_members_submissions(platform):
    _settings, client, ids, tokens = platform
    listed = client.get("/api/v1/submissions", headers=tokens["sam"]).json()["submissions"]
    assert [s["submission_id"] for s in listed] == [ids["M001"]]
    got = listed[0]
    assert (got["status"], got["verdict"], got["rows_total"], got["rows_accepted"], got["rows_quarantined"]) == \
        ("accepted", "accepted", 21, 20, 1)


@pytest.mark.parametrize("user", ["reg", "op"])
def test_list_shows_the_regulator_and_operator_every_member(platform, user):
    _settings, client, ids, tokens = platform
    listed = client.get("/api/v1/submissions", headers=tokens[user]).json()["submissions"]
    assert {s["submission_id"] for s in listed} == set(ids.values())


def test_list_carries_timeliness_as_the_report_judges_it(platform):
    _settings, client, ids, tokens = platform
    got = client.get(f"/api/v1/submissions/{ids['M001']}", headers=tokens["sam"]).json()
    due = dt.date(2024, 3, 31) + dt.timedelta(days=load_contract("policy").due_days)
    received = dt.date.fromisoformat(got["received_at"][:10])
    assert got["timeliness"] == {"period_end": "2024-03-31", "due_date": due.isoformat(),
                                 "received_on": received.isoformat(), "days_late": max(0, (received - due).days),
                                 "on_time": received <= due}


@pytest.mark.parametrize("tail", ["", "/report", "/rules", "/quarantine?format=csv", "/quarantine.xlsx"])
def test_another_members_submission_is_the_same_404_as_a_missing_one(platform, tail):
    _settings, client, ids, tokens = platform
    theirs = client.get(f"/api/v1/submissions/{ids['M001']}{tail}", headers=tokens["sue"])
    missing = client.get(f"/api/v1/submissions/{MISSING}{tail}", headers=tokens["sue"])
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json() == {"error": "Not found.",
                                               "hint": "Check the id; you see only your own member's objects."}


def test_another_members_submission_page_is_the_same_404_page(platform):
    _settings, client, ids, tokens = platform
    theirs = client.get(f"/submissions/{ids['M001']}", headers=tokens["sue"])
    missing = client.get(f"/submissions/{MISSING}", headers=tokens["sue"])
    assert theirs.status_code == missing.status_code == 404
    assert theirs.text == missing.text and ids["M001"] not in theirs.text


@pytest.mark.parametrize("tail", ["/report", "/rules", "/quarantine"])
def test_operator_sees_records_but_no_members_rows(platform, tail):
    _settings, client, ids, tokens = platform
    assert client.get(f"/api/v1/submissions/{ids['M001']}", headers=tokens["op"]).status_code == 200
    assert client.get(f"/api/v1/submissions/{ids['M001']}{tail}", headers=tokens["op"]).status_code == 403


def test_analyst_may_not_read_submissions(platform):
    _settings, client, ids, tokens = platform
    assert client.get(f"/api/v1/submissions/{ids['M001']}", headers=tokens["ann"]).status_code == 403


def test_report_is_the_platforms_html_report_built_on_demand(platform):
    settings, client, ids, tokens = platform
    page = settings.reports_dir / "submissions" / ids["M001"] / "report.html"
    page.unlink(missing_ok=True)
    answer = client.get(f"/api/v1/submissions/{ids['M001']}/report", headers=tokens["sam"])
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert page.exists() and answer.text == page.read_text(encoding="utf-8")
    assert ids["M001"] in answer.text and "<script" not in answer.text


def test_regulator_reads_any_members_report(platform):
    _settings, client, ids, tokens = platform
    assert ids["M002"] in client.get(f"/api/v1/submissions/{ids['M002']}/report", headers=tokens["reg"]).text


def test_rules_name_the_rule_that_quarantined_the_row(platform):
    _settings, client, ids, tokens = platform
    rules = client.get(f"/api/v1/submissions/{ids['M001']}/rules", headers=tokens["sam"]).json()["rules"]
    failed = {r["rule_id"]: r["failed"] for r in rules if r["failed"]}
    assert failed.get("POL-CODE-region_code") == 1
    assert all(r["checked"] is not None for r in rules if r["kind"] != "submission")


def test_quarantine_csv_is_neutralised_and_pseudonymised(platform):
    _settings, client, ids, tokens = platform
    answer = client.get(f"/api/v1/submissions/{ids['M001']}/quarantine?format=csv", headers=tokens["sam"])
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == f'attachment; filename="{ids["M001"]}-quarantine.csv"'
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["transaction_id"] for r in rows] == ["TBAD1"]
    assert "POL-CODE-region_code" in rows[0]["rule_ids"].split("; ")
    assert rows[0]["product_name"] == "'" + FORMULA
    assert resident_id() not in answer.text and rows[0]["insured_id"].startswith("m:")


def test_quarantine_xlsx_cells_are_text(platform):
    _settings, client, ids, tokens = platform
    answer = client.get(f"/api/v1/submissions/{ids['M001']}/quarantine?format=xlsx", headers=tokens["sam"])
    sheet = load_workbook(io.BytesIO(answer.content)).active
    header, row = [c.value for c in sheet[1]], [c.value for c in sheet[2]]
    assert row[header.index("product_name")] == "'" + FORMULA


def test_quarantine_in_another_format_is_refused(platform):
    _settings, client, ids, tokens = platform
    assert client.get(f"/api/v1/submissions/{ids['M001']}/quarantine?format=html",
                      headers=tokens["sam"]).status_code == 422
    assert client.get(f"/api/v1/submissions/{ids['M001']}/quarantine.html",
                      headers=tokens["sam"]).status_code == 400


def test_submissions_pages_show_own_submissions_with_their_verdict(platform):
    _settings, client, ids, tokens = platform
    log_in(client, "sam")
    try:
        listing = client.get("/submissions").text
        assert ids["M001"] in listing and ids["M002"] not in listing
        page = client.get(f"/submissions/{ids['M001']}").text
        assert 'id="verdict">accepted<' in page and "POL-CODE-region_code" in page
        assert f"/api/v1/submissions/{ids['M001']}/quarantine?format=csv" in page
    finally:
        client.cookies.clear()
