"""GX's own engine is the oracle: its unexpected counts equal the SQL engine's failure counts."""

from __future__ import annotations

import random

import pytest

from pipelines.contracts import load_contract
from pipelines.core.sql import ident
from pipelines.validation.context import CheckContext, parse_period
from pipelines.validation.expectations import expectation_for, validate_frame
from tests.conftest import claim_row, policy_row
from tests.validation.helpers import run_rules
from tests.validation.test_rules import CLAIM_CASES, POLICY_CASES

REFS = {"CLM-D01": ["P0001", "P0002"], "POL-U02": ["T-OLD-1", "T-OLD-2"]}


def _batch(dataset: str, seed: int) -> list[dict]:
    """Every declarative case a few times, shuffled, with keys made unique except on purpose."""
    cases, make, key = ((POLICY_CASES, policy_row, "transaction_id") if dataset == "policy"
                        else (CLAIM_CASES, claim_row, "claim_no"))
    rng = random.Random(seed)
    rows = []
    for n in range(3 * len(cases)):
        overrides = dict(rng.choice(list(cases.values()))[0])
        overrides.setdefault(key, f"K{n:05d}")
        if overrides[key] is not None and rng.random() < 0.05:
            overrides[key] = "K00000"          # a repeated key now and then
        if dataset == "policy" and rng.random() < 0.03:
            overrides[key] = "T-OLD-1"         # already published for another period
        rows.append(make(**overrides))
    return rows


def _compare(tmp_path, dataset: str, seed: int):
    gx, check = _both(tmp_path, dataset, seed)
    return gx, {c.rule.id: c.failed for c in check.counts}


def _both(tmp_path, dataset: str, seed: int):
    contract = load_contract(dataset)
    con, check, _ = run_rules(tmp_path, dataset, _batch(dataset, seed), references=REFS)
    frame = con.execute(
        f"SELECT {', '.join(ident(c.name) for c in contract.columns)} FROM checked ORDER BY __row").df()
    ctx = CheckContext(member_id="M001", period=parse_period("2024Q1"))
    return validate_frame(frame, contract, ctx, REFS, name=f"{dataset}-{seed}"), check


@pytest.mark.parametrize("dataset", ["policy", "claim"])
@pytest.mark.parametrize("seed", [1, 2])
def test_gx_unexpected_counts_equal_sql_counts(tmp_path, dataset, seed):
    gx, sql = _compare(tmp_path, dataset, seed)
    assert gx.unexpected, "GX evaluated no expectation"
    mismatched = {rid: (n, sql[rid]) for rid, n in gx.unexpected.items() if n != sql[rid]}
    assert mismatched == {}
    assert sum(gx.unexpected.values()) > 0, "the batch should break some GX-expressible rules"


@pytest.mark.parametrize("dataset", ["policy", "claim"])
def test_engine_missing_counts_equal_gx_missing_counts(tmp_path, dataset):
    """The NULL rows per rule that ingestion keeps (for Data Docs made from counts) are GX's."""
    gx, check = _both(tmp_path, dataset, 1)
    ours = {c.rule.id: c.missing for c in check.counts}
    theirs = {r["expectation_config"]["meta"]["rule_id"]: r["result"].get("missing_count")
              for r in gx.result["results"]}
    compared = {rid: (n, ours[rid]) for rid, n in theirs.items() if n is not None}
    assert compared and all(a == b for a, b in compared.values()), compared
    assert any(n > 0 for n, _ in compared.values()), "the batch should hold NULLs GX skips"


@pytest.mark.parametrize("dataset", ["policy", "claim"])
def test_gx_expresses_every_rule_but_raw_text_and_identifier_checks(dataset):
    contract = load_contract(dataset)
    ctx = CheckContext(member_id="M001", period=parse_period("2024Q1"))
    missing = {r.id for r in contract.rules if expectation_for(r, contract, ctx, REFS) is None}
    expected = {r.id for r in contract.rules
                if r.kind in ("type", "check_digit", "resident_id_agrees", "identifiers_in_text")
                or (r.kind == "required" and contract.column(r.column).base_type != "string")
                or (r.kind == "pattern" and contract.column(r.column).identifier)}
    assert missing == expected
