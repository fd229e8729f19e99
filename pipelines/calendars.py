"""Reporting calendars and operator declarations: what each member owes, as data in the lake.

A member's **calendar** (table ``calendars``) says, per dataset, from which period it reports
at which frequency, and optionally until when. Entries of one member and dataset follow one
another: an entry is in force from its ``from_period`` to its ``until_period`` or to the period
before the next entry's ``from_period``, whichever comes first. ``quarterly`` owes every
quarter; ``annual`` owes the year's last quarter only (a year-end snapshot, as a history of
year-end claim files is). A member with no calendar entry for a dataset owes every period of the
dataset's window from the first period a member without a calendar reported (the platform's
default before calendars existed).

An operator's **declaration** (table ``declarations``) changes one slot (member x dataset x
period): a ``nil-return`` says the member had no business in it (the slot is complete with zero
rows: no penalty, and it adds zeros to the marts), an ``exemption`` removes the obligation, an
``extension`` moves the due date to ``until``. Each carries a reason and is audited.

``pipelines.reports.scoring`` and ``pipelines.marts`` read both tables in SQL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from pipelines import audit, store
from pipelines.config import Settings
from pipelines.contracts import datasets, load_contract
from pipelines.core.domain import parse_period
from pipelines.errors import NotFound, SubmissionError
from pipelines.lake import Lake

FREQUENCIES = ("quarterly", "annual")
DECLARATIONS = {
    "nil-return": "no business in this slot: complete with zero rows",
    "exemption": "the member does not owe this slot",
    "extension": "the slot is due later",
}


@dataclass(frozen=True)
class CalendarEntry:
    """From ``from_period`` (until ``until_period``, if given) the member reports ``dataset`` at ``frequency``."""

    member_id: str
    dataset: str
    frequency: str
    from_period: str
    until_period: str | None = None


@dataclass(frozen=True)
class Declaration:
    """An operator's declaration about one slot (see the module docstring)."""

    kind: str
    member_id: str
    dataset: str
    period: str
    reason: str
    until: dt.date | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _check_member(con, member_id: str) -> None:
    if not con.execute(f"SELECT 1 FROM {store.LAKE}.members WHERE member_id = ?", [member_id]).fetchone():
        raise NotFound(f"Member {member_id!r} is not registered.",
                       hint="Register it first (`insurshare members add`); list members with `insurshare members list`.")


def _quarter(settings: Settings, dataset: str, period: str, what: str) -> str:
    """``period`` as its label, checked against the dataset's grain and the earliest period."""
    if dataset not in datasets(settings.schemas_dir):
        raise SubmissionError(f"Dataset {dataset!r} is not one of {', '.join(datasets(settings.schemas_dir))}.")
    p = parse_period(period)
    grain = load_contract(dataset, None, settings.schemas_dir).grain
    if p.grain != grain:
        raise SubmissionError(f"{what} {period!r} is not a {grain}; {dataset} data is reported per {grain}.",
                              hint="Name a quarter like 2015Q4." if grain == "quarter" else "Name a year like 2015.")
    if p.start < settings.earliest_period.start:
        raise SubmissionError(f"{what} {period!r} is before {settings.earliest_period.label}, the earliest period "
                              "the platform accepts.", hint="Lower INSURSHARE_EARLIEST_PERIOD for older history.")
    return p.label


def set_calendar(settings: Settings, entry: CalendarEntry) -> CalendarEntry:
    """Record ``entry`` (replacing the member's entry for the dataset from the same period), audited."""
    if entry.frequency not in FREQUENCIES:
        raise SubmissionError(f"Frequency {entry.frequency!r} is not one of {', '.join(FREQUENCIES)}.")
    start = _quarter(settings, entry.dataset, entry.from_period, "From period")
    until = _quarter(settings, entry.dataset, entry.until_period, "Until period") if entry.until_period else None
    if until and parse_period(until).start < parse_period(start).start:
        raise SubmissionError(f"Until period {until} is before the from period {start}.")
    entry = CalendarEntry(entry.member_id, entry.dataset, entry.frequency, start, until)

    def work(c):
        _check_member(c, entry.member_id)
        c.execute(f"DELETE FROM {store.LAKE}.calendars WHERE member_id = ? AND dataset = ? AND from_period = ?",
                  [entry.member_id, entry.dataset, entry.from_period])
        c.execute(f"INSERT INTO {store.LAKE}.calendars VALUES (?, ?, ?, ?, ?, ?)",
                  [entry.member_id, entry.dataset, entry.frequency, entry.from_period, entry.until_period, _now()])
        audit.append(c, "calendar", entry.member_id,
                     {"dataset": entry.dataset, "frequency": entry.frequency, "from_period": entry.from_period,
                      "until_period": entry.until_period})

    _write(settings, work, f"calendar {entry.member_id} {entry.dataset} from {entry.from_period}")
    return entry


