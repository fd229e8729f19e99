"""A submission's way through the portal: upload, list, ingestion, verdict, report, rules,
quarantine; the same bytes again; the upload form's CSRF token and its errors."""

from __future__ import annotations

import csv
import io

from pipelines.ingest import process_submission
from tests.conftest import policy_row, write_csv
from tests.portal.conftest import add_user, bearer, log_in, token_for

FORMULA = "=1+2"


def _file(tmp_path) -> bytes:
    rows = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}") for i in range(10)]
    rows.append(policy_row(transaction_id="TBAD1", policy_no="PBAD1", region_code="999999", product_name=FORMULA))
    return write_csv(tmp_path / "policy_2024Q1.csv", rows).read_bytes()


def _form(extra: dict | None = None) -> dict:
    return {"dataset": "policy", "period": "2024Q1", "rows": "11", **(extra or {})}


def test_upload_list_ingest_and_read_the_verdict_report_rules_and_quarantine(portal, tmp_path):
    settings, client = portal
    add_user(settings, "bot", "submitter", "M001")
    auth = bearer(token_for(settings, "bot"))
    body = _file(tmp_path)
    sent = client.post("/api/v1/submissions", headers=auth, data=_form(),
                       files={"file": ("policy_2024Q1.csv", body, "text/csv")})
    assert sent.status_code == 201, sent.text
    sid = sent.json()["submission_id"]
    assert (sid, sent.json()["status"], sent.json()["created"]) == ("M001-policy-2024Q1-v1", "received", True)

    listed = client.get("/api/v1/submissions", headers=auth).json()["submissions"]
    assert [(s["submission_id"], s["status"], s["verdict"]) for s in listed] == [(sid, "received", None)]

    process_submission(settings, sid)
    got = client.get(f"/api/v1/submissions/{sid}", headers=auth).json()
    assert (got["status"], got["verdict"], got["rows_total"], got["rows_quarantined"]) == ("accepted", "accepted", 11, 1)
    assert sid in client.get(f"/api/v1/submissions/{sid}/report", headers=auth).text
    rules = client.get(f"/api/v1/submissions/{sid}/rules", headers=auth).json()["rules"]
    assert {r["rule_id"] for r in rules if r["failed"]} >= {"POL-CODE-region_code"}
    rows = list(csv.DictReader(io.StringIO(
        client.get(f"/api/v1/submissions/{sid}/quarantine?format=csv", headers=auth).text)))
    assert [(r["transaction_id"], r["product_name"]) for r in rows] == [("TBAD1", "'" + FORMULA)]


def test_the_same_bytes_again_are_already_received(portal, tmp_path):
    settings, client = portal
    add_user(settings, "bot", "submitter", "M001")
    auth = bearer(token_for(settings, "bot"))
    body = _file(tmp_path)
    first = client.post("/api/v1/submissions", headers=auth, data=_form(), files={"file": ("policy_2024Q1.csv", body)})
    again = client.post("/api/v1/submissions", headers=auth, data=_form(), files={"file": ("policy_2024Q1.csv", body)})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["submission_id"] == first.json()["submission_id"] and again.json()["created"] is False
    assert again.json()["message"].startswith("Already received")
    assert len(client.get("/api/v1/submissions", headers=auth).json()["submissions"]) == 1


def test_upload_form_without_csrf_token_keeps_nothing(portal, tmp_path):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    log_in(client, "sam")
    answer = client.post("/submissions/new", data=_form(), files={"file": ("policy_2024Q1.csv", _file(tmp_path))})
    assert answer.status_code == 403 and "CSRF" in answer.text
    assert client.get("/api/v1/submissions").json()["submissions"] == []
    assert not any((settings.work_dir / "uploads").iterdir())


def test_upload_form_with_its_csrf_token_goes_to_the_submission_page(portal, tmp_path):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    csrf = log_in(client, "sam")
    answer = client.post("/submissions/new", data=_form({"csrf_token": csrf, "controls": "", "encoding": ""}),
                         files={"file": ("policy_2024Q1.csv", _file(tmp_path))}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/submissions/M001-policy-2024Q1-v1?note=received"
    assert "Received: the file is archived" in client.get(answer.headers["location"]).text


def test_upload_form_shows_what_is_wrong_with_the_manifest(portal, tmp_path):
    settings, client = portal
    add_user(settings, "sam", "submitter", "M001")
    csrf = log_in(client, "sam")
    answer = client.post("/submissions/new", data=_form({"csrf_token": csrf, "period": ""}),
                         files={"file": ("policy_2024Q1.csv", _file(tmp_path))})
    assert answer.status_code == 422
    assert "lacks the manifest field(s) period" in answer.text and 'action="/submissions/new"' in answer.text


def test_upload_for_another_member_is_refused(portal, tmp_path):
    settings, client = portal
    add_user(settings, "bot", "submitter", "M001")
    auth = bearer(token_for(settings, "bot"))
    answer = client.post("/api/v1/submissions", headers=auth, data=_form({"member_id": "M002"}),
                         files={"file": ("policy_2024Q1.csv", _file(tmp_path))})
    assert answer.status_code == 422 and "M002" in answer.json()["error"]
    assert client.get("/api/v1/submissions", headers=auth).json()["submissions"] == []


def test_upload_over_the_limit_is_413(settings, tmp_path):
    from fastapi.testclient import TestClient

    from pipelines.portal.app import create_app

    small = settings.with_(env={**settings.env, "INSURSHARE_PORTAL_MAX_UPLOAD": "1KB"})
    add_user(small, "bot", "submitter", "M001")
    with TestClient(create_app(small)) as client:
        answer = client.post("/api/v1/submissions", headers=bearer(token_for(small, "bot")), data=_form(),
                             files={"file": ("policy_2024Q1.csv", _file(tmp_path))})
    assert answer.status_code == 413 and answer.json()["error"]
    assert not any((small.work_dir / "uploads").iterdir())
