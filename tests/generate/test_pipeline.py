"""The key test: the real pipeline finds exactly the generator's ground truth.

A small set (five members, so every format, three quarters, the resubmission scenarios) is
received and processed like Airflow would, then for every submission the verdict must equal
the index's ``expect`` and the rows the platform quarantined or warned must be exactly the
ground truth, with exactly its rule ids. Clean rows must fail no rule, warnings included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines import store
from pipelines.config import Settings
from pipelines.contracts import load_contract
from pipelines.ingest import pending, process_submission
from pipelines.intake import Manifest, receive
from pipelines.keys import create_keys
from pipelines.members import add_members


def run_pipeline(home: Path, out_dir: Path, index: dict, submissions: list[dict],
                 gx_max_rows: int = 0) -> Settings:
    """Receive ``submissions`` in order, then process until nothing is pending (with GX's engine at
    ingestion when ``gx_max_rows`` is given)."""
    settings = Settings(home=home, gx_max_rows=gx_max_rows, gx_at_ingest=gx_max_rows > 0)
    create_keys(settings)
    add_members(settings, {m["member_id"]: m["name"] for m in index["members"]})
    for s in submissions:
        receive(settings, out_dir / s["file"], Manifest.from_file(out_dir / s["manifest"]),
                received_at=dt.datetime.fromisoformat(s["submitted_at"]))
    while ids := pending(settings):
        for sid in ids:
            process_submission(settings, sid)
    return settings


def submission_id(s: dict) -> str:
    return f"{s['member_id']}-{s['dataset']}-{s['period']}-v{s['version']}"


def findings(con, s: dict) -> tuple[str, set[tuple[int, frozenset[str]]]]:
    """The verdict, and every flagged row: quarantined ones, and warned ones as published."""
    sid = submission_id(s)
    status, snapshot = con.execute(f"SELECT status, snapshot_id FROM {store.LAKE}.submissions "
                                   "WHERE submission_id = ?", [sid]).fetchone()
    rows = {(r, frozenset(ids)) for r, ids in con.execute(
        f"SELECT source_row, rule_ids FROM {store.LAKE}.quarantine WHERE submission_id = ?", [sid]).fetchall()}
    if status != "rejected":     # a superseded version's rows are read at its own snapshot
        rows |= {(r, frozenset(ids)) for r, ids in con.execute(
            f"SELECT source_row, dq_warnings FROM {store.LAKE}.{s['dataset']} AT (VERSION => {snapshot}) "
            "WHERE submission_id = ? AND len(dq_warnings) > 0", [sid]).fetchall()}
    return status, rows


def expected_findings(generated, s: dict, status: str) -> set[tuple[int, frozenset[str]]]:
    """The ground truth of the file; a rejected file publishes only its quarantined rows."""
    contract = load_contract(s["dataset"])
    truth = {(row, ids) for row, (ids, _) in generated.truth.get(s["file"], {}).items()}
    if status == "rejected":
        truth = {(row, ids) for row, ids in truth if any(contract.rule(r).severity != "warn" for r in ids)}
    return truth


@pytest.fixture(scope="module")
def pipeline_set(tmp_path_factory, make_set):
    return make_set(tmp_path_factory.mktemp("pipeline") / "out", members=5, quarters=3, seed=23,
                    scale=0.08, defect_rate=0.04)


@pytest.fixture(scope="module")
def processed(tmp_path_factory, pipeline_set) -> Iterator[tuple[object, list]]:
    settings = run_pipeline(tmp_path_factory.mktemp("home"), pipeline_set.out_dir, pipeline_set.index,
                            pipeline_set.index["submissions"])
    con = store.connect(settings)
    try:
        yield con, [(s, findings(con, s)) for s in pipeline_set.index["submissions"]]
    finally:
        con.close()


def test_pipeline_verdicts_equal_the_index(processed):
    _, results = processed
    verdicts = [(submission_id(s), status) for s, (status, _) in results]
    assert verdicts == [(submission_id(s), s["expect"]) for s, _ in results]
    assert {status for _, status in verdicts} == {"accepted", "rejected", "superseded"}


def test_pipeline_flags_exactly_the_ground_truth(processed, pipeline_set):
    _, results = processed
    wrong = {}
    for s, (status, found) in results:
        expected = expected_findings(pipeline_set, s, status)
        if found != expected:
            wrong[s["file"]] = {"unexpected": sorted(found - expected), "missed": sorted(expected - found)}
    assert not wrong
    flagged = sum(len(found) for _, (_, found) in results)
    assert flagged >= 0.8 * pipeline_set.result.defective_rows


def test_pipeline_reads_every_row_that_the_manifest_declares(processed, pipeline_set):
    con, results = processed
    for s, _ in results:
        total = con.execute(f"SELECT rows_total FROM {store.LAKE}.submissions WHERE submission_id = ?",
                            [submission_id(s)]).fetchone()[0]
        truncated = "truncated in the middle of a line" in s["notes"]
        assert total == (None if truncated else pipeline_set.manifest(s)["row_count"]), s["file"]


def test_pipeline_accepts_an_xlsx_file(tmp_path, pipeline_set):
    first = pipeline_set.submissions(member_id="M004", dataset="policy")[0]
    settings = run_pipeline(tmp_path / "home", pipeline_set.out_dir, pipeline_set.index, [first])
    con = store.connect(settings)
    try:
        assert findings(con, first)[0] == "accepted"
    finally:
        con.close()


def test_pipeline_with_great_expectations_gives_the_same_findings(tmp_path, pipeline_set):
    first = pipeline_set.submissions(member_id="M001", dataset="policy")[0]
    settings = run_pipeline(tmp_path / "home", pipeline_set.out_dir, pipeline_set.index, [first],
                            gx_max_rows=1_000_000)
    con = store.connect(settings)
    try:
        status, found = findings(con, first)
        ran = con.execute(f"SELECT count(*) FROM {store.LAKE}.validation_results WHERE submission_id = ?",
                          [submission_id(first)]).fetchone()[0]
    finally:
        con.close()
    assert (status, ran) == ("accepted", 1)
    assert found == expected_findings(pipeline_set, first, status)
