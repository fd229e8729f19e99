"""Ordering an ingestion without ids: `pending` and `insurshare ingest` take only the members,
datasets and periods asked for (a year takes its quarters)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.errors import SubmissionError
from pipelines.ingest import Selection, pending
from tests.conftest import policy_row, submit, write_csv


@pytest.fixture
def waiting(settings, tmp_path) -> dict[str, str]:
    """Four premium files received, none processed: {label: submission id}."""
    ids = {}
    for member, period in (("M001", "2023Q4"), ("M001", "2024Q1"), ("M002", "2024Q1"), ("M003", "2023Q1")):
        path = write_csv(tmp_path / f"{member}_{period}.csv", [policy_row(transaction_id=f"T{member}{period}")])
        ids[f"{member} {period}"] = submit(settings, path, member=member, period=period).submission.submission_id
    return ids


@pytest.mark.parametrize("select, expected", [
    (Selection(members=("M001",)), ["M001 2023Q4", "M001 2024Q1"]),
    (Selection(periods=("2024q1",)), ["M001 2024Q1", "M002 2024Q1"]),
    (Selection(periods=("2023",)), ["M001 2023Q4", "M003 2023Q1"]),
    (Selection(members=("M001", "M003"), periods=("2023",)), ["M001 2023Q4", "M003 2023Q1"]),
    (Selection(datasets=("claim",)), []),
    (Selection(), ["M001 2023Q4", "M001 2024Q1", "M002 2024Q1", "M003 2023Q1"]),
], ids=["member", "quarter", "year takes its quarters", "members and year", "other dataset", "everything"])
def test_pending_select_takes_only_what_is_asked(settings, waiting, select, expected):
    assert pending(settings, select=select) == [waiting[label] for label in expected]


def test_pending_select_refuses_a_period_typo():
    with pytest.raises(SubmissionError, match="Period '2024Q5' is not a quarter"):
        Selection(periods=("2024Q5",))


def test_cli_ingest_by_member_processes_only_that_member(settings, waiting):
    runner = CliRunner(env={"INSURSHARE_GX_MAX_ROWS": "0"})
    result = runner.invoke(main, ["--home", str(settings.home), "ingest", "--member", "M002"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == [
        f"{waiting['M002 2024Q1']}: accepted (1 rows)",
        "processed 1 submission(s); 3 other pending submission(s) left for a later run"]
    assert pending(settings) == [waiting[k] for k in ("M001 2023Q4", "M001 2024Q1", "M003 2023Q1")]
    both = runner.invoke(main, ["--home", str(settings.home), "ingest", "--member", "M001", waiting["M003 2023Q1"]])
    assert both.exit_code == 2 and "not both" in both.output
