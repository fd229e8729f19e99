"""Files on disk: each submission with its manifest, the submission index and the ground truth."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.contracts import load_contract
from pipelines.core.domain import Period
from pipelines.generate import writers
from pipelines.generate.defects import Truth
from pipelines.generate.members import MemberProfile
from pipelines.generate.submissions import SubmissionFile, valuation_stamp

GROUND_TRUTH_COLUMNS = ("file", "member_id", "dataset", "period", "version", "source_row",
                        "rule_ids", "defect")
DATASET_ORDER = {"policy": 0, "claim": 1}


@dataclass(frozen=True)
class Written:
    """A submission file on disk, with what the validator must find in it."""

    path: str                      # relative to the output folder
    member_id: str
    dataset: str
    period: Period
    version: int
    file_format: str
    expect: str
    notes: tuple[str, ...]
    rows: int                      # whole data rows in the file
    truth: tuple[tuple[int, Truth], ...]   # (source row, truth); empty when the file cannot be read
    submitted_at: dt.datetime | None = None  # when the member sends it (UTC)

    @property
    def manifest(self) -> str:
        return manifest_path(Path(self.path)).as_posix()


def write_submission(out_dir: Path, f: SubmissionFile) -> Written:
    """Write the data file and its manifest."""
    contract = load_contract(f.dataset)
    path = out_dir / f.path
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = f.rows
    written = len(rows)
    member = f.member
    if f.truncated:
        written = writers.write_truncated_csv(path, contract, rows, member.encoding or "utf-8")
    elif member.file_format == "csv":
        writers.write_csv(path, contract, rows, member.encoding or "utf-8")
    elif member.file_format == "parquet":
        writers.write_parquet(path, contract, rows)
    else:
        writers.write_xlsx(path, contract, rows, stamp=valuation_stamp(f.period),
                           author=member.name)
    writers.write_manifest(manifest_path(path), member_id=member.member_id, contract=contract,
                           period=f.period.label, rows=rows, encoding=member.encoding)
    truth = () if f.truncated else tuple(
        (i, m.truth) for i, m in enumerate(f.marked, start=1) if m.truth is not None)
    return Written(f.path, member.member_id, f.dataset, f.period, f.version, member.file_format,
                   f.expect, tuple(f.notes), written, truth)


def manifest_path(data_file: Path) -> Path:
    return data_file.with_name(data_file.name + ".manifest.json")


def submission_order(files: Sequence[Written]) -> list[Written]:
    """All of a quarter's files, premium before claims, members in order, v1 before v2."""
    return sorted(files, key=lambda f: (f.period.start, DATASET_ORDER.get(f.dataset, 9),
                                        f.member_id, f.version))


def write_index(out_dir: Path, seed: int, members: Sequence[MemberProfile],
                ordered: Sequence[Written], missing: Sequence[tuple[str, str, str]] = ()) -> Path:
    index = {
        "seed": seed,
        "members": [{"member_id": m.member_id, "name": m.name, "name_zh": m.name_zh,
                     "format": m.file_format, "encoding": m.encoding} for m in members],
        "submissions": [
            {"sequence": i, "file": f.path, "member_id": f.member_id, "dataset": f.dataset,
             "period": f.period.label, "version": f.version, "manifest": f.manifest,
             "format": f.file_format, "expect": f.expect,
             "submitted_at": f.submitted_at.isoformat() if f.submitted_at else None, "notes": list(f.notes)}
            for i, f in enumerate(ordered, start=1)],
        "missing": [{"member_id": m, "dataset": d, "period": p} for m, d, p in missing],
    }
    path = out_dir / "index.json"
    path.write_text(json.dumps(index, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def ground_truth_rows(f: Written) -> list[list[object]]:
    """The rows the validator must report for ``f`` (none when the file cannot be read at all)."""
    return [[f.path, f.member_id, f.dataset, f.period.label, f.version, row,
             ";".join(sorted(truth.rule_ids)), truth.defect] for row, truth in f.truth]


def write_ground_truth(out_dir: Path, ordered: Sequence[Written]) -> Path:
    path = out_dir / "ground_truth.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(GROUND_TRUTH_COLUMNS)
        for f in ordered:
            writer.writerows(ground_truth_rows(f))
    return path
