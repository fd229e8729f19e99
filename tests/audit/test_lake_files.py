"""Issue 10, finding 11: a missing or damaged lake data file is a clear error in every command,
not a raw IOException traceback."""

from __future__ import annotations

from tests.audit.conftest import cli, lake_files, policy_file


def _clear_error(result, kind: str, path) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception   # no traceback
    assert f"Error: A data file of the lake is {kind}: {path}." in result.output
    assert "insurshare audit verify" in result.output and "restore the lake" in result.output


def test_missing_data_file_fails_build_marts_and_report_clearly(lake_home):
    path = policy_file(lake_home)
    path.unlink()
    _clear_error(cli(lake_home, "build-marts"), "missing", path)
    _clear_error(cli(lake_home, "report"), "missing", path)


def test_missing_mart_file_fails_products_build_clearly(lake_home):
    built = cli(lake_home, "build-marts")
    assert built.exit_code == 0, built.output
    marts = [p for p in lake_files(lake_home, "") if "/mart_" in str(p)]
    assert marts, "a mart is written as a data file"
    marts[0].unlink()
    _clear_error(cli(lake_home, "products", "build"), "missing", marts[0])


def test_damaged_data_file_fails_build_marts_clearly(lake_home):
    path = policy_file(lake_home)
    path.write_bytes(path.read_bytes()[:100])
    _clear_error(cli(lake_home, "build-marts"), "damaged or unreadable", path)


def test_dag_task_fails_with_the_clear_message(lake_home):
    """The DAG tasks hand their errors to ``fail_unless_retryable``: a missing file fails the task
    (no retries) with the same message as the CLI."""
    import duckdb
    import pytest
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.airflow.orchestration import fail_unless_retryable
    from pipelines.marts.build import build_marts

    path = policy_file(lake_home)
    path.unlink()
    with pytest.raises(duckdb.Error) as raw:
        build_marts(lake_home)
    with pytest.raises(AirflowFailException, match=f"A data file of the lake is missing: {path}"):
        fail_unless_retryable(raw.value)