def show_calendar(settings: Settings, member_id: str | None = None) -> list[CalendarEntry]:
    """The calendar entries of ``member_id`` (of every member when None), in force order."""
    return [CalendarEntry(**r) for r in _read(settings, "calendars", f"""
        SELECT member_id, dataset, frequency, from_period, until_period FROM {store.LAKE}.calendars
        WHERE ? IS NULL OR member_id = ? ORDER BY member_id, dataset, from_period""", [member_id, member_id])]


def declare(settings: Settings, declaration: Declaration) -> str:
    """Record ``declaration`` with an audit entry in the same transaction; return its id."""
    d = declaration
    if d.kind not in DECLARATIONS:
        raise SubmissionError(f"Declaration {d.kind!r} is not one of {', '.join(DECLARATIONS)}.")
    if not d.reason.strip():
        raise SubmissionError("A declaration needs a reason.", hint="Say why with --reason, e.g. 'line closed in 2019'.")
    if (d.kind == "extension") != (d.until is not None):
        raise SubmissionError("An extension needs --until (the new due date); other declarations take none."
                              if d.kind == "extension" else f"A {d.kind} takes no --until; only an extension does.")
    period = _quarter(settings, d.dataset, d.period, "Period")
    declaration_id = f"D-{uuid.uuid4().hex[:12]}"

    def work(c):
        _check_member(c, d.member_id)
        c.execute(f"INSERT INTO {store.LAKE}.declarations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  [declaration_id, d.kind, d.member_id, d.dataset, period, d.reason.strip(), d.until, _now()])
        audit.append(c, "declaration", d.member_id,
                     {"declaration_id": declaration_id, "kind": d.kind, "dataset": d.dataset, "period": period,
                      "reason": d.reason.strip(), "until": d.until.isoformat() if d.until else None})

    _write(settings, work, f"declare {d.kind} {d.member_id} {d.dataset} {period}")
    return declaration_id


def list_declarations(settings: Settings, member_id: str | None = None) -> list[dict]:
    """Every declaration (of ``member_id`` when given), oldest first."""
    return _read(settings, "declarations", f"""
        SELECT declaration_id, kind, member_id, dataset, period, reason, until, declared_at
        FROM {store.LAKE}.declarations WHERE ? IS NULL OR member_id = ?
        ORDER BY declared_at, declaration_id""", [member_id, member_id])


def _write(settings: Settings, work, message: str) -> None:
    """``work(con)`` in one lake transaction (the row and its audit entry commit together)."""
    with Lake(settings, read_only=False) as lake:
        lake.ensure()
        lake.write(work, message)


def _read(settings: Settings, table: str, sql: str, params: list) -> list[dict]:
    """The rows of ``sql`` as dicts; none while the lake has no ``table`` yet."""
    with Lake(settings) as lake:
        if table not in store.lake_tables(lake.con):
            return []
        cur = lake.execute(sql, params)
        names = [x[0] for x in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


class Obligations:
    """The calendars' and declarations' word on one slot, in Python, for callers that walk slots
    one by one (the notices); ``pipelines.reports.scoring`` applies the same rules in SQL."""

    def __init__(self, entries: list[CalendarEntry], declared: list[dict]) -> None:
        self._entries: dict[tuple[str, str], list[CalendarEntry]] = {}
        for e in sorted(entries, key=lambda e: parse_period(e.from_period).start):
            self._entries.setdefault((e.member_id, e.dataset), []).append(e)
        self._declared: dict[tuple[str, str, str], list[dict]] = {}
        for d in declared:
            self._declared.setdefault((d["member_id"], d["dataset"], d["period"]), []).append(d)

    @classmethod
    def of(cls, settings: Settings) -> Obligations:
        return cls(show_calendar(settings), list_declarations(settings))

    def has_calendar(self, member_id: str, dataset: str) -> bool:
        return (member_id, dataset) in self._entries

    def owes(self, member_id: str, dataset: str, period: str) -> bool:
        """Whether the member's calendar owes the slot and no declaration settled it (a nil
        return or an exemption); a member without a calendar owes it."""
        kinds = {d["kind"] for d in self._declared.get((member_id, dataset, period), [])}
        if kinds & {"nil-return", "exemption"}:
            return False
        entries = self._entries.get((member_id, dataset))
        if entries is None:
            return True
        p = parse_period(period)
        in_force = [e for e in entries if parse_period(e.from_period).start <= p.start]
        if not in_force:
            return False
        e = in_force[-1]
        if e.until_period and p.start > parse_period(e.until_period).start:
            return False
        return e.frequency == "quarterly" or p.grain == "year" or p.end.month == 12

    def due_date(self, member_id: str, dataset: str, period: str, due: dt.date) -> dt.date:
        """``due``, or a declared extension's date when later."""
        extended = [d["until"] for d in self._declared.get((member_id, dataset, period), [])
                    if d["kind"] == "extension" and d["until"]]
        return max([due, *extended])
