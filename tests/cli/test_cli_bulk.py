"""Bulk submission: many files, a folder or a listing in one `insurshare submit`; `submit-index`
goes the same way. Each file's declared fields come from its manifest, its listing entry and the
shared options; the summary says what was received and what was refused, and why."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipelines import store
from pipelines.cli import main
from tests.conftest import manifest_json, policy_row, write_csv


@pytest.fixture
def cli(settings):
    runner = CliRunner(env={"INSURSHARE_GX_MAX_ROWS": "0"})

    def invoke(*args: str):
        return runner.invoke(main, ["--home", str(settings.home), *args], catch_exceptions=False)
    return invoke


def _submissions(settings) -> list[tuple]:
    con = store.connect(settings)
    try:
        return con.execute("SELECT file_name, submission_id, status, received_at::VARCHAR, "
                           "manifest->>'row_count', manifest->'control_totals'->>'written_premium' "
                           "FROM lake.submissions ORDER BY file_name").fetchall()
    finally:
        con.close()


def _file(folder, name: str, n: int = 1):
    folder.mkdir(parents=True, exist_ok=True)
    return write_csv(folder / name, [policy_row(transaction_id=f"{name}{i}", policy_no=f"P{name}{i}") for i in range(n)])


def test_cli_submit_folder_reads_each_manifest_and_sums_up(cli, settings, tmp_path):
    """A folder: every data file with its FILE.manifest.json; a file nothing declares is refused
    (not recorded), a file that is not data is skipped, and the exit code is 1."""
    folder = tmp_path / "history"
    for period in ("2024Q1", "2024Q2"):
        manifest_json(_file(folder / "2024", f"p_{period}.csv").with_name(f"p_{period}.csv.manifest.json"),
                      member_id="M001", dataset="policy", period=period)
    _file(folder, "stray.csv")
    (folder / "notes.md").write_text("not data")

    result = cli("submit", str(folder))

    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("submitting 3 file(s)")      # the progress bar (a label off a terminal)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("3 file(s) in ") and lines[0].endswith(": 2 received, 0 already received, 1 refused")
    assert lines[1] == "skipped 1 file(s) that are not data (.csv, .txt, .parquet, .xlsx): history/notes.md"
    assert lines[2] == ("  history/stray.csv: refused - Nothing declares the member, dataset, period of "
                        "'history/stray.csv'. Put stray.csv.manifest.json beside it, give a listing (--listing) "
                        "or options (--member, --dataset, --period). Nothing was recorded for it.")
    assert [s[:3] for s in _submissions(settings)] == [("p_2024Q1.csv", "M001-policy-2024Q1-v1", "received"),
                                                        ("p_2024Q2.csv", "M001-policy-2024Q2-v1", "received")]
    again = cli("submit", str(folder / "2024"))
    assert again.exit_code == 0 and ": 0 received, 2 already received, 0 refused" in again.output


def test_cli_submit_listing_declares_each_file(cli, settings, tmp_path):
    """A CSV listing: member, dataset, period, rows, a control total and the arrival time per file;
    an entry for an unregistered member is refused and nothing is recorded for it."""
    _file(tmp_path, "a.csv", 2)
    _file(tmp_path, "b.csv", 1)
    listing = tmp_path / "listing.csv"
    listing.write_text("file,member,dataset,period,rows,control.written_premium,received_at\n"
                       "a.csv,M001,policy,2015Q4,2,2400.00,2016-01-20T08:00:00\n"
                       "b.csv,M404,policy,2015Q4,,,\n", encoding="utf-8")

    result = cli("submit", "--listing", str(listing))

    assert result.exit_code == 1, result.output
    assert ": 1 received, 0 already received, 1 refused" in result.output
    assert "  b.csv: refused - Member 'M404' of file 'b.csv' is not registered." in result.output
    assert _submissions(settings) == [("a.csv", "M001-policy-2015Q4-v1", "received", "2016-01-20 08:00:00",
                                       "2", "2400.00")]


def test_cli_submit_options_apply_to_every_file_and_win(cli, settings, tmp_path):
    """A JSON listing under shared options: --member and --received-at hold for every file."""
    for name in ("a.csv", "b.csv"):
        _file(tmp_path, name)
    listing = tmp_path / "listing.json"
    listing.write_text(json.dumps([{"file": "a.csv", "member": "M003", "dataset": "policy", "period": "2020Q1"},
                                   {"file": "b.csv", "dataset": "policy", "period": "2020Q2"}]))

    result = cli("submit", "--listing", str(listing), "--member", "M002", "--received-at", "2020-08-01")

    assert result.exit_code == 0, result.output
    assert [s[1:4] for s in _submissions(settings)] == [
        ("M002-policy-2020Q1-v1", "received", "2020-08-01 00:00:00"),
        ("M002-policy-2020Q2-v1", "received", "2020-08-01 00:00:00")]


@pytest.mark.parametrize("text, message", [
    ("file,member,perod\na.csv,M001,2024Q1\n", "listing.csv line 2: unknown column(s) perod"),
    ("file,member,received_at\na.csv,M001,yesterday\n", "received_at 'yesterday' is not an ISO date or time"),
], ids=["unknown column", "bad time"])
def test_cli_submit_listing_mistake_records_nothing(cli, settings, tmp_path, text, message):
    _file(tmp_path, "a.csv")
    (tmp_path / "listing.csv").write_text(text, encoding="utf-8")
    result = cli("submit", "--listing", str(tmp_path / "listing.csv"))
    assert result.exit_code == 1 and message in result.output, result.output
    assert _submissions(settings) == []


def test_cli_submit_index_is_a_listing_of_manifests(cli, settings, tmp_path):
    """The generator's index.json: each file declared by its manifest, received at `submitted_at`;
    its other keys (rows written, expectations) declare nothing; one line per file."""
    path = _file(tmp_path / "M001", "p.csv", 3)
    manifest_json(tmp_path / "M001" / "p.csv.manifest.json", member_id="M001", dataset="policy", period="2024Q1",
                  row_count=3)
    (tmp_path / "index.json").write_text(json.dumps({"members": [], "submissions": [
        {"sequence": 1, "file": "M001/p.csv", "manifest": "M001/p.csv.manifest.json", "rows": 2, "expect": "accepted",
         "submitted_at": "2024-04-20T10:00:00"}]}))

    first = cli("submit-index", str(tmp_path / "index.json"))
    second = cli("submit-index", str(tmp_path / "index.json"))

    assert first.output == "[1/1] M001/p.csv: received as M001-policy-2024Q1-v1\n"
    assert second.output == "[1/1] M001/p.csv: already received as M001-policy-2024Q1-v1 (received); nothing to do\n"
    assert _submissions(settings) == [(path.name, "M001-policy-2024Q1-v1", "received", "2024-04-20 10:00:00", "3", None)]
