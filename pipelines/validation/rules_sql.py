"""Contract rules compiled to DuckDB SQL.

For every rule: the condition under which a row fails it (over the typed columns of the
``typed`` relation; NULL never fails a rule other than ``required``, which fails only an empty
value: a malformed one fails the type rule alone), the reason a member
reads, and the condition under which the rule applies at all (its ``when``). Values of
identifier columns never appear in a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.contracts import Column, DatasetContract, Rule
from pipelines.core.domain import RuleKind
from pipelines.core.sql import ident, literal
from pipelines.privacy import checkdigits
from pipelines.privacy.tokens import token_sql
from pipelines.validation.context import CheckContext
from pipelines.validation.screening import kinds_sql

FORMULA_START = r"^[=+\-@\t\r]"


def text_col(name: str) -> str:
    return ident(f"{name}__text")


def shown(expr: str) -> str:
    """A value as shown in a reason: quoted and cut to 40 characters."""
    return f"'''' || left(CAST({expr} AS VARCHAR), 40) || ''''"


# -- typing ------------------------------------------------------------------------------

def typed_sql(col: Column, file_format: str) -> str:
    """The typed value of a column from its trimmed text; NULL when it does not parse exactly."""
    v = ident(col.name)
    if col.base_type == "string":
        return f"upper({v})" if col.identifier else v
    if col.base_type == "date":
        forms = [f"TRY_CAST({v} AS DATE)",
                 f"CAST(try_strptime({v}, '%Y/%m/%d') AS DATE)",
                 f"CAST(try_strptime({v}, '%Y%m%d') AS DATE)",
                 f"CASE WHEN regexp_full_match({v}, '\\d{{4}}-\\d{{2}}-\\d{{2}}[ T]00:00:00(\\.0+)?') "
                 f"THEN TRY_CAST(left({v}, 10) AS DATE) END"]
        if file_format == "xlsx":  # spreadsheet serial day numbers
            forms.append(f"CASE WHEN regexp_full_match({v}, '[1-9][0-9]{{1,5}}(\\.[0-9]+)?') "
                         f"THEN DATE '1899-12-30' + CAST(floor(CAST({v} AS DOUBLE)) AS INTEGER) END")
        return f"coalesce({', '.join(forms)})"
    if col.base_type == "decimal":
        # A plain decimal with at most the column's precision and scale (trailing zeros allowed);
        # a regular expression is exact and ~50x faster than comparing with a wider cast.
        precision, scale = (int(x) for x in col.type[col.type.index("(") + 1:-1].split(","))
        shape = f"[+-]?[0-9]{{0,{precision - scale}}}([.][0-9]{{0,{scale}}}0*)?"
        return (f"CASE WHEN regexp_full_match({v}, '{shape}') AND regexp_matches({v}, '[0-9]') "
                f"THEN TRY_CAST({v} AS {col.sql_type}) END")
    return f"CASE WHEN TRY_CAST({v} AS DOUBLE) = TRY_CAST({v} AS BIGINT) THEN TRY_CAST({v} AS BIGINT) END"


# -- conditions --------------------------------------------------------------------------

def when_sql(rule: Rule) -> str:
    """When the rule applies; a NULL in a condition column means it does not."""
    if not rule.when:
        return "true"
    parts = [f"coalesce({ident(c)} IN ({', '.join(literal(v) for v in values)}), false)"
             for c, values in rule.when.items()]
    return " AND ".join(parts)


def reference_table(rule: Rule) -> str:
    return "ref_" + rule.id.lower().replace("-", "_")


def window_column(rule: Rule) -> str:
    """How many rows share the key of a unique rule (set only where the key repeats)."""
    return ident(f"__n_{rule.id}")


def duplicates_cte(rule: Rule) -> tuple[str, str] | None:
    """For a unique rule: a CTE of the repeated keys with their counts, and its join condition.

    An aggregate over the keys and a join of the (few) repeated ones is much cheaper than a
    window over every row.
    """
    if rule.kind != RuleKind.UNIQUE:
        return None
    name = ident(f"dup_{rule.id}")
    cols = ", ".join(ident(c) for c in rule.columns)
    not_null = " AND ".join(f"{ident(c)} IS NOT NULL" for c in rule.columns)
    cte = (f"{name} AS (SELECT {cols}, count(*) AS {window_column(rule)} FROM typed WHERE {not_null} "
           f"GROUP BY ALL HAVING count(*) > 1)")
    on = " AND ".join(f"typed.{ident(c)} = {name}.{ident(c)}" for c in rule.columns)
    return cte, f"LEFT JOIN {name} ON {on}"


def identifier_features(contract: DatasetContract) -> dict[str, set[str]]:
    """Per identifier column, what the rules need to know of its raw values."""
    needs: dict[str, set[str]] = {c: set() for c in contract.identifier_columns}
    for rule in contract.rules:
        if rule.kind == RuleKind.CHECK_DIGIT:
            scheme = rule.params["scheme"]
            needs[rule.column] |= ({"resident_id", "credit_code"} if scheme == "resident_id_or_credit_code"
                                   else {scheme})
        elif rule.kind == RuleKind.RESIDENT_ID_AGREES:
            needs[rule.column] |= {"resident_id", "birth", "gender"}
    return needs


def hits_column(column: str) -> str:
    """The column of ``typed`` listing the identifiers found in free-text ``column`` (raw values)."""
    return ident(f"__pii_{column}")


def feature(column: str, name: str) -> str:
    """The column of the identifier map holding ``name`` for ``column`` (``tok``: its token)."""
    return ident(f"{column}__{name}")


def identifier_map_cte(column: str, features: set[str]) -> tuple[str, str, str]:
    """A CTE computing, once per distinct value of an identifier column, its token and checks.

    Identifiers repeat (an insured's every transaction, a vehicle's every policy): hashing and
    checking each distinct value once, then joining, costs a little for unique values and saves
    most of the work for repeated ones. The raw values stay in the staging database.
    """
    name = ident(f"idm_{column}")
    parts = [f"{token_sql('v')} AS {feature(column, 'tok')}"]
    for f in sorted(features):
        if f in checkdigits.CHECK_DIGIT_SCHEMES_SQL:
            parts.append(f"{checkdigits.valid_sql(f, 'v')} AS {feature(column, f)}")
        elif f == "birth":
            parts.append(f"{checkdigits.resident_id_birth_date_sql('v')} AS {feature(column, f)}")
        elif f == "gender":
            parts.append(f"{checkdigits.resident_id_gender_sql('v')} AS {feature(column, f)}")
    cte = (f"{name} AS MATERIALIZED (SELECT v, {', '.join(parts)} FROM "
           f"(SELECT DISTINCT {ident(column)} AS v FROM typed WHERE {ident(column)} IS NOT NULL))")
    cols = ", ".join([f"{name}.{feature(column, 'tok')}"] + [f"{name}.{feature(column, f)}" for f in sorted(features)])
    return cte, f"LEFT JOIN {name} ON {name}.v = typed.{ident(column)}", cols


def empty_sql(col: Column) -> str:
    """Whether the member left ``col`` empty: its trimmed text is NULL (staging makes a blank
    value NULL). A value that is present but does not read as the column's type is not empty:
    it fails the column's type rule only (its typed value is NULL too, which is why ``required``
    looks at the text), so one malformed value is one validity failure, never a missing one."""
    return f"{ident(col.name) if col.base_type == 'string' else text_col(col.name)} IS NULL"


def fail_sql(rule: Rule, contract: DatasetContract, ctx: CheckContext) -> str:
    """The condition under which a row fails ``rule`` (before applying ``when``)."""
    c = ident(rule.column)
    kind = rule.kind
    if kind == RuleKind.REQUIRED:
        return empty_sql(contract.column(rule.column))
    if kind == RuleKind.TYPE:
        return f"{text_col(rule.column)} IS NOT NULL AND {c} IS NULL"
    if kind == RuleKind.CODES:
        values = ", ".join(literal(v) for v in contract.codes_of(rule.column))
        return f"{c} NOT IN ({values})"
    if kind == RuleKind.PATTERN:
        return f"NOT regexp_full_match({c}, {literal(rule.params['pattern'])})"
    if kind == RuleKind.FREE_TEXT:
        return f"regexp_matches({c}, {literal(FORMULA_START)})"
    if kind == RuleKind.MAX_LENGTH:
        return f"length({c}) > {int(rule.params['max_length'])}"
    if kind == RuleKind.IDENTIFIERS_IN_TEXT:
        return f"len({hits_column(rule.column)}) > 0"
    if kind == RuleKind.UNIQUE:
        return f"{window_column(rule)} IS NOT NULL"
    if kind in (RuleKind.UNIQUE_ACROSS_PERIODS, RuleKind.EXISTS_IN):
        neg = "" if kind == RuleKind.UNIQUE_ACROSS_PERIODS else "NOT "
        return f"{c} IS NOT NULL AND {c} {neg}IN (SELECT value FROM {reference_table(rule)})"
    if kind == RuleKind.COMPARE:
        left, right = ident(rule.columns[0]), ident(rule.columns[1])
        op = "=" if rule.params["op"] == "=" else rule.params["op"]
        return f"{left} IS NOT NULL AND {right} IS NOT NULL AND NOT ({left} {op} {right})"
    if kind == RuleKind.RANGE:
        parts = []
        if rule.params.get("min") is not None:
            parts.append(f"{c} < {literal(ctx.bound(rule.params['min']))}")
        if rule.params.get("max") is not None:
            parts.append(f"{c} > {literal(ctx.bound(rule.params['max']))}")
        return f"({' OR '.join(parts)})"
    if kind == RuleKind.CHECK_DIGIT:
        scheme = rule.params["scheme"]
        ok = (f"({feature(rule.column, 'resident_id')} OR {feature(rule.column, 'credit_code')})"
              if scheme == "resident_id_or_credit_code" else feature(rule.column, scheme))
        return f"{c} IS NOT NULL AND NOT coalesce({ok}, false)"
    if kind == RuleKind.RESIDENT_ID_AGREES:
        rid, birth, gender = rule.columns
        # a gender that is no code at all fails the code rule alone: it cannot also disagree
        codes = contract.codes_of(gender)
        known = f" AND {ident(gender)} IN ({', '.join(literal(v) for v in codes)})" if codes else ""
        return (f"coalesce({feature(rid, 'resident_id')}, false) AND ("
                f"coalesce({ident(birth)} <> {feature(rid, 'birth')}, false) OR "
                f"coalesce({ident(gender)} <> {feature(rid, 'gender')}{known}, false))")
    raise ValueError(f"rule {rule.id}: no SQL for kind {kind!r}")


def applies_sql(rule: Rule, contract: DatasetContract, ctx: CheckContext) -> str:
    """The full failing condition: applies, and fails; never NULL."""
    return f"coalesce(({when_sql(rule)}) AND ({fail_sql(rule, contract, ctx)}), false)"


@dataclass(frozen=True)
class _Sql:
    """An SQL expression inside a message built by ``_text`` (everything else is text)."""

    expr: str


def _text(*parts: str | _Sql) -> str:
    """An SQL string expression: text parts become escaped literals, ``_Sql`` parts stay SQL.

    Contract words (column names, patterns, dataset names) are text like any other: a pattern
    holding a quote must not end the literal."""
    return " || ".join(p.expr if isinstance(p, _Sql) else literal(p) for p in parts)


def reason_sql(rule: Rule, contract: DatasetContract, ctx: CheckContext) -> str:
    """What a member reads for a failing row; identifier values are never shown."""
    col = rule.column
    c = ident(col)
    is_identifier = contract.column(col).identifier
    kind = rule.kind
    if kind == RuleKind.REQUIRED:
        cond = " and ".join(f"{k} is {'/'.join(v)}" for k, v in rule.when.items())
        text = _text(f"{col} is empty; it is required" + (f" when {cond}" if cond else ""))
    elif kind == RuleKind.TYPE:
        text = _text(f"{col} ", _Sql(shown(text_col(col))), _Sql(_type_problem(contract.column(col))))
    elif kind == RuleKind.CODES:
        text = _text(f"{col} ", _Sql(shown(c)), f" is not in code list {contract.column(col).codes}"
                     + _codes_hint(contract.codes_of(col)))
    elif kind == RuleKind.PATTERN and is_identifier:
        text = _text(f"{col} is not {contract.column(col).pattern_words}")
    elif kind == RuleKind.PATTERN:
        text = _text(f"{col} ", _Sql(shown(c)), _Sql(
            f"CASE WHEN regexp_matches({c}, {literal(FORMULA_START)}) THEN {literal(' looks like a spreadsheet formula')} "
            f"ELSE {literal(' is not ' + str(contract.column(col).pattern_words))} END"))
    elif kind == RuleKind.FREE_TEXT:
        text = _text(f"{col} starts with ", _Sql(shown(f"left({c}, 1)")), " (a spreadsheet formula)")
    elif kind == RuleKind.MAX_LENGTH:
        text = _text(f"{col} has ", _Sql(f"length({c})"), f" characters, more than {rule.params['max_length']}")
    elif kind == RuleKind.IDENTIFIERS_IN_TEXT:
        text = _text(f"{col} holds what looks like: ", _Sql(kinds_sql(hits_column(col))),
                     " (masked in the published value)")
    elif kind == RuleKind.UNIQUE:
        key = " || '/' || ".join(f"CAST({ident(x)} AS VARCHAR)" for x in rule.columns)
        text = _text(f"{'/'.join(rule.columns)} ", _Sql(shown(key)), " appears ", _Sql(window_column(rule)),
                     " times")
    elif kind == RuleKind.UNIQUE_ACROSS_PERIODS:
        text = _text(f"{col} ", _Sql(shown(c)), " is already published for another period")
    elif kind == RuleKind.EXISTS_IN:
        text = _text(f"{col} ", _Sql(shown(c)), f" is not in the member's accepted {rule.params['dataset']} data")
    elif kind == RuleKind.COMPARE:
        left, right = rule.columns
        text = _text(f"{left} ", _Sql(shown(ident(left))), f" is not {rule.params['op']} {right} ",
                     _Sql(shown(ident(right))))
    elif kind == RuleKind.RANGE:
        lo, hi = rule.params.get("min"), rule.params.get("max")
        bounds = " and ".join(
            [f"at least {ctx.bound(lo)}" for _ in [0] if lo is not None]
            + [f"at most {ctx.bound(hi)}" for _ in [0] if hi is not None])
        text = _text(f"{col} ", _Sql(shown(c)), f" is not {bounds}")
    elif kind == RuleKind.CHECK_DIGIT:
        text = _text(f"{col} is not a valid {rule.params['scheme'].replace('_', ' ')} (format or check character)")
    elif kind == RuleKind.RESIDENT_ID_AGREES:
        text = _text(f"{rule.columns[1]} or {rule.columns[2]} disagrees with the resident identity number")
    else:
        text = _text("failed")
    return _text(f"{rule.id}: ", _Sql(f"({text})"))


SHORT_CODE_LIST = 12     # a code list this short is spelled out in the reason


def _codes_hint(codes: tuple[str, ...]) -> str:
    return f"; use one of {', '.join(codes)}" if 0 < len(codes) <= SHORT_CODE_LIST else ""


def _type_problem(col: Column) -> str:
    """SQL of what is wrong with a value of ``col`` that does not read as its type, in words
    that say how to write it: too many decimals, too many digits, not a number, no such day."""
    t = text_col(col.name)
    if col.base_type == "date":
        return (f"CASE WHEN regexp_full_match({t}, '[0-9]{{4}}[-/]?[0-9]{{2}}[-/]?[0-9]{{2}}') "
                f"THEN {literal(' is not a date (YYYY-MM-DD): there is no such day; check the month and day')} "
                f"ELSE {literal(' is not a date (YYYY-MM-DD); write it as YYYY-MM-DD, e.g. 2024-03-31')} END")
    if col.base_type == "decimal":
        precision, scale = (int(x) for x in col.type[col.type.index("(") + 1:-1].split(","))
        places = f"length(rtrim(regexp_extract({t}, '[.]([0-9]*)$', 1), '0'))"
        digits = f"length(regexp_extract({t}, '^[+-]?([0-9]*)', 1))"
        not_number = literal(" is not a number; write digits with a decimal point only (no thousands separators, "
                             "currency or units), e.g. 1234.50")
        return (f"CASE WHEN NOT regexp_full_match({t}, '[+-]?[0-9]*([.][0-9]*)?') OR NOT regexp_matches({t}, '[0-9]') "
                f"THEN {not_number} "
                f"WHEN {places} > {scale} THEN ' has ' || {places} || {literal(f' decimals; at most {scale}: round it')} "
                f"ELSE ' has ' || {digits} || {literal(f' digits before the decimal point; at most {precision - scale}')} "
                "END")
    return literal(" is not a whole number; write digits only, e.g. 12")
