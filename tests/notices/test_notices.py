"""Notices sent for real: to a local HTTP server (signature checked with an independent HMAC) and a
local SMTP server; the log in the lake makes a second run send nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from pipelines import notices, store
from pipelines.config import Settings
from pipelines.core.domain import parse_period
from pipelines.errors import ConfigError
from pipelines.ingest import process_submission
from tests.conftest import policy_row, submit, write_csv
from tests.notices.servers import SmtpServer, WebhookServer, free_port


def _expected_signature(settings: Settings, owner: str, body: bytes) -> str:
    """The signature computed from the key file alone, as a member's receiver would."""
    line = (settings.home / "secrets" / "notices.key").read_text().strip()
    key = bytes.fromhex(line.split(":", 1)[1])
    secret = hmac.new(key, f"insurshare-notice:{owner}".encode(), hashlib.sha256).hexdigest()
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _rejected(settings: Settings, tmp: Path, member: str = "M001", period: str = "2024Q1") -> str:
    """A file whose every row breaks the province code list: rejected."""
    rows = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}", region_code="999999") for i in range(6)]
    got = submit(settings, write_csv(tmp / f"bad-{member}-{period}.csv", rows), member=member, period=period)
    outcome = process_submission(settings, got.submission.submission_id)
    assert outcome.status == "rejected"
    return outcome.submission_id


def _accepted(settings: Settings, tmp: Path, member: str, quarantined: int = 0, period: str = "2024Q1") -> str:
    start = parse_period(period).start + dt.timedelta(days=9)
    dates = {"accounting_date": start, "effective_date": start, "expiry_date": start.replace(year=start.year + 1)}
    rows = [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}", **dates) for i in range(20)]
    rows += [policy_row(transaction_id=f"Q{i:04d}", policy_no=f"P9{i:03d}", region_code="999999", **dates)
             for i in range(quarantined)]
    got = submit(settings, write_csv(tmp / f"ok-{member}-{period}.csv", rows), member=member, period=period)
    outcome = process_submission(settings, got.submission.submission_id)
    assert outcome.status == "accepted" and outcome.rows_quarantined == quarantined
    return outcome.submission_id


def _log(settings: Settings) -> list[dict]:
    return notices.read_log(settings, limit=1000)


def _snapshot(settings: Settings) -> int:
    con = store.connect(settings)
    try:
        return store.current_snapshot(con)
    finally:
        con.close()


@pytest.fixture
def servers():
    with WebhookServer() as hook, SmtpServer() as smtp:
        yield hook, smtp


def _with_smtp(settings: Settings, smtp: SmtpServer, **more: str) -> Settings:
    env = {"INSURSHARE_SMTP_HOST": "127.0.0.1", "INSURSHARE_SMTP_PORT": str(smtp.port),
           "INSURSHARE_SMTP_TLS": "none", "INSURSHARE_SMTP_FROM": "platform@insurshare.test",
           "INSURSHARE_NOTICE_ATTEMPTS": "2", **more}
    return settings.with_(env=env)


def test_a_rejected_file_is_one_webhook_call_and_one_mail_and_never_again(settings, tmp_path, servers):
    hook, smtp = servers
    settings = _with_smtp(settings, smtp, INSURSHARE_REPORTS_URL="https://reports.example/insurshare/")
    notices.configure(settings, "M001", "webhook", hook.url)
    notices.configure(settings, "M001", "email", "data@m001.example")
    sid = _rejected(settings, tmp_path)
    _accepted(settings, tmp_path, "M002")                       # M002 has no channel and no default: nothing
    _accepted(settings, tmp_path, "M001", quarantined=1, period="2024Q2")   # quarantine is off by default

    run = notices.send_pending(settings)
    assert [(a.event.kind, a.event.subject, a.channel.kind, a.status) for a in run.attempts] == [
        ("rejected", sid, "webhook", "sent"), ("rejected", sid, "email", "sent")]
    assert len(hook.calls) == 1 and len(smtp.mails) == 1

    call = hook.calls[0]
    assert call.path == "/hook"
    assert call.headers["x-insurshare-signature"] == _expected_signature(settings, "M001", call.body)
    assert call.headers["x-insurshare-event"] == "rejected"
    body = json.loads(call.body)
    con = store.connect(settings)
    reasons, version = con.execute("SELECT verdict_reasons, version FROM lake.submissions WHERE submission_id = ?",
                                   [sid]).fetchone()
    con.close()
    assert (body["member_id"], body["dataset"], body["period"], body["version"]) == ("M001", "policy", "2024Q1", version)
    assert body["verdict"] == "rejected" and body["reasons"] == list(reasons)[:3] and body["reasons"]
    assert body["reasons_total"] == len(reasons)
    assert body["report"] == f"https://reports.example/insurshare/submissions/{sid}/report.html"

    mail = smtp.mails[0]
    assert mail.recipients == ["data@m001.example"] and mail.sender == "platform@insurshare.test"
    assert mail.message["Subject"] == f"[InsurShare] {sid}: rejected"
    text = mail.message.get_content()
    assert all(r in text for r in list(reasons)[:3]) and body["report"] in text

    log = _log(settings)
    assert sorted((r["member_id"], r["event"], r["channel"], r["status"], r["attempts"]) for r in log) == [
        ("M001", "rejected", "email", "sent", 1), ("M001", "rejected", "webhook", "sent", 1)]
    assert {r["target"] for r in log} == {hook.url, "data@m001.example"}

    before = _snapshot(settings)
    again = notices.send_pending(settings)
    assert again.attempts == [] and again.snapshot_id is None
    assert len(hook.calls) == 1 and len(smtp.mails) == 1 and len(_log(settings)) == 2
    assert _snapshot(settings) == before             # nothing to send writes nothing


