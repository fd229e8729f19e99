"""``pending`` follows the contracts' dependencies, whatever the datasets are called: a third
dataset whose rule reads the accepted claims waits for the member's claims as claims wait for premium."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import yaml

from pipelines.config import SCHEMAS_DIR
from pipelines.contracts import datasets
from pipelines.ingest import pending, process_submission
from tests.conftest import claim_row, policy_row, submit, write_csv


def _with_adjustments(settings, tmp_path: Path):
    """The real contracts plus ``adjustment``, whose ``claim_no`` must be in the accepted claims."""
    schemas = Path(shutil.copytree(SCHEMAS_DIR, tmp_path / "schemas"))
    contract = {"dataset": "adjustment", "version": "1.0", "title": "Claim adjustments", "rule_prefix": "ADJ",
                "columns": [{"name": "claim_no", "type": "string", "required": True, "description": "Claim."}],
                "rules": [{"id": "ADJ-D01", "kind": "exists_in", "column": "claim_no", "dataset": "claim",
                           "description": "The claim is in the member's accepted claim data."}]}
    (schemas / "adjustment.yaml").write_text(yaml.safe_dump(contract, sort_keys=False), encoding="utf-8")
    return dataclasses.replace(settings, schemas_dir=schemas)


def test_each_dataset_waits_for_the_datasets_it_depends_on(settings, tmp_path):
    settings = _with_adjustments(settings, tmp_path)
    assert datasets(settings.schemas_dir) == ("policy", "claim", "adjustment")
    adjustment = submit(settings, write_csv(tmp_path / "a.csv", [{"claim_no": "C0000"}]),
                        dataset="adjustment").submission.submission_id
    claims = submit(settings, write_csv(tmp_path / "c.csv", [claim_row(claim_no="C0000", policy_no="P0000")]),
                    dataset="claim").submission.submission_id
    premium = submit(settings, write_csv(tmp_path / "p.csv", [policy_row(policy_no="P0000")])
                     ).submission.submission_id
    other = submit(settings, write_csv(tmp_path / "o.csv", [{"claim_no": "C0000"}]), member="M002",
                   dataset="adjustment").submission.submission_id

    assert pending(settings) == [premium, other]       # M002 has no claims or premium waiting
    assert pending(settings, "claim") == []
    assert process_submission(settings, premium).status == "accepted"
    assert pending(settings) == [claims, other]         # the adjustment still waits for the claims
    assert process_submission(settings, claims).status == "accepted"
    assert pending(settings) == [adjustment, other]
