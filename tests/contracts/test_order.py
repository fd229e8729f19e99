"""The order datasets are processed in comes from the contracts' cross-dataset (``exists_in``) rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipelines.config import SCHEMAS_DIR
from pipelines.contracts import datasets, dependencies, load_contract
from pipelines.errors import ContractError


def _schemas(tmp_path: Path) -> Path:
    """A copy of the real contracts that a test can change."""
    return Path(shutil.copytree(SCHEMAS_DIR, tmp_path / "schemas"))


def _add_rule(schemas: Path, dataset: str, rule: dict) -> None:
    path = schemas / f"{dataset}.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw.setdefault("rules", []).append(rule)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _exists_in(rule_id: str, column: str, dataset: str) -> dict:
    return {"id": rule_id, "kind": "exists_in", "column": column, "dataset": dataset, "severity": "error",
            "description": f"{column} is in the member's accepted {dataset} data."}


def _new_dataset(schemas: Path, name: str, prefix: str, needs: str | None) -> None:
    """A small contract ``name`` whose ``ref_no`` must be in ``needs`` (when given)."""
    raw = {"dataset": name, "version": "1.0", "title": name.title(), "rule_prefix": prefix,
           "columns": [{"name": "ref_no", "type": "string", "required": True, "description": "A reference."}],
           "rules": [_exists_in(f"{prefix}-D01", "ref_no", needs)] if needs else []}
    (schemas / f"{name}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")


def test_the_real_contracts_put_policies_before_claims():
    assert dependencies() == {"claim": {"policy"}, "policy": set()}
    assert datasets() == ("policy", "claim")      # by name claim would come first
    assert load_contract("claim").rule("CLM-D01").params["dataset"] == "policy"


def test_a_dataset_that_needs_claims_comes_after_them_and_free_datasets_go_by_name(tmp_path):
    schemas = _schemas(tmp_path)
    _new_dataset(schemas, "adjustment", "ADJ", needs="claim")     # by name it would come first
    _new_dataset(schemas, "exposure", "EXP", needs=None)
    assert dependencies(schemas) == {"adjustment": {"claim"}, "claim": {"policy"}, "exposure": set(),
                                     "policy": set()}
    assert datasets(schemas) == ("exposure", "policy", "claim", "adjustment")


def test_a_rule_reading_the_datasets_own_data_orders_nothing(tmp_path):
    schemas = _schemas(tmp_path)
    _add_rule(schemas, "claim", _exists_in("CLM-D02", "claim_no", "claim"))
    assert dependencies(schemas)["claim"] == {"policy"}
    assert datasets(schemas) == ("policy", "claim")


def test_a_cycle_is_a_contract_error_naming_its_rules(tmp_path):
    schemas = _schemas(tmp_path)
    _add_rule(schemas, "policy", _exists_in("POL-D99", "policy_no", "claim"))
    with pytest.raises(ContractError) as err:
        datasets(schemas)
    assert err.value.message == (
        "The contracts' cross-dataset rules form a cycle: claim needs policy (schemas/claim.yaml: rules.CLM-D01); "
        "policy needs claim (schemas/policy.yaml: rules.POL-D99).")
    assert "remove or change one of these rules" in err.value.hint
    # each contract still loads on its own: only the order is impossible
    assert load_contract("policy", None, schemas).rule("POL-D99").params["dataset"] == "claim"


def test_a_longer_cycle_is_reported_with_every_step(tmp_path):
    schemas = _schemas(tmp_path)
    _new_dataset(schemas, "adjustment", "ADJ", needs="claim")
    _add_rule(schemas, "policy", _exists_in("POL-D99", "policy_no", "adjustment"))
    with pytest.raises(ContractError) as err:
        datasets(schemas)
    assert err.value.message == (
        "The contracts' cross-dataset rules form a cycle: adjustment needs claim (schemas/adjustment.yaml: "
        "rules.ADJ-D01); claim needs policy (schemas/claim.yaml: rules.CLM-D01); policy needs adjustment "
        "(schemas/policy.yaml: rules.POL-D99).")


def test_a_rule_naming_an_unknown_dataset_is_a_contract_error(tmp_path):
    schemas = _schemas(tmp_path)
    raw = yaml.safe_load((schemas / "claim.yaml").read_text(encoding="utf-8"))
    [rule] = [r for r in raw["rules"] if r["id"] == "CLM-D01"]
    rule["dataset"] = "polcy"
    (schemas / "claim.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    for call in (dependencies, datasets):
        with pytest.raises(ContractError) as err:
            call(schemas)
        assert err.value.message == ("schemas/claim.yaml: rules.CLM-D01: exists_in names dataset 'polcy', "
                                     "which has no contract.")
        assert err.value.hint == "Known datasets: claim, policy."


def test_an_unknown_dataset_is_still_refused_by_load_contract(tmp_path):
    schemas = _schemas(tmp_path)
    with pytest.raises(ContractError) as err:
        load_contract("premium", None, schemas)
    assert (err.value.message, err.value.hint) == ("Unknown dataset 'premium'.", "Known datasets: policy, claim.")


def test_an_exists_in_rule_without_a_dataset_is_a_contract_error(tmp_path):
    schemas = _schemas(tmp_path)
    rule = _exists_in("CLM-D02", "claim_no", "policy")
    del rule["dataset"]
    _add_rule(schemas, "claim", rule)
    with pytest.raises(ContractError) as err:
        datasets(schemas)
    assert err.value.message == ("schemas/claim.yaml: rules.CLM-D02: an exists_in rule must name the dataset "
                                 "it reads (dataset: <name>).")