def test_quarantine_notices_are_sent_when_a_channel_asks_for_them(settings, tmp_path, servers):
    hook, _ = servers
    notices.configure(settings, "M001", "webhook", hook.url)
    sid = _accepted(settings, tmp_path, "M001", quarantined=2)
    assert notices.send_pending(settings).attempts == []
    notices.configure(settings, "M001", "webhook", hook.url, events=["rejected", "quarantine"])
    run = notices.send_pending(settings)
    assert [(a.event.kind, a.status) for a in run.attempts] == [("quarantine", "sent")]
    body = json.loads(hook.calls[0].body)
    assert (body["submission_id"], body["rows"]["quarantined"], body["rows"]["total"]) == (sid, 2, 22)


def test_a_dead_endpoint_is_logged_failed_and_tried_again_next_run(settings, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    settings = settings.with_(env={"INSURSHARE_NOTICE_ATTEMPTS": "2", "INSURSHARE_NOTICE_TIMEOUT": "2"})
    notices.configure(settings, "M002", "webhook", url)
    sid = _rejected(settings, tmp_path, member="M002")
    later = _rejected(settings, tmp_path, member="M002", period="2024Q2")

    first = notices.send_pending(settings)   # the second notice is not tried once the endpoint failed
    assert [(a.event.subject, a.status, a.attempts) for a in first.attempts] == [(sid, "failed", 2)]
    assert "Connection refused" in first.attempts[0].error
    second = notices.send_pending(settings)              # tried again: still down
    assert [(a.status, a.attempts) for a in second.attempts] == [("failed", 2)]
    log = _log(settings)
    assert [r["status"] for r in log] == ["failed", "failed"]
    assert all("Connection refused" in r["error"] and r["event"] == "rejected" for r in log)

    with WebhookServer(port=port) as hook:               # the endpoint is back
        third = notices.send_pending(settings)
        assert [(a.event.subject, a.status, a.attempts) for a in third.attempts] == [(sid, "sent", 1),
                                                                                    (later, "sent", 1)]
        assert len(hook.calls) == 2
        assert notices.send_pending(settings).attempts == []
    assert sorted(r["status"] for r in _log(settings)) == ["failed", "failed", "sent", "sent"]


def test_a_notice_that_keeps_failing_is_given_up_after_max_failed_runs(settings, tmp_path):
    with WebhookServer(status=500) as hook:
        settings = settings.with_(env={"INSURSHARE_NOTICE_ATTEMPTS": "1"})
        notices.configure(settings, "M001", "webhook", hook.url)
        _rejected(settings, tmp_path)
        for _ in range(notices.MAX_FAILED_RUNS + 2):
            notices.send_pending(settings)
        assert len(hook.calls) == notices.MAX_FAILED_RUNS
        assert [r["error"] for r in _log(settings)] == ["ConnectionError: HTTP 500 Internal Server Error"] * 5


def test_a_4xx_answer_is_not_retried_within_the_run(settings, tmp_path):
    with WebhookServer(status=404) as hook:
        settings = settings.with_(env={"INSURSHARE_NOTICE_ATTEMPTS": "3"})
        notices.configure(settings, "M001", "webhook", hook.url)
        _rejected(settings, tmp_path)
        run = notices.send_pending(settings)
        assert [(a.status, a.attempts, a.error) for a in run.attempts] == [("failed", 1, "HTTP 404 Not Found")]
        assert len(hook.calls) == 1


def test_email_without_an_smtp_server_is_skipped_once_then_sent_when_configured(settings, tmp_path, servers):
    _, smtp = servers
    notices.configure(settings, "M001", "email", "data@m001.example")
    _rejected(settings, tmp_path)
    first = notices.send_pending(settings)
    assert [(a.status, a.error) for a in first.attempts] == [("skipped", "no SMTP server: set INSURSHARE_SMTP_HOST")]
    assert notices.send_pending(settings).attempts == []   # not logged again
    sent = notices.send_pending(_with_smtp(settings, smtp))
    assert [a.status for a in sent.attempts] == ["sent"] and len(smtp.mails) == 1
    assert sorted(r["status"] for r in _log(settings)) == ["sent", "skipped"]


def test_due_soon_and_overdue_fire_for_an_owed_slice_only(settings, tmp_path):
    """M001's 2024Q1 is accepted, M002's received (not processed yet), M003 sent nothing: only
    M003 owes it. 2024Q1 ends 2024-03-31 and is due 45 days later (schemas/submission.yaml)."""
    from pipelines.contracts import load_contract

    due = dt.date(2024, 3, 31) + dt.timedelta(days=load_contract("policy", None, settings.schemas_dir).due_days)
    assert due == dt.date(2024, 5, 15)
    _accepted(settings, tmp_path, "M001")
    submit(settings, write_csv(tmp_path / "m2.csv", [policy_row()]), member="M002")
    with WebhookServer() as hook:
        notices.configure(settings, notices.DEFAULT_MEMBER, "webhook", hook.url,
                          now=dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
        assert notices.send_pending(settings, today=dt.date(2024, 5, 7)).attempts == []   # due in 8 > 7 days
        soon = notices.send_pending(settings, today=dt.date(2024, 5, 10))
        assert [(a.event.kind, a.event.member, a.status) for a in soon.attempts] == [("due_soon", "M003", "sent")]
        body = json.loads(hook.calls[0].body)
        assert (body["dataset"], body["period"], body["due_date"], body["days_left"]) == (
            "policy", "2024Q1", due.isoformat(), (due - dt.date(2024, 5, 10)).days)
        assert hook.calls[0].headers["x-insurshare-signature"] == _expected_signature(settings, "*",
                                                                                      hook.calls[0].body)
        assert notices.send_pending(settings, today=dt.date(2024, 5, 12)).attempts == []   # reminded once
        late = notices.send_pending(settings, today=dt.date(2024, 5, 20))
        assert [(a.event.kind, a.event.member) for a in late.attempts] == [("overdue", "M003")]
        assert json.loads(hook.calls[1].body)["days_late"] == 5
        assert len(hook.calls) == 2


def test_a_channel_hears_only_of_what_happens_after_it_is_configured(settings, tmp_path):
    _rejected(settings, tmp_path)
    with WebhookServer() as hook:
        notices.configure(settings, "M001", "webhook", hook.url)
        assert notices.send_pending(settings).attempts == [] and hook.calls == []
        sid = _rejected(settings, tmp_path, period="2024Q2")
        assert [a.event.subject for a in notices.send_pending(settings).attempts] == [sid]


def test_a_member_with_its_own_channel_does_not_use_the_default(settings, tmp_path):
    with WebhookServer() as own, WebhookServer() as default:
        notices.configure(settings, "M001", "webhook", own.url)
        notices.configure(settings, notices.DEFAULT_MEMBER, "webhook", default.url)
        one, two = _rejected(settings, tmp_path), _rejected(settings, tmp_path, member="M002")
        notices.send_pending(settings)
        assert [json.loads(c.body)["submission_id"] for c in own.calls] == [one]
        assert [json.loads(c.body)["submission_id"] for c in default.calls] == [two]


def test_bad_configuration_is_refused_with_a_clear_error(settings):
    with pytest.raises(ConfigError, match="not an http"):
        notices.configure(settings, "M001", "webhook", "file:///etc/passwd")
    with pytest.raises(ConfigError, match="not an e-mail address"):
        notices.configure(settings, "M001", "email", "nobody")
    with pytest.raises(ConfigError, match="not a registered member"):
        notices.configure(settings, "M999", "email", "a@b.example")
    with pytest.raises(ConfigError, match="Unknown notice event"):
        notices.configure(settings, "M001", "email", "a@b.example", events=["rejected", "typo"])
    with pytest.raises(ConfigError, match="INSURSHARE_SMTP_TLS"):
        notices.NoticeSettings.of(settings.with_(env={"INSURSHARE_SMTP_TLS": "maybe"}))
    assert notices.load_channels(settings) == []
    path = notices.NoticeSettings.of(settings).channels_file
    notices.configure(settings, "M001", "email", "a@b.example")
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="damaged"):
        notices.load_channels(settings)


def test_the_log_hides_a_webhook_urls_query_and_credentials():
    assert notices._shown("webhook", "https://user:pw@hooks.example:8443/in/abc?token=s3cret") == \
        "https://hooks.example:8443/in/abc?…"
