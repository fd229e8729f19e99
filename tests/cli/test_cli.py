"""The command line: thin, documented, and clear when something is wrong."""

from __future__ import annotations

import json

import click
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.cli.docs import update_readme
from tests.conftest import policy_row, write_csv


@pytest.fixture
def cli(settings):
    runner = CliRunner(env={"INSURSHARE_GX_MAX_ROWS": "0"})

    def invoke(*args: str):
        return runner.invoke(main, ["--home", str(settings.home), *args], catch_exceptions=False)
    return invoke


@pytest.fixture
def ingested(cli, tmp_path):
    kinds = [("MCOM", "OD")] * 12 + [("MCOM", "TPL")] * 8 + [("EPROP", "ALL")] * 5
    rows = [policy_row(transaction_id=f"T{i:04d}", line_of_business=lob, coverage_code=f"{lob}-{cov}",
                       vin=None if lob == "EPROP" else policy_row()["vin"])
            for i, (lob, cov) in enumerate(kinds)]
    rows.append(policy_row(transaction_id="TBAD", region_code="999999"))
    path = write_csv(tmp_path / "p.csv", rows)
    assert cli("submit", str(path), "--member", "M001", "--dataset", "policy", "--period", "2024Q1").exit_code == 0
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    return result


def _commands(group: click.Group, prefix: str = "insurshare") -> list[str]:
    out = []
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += _commands(cmd, f"{prefix} {name}")
        else:
            out.append(f"{prefix} {name}")
    return out


def test_cli_every_command_has_help_and_is_in_the_readme():
    from pipelines.config import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text()
    for name in _commands(main):
        assert f"### `{name}`" in readme, name
    assert update_readme(main, check=True) is False, "README.md is stale: run `insurshare docs`"


def test_cli_submit_and_ingest_print_the_verdict(ingested):
    assert "M001-policy-2024Q1-v1: accepted (26 rows, 1 quarantined)" in ingested.output
    assert "processed 1 submission(s)" in ingested.output


def test_cli_submit_same_file_again_is_a_no_op(cli, tmp_path):
    path = write_csv(tmp_path / "p.csv", [policy_row()])
    args = ("submit", str(path), "--member", "M001", "--dataset", "policy", "--period", "2024Q1")
    assert "received as M001-policy-2024Q1-v1" in cli(*args).output
    assert "already received as M001-policy-2024Q1-v1" in cli(*args).output


def test_cli_refusal_is_one_clear_line(cli, tmp_path):
    path = write_csv(tmp_path / "p.csv", [policy_row()])
    result = cli("submit", str(path), "--member", "M042", "--dataset", "policy", "--period", "2024Q1")
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: Member 'M042' of file 'p.csv' is not registered. "
                                     "Ask the operator to register it (`insurshare members add`). "
                                     "Nothing was recorded: correct it and submit again.")


def test_cli_status_lists_submissions_with_verdicts(cli, ingested):
    out = cli("status").output
    assert "M001 2024Q1  policy" in out and "accepted" in out and "M001-policy-2024Q1-v1" in out


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_cli_query_formats(cli, ingested, fmt):
    result = cli("query", "SELECT line_of_business AS lob, count(*) AS n FROM policy GROUP BY 1 ORDER BY 1",
                 "--format", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "json":
        assert json.loads(result.output) == [{"lob": "EPROP", "n": 5}, {"lob": "MCOM", "n": 20}]
    elif fmt == "csv":
        assert result.output.splitlines() == ["lob,n", "EPROP,5", "MCOM,20"]
    else:
        assert result.output.split() == ["lob", "n", "EPROP", "5", "MCOM", "20"]


def test_cli_query_parquet_writes_a_file(cli, ingested, tmp_path):
    out = tmp_path / "q.parquet"
    result = cli("query", "SELECT * FROM quarantine", "--format", "parquet", "--output", str(out))
    assert result.exit_code == 0
    assert pq.read_table(out).num_rows == 1


def test_cli_query_as_of_an_older_snapshot(cli, ingested):
    snaps = json.loads(cli("query", "SELECT snapshot_id, commit_message FROM snapshots()", "--format",
                           "json").output)
    publish = next(s["snapshot_id"] for s in snaps if (s["commit_message"] or "").startswith("publish"))
    count = "SELECT count(*) AS n FROM policy"
    assert json.loads(cli("query", count, "--format", "json", "--as-of", str(publish - 1)).output) == [{"n": 0}]
    assert json.loads(cli("query", count, "--format", "json", "--as-of", str(publish)).output) == [{"n": 25}]


@pytest.mark.parametrize("sql,message", [
    ("DELETE FROM policy", "Only read-only SELECT queries are allowed, not DELETE"),
    ("SELECT 1; SELECT 2", "Give exactly one statement"),
    ("SELECT * FROM nowhere", "The query failed: Catalog Error: Table with name nowhere does not exist!"),
    ("SELEC 1", "The query does not parse"),
])
def test_cli_query_refuses_writes_and_explains_errors(cli, ingested, sql, message):
    result = cli("query", sql)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {message}")


def test_cli_query_unknown_snapshot(cli, ingested):
    result = cli("query", "SELECT 1", "--as-of", "9999")
    assert result.exit_code == 1 and "Snapshot 9999 does not exist" in result.output


def test_cli_query_without_a_lake_says_what_to_do(tmp_path):
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "empty"), "query", "SELECT 1"])
    assert result.exit_code == 1 and "No lake at" in result.output and "Submit and ingest" in result.output


def test_cli_keygen_refuses_to_overwrite(cli):
    assert cli("keygen").exit_code == 1
    assert "keys exist" in cli("keygen", "--if-missing").output
