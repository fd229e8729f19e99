"""What a member owes slot by slot (``calendars.Obligations``): calendars and declarations."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.calendars import CalendarEntry, Obligations

HISTORY = [CalendarEntry("M001", "claim", "annual", "2016Q4"),
           CalendarEntry("M001", "claim", "quarterly", "2025Q1", "2025Q4")]
DECLARED = [{"member_id": "M002", "dataset": "claim", "period": "2025Q2", "kind": "nil-return", "until": None},
            {"member_id": "M002", "dataset": "claim", "period": "2025Q3", "kind": "exemption", "until": None},
            {"member_id": "M002", "dataset": "claim", "period": "2025Q4", "kind": "extension",
             "until": dt.date(2026, 3, 31)}]


@pytest.mark.parametrize(("member", "period", "owed"), [
    ("M001", "2016Q3", False),   # before the calendar starts
    ("M001", "2017Q2", False),   # annual: Q1-Q3 not owed
    ("M001", "2017Q4", True),
    ("M001", "2025Q2", True),    # quarterly from 2025Q1
    ("M001", "2026Q1", False),   # after --until
    ("M002", "2025Q1", True),    # no calendar: owed
    ("M002", "2025Q2", False),   # nil return: settled
    ("M002", "2025Q3", False),   # exempted
    ("M002", "2025Q4", True),    # extended, still owed
], ids=lambda v: str(v))
def test_obligations_owes(member, period, owed):
    assert Obligations(HISTORY, DECLARED).owes(member, "claim", period) is owed


def test_obligations_extension_moves_the_due_date_later_only():
    rules = Obligations(HISTORY, DECLARED)
    assert rules.due_date("M002", "claim", "2025Q4", dt.date(2026, 2, 14)) == dt.date(2026, 3, 31)
    assert rules.due_date("M002", "claim", "2025Q4", dt.date(2026, 4, 30)) == dt.date(2026, 4, 30)
    assert rules.due_date("M001", "claim", "2025Q4", dt.date(2026, 2, 14)) == dt.date(2026, 2, 14)
