"""The validation stage: one call from a staged file to its checked rows, control totals and GX result.

``validate`` takes the staging database in which staging left view ``raw`` and, there:

1. copies from the lake the member's published values that the cross-dataset rules look up
   (``exists_in``, ``unique_across_periods``) into reference tables of the staging database;
2. binds the pseudonymisation key and runs every row rule in one statement (``engine.check_rows``),
   which creates table ``checked`` (``pipelines.core.checked``) with identifiers already tokens;
3. sums the contract's control-total columns over ``checked`` and counts, per column, the rows
   whose value could not be read (they break the column's type rule, so they add nothing);
4. runs GX's pandas engine on the pseudonymised rows, the oracle of the SQL engine (skipped
   above ``settings.gx_max_rows`` rows).

Deciding (``pipelines.verdict``) and publishing are the caller's. ``validate`` writes nothing
to the lake: it only reads the reference values from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from decimal import Decimal

import duckdb

from pipelines import store
from pipelines.config import Settings
from pipelines.contracts import DatasetContract, Rule
from pipelines.core.checked import ERRORS, ROW, TABLE
from pipelines.core.domain import RuleKind, parse_period
from pipelines.core.sql import ident
from pipelines.faults import checkpoint
from pipelines.privacy.tokens import PseudonymKey, bind_key
from pipelines.validation.context import CheckContext
from pipelines.validation.engine import RowCheck, check_rows
from pipelines.validation.expectations import GxOutcome, validate_frame
from pipelines.validation.rules_sql import reference_table

L = store.LAKE
LOOKUP_KINDS = ("exists_in", "unique_across_periods")   # rules that read the member's published rows


@dataclass(frozen=True)
class Validation:
    """What ``validate`` found in one staged file; table ``checked`` holds the rows themselves."""

    check: RowCheck                 # rows, per-rule counts, rows to quarantine
    totals: dict[str, Decimal]      # control-total column -> sum of its readable values
    unreadable: dict[str, int]      # control-total column -> rows whose value is not readable
    gx: GxOutcome | None            # None: not run (above settings.gx_max_rows)
    timings: dict[str, float] = field(default_factory=dict)   # "validation" and "gx", in seconds


def validate(st: duckdb.DuckDBPyConnection, lake: duckdb.DuckDBPyConnection, contract: DatasetContract, *,
             member_id: str, period: str, file_format: str, key: PseudonymKey, settings: Settings,
             name: str) -> Validation:
    """Check the rows staged in ``st`` (view ``raw``) against ``contract`` for one submission.

    ``lake`` is read for the member's published values that cross-dataset rules look up;
    ``name`` (the submission id) names the GX suite and is the subject of the fault points.
    """
    ctx = CheckContext(member_id=member_id, period=parse_period(period), file_format=file_format)
    references = _load_references(lake, st, contract, ctx)
    ctx = replace(ctx, references={r.id: reference_table(r) for r in references})
    timings: dict[str, float] = {}
    t1 = time.perf_counter()
    bind_key(st, key)
    check = check_rows(st, contract, ctx)
    timings["validation"] = time.perf_counter() - t1
    checkpoint(settings, "after-validation", name)
    totals, unreadable = _control_totals(st, contract)
    t2 = time.perf_counter()
    gx = _run_gx(st, settings, contract, ctx, check, references, name)
    timings["gx"] = time.perf_counter() - t2
    return Validation(check=check, totals=totals, unreadable=unreadable, gx=gx, timings=timings)


def _load_references(lake: duckdb.DuckDBPyConnection, st: duckdb.DuckDBPyConnection,
                     contract: DatasetContract, ctx: CheckContext) -> list[Rule]:
    """Copy the member's published values that cross-dataset rules look up from the lake into
    tables of the staging database (as Arrow: the staging database cannot reach the lake)."""
    rules = []
    for rule in contract.rules:
        if rule.kind not in LOOKUP_KINDS:
            continue
        dataset = rule.params.get("dataset", contract.dataset)
        column = rule.params.get("ref_column", rule.column)
        other_periods = "AND period <> ?" if rule.kind == RuleKind.UNIQUE_ACROSS_PERIODS else ""
        args = [ctx.member_id] + ([ctx.period.label] if other_periods else [])
        values = lake.execute(f"SELECT DISTINCT {ident(column)} AS value FROM {L}.{dataset} "
                              f"WHERE member_id = ? {other_periods} AND {ident(column)} IS NOT NULL",
                              args).to_arrow_table()
        st.register("_reference_values", values)
        try:
            st.execute(f"CREATE OR REPLACE TABLE {reference_table(rule)} AS SELECT value FROM _reference_values")
        finally:
            st.unregister("_reference_values")
        rules.append(rule)
    return rules


def _type_rules(contract: DatasetContract, column: str) -> list[str]:
    """The ids of the rules a value of ``column`` breaks when it cannot be read as its type."""
    return [r.id for r in contract.rules if r.kind == RuleKind.TYPE and r.column == column]


def _control_totals(st: duckdb.DuckDBPyConnection, contract: DatasetContract
                    ) -> tuple[dict[str, Decimal], dict[str, int]]:
    """Per control-total column: the sum over table ``checked`` (an unreadable value is NULL and
    adds nothing), and the rows whose value breaks the column's type rule."""
    cols = contract.control_totals
    if not cols:
        return {}, {}
    sums = ", ".join(f"coalesce(sum({ident(c)}), 0)" for c in cols)
    bad = ", ".join(f"count(*) FILTER (WHERE list_has_any({ERRORS}, ?::VARCHAR[]))" for _ in cols)
    row = st.execute(f"SELECT {sums}, {bad} FROM {TABLE}", [_type_rules(contract, c) for c in cols]).fetchone()
    n = len(cols)
    return ({c: Decimal(str(row[i])) for i, c in enumerate(cols)},
            {c: int(row[n + i]) for i, c in enumerate(cols)})


def _run_gx(st: duckdb.DuckDBPyConnection, settings: Settings, contract: DatasetContract,
            ctx: CheckContext, check: RowCheck, references: list[Rule], name: str) -> GxOutcome | None:
    """GX's pandas engine on the pseudonymised batch, up to ``gx_max_rows`` rows, when the operator
    turned it on at ingestion (``gx_at_ingest``); None otherwise (the result in GX's format is then
    made from the engine's counts, ``gx_results``)."""
    if not settings.gx_at_ingest or check.rows > settings.gx_max_rows:
        return None
    cols = ", ".join(ident(c.name) for c in contract.columns)
    frame = st.execute(f"SELECT {cols} FROM {TABLE} ORDER BY {ROW}").df()
    values = {r.id: [v[0] for v in st.execute(f"SELECT value FROM {reference_table(r)}").fetchall()]
              for r in references}
    return validate_frame(frame, contract, ctx, values, name=name)
