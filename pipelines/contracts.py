"""Dataset contracts: the one source of truth for columns, code lists, keys and rules.

A contract is read from ``schemas/<dataset>.yaml`` (older versions from
``schemas/versions/<dataset>-<version>.yaml``) together with ``schemas/codes.yaml`` and
``schemas/submission.yaml``. Column facts (required, type, code list, pattern, free text,
length) become rules here, with ids derived from the column name, so that every check the
platform runs is a ``Rule`` with a stable id, a severity, a description and a fix.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pipelines.config import SCHEMAS_DIR
from pipelines.core.domain import RuleKind
from pipelines.errors import ContractError

SEVERITIES = ("fatal", "error", "warn")
BASE_TYPES = ("string", "date", "integer", "decimal")
ROW_RULE_KINDS = tuple(k.value for k in RuleKind)
CHECK_DIGIT_SCHEMES = ("resident_id", "credit_code", "vin", "resident_id_or_credit_code")
COMPARE_OPS = (">", ">=", "<", "<=", "=")
PERIOD_BOUNDS = ("period_start", "period_end")


@dataclass(frozen=True)
class Code:
    code: str
    en: str
    zh: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CodeList:
    name: str
    description: str
    codes: tuple[Code, ...]

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.codes)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    required: bool = False
    required_when: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    codes: str | None = None
    pattern: str | None = None
    pattern_words: str | None = None     # what ``pattern`` asks for, as a member reads it
    identifier: bool = False
    free_text: bool = False
    max_length: int | None = None
    severity: str = "error"

    @property
    def base_type(self) -> str:
        return self.type.split("(")[0]

    @property
    def sql_type(self) -> str:
        return {"string": "VARCHAR", "date": "DATE", "integer": "BIGINT"}.get(
            self.base_type, self.type.upper())


@dataclass(frozen=True)
class Rule:
    """One check on rows, with its id, severity and the text a member reads when it fails."""

    id: str
    kind: RuleKind
    severity: str
    description: str
    fix: str
    columns: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    when: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = ""

    @property
    def column(self) -> str:
        return self.columns[0]

    @property
    def touches_identifier_values(self) -> bool:
        """Rules that read raw identifier values run before tokenisation and only in SQL."""
        return self.kind in (RuleKind.CHECK_DIGIT, RuleKind.RESIDENT_ID_AGREES, RuleKind.IDENTIFIERS_IN_TEXT) or bool(
            self.params.get("identifier"))


@dataclass(frozen=True)
class SubmissionCheck:
    id: str
    description: str
    fix: str


@dataclass(frozen=True)
class DatasetContract:
    dataset: str
    version: str
    title: str
    description: str
    grain: str
    rule_prefix: str
    key: tuple[str, ...]
    control_totals: tuple[str, ...]
    columns: tuple[Column, ...]
    rules: tuple[Rule, ...]
    code_lists: Mapping[str, CodeList]
    max_error_row_share: float
    due_days: int
    source: str
    min_error_rows: int = 3     # rejected only above the share AND above this many error rows
    business_keys: tuple[str, ...] = ()   # how the member finds a row in its own systems (default: key)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def identifier_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.identifier)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise ContractError(f"Contract {self.dataset} {self.version} has no column {name!r}.")

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise ContractError(f"Contract {self.dataset} {self.version} has no rule {rule_id!r}.")

    def codes_of(self, column: str) -> tuple[str, ...]:
        name = self.column(column).codes
        return self.code_lists[name].values if name else ()


@dataclass(frozen=True)
class SubmissionRules:
    checks: tuple[SubmissionCheck, ...]
    max_error_row_share: float
    min_error_rows: int
    abs_tolerance: float
    rel_tolerance: float
    due_days: int

    def check(self, check_id: str) -> SubmissionCheck:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise ContractError(f"schemas/submission.yaml has no check {check_id!r}.")


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ContractError(f"Contract file {path} is missing.") from exc
    except yaml.YAMLError as exc:
        raise ContractError(f"Contract file {path} is not valid YAML: {exc}") from exc


@cache
def load_code_lists(schemas_dir: Path = SCHEMAS_DIR) -> Mapping[str, CodeList]:
    raw = _read_yaml(schemas_dir / "codes.yaml")
    lists = {}
    for name, spec in raw.items():
        codes = tuple(
            Code(code=str(c["code"]), en=c["en"], zh=c["zh"],
                 attributes={k: v for k, v in c.items() if k not in ("code", "en", "zh")})
            for c in spec["codes"])
        lists[name] = CodeList(name=name, description=spec.get("description", ""), codes=codes)
    return lists


@cache
def load_submission_rules(schemas_dir: Path = SCHEMAS_DIR) -> SubmissionRules:
    raw = _read_yaml(schemas_dir / "submission.yaml")
    d = raw["defaults"]
    return SubmissionRules(
        checks=tuple(SubmissionCheck(c["id"], c["description"], c["fix"]) for c in raw["checks"]),
        max_error_row_share=float(d["max_error_row_share"]),
        min_error_rows=int(d.get("min_error_rows", 0)),
        abs_tolerance=float(d["abs_tolerance"]),
        rel_tolerance=float(d["rel_tolerance"]),
        due_days=int(d["due_days"]),
    )


def contract_files(dataset: str, schemas_dir: Path = SCHEMAS_DIR) -> list[Path]:
    current = schemas_dir / f"{dataset}.yaml"
    older = sorted((schemas_dir / "versions").glob(f"{dataset}-*.yaml"))
    return [p for p in [current, *older] if p.exists()]


def _names(schemas_dir: Path = SCHEMAS_DIR) -> tuple[str, ...]:
    """The datasets that have a current contract (``schemas/<dataset>.yaml``), by name."""
    return tuple(sorted(p.stem for p in schemas_dir.glob("*.yaml")
                        if p.stem not in ("codes", "submission")))


def _references(schemas_dir: Path = SCHEMAS_DIR) -> dict[str, list[tuple[str, str]]]:
    """For each dataset, the other datasets its current contract's ``exists_in`` rules read, each
    with the rule's source (``schemas/claim.yaml: rules.CLM-D01``).

    Read from the contracts' YAML alone, without parsing them whole: the DAG files order their
    tasks with this when Airflow parses them, and parsing must stay cheap (checking a contract's
    patterns needs DuckDB). ``load_contract`` still checks every contract in full. Kept while the
    contract files are unchanged (a bulk submission asks once per file).
    """
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(schemas_dir.glob("*.yaml")))
    return _read_references(schemas_dir, stamp)


@cache
def _read_references(schemas_dir: Path, stamp: tuple) -> dict[str, list[tuple[str, str]]]:
    names = _names(schemas_dir)
    refs: dict[str, list[tuple[str, str]]] = {}
    for name in names:
        refs[name] = []
        path = schemas_dir / f"{name}.yaml"
        for raw in _read_yaml(path).get("rules") or ():
            if raw.get("kind") != RuleKind.EXISTS_IN:
                continue
            source = f"schemas/{path.name}: rules.{raw.get('id')}"
            target = raw.get("dataset")
            if not target:
                raise ContractError(f"{source}: an exists_in rule must name the dataset it reads "
                                    "(dataset: <name>).")
            if target not in names:
                raise ContractError(
                    f"{source}: exists_in names dataset {target!r}, which has no contract.",
                    hint=f"Known datasets: {', '.join(names)}.", dataset=name)
            if target != name:      # a rule reading the dataset's own accepted data orders nothing
                refs[name].append((target, source))
    return refs


def dependencies(schemas_dir: Path = SCHEMAS_DIR) -> dict[str, set[str]]:
    """Dataset -> the datasets whose accepted data it needs first (its ``exists_in`` rules).

    Read from each dataset's current contract: ``claim`` needs ``policy`` because
    ``schemas/claim.yaml`` checks that a claim's policy is in the member's accepted premium data.
    """
    return {name: {target for target, _ in refs} for name, refs in _references(schemas_dir).items()}


def datasets(schemas_dir: Path = SCHEMAS_DIR) -> tuple[str, ...]:
    """Datasets that have a contract, in the order they are processed.

    A dataset comes after every dataset it depends on (see ``dependencies``: policies before
    claims); datasets free to go in either order go by name. Raises ``ContractError`` when
    the contracts' cross-dataset rules form a cycle or name a dataset that has no contract.
    """
    refs = _references(schemas_dir)
    needs = {name: {target for target, _ in r} for name, r in refs.items()}
    ready = [name for name, n in needs.items() if not n]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for other, n in needs.items():
            if name in n:
                n.discard(name)
                if not n:
                    heapq.heappush(ready, other)
    if len(order) < len(needs):
        raise ContractError(f"The contracts' cross-dataset rules form a cycle: {_cycle(refs, set(order))}.",
                            hint="A dataset is processed after the datasets its exists_in rules read, so in "
                                 "a cycle none can go first: remove or change one of these rules.")
    return tuple(order)


def _cycle(refs: Mapping[str, list[tuple[str, str]]], done: set[str]) -> str:
    """One cycle among the datasets left unordered, each step with the rule that makes it."""
    path = [min(n for n in refs if n not in done)]
    while True:     # every dataset left needs another one left, so this walk comes back
        target = min(t for t, _ in refs[path[-1]] if t not in done)
        if target in path:
            steps = [*path[path.index(target):], target]
            break
        path.append(target)
    return "; ".join(f"{a} needs {b} ({next(src for t, src in refs[a] if t == b)})"
                     for a, b in zip(steps, steps[1:], strict=False))


@cache
def load_contract(dataset: str, version: str | None = None,
                  schemas_dir: Path = SCHEMAS_DIR) -> DatasetContract:
    """The contract of ``dataset`` in ``version`` (the current one when ``version`` is None)."""
    if dataset not in _names(schemas_dir):     # not datasets(): ordering them loads every contract
        raise ContractError(
            f"Unknown dataset {dataset!r}.",
            hint=f"Known datasets: {', '.join(datasets(schemas_dir))}.")
    files = contract_files(dataset, schemas_dir)
    by_version = {}
    for path in files:
        raw = _read_yaml(path)
        by_version[str(raw.get("version"))] = (path, raw)
    if version is None:
        path, raw = files[0], _read_yaml(files[0])
    elif version in by_version:
        path, raw = by_version[version]
    else:
        raise ContractError(
            f"Contract version {version!r} of dataset {dataset!r} does not exist.",
            hint=f"Known versions: {', '.join(sorted(by_version))}.", dataset=dataset)
    return _parse_contract(raw, path, schemas_dir)


def _parse_contract(raw: Mapping[str, Any], path: Path, schemas_dir: Path) -> DatasetContract:
    code_lists = load_code_lists(schemas_dir)
    sub = load_submission_rules(schemas_dir)
    source = f"schemas/{path.relative_to(schemas_dir)}" if path.is_relative_to(schemas_dir) else str(path)
    columns = tuple(_parse_column(c, code_lists, source) for c in raw["columns"])
    seen = [c.name for c in columns]
    twice = sorted({n for n in seen if seen.count(n) > 1})
    if twice:
        raise ContractError(f"{source}: column(s) {twice} are declared twice.")
    prefix = raw["rule_prefix"]
    rules = [*_derived_rules(prefix, columns, source),
             *(_parse_rule(r, columns, source) for r in raw.get("rules", []))]
    ids = [r.id for r in rules]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ContractError(f"{source}: rule ids {sorted(dupes)} are used twice.")
    key = tuple(raw.get("key", ()))
    business_keys = tuple(raw.get("business_keys", key))
    names = {c.name for c in columns}
    for name in [*key, *raw.get("control_totals", ())]:
        if name not in names:
            raise ContractError(f"{source}: key or control total {name!r} is not a column.")
    for name in business_keys:
        if name not in names:
            raise ContractError(f"{source}: business key {name!r} is not a column.")
    return DatasetContract(
        dataset=raw["dataset"], version=str(raw["version"]), title=raw["title"],
        description=" ".join(raw.get("description", "").split()), grain=raw.get("grain", "quarter"),
        rule_prefix=prefix, key=key, control_totals=tuple(raw.get("control_totals", ())),
        columns=columns, rules=tuple(rules), code_lists=code_lists,
        max_error_row_share=float(raw.get("max_error_row_share", sub.max_error_row_share)),
        due_days=int(raw.get("due_days", sub.due_days)),
        source=source,
        min_error_rows=int(raw.get("min_error_rows", sub.min_error_rows)),
        business_keys=business_keys,
    )


def _parse_column(raw: Mapping[str, Any], code_lists: Mapping[str, CodeList], source: str) -> Column:
    name = raw["name"]
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ContractError(f"{source}: column name {name!r} is not snake_case.")
    col = Column(
        name=name, type=raw["type"], description=raw.get("description", ""),
        required=bool(raw.get("required", False)),
        required_when={k: tuple(str(x) for x in v) for k, v in raw.get("required_when", {}).items()},
        codes=raw.get("codes"), pattern=raw.get("pattern"), pattern_words=raw.get("pattern_words"),
        identifier=bool(raw.get("identifier", False)), free_text=bool(raw.get("free_text", False)),
        max_length=raw.get("max_length"), severity=raw.get("severity", "error"),
    )
    if col.base_type not in BASE_TYPES:
        raise ContractError(f"{source}: column {name!r} has unknown type {col.type!r}.")
    if col.codes and col.codes not in code_lists:
        raise ContractError(f"{source}: column {name!r} names unknown code list {col.codes!r}.")
    if col.severity not in SEVERITIES:
        raise ContractError(f"{source}: column {name!r} has unknown severity {col.severity!r}.")
    if col.pattern is not None:
        _check_pattern(col.pattern, f"{source}: column {name!r}")
        if not str(col.pattern_words or "").strip():
            raise ContractError(f"{source}: column {name!r} has a pattern but no pattern_words: say in words what "
                                "it asks for (e.g. '18 characters: 17 digits then a digit or X'); a member "
                                "reads the words, not the regular expression.")
    return col


def _check_pattern(pattern: object, where: str) -> None:
    """A pattern is compiled by DuckDB's regular expressions (RE2) when the contract loads, not
    first when a member's rows are checked (where a typo would fail every submission)."""
    import duckdb

    try:
        duckdb.connect().execute("SELECT regexp_full_match('', ?)", [str(pattern)]).fetchone()
    except duckdb.Error as exc:
        raise ContractError(f"{where} has a pattern DuckDB cannot compile: {pattern!r} "
                            f"({str(exc).splitlines()[0]}).") from None


