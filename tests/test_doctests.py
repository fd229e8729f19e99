"""The ``>>>`` examples in the docstrings of ``pipelines/`` run, on a small real lake, and print
what their docstrings say: an example that drifts from the code fails here.

Every module under ``pipelines/`` whose source holds ``>>>`` is run; ``pipelines.api`` must be
among them. The lake is the one ``pipelines/api.py`` describes (two members' motor business of
2023 and 2024), written straight into DuckLake as the mart tests do; ``INSURSHARE_HOME`` points
at it, so that the examples run as a notebook user would type them.
"""

from __future__ import annotations

import datetime as dt
import doctest
import importlib
import os
from pathlib import Path

import pytest

import pipelines
from pipelines.config import Settings
from tests.marts.conftest import claim_snapshots, insert_rows, policy

D = dt.date
ROOT = Path(pipelines.__file__).parent
QUARTER_ENDS = [D(y, m, 31 if m in (3, 12) else 30) for y in (2023, 2024) for m in (3, 6, 9, 12)]


def modules_with_examples() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append(".".join(("pipelines", *(p for p in parts if p != "__init__"))))
    return found


MODULES = modules_with_examples()


def test_the_api_examples_are_doctests():
    assert "pipelines.api" in MODULES


@pytest.fixture
def example_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The lake of the api docstring: policies of 1,000 (M001) and 3,000 CNY (M002) written on
    1 January 2023 and 2024, and three claims with their quarter-end snapshots."""
    settings = Settings(home=tmp_path / "home")
    insert_rows(settings, "policy", [policy(m, D(y, 1, 1), D(y + 1, 1, 1), premium, 1.0)
                                     for y in (2023, 2024) for m, premium in (("M001", 1000.0), ("M002", 3000.0))])
    insert_rows(settings, "claim", [
        *claim_snapshots("M001", "A", D(2023, 3, 1), D(2023, 3, 5), [100, 200, 300, 400, 600], 800, 4,
                         valuations=QUARTER_ENDS),
        *claim_snapshots("M002", "B", D(2023, 6, 1), D(2023, 6, 10), [200, 400, 600, 900], 1000, None,
                         valuations=QUARTER_ENDS),
        *claim_snapshots("M001", "C", D(2024, 2, 1), D(2024, 2, 2), [500, 800], 1000, None,
                         valuations=QUARTER_ENDS),
    ])
    for name in [k for k in os.environ if k.startswith("INSURSHARE_")]:   # a lake of the caller's
        monkeypatch.delenv(name)
    monkeypatch.setenv("INSURSHARE_HOME", str(settings.home))
    return settings


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(example_lake, module):
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in doctest.DocTestFinder().find(importlib.import_module(module)) if t.examples]
    assert tests, module
    for test in tests:
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
    assert result.attempted >= 5 if module == "pipelines.api" else result.attempted > 0
