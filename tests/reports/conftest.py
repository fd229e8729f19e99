"""A small lake whose every slot is known: on time, late, missing, rejected, superseded.

Three members report premium data for 2024Q1 and 2024Q2 and M001 claims for 2024Q1; reports
are judged on 2024-09-01, after both due dates (2024-05-15 and 2024-08-14):

| slot              | what happens                                              | status   |
|-------------------|-----------------------------------------------------------|----------|
| M001 policy 2024Q1| 52 rows, 2 quarantined, 1 warned, GX ran, on time           | accepted |
| M001 policy 2024Q2| v1 on time, v2 (30 rows) supersedes it                     | accepted |
| M001 claim 2024Q1 | 26 claims, 1 orphan quarantined                            | accepted |
| M002 policy 2024Q1| received 2024-06-30, 46 days after the due date           | late     |
| M002 policy 2024Q2| every row has an unknown region                           | rejected |
| M003 policy 2024Q1| v1 control total wrong (rejected), v2 accepted on time    | accepted |
| M003 policy 2024Q2| nothing                                                   | missing  |
| M001 policy 2024Q3| 10 rows, received early                                   | accepted |
| M002, M003 policy 2024Q3 | nothing, not due until 2024-11-14                  | open     |
| M002 claim 2024Q1 | a binary file named .csv, rejected before rows are read   | rejected |
| M003 claim 2024Q1 | received, not processed                                   | pending  |

The lake is built once per test session (ingestion is the slow part) and the reports once
from it; tests only read them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines import store
from pipelines.config import Settings
from pipelines.intake import Manifest, receive
from pipelines.keys import create_keys
from pipelines.members import add_members
from tests.conftest import claim_row, policy_row, write_csv

REPORT_DAY = dt.date(2024, 9, 1)
FORMULA = '=HYPERLINK("http://evil.example","x")'


@dataclass(frozen=True)
class Scenario:
    settings: Settings
    ids: dict[str, str]           # name in the table above -> submission id
    built: object                 # pipelines.reports.Built
    files: Path                   # the files sent, as the members wrote them

    def json(self, path: Path) -> dict:
        return json.loads(path.read_text(encoding="utf-8"))

    def submission(self, name: str) -> dict:
        return self.json(self.built.submissions[self.ids[name]].with_name("report.json"))

    def scorecard(self, member: str) -> dict:
        return self.json(self.built.scorecards[member].with_name("scorecard.json"))

    def dashboard(self) -> dict:
        return self.json(self.built.dashboard.with_name("dashboard.json"))

    def lake(self):
        return store.connect(self.settings, read_only=True)


def _policies(n: int, start: int = 0, **overrides) -> list[dict]:
    return [policy_row(transaction_id=f"T{i:04d}", policy_no=f"P{i:04d}", **overrides) for i in range(start, start + n)]


def _q2(rows: list[dict]) -> list[dict]:
    for r in rows:
        r.update(accounting_date="2024-05-10", effective_date="2024-05-10", expiry_date="2025-05-10")
    return rows


def _q3(rows: list[dict]) -> list[dict]:
    for r in rows:
        r.update(accounting_date="2024-08-10", effective_date="2024-08-10", expiry_date="2025-08-10")
    return rows


def receive_at(settings: Settings, path: Path, when: str, member: str, dataset: str, period: str,
               **manifest: object) -> str:
    """Receive ``path`` as having arrived at ``when`` (UTC); return the submission id."""
    at = dt.datetime.fromisoformat(when)
    got = receive(settings, path, Manifest.build(member_id=member, dataset=dataset, period=period, **manifest),
                  received_at=at, today=REPORT_DAY)
    sid = got.submission.submission_id
    return sid


def _ingest(settings: Settings, sid: str, gx: bool = False) -> None:
    from pipelines.ingest import process_submission

    process_submission(settings.with_(gx_max_rows=1_000_000, gx_at_ingest=True) if gx else settings, sid)


def build_scenario(home: Path, files: Path) -> tuple[Settings, dict[str, str]]:
    settings = Settings(home=home, gx_max_rows=0)
    create_keys(settings)
    add_members(settings, {"M001": "Member One", "M002": "Member Two", "M003": "Member Three"})
    ids: dict[str, str] = {}

    def send(name: str, rows: list[dict] | bytes, when: str, member: str, dataset: str = "policy",
             period: str = "2024Q1", gx: bool = False, process: bool = True, **manifest: object) -> None:
        path = files / f"{name}.csv"
        if isinstance(rows, bytes):
            path.write_bytes(rows)
        else:
            write_csv(path, rows)
        ids[name] = receive_at(settings, path, when, member, dataset, period, **manifest)
        if process:
            _ingest(settings, ids[name], gx=gx)

    q1 = _policies(50)
    q1 += [policy_row(transaction_id="TBAD1", policy_no="PBAD1", region_code="999999"),
           policy_row(transaction_id="TBAD2", policy_no="PBAD2", product_name=FORMULA, written_premium="-5.00",
                      transaction_type="EN"),
           ]
    q1[3]["phone"] = "1381234567X"                            # a warning: published, flagged
    send("m1_pol_q1", q1, "2024-04-20T09:00:00", "M001", gx=True)
    send("m1_pol_q2_v1", _q2(_policies(50, start=100)), "2024-07-20T09:00:00", "M001", period="2024Q2")
    send("m1_pol_q2_v2", _q2(_policies(30, start=100, written_premium="800.00")), "2024-07-25T09:00:00", "M001",
         period="2024Q2")
    claims = [claim_row(claim_no=f"C{i:04d}", policy_no=f"P{i:04d}") for i in range(25)]
    claims.append(claim_row(claim_no="C9999", policy_no="PNOPE"))
    send("m1_clm_q1", claims, "2024-04-22T09:00:00", "M001", dataset="claim")
    send("m2_pol_q1", _policies(20), "2024-06-30T12:00:00", "M002")
    send("m2_pol_q2", _q2(_policies(20, region_code="999999")), "2024-07-30T12:00:00", "M002", period="2024Q2")
    send("m3_pol_q1_v1", _policies(20), "2024-05-01T08:00:00", "M003",
         control_totals={"written_premium": "1.00"})
    send("m3_pol_q1_v2", _policies(20, written_premium="1300.00"), "2024-05-10T08:00:00", "M003")
    send("m1_pol_q3", _q3(_policies(10, start=200)), "2024-08-30T10:00:00", "M001", period="2024Q3")
    send("m2_clm_q1", bytes(range(256)) * 4, "2024-05-02T10:00:00", "M002", dataset="claim")
    send("m3_clm_q1", [claim_row(claim_no="C0001", policy_no="P0001")], "2024-05-03T10:00:00", "M003",
         dataset="claim", process=False)
    return settings, ids


@pytest.fixture(scope="session")
def scenario(tmp_path_factory) -> Scenario:
    from pipelines.reports import ReportOptions, build_reports

    tmp = tmp_path_factory.mktemp("reports")
    files = tmp / "files"
    files.mkdir()
    settings, ids = build_scenario(tmp / "home", files)
    built = build_reports(settings, ReportOptions(today=REPORT_DAY))
    return Scenario(settings=settings, ids=ids, built=built, files=files)


@pytest.fixture(scope="session")
def hostile(tmp_path_factory):
    """Hostile submissions through ingestion, marts, products and reports (see ``hostile.py``)."""
    from tests.reports.hostile import make_hostile

    return make_hostile(tmp_path_factory.mktemp("hostile"))