def _derived_rules(prefix: str, columns: tuple[Column, ...], source: str) -> list[Rule]:
    rules = []
    for c in columns:
        where = f"{source}: columns.{c.name}"
        if c.required or c.required_when:
            cond = " and ".join(f"{k} is {'/'.join(v)}" for k, v in c.required_when.items())
            rules.append(Rule(
                id=f"{prefix}-REQ-{c.name}", kind=RuleKind.REQUIRED, severity="error",
                description=f"{c.name} is not empty" + (f" when {cond}" if cond else "")
                + (f" (a value that is not {_type_words(c)} fails {prefix}-TYPE-{c.name} instead)"
                   if c.base_type != "string" else "") + ".",
                fix=f"Fill in {c.name} on every row" + (f" where {cond}" if cond else "") + ".",
                columns=(c.name,), when=c.required_when, source=where))
        if c.base_type != "string":
            rules.append(Rule(
                id=f"{prefix}-TYPE-{c.name}", kind=RuleKind.TYPE, severity="error",
                description=f"{c.name} parses as {_type_words(c)}.",
                fix=f"Write {c.name} as {_type_words(c)}.",
                columns=(c.name,), params={"type": c.sql_type}, source=where))
        if c.codes:
            rules.append(Rule(
                id=f"{prefix}-CODE-{c.name}", kind=RuleKind.CODES, severity=c.severity,
                description=f"{c.name} is a code of the list {c.codes!r}.",
                fix=f"Use a code of the {c.codes!r} code list; each submission report lists every code with "
                    "its name under Code lists.",
                columns=(c.name,), params={"codes": c.codes}, source=where))
        if c.pattern:
            rules.append(Rule(
                id=f"{prefix}-FMT-{c.name}", kind=RuleKind.PATTERN, severity=c.severity,
                description=f"{c.name} is {c.pattern_words} (spreadsheet formulas are refused).",
                fix=f"Write {c.name} as {c.pattern_words}, as plain text.",
                columns=(c.name,), params={"pattern": c.pattern, "identifier": c.identifier},
                source=where))
        if c.free_text:
            rules.append(Rule(
                id=f"{prefix}-SAFE-{c.name}", kind=RuleKind.FREE_TEXT, severity="error",
                description=f"{c.name} does not start with = + - @ or a tab (a spreadsheet formula).",
                fix=f"Remove the leading formula character from {c.name}.",
                columns=(c.name,), source=where))
            rules.append(Rule(
                id=f"{prefix}-PII-{c.name}", kind=RuleKind.IDENTIFIERS_IN_TEXT, severity="warn",
                description=(f"{c.name} holds no personal identifier (resident id, credit code, VIN, mobile "
                             "or landline number, bank card, e-mail); one found is masked in the published value."),
                fix=(f"Leave identity numbers, phone numbers, VINs, bank cards and e-mail addresses out of "
                     f"{c.name}; identifiers belong in their own columns, which are pseudonymised."),
                columns=(c.name,), source=where))
        if c.max_length:
            rules.append(Rule(
                id=f"{prefix}-LEN-{c.name}", kind=RuleKind.MAX_LENGTH, severity="error",
                description=f"{c.name} is at most {c.max_length} characters long.",
                fix=f"Shorten {c.name} to {c.max_length} characters.",
                columns=(c.name,), params={"max_length": c.max_length}, source=where))
    return rules


