"""Loading the dataset contracts of ``schemas/``: what every contract yields (columns, derived and
written rules, versions, cross-dataset rules), and the ContractError a broken contract raises,
word for word, so that whoever edits a YAML file learns what is wrong and where.

The dataset order (``dependencies()``) has its own tests in ``test_order.py``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pipelines.contracts import (
    SCHEMAS_DIR,
    contract_files,
    datasets,
    load_code_lists,
    load_contract,
    load_submission_rules,
)
from pipelines.errors import ContractError

# -- the real contracts ------------------------------------------------------------------------


def test_every_contract_in_schemas_loads():
    found = sorted(p.stem for p in SCHEMAS_DIR.glob("*.yaml"))
    assert found == ["claim", "codes", "policy", "submission"]
    assert sorted(datasets()) == ["claim", "policy"]
    for dataset in datasets():
        contract = load_contract(dataset)
        assert (contract.dataset, contract.version, contract.source) == (dataset, "1.0", f"schemas/{dataset}.yaml")
        assert contract.columns and contract.rules
        assert all(r.id.startswith(contract.rule_prefix + "-") for r in contract.rules)


def test_policy_contract_columns_keys_and_defaults():
    p = load_contract("policy")
    assert (p.title, p.grain, p.rule_prefix) == ("Premium transactions", "quarter", "POL")
    assert p.column_names == (
        "policy_no", "transaction_id", "transaction_type", "accounting_date", "effective_date", "expiry_date",
        "line_of_business", "coverage_code", "region_code", "written_premium", "written_exposure",
        "sum_insured", "insured_id", "insured_type", "birth_date", "gender", "vin", "phone", "channel",
        "product_name")
    assert p.key == ("transaction_id",)
    assert p.control_totals == ("written_premium", "written_exposure")
    assert p.identifier_columns == ("insured_id", "vin", "phone")
    # the contract says nothing: the defaults of schemas/submission.yaml apply
    assert (p.max_error_row_share, p.min_error_rows, p.due_days) == (0.05, 3, 45)
    assert p.description.startswith("One row per premium transaction (new business, renewal,")
    assert "\n" not in p.description


def test_column_types_and_sql_types():
    p = load_contract("policy")
    assert (p.column("accounting_date").base_type, p.column("accounting_date").sql_type) == ("date", "DATE")
    assert (p.column("written_premium").base_type, p.column("written_premium").sql_type) == ("decimal", "DECIMAL(18,2)")
    assert p.column("policy_no").sql_type == "VARCHAR"
    assert p.column("phone").severity == "warn" and p.column("policy_no").severity == "error"
    assert p.column("birth_date").required_when == {"insured_type": ("P",)}
    assert p.column("vin").required_when == {"line_of_business": ("MTPL", "MCOM")}
    assert not p.column("vin").required
    with pytest.raises(ContractError, match=r"^Contract policy 1.0 has no column 'premium'\.$"):
        p.column("premium")
    with pytest.raises(ContractError, match=r"^Contract claim 1.0 has no rule 'CLM-X99'\.$"):
        load_contract("claim").rule("CLM-X99")


def test_code_lists_come_from_codes_yaml():
    p = load_contract("policy")
    assert p.codes_of("transaction_type") == ("NB", "RN", "EN", "CN", "NT")
    assert p.codes_of("gender") == ("M", "F")
    assert len(p.codes_of("region_code")) == 31 and p.codes_of("region_code")[0] == "110000"
    assert p.codes_of("policy_no") == ()        # a column without a code list
    region = load_code_lists()["region"].codes[0]
    assert (region.code, region.en, region.zh) == ("110000", "Beijing", "北京市")


def test_rules_derived_from_column_facts():
    p = load_contract("policy")
    derived = [r.id for r in p.rules if r.source.startswith("schemas/policy.yaml: columns.")]
    assert derived[:6] == ["POL-REQ-policy_no", "POL-FMT-policy_no", "POL-REQ-transaction_id",
                           "POL-FMT-transaction_id", "POL-REQ-transaction_type", "POL-CODE-transaction_type"]
    assert [r for r in derived if r.endswith("product_name")] == [
        "POL-SAFE-product_name", "POL-PII-product_name", "POL-LEN-product_name"]
    assert "POL-REQ-sum_insured" not in derived and "POL-TYPE-sum_insured" in derived
    assert len(derived) == 36

    req = p.rule("POL-REQ-birth_date")
    assert (req.kind, req.severity, req.when) == ("required", "error", {"insured_type": ("P",)})
    assert req.description == ("birth_date is not empty when insured_type is P (a value that is not a date "
                               "(YYYY-MM-DD) fails POL-TYPE-birth_date instead).")
    assert req.fix == "Fill in birth_date on every row where insured_type is P."
    typ = p.rule("POL-TYPE-written_premium")
    assert typ.params == {"type": "DECIMAL(18,2)"}
    assert typ.description == "written_premium parses as a number with at most 2 decimals."
    assert p.rule("POL-TYPE-accounting_date").fix == "Write accounting_date as a date (YYYY-MM-DD)."
    fmt = p.rule("POL-FMT-phone")
    assert (fmt.severity, fmt.params) == ("warn", {"pattern": r"^(\+?86)?1[3-9][0-9]{9}$", "identifier": True})
    assert fmt.touches_identifier_values and not p.rule("POL-FMT-policy_no").touches_identifier_values
    assert p.rule("POL-CODE-region_code").params == {"codes": "region"}
    assert p.rule("POL-CODE-region_code").fix == ("Use a code of the 'region' code list; each submission report "
                                                  "lists every code with its name under Code lists.")
    assert fmt.description == ("phone is a mainland mobile number: 11 digits, 1 then 3 to 9 then nine more digits, "
                               "optionally preceded by 86 or +86 (spreadsheet formulas are refused).")
    assert p.rule("POL-FMT-policy_no").fix == ("Write policy_no as 4 to 40 characters: capital letters A-Z, digits, "
                                               "/ and -, starting with a letter or a digit, as plain text.")
    assert p.rule("POL-LEN-product_name").params == {"max_length": 100}
    assert p.rule("POL-PII-product_name").severity == "warn"
    assert p.rule("POL-REQ-vin").source == "schemas/policy.yaml: columns.vin"


def test_rules_written_in_the_contract_are_parsed():
    p = load_contract("policy")
    x01 = p.rule("POL-X01")
    assert (x01.kind, x01.columns, x01.params["op"]) == ("compare", ("expiry_date", "effective_date"), ">")
    assert x01.source == "schemas/policy.yaml: rules.POL-X01"
    x03 = p.rule("POL-X03")
    assert (x03.kind, x03.column, x03.params, x03.when) == (
        "range", "written_premium", {"column": "written_premium", "min": 0}, {"transaction_type": ("NB", "RN")})
    assert p.rule("POL-X02").params == {"column": "accounting_date", "min": "period_start", "max": "period_end"}
    assert p.rule("POL-X04").severity == "warn"
    assert p.rule("POL-U01").columns == ("transaction_id",)
    assert p.rule("POL-U02").kind == "unique_across_periods"
    id03 = p.rule("POL-ID03")
    assert (id03.kind, id03.columns) == ("resident_id_agrees", ("insured_id", "birth_date", "gender"))
    assert id03.touches_identifier_values
    assert p.rule("POL-ID04").params["scheme"] == "vin"

    c = load_contract("claim")
    assert c.key == ("claim_no", "valuation_date")
    assert c.rule("CLM-U01").columns == ("claim_no", "valuation_date")
    assert c.rule("CLM-V01").severity == "fatal"
    assert c.rule("CLM-X06").params == {"column": "paid_to_date", "min": 0, "reason_code": "NET-RECOVERY"}
    assert c.rule("CLM-ID01").params["scheme"] == "resident_id_or_credit_code"
    assert [r.id for r in c.rules if r.source.startswith("schemas/claim.yaml: rules.")] == [
        "CLM-U01", "CLM-V01", "CLM-X01", "CLM-X02", "CLM-X03", "CLM-X04", "CLM-X05", "CLM-X06", "CLM-X07",
        "CLM-X08", "CLM-ID01", "CLM-D01"]


def test_cross_dataset_rules_name_a_contract_and_one_of_its_columns():
    d01 = load_contract("claim").rule("CLM-D01")
    assert (d01.kind, d01.columns, d01.params) == ("exists_in", ("policy_no",), {"column": "policy_no", "dataset": "policy"})
    assert d01.description == "The claim's policy is in the member's accepted premium data."
    cross = [(c.dataset, r.id, r.params["dataset"], r.params.get("ref_column", r.column))
             for c in map(load_contract, datasets()) for r in c.rules if r.kind == "exists_in"]
    assert cross == [("claim", "CLM-D01", "policy", "policy_no")]
    for _, _, target, column in cross:
        assert column in load_contract(target).column_names


def test_submission_rules():
    sub = load_submission_rules()
    assert (sub.max_error_row_share, sub.min_error_rows, sub.abs_tolerance, sub.rel_tolerance, sub.due_days) == (
        0.05, 3, 0.01, 0.0, 45)
    assert [c.id for c in sub.checks] == [
        "SUB-FILE", "SUB-ENCODING", "SUB-EMPTY", "SUB-COLUMNS-MISSING", "SUB-COLUMNS-EXTRA", "SUB-COLUMNS-DUPLICATE",
        "SUB-ROW-COUNT", "SUB-CONTROL-TOTAL", "SUB-FATAL-ROWS", "SUB-ERROR-SHARE", "SUB-HELD", "SUB-PROCESSING"]
    assert sub.check("SUB-HELD").fix.startswith("Correct and send the rejected premium file again")
    with pytest.raises(ContractError, match=r"^schemas/submission.yaml has no check 'SUB-NOPE'\.$"):
        sub.check("SUB-NOPE")


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(ContractError) as caught:
        load_contract("motor")
    assert str(caught.value) == "Unknown dataset 'motor'. Known datasets: policy, claim."


# -- versions ----------------------------------------------------------------------------------


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    """A copy of schemas/ to break (every test its own folder: the loaders cache by folder)."""
    folder = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, folder)
    return folder


def edit(schemas: Path, dataset: str, change: Callable[[dict], object], to: Path | None = None) -> Path:
    """Apply ``change`` to the parsed YAML of ``dataset`` and write it back (or to ``to``)."""
    raw = yaml.safe_load((schemas / f"{dataset}.yaml").read_text(encoding="utf-8"))
    change(raw)
    target = to or schemas / f"{dataset}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def _older(raw: dict) -> None:
    raw["version"] = "0.9"
    raw["columns"] = [c for c in raw["columns"] if c["name"] != "product_name"]
    raw["max_error_row_share"] = 0.1


def test_an_older_version_is_read_from_versions(schemas):
    edit(schemas, "policy", _older, to=schemas / "versions" / "policy-0.9.yaml")
    assert contract_files("policy", schemas) == [schemas / "policy.yaml", schemas / "versions" / "policy-0.9.yaml"]
    assert sorted(datasets(schemas)) == ["claim", "policy"]          # versions/ holds no new dataset
    old = load_contract("policy", "0.9", schemas)
    assert (old.version, old.source, old.max_error_row_share) == ("0.9", "schemas/versions/policy-0.9.yaml", 0.1)
    assert "product_name" not in old.column_names and len(old.columns) == 19
    assert not any(r.id.endswith("-product_name") for r in old.rules)
    for version in (None, "1.0"):
        current = load_contract("policy", version, schemas)
        assert (current.version, current.source) == ("1.0", "schemas/policy.yaml")
        assert "product_name" in current.column_names


def test_an_unknown_version_names_the_known_ones(schemas):
    edit(schemas, "policy", _older, to=schemas / "versions" / "policy-0.9.yaml")
    with pytest.raises(ContractError) as caught:
        load_contract("policy", "2.0", schemas)
    assert str(caught.value) == ("Contract version '2.0' of dataset 'policy' does not exist. "
                                 "Known versions: 0.9, 1.0.")
    assert caught.value.context == {"dataset": "policy"}
    with pytest.raises(ContractError, match=r"^Contract version '9.9' of dataset 'claim' does not exist\. "
                                            r"Known versions: 1.0\.$"):
        load_contract("claim", "9.9", schemas)


# -- broken contracts: the exact message -------------------------------------------------------


def _column(column: str, **facts: object) -> Callable[[dict], None]:
    def change(raw: dict) -> None:
        for c in raw["columns"]:
            if c["name"] == column:
                c.update(facts)
    return change


def _rule(rule_id: str, **facts: object) -> Callable[[dict], None]:
    def change(raw: dict) -> None:
        for r in raw["rules"]:
            if r["id"] == rule_id:
                r.update(facts)
    return change


def _add_column(**column: object) -> Callable[[dict], None]:
    return lambda raw: raw["columns"].append(column)


BROKEN = {
    "unknown type": (
        _column("sum_insured", type="money"),
        "schemas/policy.yaml: column 'sum_insured' has unknown type 'money'."),
    "unknown code list": (
        _column("channel", codes="channels"),
        "schemas/policy.yaml: column 'channel' names unknown code list 'channels'."),
    "unknown column severity": (
        _column("phone", severity="info"),
        "schemas/policy.yaml: column 'phone' has unknown severity 'info'."),
    "column name not snake_case": (
        _column("policy_no", name="PolicyNo"),
        "schemas/policy.yaml: column name 'PolicyNo' is not snake_case."),
    "duplicate column with rules": (
        _add_column(name="channel", type="string", codes="channel"),
        "schemas/policy.yaml: column(s) ['channel'] are declared twice."),
    "duplicate required column": (
        lambda raw: raw["columns"].append(dict(raw["columns"][0])),
        "schemas/policy.yaml: column(s) ['policy_no'] are declared twice."),
    "duplicate rule id": (
        _rule("POL-X04", id="POL-X03"),
        "schemas/policy.yaml: rule ids ['POL-X03'] are used twice."),
    "key not a column": (
        lambda raw: raw.update(key=["transaction_no"]),
        "schemas/policy.yaml: key or control total 'transaction_no' is not a column."),
    "control total not a column": (
        lambda raw: raw.update(control_totals=["written_premium", "earned_premium"]),
        "schemas/policy.yaml: key or control total 'earned_premium' is not a column."),
    "unknown rule kind": (
        _rule("POL-X01", kind="after"),
        "schemas/policy.yaml: rules.POL-X01: unknown rule kind 'after'."),
    "unknown rule severity": (
        _rule("POL-X04", severity="critical"),
        "schemas/policy.yaml: rules.POL-X04: unknown severity 'critical'."),
    "unknown operator": (
        _rule("POL-X01", op="=>"),
        "schemas/policy.yaml: rules.POL-X01: unknown operator '=>'."),
    "unknown check-digit scheme": (
        _rule("POL-ID04", scheme="iso7064"),
        "schemas/policy.yaml: rules.POL-ID04: unknown check-digit scheme 'iso7064'."),
    "rule on a column not in the contract": (
        _rule("POL-X06", column="sum_assured"),
        "schemas/policy.yaml: rules.POL-X06: column 'sum_assured' is not in the contract."),
    "rule condition on a column not in the contract": (
        _rule("POL-X03", when={"kind": ["NB"]}),
        "schemas/policy.yaml: rules.POL-X03: column 'kind' is not in the contract."),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_broken_contract_says_what_and_where(schemas, case):
    change, message = BROKEN[case]
    edit(schemas, "policy", change)
    with pytest.raises(ContractError) as caught:
        load_contract("policy", schemas_dir=schemas)
    assert str(caught.value) == message


def test_a_broken_older_version_names_its_own_file(schemas):
    edit(schemas, "policy", lambda raw: (_older(raw), _column("sum_insured", type="money")(raw)),
         to=schemas / "versions" / "policy-0.9.yaml")
    assert load_contract("policy", None, schemas).version == "1.0"
    with pytest.raises(ContractError) as caught:
        load_contract("policy", "0.9", schemas)
    assert str(caught.value) == "schemas/versions/policy-0.9.yaml: column 'sum_insured' has unknown type 'money'."


def test_a_missing_shared_file_is_named(schemas):
    (schemas / "codes.yaml").unlink()
    with pytest.raises(ContractError) as caught:
        load_contract("policy", schemas_dir=schemas)
    assert str(caught.value) == f"Contract file {schemas / 'codes.yaml'} is missing."


def test_a_missing_contract_is_an_unknown_dataset(schemas):
    (schemas / "claim.yaml").unlink()
    assert datasets(schemas) == ("policy",)
    with pytest.raises(ContractError) as caught:
        load_contract("claim", schemas_dir=schemas)
    assert str(caught.value) == "Unknown dataset 'claim'. Known datasets: policy."


def test_invalid_yaml_is_named_with_its_position(schemas):
    (schemas / "policy.yaml").write_text("dataset: policy\ncolumns: [\n", encoding="utf-8")
    with pytest.raises(ContractError) as caught:
        load_contract("policy", schemas_dir=schemas)
    text = str(caught.value)
    assert text.startswith(f"Contract file {schemas / 'policy.yaml'} is not valid YAML: ")
    assert "line 3" in text


def test_a_bad_pattern_is_refused_when_the_contract_loads(schemas):
    edit(schemas, "policy", _column("policy_no", pattern="^[A-Z"))
    with pytest.raises(ContractError, match="policy_no"):
        load_contract("policy", schemas_dir=schemas)


def test_a_pattern_without_words_is_refused(schemas):
    edit(schemas, "policy", _column("policy_no", pattern_words=" "))
    with pytest.raises(ContractError) as caught:
        load_contract("policy", schemas_dir=schemas)
    assert str(caught.value) == (
        "schemas/policy.yaml: column 'policy_no' has a pattern but no pattern_words: say in words what it asks for "
        "(e.g. '18 characters: 17 digits then a digit or X'); a member reads the words, not the regular expression.")


def test_no_rule_of_the_shipped_contracts_shows_only_a_regular_expression():
    for dataset in ("policy", "claim"):
        for rule in load_contract(dataset).rules:
            assert "^" not in rule.description + rule.fix and "schemas/codes.yaml" not in rule.fix, rule.id


def test_a_duplicate_plain_column_is_refused(schemas):
    edit(schemas, "policy", lambda raw: raw["columns"].extend([{"name": "note", "type": "string"}] * 2))
    with pytest.raises(ContractError, match="note"):
        load_contract("policy", schemas_dir=schemas)
