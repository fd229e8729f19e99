"""Notices: tell a member when its file is rejected or refused, when an accepted file has
quarantined rows, and when a slice is due soon or overdue; log every notice in the lake.

**Channels** are configured by the operator with ``insurshare notices configure`` and kept in a
file owned by the platform (``INSURSHARE_NOTICE_CHANNELS``, default
``$INSURSHARE_HOME/notices/channels.json``, mode 0600), not in the lake: a webhook URL often is
a secret itself, and the lake's tables (and every snapshot of them) are readable by the
regulator's product. A channel is a webhook (HTTP POST of a JSON body, signed with HMAC-SHA256 in
``X-InsurShare-Signature: sha256=<hex>``) or an e-mail address (SMTP), for one member or for the
``default`` (used for a member that has no channel of its own), with the events it takes. A
channel is told of events from the moment it was configured on: a verdict given, or a due date
falling, before then is not sent (configuring a channel never floods it with history).

**Events** are read from the lake:

- ``rejected``: a processed file was rejected (not when the platform itself failed on it,
  ``SUB-PROCESSING``: that is the operator's to fix);
- ``refused``: a delivery of a registered member was refused at intake;
- ``quarantine``: an accepted file has quarantined rows (off unless a channel asks for it);
- ``due_soon``: a slice is due within ``INSURSHARE_NOTICE_DUE_DAYS`` days and nothing is received
  for it (only rejected versions count as nothing);
- ``overdue``: the same slice past its due date.

Slices and due dates are the quality reports' (``pipelines/reports/scoring.py``): a dataset's
periods from the first any member sent, every registered member in every period that its
reporting calendar and the operators' declarations say it owes (``pipelines.calendars``), due
``due_days`` after the period ends; here the periods run on to the last one due within the
reminder window, so that a reminder goes out before anyone has sent that period.

**The log** is the lake table ``notice_log``: one row per attempt of a run (time, member, event,
subject, channel, target, status ``sent``/``failed``/``skipped``, attempts, error) with a dedupe
key (event x channel x target). A key logged ``sent`` is never sent again; a ``failed`` one is
tried again by the next run, up to ``MAX_FAILED_RUNS`` runs; ``skipped`` (e-mail without an SMTP
server) is logged once and tried again once the server is configured. ``send_pending`` never
raises for a channel's failure: ingestion has committed its verdicts before it runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from pipelines.config import Settings, setting
from pipelines.core.domain import parse_period
from pipelines.core.secrets import EXACT, read_secret, write_new_secret
from pipelines.errors import ConfigError

EVENTS = {
    "rejected": "a processed file was rejected",
    "refused": "a delivery was refused at intake",
    "quarantine": "an accepted file has quarantined rows",
    "due_soon": "a slice is due soon and nothing is received for it",
    "overdue": "a slice is past its due date and nothing is received for it",
}
DEFAULT_EVENTS = ("rejected", "refused", "due_soon", "overdue")
CHANNELS = ("webhook", "email")
DEFAULT_MEMBER = "*"              # the default channel's "member" in the channels file
MAX_FAILED_RUNS = 5               # a notice that failed in this many runs is not tried again
LOG_TABLE = "notice_log"
LOG_COLUMNS = """attempted_at TIMESTAMP, member_id VARCHAR, event VARCHAR, subject VARCHAR, channel VARCHAR,
    target VARCHAR, status VARCHAR, attempts INTEGER, error VARCHAR, dedupe_key VARCHAR, event_key VARCHAR"""
_EMAIL_RE = re.compile(r"[^@\s<>,;\"']+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_MEMBER_RE = re.compile(r"[A-Z][A-Z0-9]{2,15}")


# ---- configuration ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Channel:
    """Where one member's (or the default's) notices go, for which events, since when."""

    member: str          # a member id, or DEFAULT_MEMBER
    kind: str            # webhook | email
    target: str          # URL or e-mail address
    events: tuple[str, ...] = DEFAULT_EVENTS
    since: str = ""      # ISO timestamp (UTC) of its configuration

    @property
    def since_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.since) if self.since else dt.datetime.min

    @property
    def owner(self) -> str:
        return "default" if self.member == DEFAULT_MEMBER else self.member


@dataclass(frozen=True)
class NoticeSettings:
    """The notice settings of ``SETTINGS`` (``INSURSHARE_NOTICE_*``, ``INSURSHARE_SMTP_*``), checked."""

    channels_file: Path
    key_file: Path
    due_days: int
    timeout: float
    attempts: int
    reports_url: str | None
    smtp_host: str | None
    smtp_port: int
    smtp_tls: str
    smtp_from: str
    smtp_user: str | None
    smtp_password_file: Path | None

    @classmethod
    def of(cls, settings: Settings) -> NoticeSettings:
        env = settings.env
        tls = (setting("INSURSHARE_SMTP_TLS").read(env) or "").strip().lower()
        if tls not in ("starttls", "ssl", "none"):
            raise ConfigError(f"INSURSHARE_SMTP_TLS={tls!r} is not starttls, ssl or none.")
        password = setting("INSURSHARE_SMTP_PASSWORD_FILE").read(env)
        return cls(
            channels_file=settings.notice_channels_file,
            key_file=settings.notice_key_file,
            due_days=_number("INSURSHARE_NOTICE_DUE_DAYS", setting("INSURSHARE_NOTICE_DUE_DAYS").read(env), int, 0),
            timeout=_number("INSURSHARE_NOTICE_TIMEOUT", setting("INSURSHARE_NOTICE_TIMEOUT").read(env), float, 0.1),
            attempts=_number("INSURSHARE_NOTICE_ATTEMPTS", setting("INSURSHARE_NOTICE_ATTEMPTS").read(env), int, 1),
            reports_url=(setting("INSURSHARE_REPORTS_URL").read(env) or "").rstrip("/") or None,
            smtp_host=setting("INSURSHARE_SMTP_HOST").read(env),
            smtp_port=_number("INSURSHARE_SMTP_PORT", setting("INSURSHARE_SMTP_PORT").read(env), int, 1),
            smtp_tls=tls,
            smtp_from=setting("INSURSHARE_SMTP_FROM").read(env) or "insurshare@localhost",
            smtp_user=setting("INSURSHARE_SMTP_USER").read(env),
            smtp_password_file=Path(password) if password else None,
        )


def _number(name: str, text: str | None, kind: type, least: float):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        value = None
    if value is None or value < least:
        raise ConfigError(f"{name}={text!r} is not a number of at least {least:g}.")
    return value


def load_channels(settings: Settings) -> list[Channel]:
    """The configured channels (none when the file does not exist)."""
    path = NoticeSettings.of(settings).channels_file
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [Channel(member=c["member"], kind=c["kind"], target=c["target"], events=tuple(c["events"]),
                        since=c.get("since", "")) for c in raw["channels"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"The notice channels file {path} is damaged ({type(exc).__name__}: {exc}).",
                          hint="Fix it by hand or remove it and configure the channels again "
                               "(`insurshare notices configure`).") from None


def _save_channels(settings: Settings, channels: list[Channel]) -> Path:
    path = NoticeSettings.of(settings).channels_file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"channels": [{**asdict(c), "events": list(c.events)} for c in channels]}, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path


def check_target(kind: str, target: str) -> str:
    """``target`` if it is a usable webhook URL or e-mail address; ConfigError otherwise."""
    target = target.strip()
    if kind == "webhook":
        url = urllib.parse.urlsplit(target)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"Webhook {target!r} is not an http:// or https:// URL.",
                              hint="Give the full URL the member's system receives notices at, e.g. "
                                   "https://example.com/insurshare/notices.")
        return target
    if kind == "email":
        if not _EMAIL_RE.fullmatch(target):
            raise ConfigError(f"{target!r} is not an e-mail address.", hint="Give one address like data@member.example.")
        return target
    raise ConfigError(f"Channel {kind!r} is not one of {', '.join(CHANNELS)}.")


def check_events(events: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(e.strip() for e in events if e.strip()))
    unknown = [e for e in out if e not in EVENTS]
    if unknown or not out:
        raise ConfigError(f"Unknown notice event(s): {', '.join(unknown) or '(none given)'}.",
                          hint=f"Choose from {', '.join(EVENTS)}.")
    return out


def configure(settings: Settings, member: str, kind: str, target: str, *,
              events: Iterable[str] = DEFAULT_EVENTS, remove: bool = False,
              now: dt.datetime | None = None) -> Channel | None:
    """Add (or with ``remove`` take away) a channel of ``member`` (a registered member id, or
    ``DEFAULT_MEMBER``). Configuring an existing channel again changes its events only (it keeps
    its ``since``). A webhook needs the signing key: it is created on first use."""
    target = check_target(kind, target)
    if member != DEFAULT_MEMBER:
        check_member(settings, member)
    channels = load_channels(settings)
    same = [c for c in channels if (c.member, c.kind, c.target) == (member, kind, target)]
    if remove:
        if not same:
            raise ConfigError(f"{member if member != DEFAULT_MEMBER else 'The default'} has no {kind} channel "
                              f"{_shown(kind, target)}.", hint="`insurshare notices channels` lists them.")
        _save_channels(settings, [c for c in channels if c not in same])
        return None
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    channel = Channel(member, kind, target, check_events(events),
                      same[0].since if same else stamp.isoformat())
    kept = [c for c in channels if c not in same]
    _save_channels(settings, [*kept, channel])
    if kind == "webhook":
        _signing_key(settings, create=True)
    return channel


def check_member(settings: Settings, member: str) -> None:
    from pipelines.members import list_members

    if not _MEMBER_RE.fullmatch(member):
        raise ConfigError(f"Member id {member!r} is not valid.", hint="`insurshare members list` shows the members.")
    if member not in {m for m, _ in list_members(settings)}:
        raise ConfigError(f"{member} is not a registered member.",
                          hint="`insurshare members list` shows the members; `insurshare members add` registers one.")


def _signing_key(settings: Settings, *, create: bool = False) -> bytes:
    path = NoticeSettings.of(settings).key_file
    if create and not path.exists():
        write_new_secret(path, None, prefix="n", what="The notice signing key",
                         hint="Keep it: members verify notices with secrets derived from it.")
    _, secret = read_secret(path, EXACT, missing=f"No notice signing key at {path}.",
                            missing_hint="Configure a webhook (`insurshare notices configure --webhook`) to create it, "
                                         "or set INSURSHARE_NOTICE_KEY_FILE.",
                            malformed=f"The notice signing key {path} is not `<id>:<64 hex digits>`.")
    return secret


def member_secret(settings: Settings, member: str) -> str:
    """The secret a member (or the default channel's receiver, ``DEFAULT_MEMBER``) checks its webhook
    notices' signature with: hex of HMAC-SHA256(signing key, ``insurshare-notice:<member>``), so
    each member has its own and cannot forge another's notices."""
    key = _signing_key(settings)
    return hmac.new(key, f"insurshare-notice:{member}".encode(), hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes) -> str:
    """The ``X-InsurShare-Signature`` header value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _shown(kind: str, target: str) -> str:
    """A target as the log and the messages show it: a URL without its query and credentials
    (which may be secrets); an address as it is."""
    if kind != "webhook":
        return target
    url = urllib.parse.urlsplit(target)
    host = url.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{url.port}" if url.port else ""
    return urllib.parse.urlunsplit((url.scheme, netloc, url.path, "…" if url.query else "", ""))


# ---- events -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    """Something a member is told of. ``key`` names it for good (``rejected:<submission>``,
    ``due_soon:<member>:<dataset>:<period>``); ``at`` is when it happened (the verdict, the due date)."""

    kind: str
    key: str
    member: str
    at: dt.datetime
    subject: str
    payload: dict = field(default_factory=dict, compare=False)
    title: str = ""
    lines: tuple[str, ...] = ()


def collect_events(settings: Settings, today: dt.date) -> list[Event]:
    """Every event the lake shows as of ``today`` (sent or not), oldest first."""
    from pipelines import store

    if not settings.catalog_is_postgres and not Path(settings.catalog).exists():
        return []
    with store.reader(settings) as con:
        if not {"members", "submissions"} <= store.lake_tables(con):
            return []
        members = [r[0] for r in con.execute("SELECT member_id FROM members ORDER BY 1").fetchall()]
        cur = con.execute(
            "SELECT submission_id, member_id, dataset, period, version, status, verdict, verdict_reasons, "
            "file_name, rows_total, rows_accepted, rows_quarantined, received_at, processed_at "
            "FROM submissions WHERE member_id IN (SELECT member_id FROM members) ORDER BY received_at, submission_id")
        names = [d[0] for d in cur.description]
        subs = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    notice = NoticeSettings.of(settings)
    events = [e for s in subs for e in _submission_events(s, settings, notice)]
    events += _due_events(settings, members, subs, today, notice.due_days)
    return sorted(events, key=lambda e: (e.at, e.key))


def report_link(settings: Settings, submission_id: str) -> str:
    """Where a submission's report is: its URL under ``INSURSHARE_REPORTS_URL``, else its path."""
    from pipelines.reports.layout import Layout

    base = NoticeSettings.of(settings).reports_url
    page = Layout(settings.reports_dir).submission(submission_id)
    if base:
        return f"{base}/{page.relative_to(settings.reports_dir).as_posix()}"
    if settings.storage:   # the page's published copy, not this machine's scratch
        return f"{settings.storage}/reports/{page.relative_to(settings.reports_dir).as_posix()}"
    return str(page)


def _submission_events(s: dict, settings: Settings, notice: NoticeSettings) -> list[Event]:
    status, reasons = s["status"], list(s["verdict_reasons"] or [])
    if status == "rejected" and not (reasons and reasons[0].startswith("SUB-PROCESSING")):
        kind = "rejected"
    elif status == "refused":
        kind = "refused"
    elif status in ("accepted", "superseded") and (s["rows_quarantined"] or 0) > 0:
        kind = "quarantine"
    else:
        return []
    sid = s["submission_id"]
    at = s["processed_at"] or s["received_at"]
    what = " ".join(str(x) for x in (s["dataset"], s["period"], f"v{s['version']}" if s["version"] else None) if x)
    report = report_link(settings, sid) if kind != "refused" else None
    payload = {"event": kind, "event_id": f"{kind}:{sid}", "member_id": s["member_id"], "submission_id": sid,
               "dataset": s["dataset"] or None, "period": s["period"] or None, "version": s["version"],
               "file_name": s["file_name"], "status": status, "verdict": s["verdict"],
               "reasons": reasons[:3], "reasons_total": len(reasons),
               "rows": {"total": s["rows_total"], "accepted": s["rows_accepted"],
                        "quarantined": s["rows_quarantined"]},
               "report": report, "occurred_at": at.isoformat(timespec="seconds") if at else None}
    if kind == "quarantine":
        title = f"{sid}: accepted, {s['rows_quarantined']:,} row(s) quarantined"
        lines = [f"Your {what} file {s['file_name']} was accepted, but {s['rows_quarantined']:,} of "
                 f"{s['rows_total']:,} rows were quarantined (not published). Correct them and send a new version."]
    elif kind == "refused":
        title = f"{s['file_name']}: refused at intake"
        lines = [f"Your file {s['file_name']} ({what or 'no slice named'}) could not be received, so it was not checked:"]
    else:
        title = f"{sid}: rejected"
        lines = [f"Your {what} file {s['file_name']} was rejected; nothing of it was published. Why:"]
    if kind != "quarantine":
        lines += [f"  - {r}" for r in reasons[:3]]
        if len(reasons) > 3:
            lines.append(f"  ({len(reasons) - 3} more reason(s) in the report)")
    if report:
        lines.append(f"Report: {report}")
    return [Event(kind, f"{kind}:{sid}", s["member_id"], at, sid, payload, title, tuple(lines))]


def _next_period(label: str) -> str:
    p = parse_period(label)
    if p.grain == "year":
        return str(p.start.year + 1)
    year, q = p.start.year, (p.start.month - 1) // 3 + 1
    return f"{year + 1}Q1" if q == 4 else f"{year}Q{q + 1}"


def _due_events(settings: Settings, members: list[str], subs: list[dict], today: dt.date,
                due_days_ahead: int) -> list[Event]:
    """``due_soon`` and ``overdue`` of every slice owed (see the module docstring): by the member's
    reporting calendar and the operators' declarations (``pipelines.calendars``); a member
    without a calendar owes every period from the first that a member without one sent."""
    from pipelines.calendars import Obligations
    from pipelines.contracts import datasets, load_contract

    received = ("received", "held", "accepted", "superseded", "failed")
    have = {(s["member_id"], s["dataset"], s["period"]) for s in subs if s["status"] in received}
    horizon = today + dt.timedelta(days=due_days_ahead)
    owed = Obligations.of(settings)
    events = []
    for dataset in datasets(settings.schemas_dir):
        contract = load_contract(dataset, None, settings.schemas_dir)
        sent = [s for s in subs if s["dataset"] == dataset and s["status"] != "refused"]
        starts = {m: _first_period([s["period"] for s in sent if not owed.has_calendar(s["member_id"], dataset)])
                  for m in members if not owed.has_calendar(m, dataset)}
        first = _first_period([s["period"] for s in sent])
        if first is None:
            continue   # no period of this dataset is known yet
        period = first
        while True:
            p = parse_period(period)
            if p.end + dt.timedelta(days=contract.due_days) > horizon:
                break   # an extension only moves a due date later
            for member in members:
                start = starts.get(member) or first
                if ((member, dataset, period) in have or p.start < parse_period(start).start
                        or not owed.owes(member, dataset, period)):
                    continue
                due = owed.due_date(member, dataset, period, p.end + dt.timedelta(days=contract.due_days))
                if due <= horizon:
                    kind = "due_soon" if due >= today else "overdue"
                    events.append(_due_event(kind, member, dataset, period, p.end, due, today))
            period = _next_period(period)
    return events


def _first_period(periods: list[str]) -> str | None:
    return min(periods, key=lambda p: parse_period(p).end) if periods else None


def _due_event(kind: str, member: str, dataset: str, period: str, period_end: dt.date, due: dt.date,
               today: dt.date) -> Event:
    days = (due - today).days
    key = f"{kind}:{member}:{dataset}:{period}"
    payload = {"event": kind, "event_id": key, "member_id": member, "dataset": dataset, "period": period,
               "period_end": period_end.isoformat(), "due_date": due.isoformat(),
               "days_left" if kind == "due_soon" else "days_late": abs(days)}
    if kind == "due_soon":
        when = "today" if days == 0 else f"in {days} day(s)"
        title = f"{member} {dataset} {period}: due {when} ({due.isoformat()})"
        lines = [f"Your {dataset} data for {period} is due {when}, on {due.isoformat()}, and the platform has "
                 "not received it (or only rejected versions)."]
    else:
        title = f"{member} {dataset} {period}: overdue since {due.isoformat()}"
        lines = [f"Your {dataset} data for {period} was due on {due.isoformat()} and the platform has not "
                 "received it (or only rejected versions). Please send it as soon as you can."]
    at = dt.datetime.combine(due, dt.time.max)   # a channel configured by the end of the due day hears of it
    return Event(kind, key, member, at, f"{member}:{dataset}:{period}", payload, title, tuple(lines))


# ---- sending ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attempt:
    """One notice of a run, as logged."""

    event: Event
    channel: Channel
    status: str          # sent | failed | skipped
    attempts: int
    error: str = ""

    @property
    def dedupe_key(self) -> str:
        return dedupe_key(self.event, self.channel)

    def line(self) -> str:
        why = f" - {self.error}" if self.error else ""
        return (f"{self.status}: {self.event.kind} {self.event.subject} -> {self.channel.kind} "
                f"{_shown(self.channel.kind, self.channel.target)} ({self.attempts} attempt(s)){why}")


@dataclass
class SendRun:
    attempts: list[Attempt] = field(default_factory=list)
    snapshot_id: int | None = None

    def count(self, status: str) -> int:
        return sum(a.status == status for a in self.attempts)

    def line(self) -> str:
        return (f"notices: {self.count('sent')} sent, {self.count('failed')} failed, "
                f"{self.count('skipped')} skipped")


def dedupe_key(event: Event, channel: Channel) -> str:
    """The event, the channel and its target: logged ``sent`` once, never sent again."""
    target = hashlib.sha256(channel.target.encode()).hexdigest()[:16]
    return f"{event.key}|{channel.kind}:{target}"


def channels_for(channels: list[Channel], member: str) -> list[Channel]:
    """A member's own channels, or the default's when it has none."""
    own = [c for c in channels if c.member == member]
    return own or [c for c in channels if c.member == DEFAULT_MEMBER]


def pending(settings: Settings, today: dt.date | None = None,
            history: dict[str, list[str]] | None = None) -> list[tuple[Event, Channel]]:
    """The notices to send now: each event a channel takes, since it was configured, that is not
    logged ``sent`` and has not failed ``MAX_FAILED_RUNS`` times (``history``: ``_history``'s)."""
    channels = load_channels(settings)
    if not channels:
        return []
    today = today or dt.datetime.now(dt.UTC).date()
    history = _history(settings) if history is None else history
    out = []
    for event in collect_events(settings, today):
        for channel in channels_for(channels, event.member):
            if event.kind not in channel.events or (event.at or dt.datetime.min) < channel.since_at:
                continue
            statuses = history.get(dedupe_key(event, channel), [])
            if "sent" in statuses or statuses.count("failed") >= MAX_FAILED_RUNS:
                continue
            out.append((event, channel))
    return out


def _history(settings: Settings) -> dict[str, list[str]]:
    """dedupe key -> the statuses logged for it, oldest first."""
    from pipelines import store

    if not settings.catalog_is_postgres and not Path(settings.catalog).exists():
        return {}
    with store.reader(settings) as con:
        if LOG_TABLE not in store.lake_tables(con):
            return {}
        rows = con.execute(f"SELECT dedupe_key, status FROM {LOG_TABLE} ORDER BY attempted_at").fetchall()
    out: dict[str, list[str]] = {}
    for key, status in rows:
        out.setdefault(key, []).append(status)
    return out


def send_pending(settings: Settings, today: dt.date | None = None, *,
                 progress: Callable[[str], None] | None = None) -> SendRun:
    """Send every pending notice and log each attempt in the lake (one commit per run).

    A channel's failure is logged, never raised; once an endpoint (a webhook URL, the SMTP
    server) has failed, its other notices wait for the next run instead of each waiting out the
    timeouts. One run at a time on this machine. Only the settings, a damaged channels file or
    the lake itself can raise.
    """
    from pipelines import store

    say = progress or (lambda _: None)
    run = SendRun()
    with store.file_lock(settings, "notices"):
        if not load_channels(settings):
            return run
        history = _history(settings)
        todo = pending(settings, today, history)
        if not todo:
            return run
        notice = NoticeSettings.of(settings)
        down: dict[str, str] = {}    # endpoint -> its error in this run
        for event, channel in todo:
            endpoint = channel.target if channel.kind == "webhook" else "smtp"
            if endpoint in down:
                continue   # it failed on an earlier notice of this run: this one waits for the next run
            attempt = _send(settings, notice, event, channel)
            if attempt.status == "failed" and not attempt.error.startswith("HTTP 4"):
                down[endpoint] = attempt.error
            last = history.get(attempt.dedupe_key, [])
            if attempt.status == "skipped" and last and last[-1] == "skipped":
                continue   # logged once already: tried again quietly until it can be sent
            run.attempts.append(attempt)
            say(attempt.line())
        if run.attempts:
            run.snapshot_id = _log(settings, run.attempts)
    return run


def _send(settings: Settings, notice: NoticeSettings, event: Event, channel: Channel) -> Attempt:
    if channel.kind == "email" and not notice.smtp_host:
        return Attempt(event, channel, "skipped", 0, "no SMTP server: set INSURSHARE_SMTP_HOST")
    send = _post_webhook if channel.kind == "webhook" else _send_email
    error, tries, pause = "", 0, 0.5
    for tries in range(1, notice.attempts + 1):
        try:
            send(settings, notice, event, channel)
            return Attempt(event, channel, "sent", tries)
        except _Permanent as exc:
            error = str(exc)
            break
        except Exception as exc:   # a channel's failure is logged, whatever it is
            error = f"{type(exc).__name__}: {exc}"
        if tries < notice.attempts:
            time.sleep(pause)
            pause *= 2
    return Attempt(event, channel, "failed", tries, error[:500])


class _Permanent(Exception):
    """A failure that trying again in this run cannot mend (a 4xx answer, a refused recipient)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):   # noqa: ANN001
        raise _Permanent(f"HTTP {code}: redirected to {_shown('webhook', newurl)}; configure that URL instead")


def webhook_body(event: Event) -> bytes:
    """The JSON body a webhook receives (the bytes that are signed)."""
    return json.dumps({**event.payload, "title": event.title, "text": "\n".join(event.lines)},
                      ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")


def _post_webhook(settings: Settings, notice: NoticeSettings, event: Event, channel: Channel) -> None:
    body = webhook_body(event)
    request = urllib.request.Request(channel.target, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "insurshare-notices",
        "X-InsurShare-Event": event.kind,
        "X-InsurShare-Delivery": hashlib.sha256(dedupe_key(event, channel).encode()).hexdigest()[:32],
        "X-InsurShare-Signature": sign(member_secret(settings, channel.member), body)})
    opener = urllib.request.build_opener(_NoRedirects())
    try:
        with opener.open(request, timeout=notice.timeout) as answer:
            answer.read(65536)
    except urllib.error.HTTPError as exc:
        message = f"HTTP {exc.code} {exc.reason}"
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise _Permanent(message) from None
        raise ConnectionError(message) from None


def email_message(notice: NoticeSettings, event: Event, channel: Channel) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = notice.smtp_from
    msg["To"] = channel.target
    msg["Subject"] = f"[InsurShare] {event.title}"
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{hashlib.sha256(dedupe_key(event, channel).encode()).hexdigest()[:32]}@insurshare>"
    msg["X-InsurShare-Event"] = event.kind
    msg.set_content("\n".join([*event.lines, "", f"Event: {event.key}",
                               "This notice was sent by the InsurShare platform; its operator configures it."]))
    return msg


def _send_email(settings: Settings, notice: NoticeSettings, event: Event, channel: Channel) -> None:
    msg = email_message(notice, event, channel)
    context = ssl.create_default_context()
    if notice.smtp_tls == "ssl":
        server = smtplib.SMTP_SSL(notice.smtp_host, notice.smtp_port, timeout=notice.timeout, context=context)
    else:
        server = smtplib.SMTP(notice.smtp_host, notice.smtp_port, timeout=notice.timeout)
    with server:
        if notice.smtp_tls == "starttls":
            server.starttls(context=context)
        if notice.smtp_user:
            if not notice.smtp_password_file:
                raise _Permanent("INSURSHARE_SMTP_USER is set but INSURSHARE_SMTP_PASSWORD_FILE is not")
            server.login(notice.smtp_user, notice.smtp_password_file.read_text(encoding="utf-8").strip())
        try:
            server.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise _Permanent(f"recipient refused: {exc.recipients}") from None


def _log(settings: Settings, attempts: list[Attempt]) -> int:
    from pipelines import store
    from pipelines.lake import Lake

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [[now, a.event.member, a.event.kind, a.event.subject, a.channel.kind,
             _shown(a.channel.kind, a.channel.target), a.status, a.attempts, a.error or None, a.dedupe_key,
             a.event.key] for a in attempts]

    def work(con) -> None:
        if LOG_TABLE not in store.lake_tables(con):
            con.execute(f"CREATE TABLE {store.LAKE}.{LOG_TABLE} ({LOG_COLUMNS})")
        con.executemany(f"INSERT INTO {store.LAKE}.{LOG_TABLE} VALUES ({', '.join('?' * 11)})", rows)

    sent = sum(a.status == "sent" for a in attempts)
    with Lake(settings, read_only=False) as lake:
        _, snapshot = lake.write(work, f"notices: {sent} sent, {len(attempts) - sent} not")
    return snapshot


def read_log(settings: Settings, member: str | None = None, limit: int = 50) -> list[dict]:
    """The latest ``limit`` rows of the notice log (of ``member``), newest first."""
    from pipelines import store

    if not settings.catalog_is_postgres and not Path(settings.catalog).exists():
        return []
    with store.reader(settings) as con:
        if LOG_TABLE not in store.lake_tables(con):
            return []
        cur = con.execute(f"SELECT * FROM {LOG_TABLE} WHERE ? IS NULL OR member_id = ? "
                          "ORDER BY attempted_at DESC, dedupe_key LIMIT ?", [member, member, limit])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def safe_send(settings: Settings, today: dt.date | None = None,
              progress: Callable[[str], None] | None = None) -> SendRun | None:
    """``send_pending`` for the end of an ingestion run: anything that goes wrong is reported
    through ``progress`` and swallowed, so notices never fail ingestion (the next run tries again)."""
    say = progress or (lambda _: None)
    try:
        run = send_pending(settings, today, progress=say)
    except Exception as exc:
        say(f"notices not sent this time: {type(exc).__name__}: {str(exc)[:300]}")
        return None
    say(run.line())
    return run
