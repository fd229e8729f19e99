"""The contract as a Great Expectations suite, and GX's own validation of a staged batch.

Each rule that GX can express becomes one expectation carrying ``meta.rule_id``; the rest
(types of raw text, ``required`` on a typed column, which tells an empty value from a malformed
one by its raw text, check digits and other checks on raw identifiers) have no expectation and
are reported as such. NULL behaviour matches the SQL: a missing value fails only ``required``;
pair comparisons ignore rows where either side is missing; ``when`` becomes a pandas
``row_condition``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipelines.contracts import DatasetContract, Rule
from pipelines.core.domain import RuleKind
from pipelines.validation.context import CheckContext
from pipelines.validation.rules_sql import FORMULA_START


def import_gx():
    """``great_expectations``, imported with its usage analytics off; every GX import goes after it.

    Earlier GX 1.x releases read ``GX_ANALYTICS_ENABLED`` once, when first imported, and unless it
    said False sent usage events to GX's servers; the pinned 1.24.1 has no analytics module, so
    this guards a change of version. An operator's own value is kept. Importing GX takes seconds
    (see README's performance section), so it happens here, when GX is first used, never when
    this module is imported.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations

    return great_expectations


@dataclass(frozen=True)
class GxOutcome:
    suite_name: str
    success: bool
    evaluated: int
    successful: int
    unexpected: Mapping[str, int]      # rule id -> GX unexpected count
    expectation_types: Mapping[str, str]
    result: dict[str, Any]


def _bound(value: object, ctx: CheckContext) -> object:
    v = ctx.bound(value)
    return dt.datetime.combine(v, dt.time()) if isinstance(v, dt.date) else v


def _condition(rule: Rule) -> dict[str, object]:
    """The rule's ``when`` as a GX row condition (columns ANDed, each in its list of values)."""
    if not rule.when:
        return {}
    import_gx()
    from great_expectations.expectations.row_conditions import Column

    parts = [Column(col).is_in(list(values)) for col, values in rule.when.items()]
    condition = parts[0]
    for part in parts[1:]:
        condition = condition & part
    return {"row_condition": condition}


def expectation_spec(rule: Rule, contract: DatasetContract, ctx: CheckContext,
                     references: Mapping[str, Sequence[str]]) -> tuple[str, dict[str, Any]] | None:
    """GX's expectation type and arguments for ``rule`` (its ``when`` aside), or None when GX
    cannot express the rule; plain Python, so the reports can show them without importing GX."""
    if rule.touches_identifier_values or rule.kind == RuleKind.TYPE:
        return None
    if rule.kind == RuleKind.REQUIRED and contract.column(rule.column).base_type != "string":
        return None      # reads the raw text (empty, not malformed: ``rules_sql.empty_sql``), like TYPE
    col = rule.column
    kind = rule.kind
    if kind == RuleKind.REQUIRED:
        return "expect_column_values_to_not_be_null", {"column": col}
    if kind == RuleKind.CODES:
        return "expect_column_values_to_be_in_set", {"column": col, "value_set": list(contract.codes_of(col))}
    if kind == RuleKind.PATTERN:
        return "expect_column_values_to_match_regex", {"column": col, "regex": _whole_value(rule.params["pattern"])}
    if kind == RuleKind.FREE_TEXT:
        return "expect_column_values_to_not_match_regex", {"column": col, "regex": FORMULA_START}
    if kind == RuleKind.MAX_LENGTH:
        return "expect_column_value_lengths_to_be_between", {"column": col, "max_value": rule.params["max_length"]}
    if kind == RuleKind.UNIQUE and len(rule.columns) == 1:
        return "expect_column_values_to_be_unique", {"column": col}
    if kind == RuleKind.UNIQUE:
        return "expect_compound_columns_to_be_unique", {"column_list": list(rule.columns),
                                                        "ignore_row_if": "any_value_is_missing"}
    if kind == RuleKind.UNIQUE_ACROSS_PERIODS:
        return "expect_column_values_to_not_be_in_set", {"column": col,
                                                         "value_set": list(references.get(rule.id, []))}
    if kind == RuleKind.EXISTS_IN:
        return "expect_column_values_to_be_in_set", {"column": col, "value_set": list(references.get(rule.id, []))}
    if kind == RuleKind.COMPARE:
        left, right = rule.columns
        op = rule.params["op"]
        if op == "=":
            return "expect_column_pair_values_to_be_equal", {"column_A": left, "column_B": right,
                                                             "ignore_row_if": "either_value_is_missing"}
        a, b = (left, right) if op in (">", ">=") else (right, left)
        return "expect_column_pair_values_a_to_be_greater_than_b", {
            "column_A": a, "column_B": b, "or_equal": op in (">=", "<="), "ignore_row_if": "either_value_is_missing"}
    if kind == RuleKind.RANGE:
        lo, hi = rule.params.get("min"), rule.params.get("max")
        return "expect_column_values_to_be_between", {
            "column": col, "min_value": _bound(lo, ctx) if lo is not None else None,
            "max_value": _bound(hi, ctx) if hi is not None else None}
    return None


def expectation_for(rule: Rule, contract: DatasetContract, ctx: CheckContext,
                    references: Mapping[str, Sequence[str]]):
    """The GX expectation that checks ``rule``, or None when GX cannot express it."""
    spec = expectation_spec(rule, contract, ctx, references)
    if spec is None:
        return None
    import_gx()
    import great_expectations.expectations as gxe

    kind, kwargs = spec
    cls = getattr(gxe, "".join(part.capitalize() for part in kind.split("_")))
    return cls(**kwargs, meta={"rule_id": rule.id}, **_condition(rule))


def build_suite(contract: DatasetContract, ctx: CheckContext, name: str,
                references: Mapping[str, Sequence[str]]):
    """The GX suite of ``contract`` for one submission (period bounds and references resolved)."""
    gx = import_gx()

    suite = gx.ExpectationSuite(name=name, meta={"contract": f"{contract.dataset} {contract.version}"})
    for rule in contract.rules:
        exp = expectation_for(rule, contract, ctx, references)
        if exp is not None:
            suite.add_expectation(exp)
    return suite


def validate_frame(frame: pd.DataFrame, contract: DatasetContract, ctx: CheckContext,
                   references: Mapping[str, Sequence[str]], *, name: str) -> GxOutcome:
    """Validate ``frame`` (typed, pseudonymised rows) with GX's pandas engine."""
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = context.suites.add(build_suite(contract, ctx, name, references))
    batch_def = (context.data_sources.add_pandas("staged")
                 .add_dataframe_asset(name).add_batch_definition_whole_dataframe("batch"))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch_def, suite=suite))
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="BASIC")
    unexpected, types = {}, {}
    for r in result.results:
        rid = r.expectation_config.meta["rule_id"]
        types[rid] = r.expectation_config.type
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise RuntimeError(f"GX could not evaluate {rid}: {r.exception_info.get('exception_message')}")
        unexpected[rid] = int(r.result.get("unexpected_count") or 0)
    stats = result.statistics
    return GxOutcome(suite_name=name, success=bool(result.success),
                     evaluated=int(stats["evaluated_expectations"]),
                     successful=int(stats["successful_expectations"]),
                     unexpected=unexpected, expectation_types=types,
                     result=result.to_json_dict())


def _whole_value(pattern: str) -> str:
    """The contract's pattern as GX's pandas engine must get it: Python's ``$`` also matches
    before a final line break, so an end anchor becomes ``\\Z`` (the DuckDB engine matches the
    whole value, and the contract allows no line break there)."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + "\\Z"
    return pattern
