"""``members calendar``, ``declare`` and ``declarations list``: recorded, audited, shown; mistakes
reported as one clear line with nothing recorded."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipelines import store
from pipelines.cli import main


@pytest.fixture
def cli(settings):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, ["--home", str(settings.home), *args], catch_exceptions=False)
    return invoke


def _audit(settings, kind: str) -> list[dict]:
    con = store.connect(settings)
    try:
        return [json.loads(d) for (d,) in con.execute(
            "SELECT details FROM lake.audit_log WHERE kind = ? ORDER BY seq", [kind]).fetchall()]
    finally:
        con.close()


def test_cli_calendar_set_and_show(cli, settings):
    assert cli("members", "calendar", "set", "M001", "--dataset", "claim", "--frequency", "annual",
               "--from", "2016Q4").output == "M001 reports claim annual from 2016Q4\n"
    cli("members", "calendar", "set", "M001", "--dataset", "claim", "--frequency", "quarterly", "--from", "2025Q1")
    assert cli("members", "calendar", "show", "M001").output.splitlines() == [
        "M001  claim    annual    from 2016Q4", "M001  claim    quarterly from 2025Q1"]
    assert [a["frequency"] for a in _audit(settings, "calendar")] == ["annual", "quarterly"]


def test_cli_declare_extension_and_list(cli, settings):
    got = cli("declare", "extension", "--member", "M002", "--dataset", "claim", "--period", "2025Q4",
              "--until", "2026-03-31", "--reason", "systems migration")
    assert got.exit_code == 0 and "due 2026-03-31" in got.output
    listed = cli("declarations", "list").output
    assert "extension  M002 claim 2025Q4 until 2026-03-31  systems migration" in listed
    assert _audit(settings, "declaration")[0]["until"] == "2026-03-31"


@pytest.mark.parametrize("args, message", [
    (["declare", "nil-return", "--member", "M042", "--dataset", "policy", "--period", "2025Q1", "--reason", "x"],
     "Member 'M042' is not registered"),
    (["declare", "exemption", "--member", "M001", "--dataset", "policy", "--period", "2025", "--reason", "x"],
     "Period '2025' is not a quarter"),
    (["declare", "nil-return", "--member", "M001", "--dataset", "policy", "--period", "2025Q1", "--reason", " "],
     "A declaration needs a reason"),
    (["members", "calendar", "set", "M001", "--dataset", "claim", "--frequency", "annual", "--from", "1970Q4"],
     "From period '1970Q4' is before 1980Q1"),
], ids=["unknown member", "year for a quarterly dataset", "no reason", "before the earliest period"])
def test_cli_declaration_mistakes_are_one_line_and_record_nothing(cli, settings, args, message):
    got = cli(*args)
    assert got.exit_code == 1 and message in got.output
    assert cli("declarations", "list").output == "no declarations\n"
