"""Fixtures for the generator tests: a small generated data set and a reader for its files."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.contracts import load_contract
from pipelines.generate import GenerateResult, generate


@dataclass(frozen=True)
class GeneratedSet:
    result: GenerateResult
    index: dict
    truth: dict[str, dict[int, tuple[frozenset[str], str]]]   # file -> row -> (rule ids, defect)

    @property
    def out_dir(self) -> Path:
        return self.result.out_dir

    def manifest(self, submission: dict) -> dict:
        return json.loads((self.out_dir / submission["manifest"]).read_text(encoding="utf-8"))

    def submissions(self, **match: object) -> list[dict]:
        return [s for s in self.index["submissions"] if all(s[k] == v for k, v in match.items())]

    def final(self, dataset: str) -> list[dict]:
        """The submission that ends up accepted for each slice of ``dataset``."""
        return [s for s in self.submissions(dataset=dataset) if s["expect"] == "accepted"]


def read_truth(path: Path) -> dict[str, dict[int, tuple[frozenset[str], str]]]:
    truth: dict[str, dict[int, tuple[frozenset[str], str]]] = defaultdict(dict)
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            truth[row["file"]][int(row["source_row"])] = (frozenset(row["rule_ids"].split(";")), row["defect"])
    return truth


def generated(out_dir: Path, **kwargs: object) -> GeneratedSet:
    result = generate(out_dir, **kwargs)
    index = json.loads(result.index.read_text(encoding="utf-8"))
    return GeneratedSet(result, index, read_truth(result.ground_truth))


@pytest.fixture(scope="session")
def make_set():
    """``make_set(out_dir, **generate_arguments)`` generates a set and reads its index and truth."""
    return generated


@pytest.fixture(scope="session")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> GeneratedSet:
    """Five members (every format), four quarters, a sixth of the default volume."""
    return generated(tmp_path_factory.mktemp("generated") / "out", members=5, quarters=4, seed=7,
                     scale=0.16, defect_rate=0.04)


@pytest.fixture(scope="session")
def default_rate_set(tmp_path_factory: pytest.TempPathFactory) -> GeneratedSet:
    """Three members with the default defect rate, big enough to count defects."""
    return generated(tmp_path_factory.mktemp("generated") / "out", members=3, quarters=4, seed=11,
                     scale=0.5)


def _typed(value: object, base_type: str) -> object:
    """A cell as the contract types it: dates, decimals, text; empty -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str) and base_type == "date":
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, str) and base_type == "decimal":
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value


def load_rows(path: Path, encoding: str | None = None) -> list[dict]:
    """The data rows of a generated file, typed as the contract says, in file order."""
    dataset = path.name.split("_")[0]
    types = {c.name: c.base_type for c in load_contract(dataset).columns}
    if path.suffix == ".csv":
        text = path.read_bytes().decode(encoding or "utf-8")
        raw = list(csv.DictReader(io.StringIO(text, newline="")))
    elif path.suffix == ".parquet":
        raw = pq.read_table(path).to_pylist()
    else:
        import openpyxl

        wb = openpyxl.load_workbook(path, read_only=True)
        cells = list(wb.worksheets[0].iter_rows(values_only=True))
        wb.close()
        raw = [dict(zip(cells[0], r, strict=True)) for r in cells[1:]]
    return [{k: _typed(v, types[k]) for k, v in row.items()} for row in raw]


@pytest.fixture(scope="session")
def read_rows():
    return load_rows
