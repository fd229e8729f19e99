"""Run every row rule of a contract over the staged table in one DuckDB statement.

``check_rows`` turns table ``raw`` (trimmed text) into table ``checked``: typed columns
(identifiers replaced by tokens), the rule ids each row fails by severity, and the reasons.
Rules that read raw identifier values run in the same pass, before the tokens replace them,
so raw identifiers never leave the local staging database. Free-text columns are screened for
identifiers in the same pass (``screening``): every later rule, the quarantine record and the
published value see the text with each identifier masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pipelines.contracts import DatasetContract, Rule
from pipelines.core.checked import ERRORS, FATAL, QUARANTINED, REASONS, RECORD, ROW, RULE_IDS, TABLE, WARNINGS
from pipelines.core.domain import RuleKind
from pipelines.core.sql import ident, literal
from pipelines.validation.context import CheckContext
from pipelines.validation.rules_sql import (
    applies_sql,
    duplicates_cte,
    feature,
    hits_column,
    identifier_features,
    identifier_map_cte,
    reason_sql,
    text_col,
    typed_sql,
    when_sql,
    window_column,
)
from pipelines.validation.screening import hits_query, masked_sql


@dataclass(frozen=True)
class RuleCount:
    rule: Rule
    checked: int
    failed: int
    missing: int | None = None   # checked rows with a NULL in the rule's columns (None: not counted)


def missing_columns(rule: Rule) -> tuple[str, ...]:
    """The columns whose NULL makes GX skip a row for ``rule``'s expectation (none for ``required``)."""
    if rule.kind == RuleKind.REQUIRED:
        return ()
    if rule.kind in (RuleKind.COMPARE, RuleKind.UNIQUE):
        return tuple(rule.columns)
    return (rule.column,)


def missing_sql(rule: Rule) -> str | None:
    """Count of the rows ``rule`` applies to with a NULL in one of its columns (GX's missing)."""
    columns = missing_columns(rule)
    if not columns:
        return None
    nulls = " OR ".join(f"{ident(c)} IS NULL" for c in columns)
    return f"count(*) FILTER (WHERE ({when_sql(rule)}) AND ({nulls}))"


@dataclass(frozen=True)
class RowCheck:
    rows: int
    error_rows: int
    fatal_rows: int
    warned_rows: int
    quarantined_rows: int
    counts: tuple[RuleCount, ...]

    def failed(self, rule_id: str) -> int:
        return next(c.failed for c in self.counts if c.rule.id == rule_id)


# Up to this many rows the typed intermediate (read by the duplicate and identifier CTEs and the
# join) is materialised once (faster while it fits in memory); above it it is streamed, since
# spilling it to disk costs more than computing it again (10M claim rows: 65 s materialised, 27 s
# streamed, 1.5 GB memory limit). The flagged rows are read once: never materialised (a second
# wide copy of the rows, tokens included, was most of the statement's peak memory).
MATERIALISE_UP_TO = 2_000_000


def checked_sql(contract: DatasetContract, ctx: CheckContext, *, materialise: bool = True) -> str:
    """The statement that creates table ``checked`` (``pipelines.core.checked``) from view ``raw``."""
    cols = contract.columns
    typed = ", ".join(
        [f"{typed_sql(c, ctx.file_format)} AS {ident(c.name)}" for c in cols]
        + [f"{ident(c.name)} AS {text_col(c.name)}" for c in cols if c.base_type != "string"])
    typed = _screened(contract, f"SELECT __row, {typed} FROM raw")
    ctes, joins, extra = [], [], []
    for rule in contract.rules:
        dup = duplicates_cte(rule)
        if dup:
            ctes.append(dup[0])
            joins.append(dup[1])
            extra.append(window_column(rule))
    for column, features in identifier_features(contract).items():
        cte, join, columns = identifier_map_cte(column, features)
        ctes.append(cte)
        joins.append(join)
        extra.append(columns)
    flags = ", ".join(f"{applies_sql(r, contract, ctx)} AS {ident('__f_' + r.id)}" for r in contract.rules)
    any_flag = " OR ".join(ident("__f_" + r.id) for r in contract.rules) or "false"

    def id_list(severities: tuple[str, ...]) -> str:
        items = [f"CASE WHEN {ident('__f_' + r.id)} THEN {literal(r.id)} END"
                 for r in contract.rules if r.severity in severities]
        return (f"CASE WHEN __any THEN list_filter([{', '.join(items) or 'NULL'}]::VARCHAR[], x -> x IS NOT NULL) "
                "ELSE []::VARCHAR[] END")

    reasons = ", ".join(f"CASE WHEN {ident('__f_' + r.id)} THEN {reason_sql(r, contract, ctx)} END"
                        for r in contract.rules)
    out_cols = ", ".join(f"{feature(c.name, 'tok')} AS {ident(c.name)}" if c.identifier else ident(c.name) for c in cols)
    # The row as received (trimmed text; identifiers as tokens), for the quarantine: built in this
    # pass for flagged rows only, so that publishing need not read the raw rows again.
    record = ", ".join(f"{ident(c.name)} := {_as_received(c)}" for c in cols)
    how = "MATERIALIZED" if materialise else "NOT MATERIALIZED"
    return f"""
CREATE TABLE {TABLE} AS
WITH typed AS {how} ({typed}),
{''.join(c + ', ' for c in ctes)}
joined AS (SELECT typed.*{''.join(', ' + e for e in extra)} FROM typed {' '.join(joins)}),
flagged AS NOT MATERIALIZED (SELECT *, {flags} FROM joined),
marked AS (SELECT *, ({any_flag}) AS __any FROM flagged)
SELECT {ROW}, {out_cols},
  {id_list(('error',))} AS {ERRORS},
  {id_list(('fatal',))} AS {FATAL},
  {id_list(('warn',))} AS {WARNINGS},
  CASE WHEN __any THEN list_filter([{reasons}]::VARCHAR[], x -> x IS NOT NULL) ELSE []::VARCHAR[] END AS {REASONS},
  CASE WHEN __any THEN CAST(to_json(struct_pack({record})) AS VARCHAR) END AS {RECORD}
FROM marked
"""


