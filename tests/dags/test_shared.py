"""What the DAG files share (``pipelines.airflow.dags``): the retry-aware task wrapper."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from pipelines.airflow.dags import LAKE, MARTS, PRODUCTS, dag_arguments, retry_aware
from pipelines.errors import LakeBusy, SubmissionError


def _raising(exc: BaseException):
    @retry_aware
    def body(submission_id: str) -> dict:
        """A task body."""
        raise exc

    return body


def test_the_wrapper_keeps_the_bodys_name_signature_and_result():
    @retry_aware
    def process(submission_id: str, *, dataset: str = "policy") -> dict:
        """Process one submission."""
        return {"submission_id": submission_id, "dataset": dataset}

    assert (process.__name__, process.__doc__) == ("process", "Process one submission.")
    assert process("M001-claim-2024Q1-v1", dataset="claim") == {"submission_id": "M001-claim-2024Q1-v1",
                                                                  "dataset": "claim"}


def test_transient_errors_are_raised_as_they_are_so_airflow_retries_them():
    busy = LakeBusy("the catalog is busy")
    with pytest.raises(LakeBusy) as err:
        _raising(busy)("x")
    assert err.value is busy
    with pytest.raises(TimeoutError):
        _raising(TimeoutError("slow disk"))("x")


@pytest.mark.parametrize("exc", [SubmissionError("Member 'M9' is not registered."), ValueError("a bug"),
                                 FileNotFoundError("gone")])
def test_other_errors_fail_the_task_without_retries(exc):
    with pytest.raises(AirflowFailException) as err:
        _raising(exc)("x")
    assert err.value.__cause__ is exc and str(exc) in str(err.value)


def test_airflows_own_exceptions_pass_unchanged():
    skip, fail = AirflowSkipException("no lake yet"), AirflowFailException("M001-policy-2024Q1-v1: rejected")
    for exc in (skip, fail):
        with pytest.raises(type(exc)) as err:
            _raising(exc)("x")
        assert err.value is exc and err.value.__cause__ is None


def test_assets_and_dag_arguments():
    assert [a.uri for a in (LAKE, MARTS, PRODUCTS)] == [
        "insurshare://lake/", "insurshare://marts/", "insurshare://products/"]
    args = dag_arguments("reports", "quality", retries=2, retry_delay_seconds=30)
    assert args["tags"] == ["insurshare", "reports", "quality"]
    assert (args["catchup"], args["max_active_runs"], str(args["start_date"])) == (False, 1, "2024-01-01 00:00:00+00:00")
    assert args["default_args"]["retries"] == 2 and args["default_args"]["retry_delay"].total_seconds() == 30
