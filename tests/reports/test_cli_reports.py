"""``insurshare report``: thin over ``build_reports``; prints where the dashboard is."""

from __future__ import annotations

from click.testing import CliRunner

from pipelines.cli import main
from tests.reports.conftest import REPORT_DAY


def _report(scenario, *args: str):
    return CliRunner().invoke(main, ["--home", str(scenario.settings.home), "report", "--on", str(REPORT_DAY),
                                     *args])


def test_cli_report_prints_the_dashboard_path_last(scenario):
    result = _report(scenario)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1] == f"dashboard: {scenario.built.dashboard}"
    assert lines[0] == (f"11 submission report(s), 3 scorecard(s) from lake snapshot {scenario.built.snapshot_id}; "
                        f"0 file(s) written under {scenario.settings.reports_dir}")


def test_cli_report_for_one_member_prints_its_scorecard(scenario):
    result = _report(scenario, "--member", "M003")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"3 submission report(s), 1 scorecard(s) from lake snapshot {scenario.built.snapshot_id}; "
        f"0 file(s) written under {scenario.settings.reports_dir}",
        f"scorecard: {scenario.built.scorecards['M003']}"]


def test_cli_report_refuses_an_unknown_member_and_a_bad_band(scenario):
    unknown = _report(scenario, "--member", "M009")
    assert unknown.exit_code == 1
    assert "Member 'M009' is not registered. List members with `insurshare members list`." in unknown.output
    band = _report(scenario, "--band", "0")
    assert band.exit_code == 2 and "must be a share such as 0.25" in band.output
