"""The earliest accepted period is a setting (INSURSHARE_EARLIEST_PERIOD), not a year in the code."""

from __future__ import annotations

import pytest

from pipelines.errors import ConfigError, SubmissionError
from tests.conftest import policy_row, submit, write_csv


def test_earliest_period_history_from_the_1990s_is_received(settings, tmp_path):
    path = write_csv(tmp_path / "policy_1995Q1.csv", [policy_row(accounting_date="1995-01-10")])
    got = submit(settings, path, period="1995Q1")
    assert got.submission.period == "1995Q1" and got.submission.status == "received"


def test_earliest_period_before_the_setting_is_refused_naming_it(settings, tmp_path):
    path = write_csv(tmp_path / "policy_1995Q1.csv", [policy_row()])
    later = settings.with_(env={"INSURSHARE_EARLIEST_PERIOD": "2001Q1"})
    with pytest.raises(SubmissionError, match="before 2001Q1, the earliest period") as err:
        submit(later, path, period="1995Q1")
    assert "INSURSHARE_EARLIEST_PERIOD" in err.value.hint


def test_earliest_period_setting_that_is_not_a_period_is_a_config_error(settings):
    with pytest.raises(ConfigError, match="INSURSHARE_EARLIEST_PERIOD='1980-01'"):
        _ = settings.with_(env={"INSURSHARE_EARLIEST_PERIOD": "1980-01"}).earliest_period