def _screened(contract: DatasetContract, typed: str) -> str:
    """``typed`` with each screened free-text column's identifiers listed (raw, in ``__pii_<column>``)
    and masked in the column itself."""
    screened = [r.column for r in contract.rules if r.kind == RuleKind.IDENTIFIERS_IN_TEXT]
    if not screened:
        return typed
    joins = " ".join(f"LEFT JOIN ({hits_query(ident(c))}) AS {ident('p_' + c)} ON {ident('p_' + c)}.__row = t.__row"
                     for c in screened)
    hits = ", ".join(f"coalesce({ident('p_' + c)}.hits, []::VARCHAR[]) AS {hits_column(c)}" for c in screened)
    masked = ", ".join(f"{masked_sql('t.' + ident(c), ident('p_' + c) + '.hits')} AS {ident(c)}" for c in screened)
    return f"SELECT t.* REPLACE ({masked}), {hits} FROM ({typed}) AS t {joins}"


def _as_received(col) -> str:
    """A column's value as the member sent it (trimmed), with an identifier as its token."""
    if col.identifier:
        return feature(col.name, "tok")
    return ident(col.name) if col.base_type == "string" else text_col(col.name)


def check_rows(con: duckdb.DuckDBPyConnection, contract: DatasetContract,
               ctx: CheckContext) -> RowCheck:
    """Create table ``checked`` and count, per rule, the rows it applied to and failed."""
    rows = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    con.execute(checked_sql(contract, ctx, materialise=rows <= MATERIALISE_UP_TO))
    applies = ", ".join(f"count(*) FILTER (WHERE {when_sql(r)})" for r in contract.rules)
    missing = [(r.id, sql) for r in contract.rules if (sql := missing_sql(r))]
    totals = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE len({ERRORS}) > 0), "
        f"count(*) FILTER (WHERE len({FATAL}) > 0), count(*) FILTER (WHERE len({WARNINGS}) > 0), "
        f"count(*) FILTER (WHERE {QUARANTINED}), "
        f"{applies}{''.join(', ' + sql for _, sql in missing)} FROM {TABLE}").fetchone()
    n = 5 + len(contract.rules)
    nulls = {rid: totals[n + i] for i, (rid, _) in enumerate(missing)}
    failed = dict(con.execute(
        f"SELECT rule_id, count(*) FROM (SELECT unnest({RULE_IDS}) AS rule_id "
        f"FROM {TABLE}) GROUP BY rule_id").fetchall())
    counts = tuple(RuleCount(rule=r, checked=totals[5 + i], failed=failed.get(r.id, 0), missing=nulls.get(r.id))
                   for i, r in enumerate(contract.rules))
    return RowCheck(rows=totals[0], error_rows=totals[1], fatal_rows=totals[2],
                    warned_rows=totals[3], quarantined_rows=totals[4], counts=counts)


def quarantine_select(contract: DatasetContract) -> str:
    """Rows failing an error or fatal rule, with reasons and the pseudonymised record as JSON."""
    return (f"SELECT {ROW} AS source_row, {RULE_IDS} AS rule_ids, "
            f"{REASONS} AS reasons, {RECORD} AS record FROM {TABLE} WHERE {QUARANTINED}")
