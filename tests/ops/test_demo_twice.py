"""`make demo` run twice: the second run changes nothing (README: "Running `make demo` again
changes nothing"). The steps are read from the Makefile's demo recipe, so the test follows the
demo as it is; only the generated data set is smaller."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from pipelines import store
from pipelines.config import Settings
from tests.ops.conftest import demo_steps, insurshare


def _state(settings: Settings) -> dict:
    con = store.connect(settings)
    try:
        lake = {"snapshots": con.execute("SELECT count(*) FROM ducklake_snapshots('lake')").fetchone()[0],
                "audit": con.execute("SELECT count(*) FROM lake.audit_log").fetchone()[0],
                "submissions": con.execute("SELECT count(*) FROM lake.submissions").fetchone()[0]}
    finally:
        con.close()

    def files(root: Path) -> dict[str, tuple[str, int]]:
        return {p.relative_to(settings.home).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
                for p in sorted(root.rglob("*")) if p.is_file()}
    return {**lake, "products": files(settings.home / "products"), "reports": files(settings.reports_dir)}


@pytest.fixture(scope="module")
def twice(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("demo") / "home")
    steps = demo_steps(settings.home / "incoming" / "index.json")
    runs, states = [], []
    for _ in range(2):
        outputs = []
        for step in steps:
            res = insurshare(settings, *step)
            assert res.returncode == 0, (step, res.stdout[-3000:], res.stderr[-3000:])
            outputs.append(res.stdout)
        runs.append(outputs)
        states.append(_state(settings))
    return steps, runs, states


def test_demo_steps_are_the_makefiles(twice):
    steps, _, _ = twice
    assert [s[0] for s in steps] == ["keygen", "generate", "members", "submit-index", "run-dag", "summary",
                                     "run-dag", "triangle", "run-dag", "products", "query", "audit", "report"]
    assert [s[1] for s in steps if s[0] == "run-dag"] == ["ingest_submissions", "build_marts", "build_products"]


def test_first_demo_run_builds_everything(twice):
    _, _, (first, _) = twice
    assert first["submissions"] > 0 and first["snapshots"] > first["submissions"]
    assert {"products/regulator.duckdb", "products/public.duckdb"} <= set(first["products"])
    assert "reports/index.html" in first["reports"] and len(first["reports"]) > 10


def test_second_demo_run_changes_nothing(twice):
    _, _, (first, second) = twice
    assert (second["snapshots"], second["audit"], second["submissions"]) == (
        first["snapshots"], first["audit"], first["submissions"])
    assert second["products"] == first["products"]      # same bytes, not even rewritten (same mtimes)
    assert second["reports"] == first["reports"]


def test_second_demo_run_says_there_was_nothing_to_do(twice):
    steps, (_, second), _ = twice
    out = {step[0] if step[0] != "run-dag" else step[1]: text for step, text in zip(steps, second, strict=True)}
    assert "registered 0 new member(s)" in out["members"]
    submitted = out["submit-index"].splitlines()
    assert submitted and all(": already received as " in line for line in submitted)
    assert "DAG ingest_submissions finished: success" in out["ingest_submissions"]
    assert not re.search(r"^M\d{3}-\S+-v\d+: ", out["ingest_submissions"], re.M)    # no submission processed
    assert "marts are up to date" in out["build_marts"]
    assert "products are up to date" in out["build_products"]
    assert "; 0 file(s) written under" in out["report"]