def _type_words(c: Column) -> str:
    if c.base_type == "date":
        return "a date (YYYY-MM-DD)"
    if c.base_type == "decimal":
        scale = c.type.split(",")[-1].rstrip(")") if "," in c.type else "0"
        return f"a number with at most {scale} decimals"
    return "a whole number"


def _parse_rule(raw: Mapping[str, Any], columns: tuple[Column, ...], source: str) -> Rule:
    rid, kind, severity = raw.get("id"), raw.get("kind"), raw.get("severity", "error")
    where = f"{source}: rules.{rid}"
    if kind not in ROW_RULE_KINDS:
        raise ContractError(f"{where}: unknown rule kind {kind!r}.")
    if severity not in SEVERITIES:
        raise ContractError(f"{where}: unknown severity {severity!r}.")
    if kind in (RuleKind.UNIQUE, RuleKind.UNIQUE_ACROSS_PERIODS):
        cols = tuple(raw["columns"])
    elif kind == RuleKind.COMPARE:
        if raw["op"] not in COMPARE_OPS:
            raise ContractError(f"{where}: unknown operator {raw['op']!r}.")
        cols = (raw["left"], raw["right"])
    elif kind == RuleKind.RESIDENT_ID_AGREES:
        cols = (raw["column"], raw["birth_date"], raw["gender"])
    else:
        cols = (raw["column"],)
    if kind == RuleKind.CHECK_DIGIT and raw.get("scheme") not in CHECK_DIGIT_SCHEMES:
        raise ContractError(f"{where}: unknown check-digit scheme {raw.get('scheme')!r}.")
    when = {k: tuple(str(x) for x in v) for k, v in raw.get("when", {}).items()}
    names = {c.name for c in columns}
    for name in [*cols, *when]:
        if name not in names:
            raise ContractError(f"{where}: column {name!r} is not in the contract.")
    params = {k: v for k, v in raw.items()
              if k not in ("id", "kind", "severity", "description", "fix", "when", "columns")}
    return Rule(id=rid, kind=RuleKind(kind), severity=severity, description=raw["description"],
                fix=raw.get("fix", ""), columns=cols, params=params, when=when, source=where)
