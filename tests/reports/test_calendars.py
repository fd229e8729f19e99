"""Reporting calendars and operator declarations, through intake, ingestion, reports and marts.

Three members; the reports are judged on 2026-03-01 (every 2025 slot is past due but the
extended one); every file arrives ten days after its period ends:

| member | calendar                                   | what it sends / what is declared                  |
|--------|--------------------------------------------|---------------------------------------------------|
| M001   | policy quarterly from 2016Q1; claim annual | 40 premium files 2016Q1-2025Q4 (one policy a      |
|        | from 2016Q4, quarterly from 2025Q1         | year), year-end claims 2016-2024, claims 2025Q1-Q4 |
| M002   | none (owes every period from 2025Q1)       | premiums and claims 2025Q1-Q3, premiums 2025Q4;   |
|        |                                            | claim 2025Q4 extended to 2026-03-31, not sent yet |
| M003   | none                                       | premiums 2025Q1, Q2, Q4; claims exempted 2025Q1-  |
|        |                                            | Q2, nil returns 2025Q3-Q4; premium 2025Q3: a nil  |
|        |                                            | return declared through the command line          |

M001's claim C<y> (accident year y) is paid 100 at age 12, 150 at 24 and 160 from 36 on, so
its annual triangle and factors are known by hand: 1.5 from 12 to 24, 16/15 from 24 to 36, 1 after.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines import store
from pipelines.bulk import BatchFile, submit_batch
from pipelines.calendars import CalendarEntry, Declaration, declare, set_calendar
from pipelines.cli import main
from pipelines.config import Settings
from pipelines.core.domain import parse_period
from pipelines.ingest import ingest_all
from pipelines.keys import create_keys
from pipelines.members import add_members
from tests.conftest import claim_row, policy_row, write_csv

DAY = dt.date(2026, 3, 1)
YEARS = range(2016, 2026)
QUARTERS = [f"{y}Q{q}" for y in YEARS for q in range(1, 5)]
PAID = {0: 100, 1: 150}   # age in years - 1 -> cumulative paid; 160 from the third year on


@dataclass(frozen=True)
class History:
    settings: Settings
    home: Path

    def reports(self) -> tuple[dict, dict[str, dict]]:
        """Build the reports as of DAY: the dashboard's facts and each member's scorecard (with
        its page's HTML as ``html``); the dashboard's HTML is the facts' ``html``."""
        from pipelines.reports import ReportOptions, build_reports

        built = build_reports(self.settings, ReportOptions(today=DAY))

        def read(page: Path, name: str) -> dict:
            return {**json.loads(page.with_name(name).read_text(encoding="utf-8")),
                    "html": page.read_text(encoding="utf-8")}
        return (read(built.dashboard, "dashboard.json"),
                {m: read(p, "scorecard.json") for m, p in built.scorecards.items()})

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        con = store.connect(self.settings, read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


def _paid(age: int) -> str:
    return f"{PAID.get(age, 160)}.00"


def _file(folder: Path, member: str, dataset: str, period: str, rows: list[dict]) -> BatchFile:
    """One file of the bulk call, with its manifest fields and the day it arrived (10 days after
    the period's end: on time)."""
    path = write_csv(folder / f"{member}_{dataset}_{period}.csv", rows)
    arrived = dt.datetime.combine(parse_period(period).end + dt.timedelta(days=10), dt.time(9))
    return BatchFile(path, path.name, fields={"member_id": member, "dataset": dataset, "period": period},
                     received_at=arrived)


def _premiums(member: str, period: str) -> list[dict]:
    """One policy per quarter; the year's first quarter holds the policy of the year's claim."""
    p = parse_period(period)
    day = p.start + dt.timedelta(days=9)
    policy = f"{member}P{p.start.year}" + ("" if p.start.month == 1 else f"Q{p.start.month}")
    return [policy_row(policy_no=policy, transaction_id=f"T{policy}", accounting_date=day, effective_date=day,
                       expiry_date=day.replace(year=day.year + 1))]


def _claims(member: str, period: str, first_year: int) -> list[dict]:
    """Every claim of ``member`` (one per accident year from ``first_year``) valued at the period's end."""
    end = parse_period(period).end
    return [claim_row(claim_no=f"{member}C{y}", policy_no=f"{member}P{y}", valuation_date=end,
                      accident_date=dt.date(y, 2, 1), report_date=dt.date(y, 2, 3), paid_to_date=_paid(end.year - y),
                      case_reserve="0.00")
            for y in range(first_year, end.year + 1) if dt.date(y, 2, 3) <= end]


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    tmp = tmp_path_factory.mktemp("calendars")
    files = tmp / "files"
    files.mkdir()
    home = tmp / "home"
    settings = Settings(home=home, gx_max_rows=0)
    create_keys(settings)
    add_members(settings, {"M001": "History Mutual", "M002": "Quarterly Life", "M003": "Nil General"})
    set_calendar(settings, CalendarEntry("M001", "policy", "quarterly", "2016Q1"))
    set_calendar(settings, CalendarEntry("M001", "claim", "annual", "2016Q4"))
    set_calendar(settings, CalendarEntry("M001", "claim", "quarterly", "2025Q1"))
    batch = []
    for period in QUARTERS:
        batch.append(_file(files, "M001", "policy", period, _premiums("M001", period)))
        if period.endswith("Q4") or period.startswith("2025"):
            batch.append(_file(files, "M001", "claim", period, _claims("M001", period, 2016)))
    for q in ("2025Q1", "2025Q2", "2025Q3", "2025Q4"):
        batch.append(_file(files, "M002", "policy", q, _premiums("M002", q)))
        if q != "2025Q4":
            batch.append(_file(files, "M002", "claim", q, _claims("M002", q, 2025)))
        if q != "2025Q3":
            batch.append(_file(files, "M003", "policy", q, _premiums("M003", q)))
    sent = submit_batch(settings, batch)               # the whole history in one bulk call
    assert sent.ok and len(sent.of("received")) == len(batch), sent.lines()
    run = ingest_all(settings)                          # premiums before claims: the contracts' order
    assert run.ok and {o.status for o in run.outcomes} == {"accepted"}, [o.line() for o in run.outcomes]
    assert len(run.outcomes) == len(batch)
    declare(settings, Declaration("extension", "M002", "claim", "2025Q4", "systems migration",
                                  until=dt.date(2026, 3, 31)))
    for q in ("2025Q1", "2025Q2"):
        declare(settings, Declaration("exemption", "M003", "claim", q, "licensed for motor from July 2025"))
    for q in ("2025Q3", "2025Q4"):
        declare(settings, Declaration("nil-return", "M003", "claim", q, "no claim reported yet"))
    return History(settings=settings, home=home)


def _slots(facts: dict, dataset: str) -> dict[tuple[str, str], str]:
    grid = next(g for g in facts["grids"] if g["dataset"] == dataset)
    return {(row["member_id"], p): c["status"] for row in grid["rows"] for p, c in zip(grid["periods"], row["cells"],
                                                                                        strict=True)}


def test_calendar_annual_history_is_not_missing(history):
    dashboard, cards = history.reports()
    claim = _slots(dashboard, "claim")
    assert claim[("M001", "2017Q2")] == "not_owed"    # annual history: Q1-Q3 not owed
    assert claim[("M001", "2017Q4")] == "accepted"
    assert claim[("M001", "2025Q2")] == "accepted"    # quarterly from 2025Q1
    assert claim[("M002", "2024Q4")] == "not_owed"    # no calendar: owed from the first period reported
    assert claim[("M002", "2025Q4")] == "open"        # extended to 2026-03-31
    assert claim[("M003", "2025Q1")] == "exempt" and claim[("M003", "2025Q3")] == "nil"
    assert dashboard["totals"]["slots"]["missing"] == 1   # M003's premium 2025Q3, not declared yet
    assert cards["M001"]["scores"]["timeliness"] == 100.0
    assert cards["M001"]["counts"]["slots_judged"] == 40 + 9 + 4
    assert cards["M002"]["scores"]["timeliness"] == 100.0


def test_calendar_declarations_shown_in_the_reports(history):
    dashboard, cards = history.reports()
    shown = {(d["member_id"], d["dataset"], d["period"], d["kind"]) for d in dashboard["declarations"]}
    assert ("M002", "claim", "2025Q4", "extension") in shown
    assert ("M003", "claim", "2025Q1", "exemption") in shown
    slot = next(s for s in cards["M002"]["slots"] if (s["dataset"], s["period"]) == ("claim", "2025Q4"))
    assert slot["due_date"] == "2026-03-31" and slot["declarations"] == ["extension: systems migration"]
    assert {d["kind"] for d in cards["M003"]["declarations"]} == {"exemption", "nil-return"}


def test_calendar_annual_triangle_and_factors(history):
    from pipelines.marts.build import build_marts

    build_marts(history.settings)
    cells = dict(((o, a), v) for o, a, v in history.query(
        "SELECT origin, age, value FROM lake.mart_triangle WHERE scope = 'member' AND member_id = 'M001' "
        "AND grain = 'year' AND line_of_business = 'MCOM' AND region_code = 'ALL' AND measure = 'paid'"))
    assert len(cells) == sum(range(1, 11))                       # ten accident years, all ages
    for (origin, age), value in cells.items():
        assert value == Decimal(_paid(age // 12 - 1)), (origin, age)
    factors = dict(history.query(
        "SELECT age_from, ldf_volume FROM lake.mart_factors WHERE scope = 'member' AND member_id = 'M001' AND grain = 'year' "
        "AND line_of_business = 'MCOM' AND region_code = 'ALL' AND measure = 'paid' AND age_from IN (12, 24, 36)"))
    assert factors[12] == pytest.approx(1.5) and factors[24] == pytest.approx(160 / 150)
    assert factors[36] == pytest.approx(1.0)
    m001 = history.query("SELECT count(*) FILTER (WHERE value IS NULL), count(*) FROM lake.mart_triangle "
                         "WHERE grain = 'quarter' AND scope = 'member' AND member_id = 'M001'")[0]
    assert m001[0] == 0 and m001[1] > 0   # annual history makes no quarter cell NULL
    nulls = set(history.query("SELECT DISTINCT scope, coalesce(member_id, '-'), valuation_date FROM lake.mart_triangle "
                              "WHERE grain = 'quarter' AND value IS NULL"))
    # the only hole: M002's claims at 2025Q4, extended and not sent yet (the marts cannot know them)
    assert nulls <= {("member", "M002", dt.date(2025, 12, 31)), ("industry", "-", dt.date(2025, 12, 31))}
    first = history.query("SELECT min(valuation_date) FROM lake.mart_triangle WHERE grain = 'quarter' "
                          "AND scope = 'member' AND member_id = 'M001'")[0][0]
    assert first == dt.date(2024, 12, 31)   # the quarter grain starts where quarterly reporting does


def test_calendar_nil_return_declared_shown_no_penalty_audited(history):
    before, cards_before = history.reports()
    assert _slots(before, "policy")[("M003", "2025Q3")] == "missing"
    assert cards_before["M003"]["scores"]["timeliness"] < 100
    result = CliRunner().invoke(main, [
        "--home", str(history.home), "declare", "nil-return", "--member", "M003", "--dataset", "policy",
        "--period", "2025Q3", "--reason", "no new business in Q3"])
    assert result.exit_code == 0, result.output
    assert "declared nil-return" in result.output
    after, cards = history.reports()
    assert _slots(after, "policy")[("M003", "2025Q3")] == "nil"
    slot = next(s for s in cards["M003"]["slots"] if (s["dataset"], s["period"]) == ("policy", "2025Q3"))
    assert slot["status"] == "nil" and slot["declarations"] == ["nil-return: no new business in Q3"]
    assert cards["M003"]["scores"]["timeliness"] == 100.0
    assert cards["M003"]["scores"]["completeness"] == cards_before["M003"]["scores"]["completeness"]
    assert after["totals"]["slots"]["missing"] == 0 and after["totals"]["slots"]["nil"] == 3
    assert "no new business in Q3" in after["html"] and "no new business in Q3" in cards["M003"]["html"]
    assert "no new business in Q3" not in before["html"]
    audited = history.query("SELECT details FROM lake.audit_log WHERE kind = 'declaration' AND subject = 'M003'")
    details = [json.loads(d) for (d,) in audited]
    assert {"kind": "nil-return", "dataset": "policy", "period": "2025Q3",
            "reason": "no new business in Q3"}.items() <= next(d for d in details if d["dataset"] == "policy").items()
