"""GX-format validation results from the DuckDB rule engine's counts, without GX's pandas engine.

GX's own engine (``expectations.validate_frame``) reads every row into pandas; for a large batch
the platform's counts already say what GX would: ``result_from_counts`` builds the contract's
suite (``build_suite``) and, per expectation, the ``ExpectationValidationResult`` GX 1.24 would
give with ``result_format="BASIC"``, so Data Docs and reports read the same either way. A
differential test (``tests/validation/test_gx_differential.py``) keeps GX's engine as the oracle.

What GX reports, and what it needs from the engine (GX 1.24, ``_format_map_output``); ``n`` is
the rows the expectation looks at (its ``row_condition``, the rule's ``when``, applied), ``u``
the unexpected rows, ``m`` the missing ones:

* ``expect_column_values_to_not_be_null``: ``element_count`` n, ``unexpected_count`` u,
  ``unexpected_percent`` u / n. No missing fields.
* every other map expectation the contracts use (column, column-pair and compound-column):
  also ``missing_count`` m, ``missing_percent`` m / n, ``unexpected_percent_total`` u / n, and
  ``unexpected_percent`` = ``unexpected_percent_nonmissing`` = u / (n - m). Missing means NULL in
  the column; for a pair (``ignore_row_if="either_value_is_missing"``) either column NULL; for a
  compound key (``"any_value_is_missing"``) any column NULL.
* a percentage over zero rows is None; an expectation over no (non-missing) rows succeeds.

n, u and m are the engine's ``checked``, ``failed`` and ``missing`` of the rule (``check_rows``
counts all three; ``rule_results`` keeps them). Without ``missing`` (submissions published
before it was kept) the missing fields are left out and ``unexpected_percent`` is u / n, which
is GX's value only when the column(s) have no NULL among the n rows.

``partial_unexpected_list`` is the caller's ``samples`` for the rule (cut to GX's 20); without
them it is a list of None for ``not_be_null`` (that is what those values are) and empty for the
rest. ``unexpected_index_list``, ``unexpected_rows`` and the other SUMMARY/COMPLETE fields are
never produced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from pipelines.contracts import DatasetContract
from pipelines.validation.context import CheckContext
from pipelines.validation.expectations import build_suite, import_gx

PARTIAL_UNEXPECTED_COUNT = 20    # GX's partial_unexpected_count in result format BASIC
ENGINE = "insurshare DuckDB rule engine (counts in GX format)"


def _pct(part: int, whole: int) -> float | None:
    return part / whole * 100 if whole > 0 else None


def expectation_result(expectation, checked: int, failed: int, missing: int | None = None,
                       sample: Sequence | None = None):
    """GX's result of one map expectation that looked at ``checked`` rows, ``failed`` of them unexpected."""
    import_gx()
    from great_expectations.core import ExpectationValidationResult
    from great_expectations.expectations import ExpectColumnValuesToNotBeNull
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    if not isinstance(expectation, ColumnMapExpectation | ColumnPairMapExpectation | MulticolumnMapExpectation):
        raise ValueError(f"{type(expectation).__name__} is not a map expectation; its result is not counts")
    if not 0 <= failed <= checked or (missing is not None and not 0 <= missing <= checked - failed):
        raise ValueError(f"inconsistent counts: checked={checked} failed={failed} missing={missing}")
    n, u = checked, failed
    not_null = isinstance(expectation, ExpectColumnValuesToNotBeNull)
    known = not not_null and missing is not None
    considered = n - missing if known else n      # the rows GX's `mostly` is measured on
    mostly = getattr(expectation, "mostly", None)
    mostly = 1.0 if mostly is None else float(mostly)
    success = True if considered == 0 else (considered - u) / considered >= mostly
    if sample is None:
        sample = [None] * u if not_null else []
    result = {"element_count": n, "unexpected_count": u,
              "unexpected_percent": _pct(u, considered) if n > 0 else None,
              "partial_unexpected_list": list(sample)[:PARTIAL_UNEXPECTED_COUNT]}
    if known:
        result.update({"missing_count": missing, "missing_percent": _pct(missing, n),
                       "unexpected_percent_total": _pct(u, n),
                       "unexpected_percent_nonmissing": result["unexpected_percent"]})
    return ExpectationValidationResult(success=success, expectation_config=expectation.configuration,
                                       result=result)


def _ensure_context() -> None:
    """GX builds a suite against the active data context; make an ephemeral one if there is none."""
    gx = import_gx()
    from great_expectations.data_context.data_context.context_factory import project_manager
    from great_expectations.exceptions import DataContextRequiredError

    try:
        project_manager.get_current_project()
    except DataContextRequiredError:
        gx.get_context(mode="ephemeral")


def result_from_counts(contract: DatasetContract, ctx: CheckContext,
                       counts: Mapping[str, tuple[int, int]], references: Mapping[str, Sequence[str]], *,
                       name: str, missing: Mapping[str, int] | None = None,
                       run_time: dt.datetime | None = None,
                       samples: Mapping[str, Sequence] | None = None):
    """The contract's GX suite for one batch and its ``ExpectationSuiteValidationResult`` from counts.

    ``counts``: rule id -> (checked, failed) of the DuckDB engine (a rule missing counts as
    (0, 0)); ``missing``: rule id -> missing rows (see the module docstring; None leaves the
    missing fields out); ``samples``: rule id -> a few unexpected values; ``run_time``: when the
    batch was validated (the run id and validation time of the result). Reads no data; GX only
    needs an active data context to build the suite (an ephemeral one is made if there is none).
    """
    gx = import_gx()
    from great_expectations.core import ExpectationSuiteValidationResult

    _ensure_context()
    suite = build_suite(contract, ctx, name, references)
    samples = samples or {}
    results = []
    for exp in suite.expectations:
        rid = exp.meta["rule_id"]
        checked, failed = counts.get(rid, (0, 0))
        results.append(expectation_result(
            exp, int(checked), int(failed),
            None if missing is None else int(missing.get(rid, 0)),
            samples.get(rid)))
    ok = sum(bool(r.success) for r in results)
    stamp = run_time.isoformat() if run_time else None
    result = ExpectationSuiteValidationResult(
        success=ok == len(results), results=results, suite_name=name,
        statistics={"evaluated_expectations": len(results), "successful_expectations": ok,
                    "unsuccessful_expectations": len(results) - ok,
                    "success_percent": 100.0 * ok / len(results) if results else None},
        meta={"great_expectations_version": gx.__version__,
              "active_batch_definition": {"datasource_name": "insurshare", "data_connector_name": "duckdb",
                                          "data_asset_name": name, "batch_identifiers": {}},
              "run_id": {"run_name": name, "run_time": stamp}, "validation_time": stamp,
              "engine": ENGINE})
    return suite, result
