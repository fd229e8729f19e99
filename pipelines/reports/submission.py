"""The report of one submission, as plain data (the HTML page and the JSON file render it).

What a member reads first: the verdict and why; then the row counts, every rule with its
severity, failures, where it is defined and how to fix the data, with a few pseudonymised
failing rows; the reconciliation with the manifest's control totals; the movement against
the member's previous period; the versions of the slot; and, as an appendix, the code lists
the contract uses (members do not have ``schemas/codes.yaml``). Every number is read from the
lake (tables ``submissions``, ``rule_results``, ``quarantine``, the dataset's table), through
the ``r_*`` tables of ``scoring.prepare``.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb

from pipelines.contracts import DatasetContract, load_contract, load_submission_rules
from pipelines.core.domain import RuleKind, parse_period
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.core.sql import ident, literal
from pipelines.reports.options import ReportOptions
from pipelines.reports.pseudonyms import scope_to_members
from pipelines.reports.scoring import KIND_DIMENSION, dimension_of, record, records

SEVERITY_ORDER = {"fatal": 0, "error": 1, "warn": 2}


def previous_period(label: str) -> str:
    """The period before ``label``: ``2025Q1`` -> ``2024Q4``, ``2025`` -> ``2024``."""
    p = parse_period(label)
    if p.grain == "year":
        return str(p.start.year - 1)
    quarter = (p.start.month - 1) // 3 + 1
    return f"{p.start.year - 1}Q4" if quarter == 1 else f"{p.start.year}Q{quarter - 1}"


def short_token(value: object) -> object:
    """A pseudonym cut for display (``m:3f2a9c0d...``); still a pseudonym, never a raw value."""
    text = str(value) if value is not None else None
    if text and ":" in text and len(text) > 24:
        return text[: text.index(":") + 11] + "…"
    return value


def submission_ids(con: duckdb.DuckDBPyConnection, member: str | None = None) -> list[str]:
    sql = "SELECT submission_id FROM r_subs " + ("WHERE member_id = ? " if member else "")
    return [r[0] for r in con.execute(sql + "ORDER BY member_id, dataset, period, version",
                                      [member] if member else []).fetchall()]


def prepare_submissions(con: duckdb.DuckDBPyConnection, contracts: list[DatasetContract], n_samples: int) -> None:
    """Load what the submission reports read into temporary tables, once for all reports.

    Every query on the lake pays for reading the catalog; reading each table once and the
    reports from memory keeps a run over hundreds of submissions quick. Records read for the
    member (quarantined rows, samples) hold the member's pseudonyms, never platform tokens.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE r_rules AS SELECT r.* FROM rule_results r "
                "SEMI JOIN r_subs s ON s.submission_id = r.submission_id")
    con.execute("CREATE OR REPLACE TEMP TABLE r_gx AS SELECT v.submission_id, s.member_id, v.engine, v.suite_name, "
                "v.success, v.evaluated, v.successful, v.result FROM validation_results v "
                "JOIN r_subs s ON s.submission_id = v.submission_id")
    scope_to_members(con, "r_gx", "result")
    con.execute("CREATE OR REPLACE TEMP TABLE r_quarantine AS SELECT q.* FROM quarantine q "
                "SEMI JOIN r_subs s ON s.submission_id = q.submission_id")
    scope_to_members(con, "r_quarantine", "record")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE r_qsamples AS
        WITH q AS (SELECT submission_id, source_row, unnest(rule_ids) AS rule_id, reasons, record
                   FROM r_quarantine)
        SELECT * FROM q
        QUALIFY row_number() OVER (PARTITION BY submission_id, rule_id ORDER BY source_row) <= ?""",
                [n_samples])
    con.execute("CREATE OR REPLACE TEMP TABLE r_wsamples (submission_id VARCHAR, member_id VARCHAR, "
                "rule_id VARCHAR, source_row BIGINT, record VARCHAR)")
    con.execute("CREATE OR REPLACE TEMP TABLE r_published (submission_id VARCHAR, rows BIGINT, totals VARCHAR)")
    for c in contracts:
        table = ident(c.dataset)
        con.execute(f"""
            INSERT INTO r_wsamples
            WITH w AS (SELECT submission_id, member_id, unnest(dq_warnings) AS rule_id, source_row,
                              CAST(to_json(t) AS VARCHAR) AS record
                       FROM {table} t WHERE len(dq_warnings) > 0)
            SELECT * FROM w
            QUALIFY row_number() OVER (PARTITION BY submission_id, rule_id ORDER BY source_row) <= ?""",
                    [n_samples])
        sums = ", ".join(f"{literal(col)}, CAST(coalesce(sum({ident(col)}), 0) AS VARCHAR)" for col in c.control_totals)
        con.execute(f"INSERT INTO r_published SELECT submission_id, count(*), "
                    f"CAST(json_object({sums}) AS VARCHAR) FROM {table} GROUP BY submission_id")
    scope_to_members(con, "r_wsamples", "record")


def submission_facts(con: duckdb.DuckDBPyConnection, submission_id: str, options: ReportOptions,
                     schemas_dir: Path) -> dict:
    """Everything the report of ``submission_id`` shows."""
    sub = record(con, "SELECT * FROM r_subs WHERE submission_id = ?", [submission_id])
    if sub is None:
        from pipelines.errors import NotFound

        raise NotFound(f"Submission {submission_id!r} has no report: it does not exist or was refused at intake.",
                       hint="List submissions with `insurshare status`.")
    contract = load_contract(sub["dataset"], sub["contract_version"], schemas_dir)
    results = records(con, "SELECT * FROM r_rules WHERE submission_id = ?", [submission_id])
    row_results = [r for r in results if r["kind"] != "submission"]
    published = _published(con, contract, sub)
    rules = _rules(con, contract, sub, row_results, options.sample_rows)
    return {
        "kind": "submission",
        "submission": _identity(sub),
        "verdict": _verdict(sub, results, contract, schemas_dir),
        "timeliness": _timeliness(con, sub),
        "rows": _rows(sub, contract, published),
        "rules": rules,
        "reconciliation": _reconciliation(sub, contract, schemas_dir, published),
        "movement": _movement(con, sub, contract, options.movement_band),
        "versions": records(con, "SELECT submission_id, version, status, verdict, "
                                 "strftime(received_at, '%Y-%m-%d %H:%M') AS received_at "
                                 "FROM r_subs WHERE member_id = ? AND dataset = ? AND period = ? ORDER BY version",
                            [sub["member_id"], sub["dataset"], sub["period"]]),
        "gx": _gx(con, sub, contract, row_results, rules),
        "code_lists": code_lists(contract),
        "business_keys": list(contract.business_keys),
    }


def code_lists(contract: DatasetContract) -> list[dict]:
    """The code lists the contract's columns use, every code with its names: the report carries
    them, since a member does not have ``schemas/codes.yaml``."""
    used: dict[str, list[str]] = {}
    for c in contract.columns:
        if c.codes:
            used.setdefault(c.codes, []).append(c.name)
    return [{"name": name, "anchor": f"codes-{name}", "description": contract.code_lists[name].description,
             "columns": cols, "codes": [{"code": x.code, "en": x.en, "zh": x.zh} for x in contract.code_lists[name].codes]}
            for name, cols in used.items()]


def _identity(sub: dict) -> dict:
    keep = ("submission_id", "member_id", "dataset", "period", "version", "contract_version", "status",
            "file_name", "file_format", "encoding", "file_bytes", "sha256", "snapshot_id", "superseded_by")
    out = {k: sub[k] for k in keep}
    out["received_at"] = _stamp(sub["received_at"])
    out["processed_at"] = _stamp(sub["processed_at"])
    return out


def _stamp(value: object) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else None


def _verdict(sub: dict, results: list[dict], contract: DatasetContract, schemas_dir: Path) -> dict:
    checks = load_submission_rules(schemas_dir)
    failed = [r["rule_id"] for r in results if r["kind"] == "submission" and r["failed"]]
    status, total = sub["status"], sub["rows_total"]
    share = sub["error_row_share"]
    if status == Status.RECEIVED:
        summary = "Received and waiting to be processed."
    elif status == Status.HELD:
        summary = ("Held: its rows were read and checked, but some name policies that are missing only "
                   "because the member's premium file was rejected. Nothing is published or judged "
                   "yet; the file is processed again as soon as the corrected premium data is accepted.")
    elif sub["verdict"] == "accepted":
        summary = (f"Accepted: {sub['rows_accepted'] or 0:,} of {total:,} rows passed every error rule; "
                   f"{sub['rows_quarantined'] or 0:,} rows are quarantined ({(share or 0):.2%} of rows break "
                   f"error rules, at most {contract.max_error_row_share:.0%} may) and the row count and "
                   "control totals reconcile with the manifest.")
        if status == Status.SUPERSEDED:
            summary += f" It was superseded by {sub['superseded_by']}, which replaced it in the lake."
    else:
        summary = (f"Rejected: {len(failed)} submission check(s) failed, so none of its rows were published"
                   " (the slice keeps its previous accepted version, if any).")
    return {
        "status": status, "verdict": sub["verdict"], "summary": summary,
        "reasons": list(sub["verdict_reasons"] or []),
        "failed_checks": [{"id": c.id, "description": c.description, "fix": c.fix,
                           "source": "schemas/submission.yaml"} for c in checks.checks if c.id in failed],
    }


def _timeliness(con: duckdb.DuckDBPyConnection, sub: dict) -> dict:
    slot = record(con, "SELECT period_end, due_date FROM r_slots WHERE member_id = ? AND dataset = ? "
                       "AND period = ?", [sub["member_id"], sub["dataset"], sub["period"]])
    due = slot["due_date"]
    late = max(0, (sub["received_on"] - due).days)
    return {"period_end": str(slot["period_end"]), "due_date": str(due), "received_on": str(sub["received_on"]),
            "days_late": late, "on_time": late == 0}


def _published(con: duckdb.DuckDBPyConnection, contract: DatasetContract, sub: dict) -> dict | None:
    """Rows and control-total sums of this submission in the dataset's table (accepted only)."""
    if sub["status"] != Status.ACCEPTED:
        return None
    got = record(con, "SELECT rows, totals FROM r_published WHERE submission_id = ?", [sub["submission_id"]])
    return {"rows": got["rows"], **json.loads(got["totals"])} if got else {"rows": 0}


def _rows(sub: dict, contract: DatasetContract, published: dict | None) -> dict:
    return {"total": sub["rows_total"], "accepted": sub["rows_accepted"], "quarantined": sub["rows_quarantined"],
            "warned": sub["rows_warned"], "error_share": sub["error_row_share"],
            "max_error_share": contract.max_error_row_share,
            "in_lake_now": published["rows"] if published else 0}


def _rules(con: duckdb.DuckDBPyConnection, contract: DatasetContract, sub: dict, results: list[dict],
           n_samples: int) -> list[dict]:
    samples = _samples(con, contract, sub, n_samples)
    known = {r.id: r for r in contract.rules}
    out = []
    for r in results:
        rule = known.get(r["rule_id"])
        out.append({
            "id": r["rule_id"], "severity": r["severity"], "kind": r["kind"],
            "dimension": dimension_of(rule) if rule else KIND_DIMENSION.get(r["kind"], ""),
            "checked": r["checked"], "failed": r["failed"],
            "failed_share": (r["failed"] / r["checked"]) if r["checked"] else 0.0,
            "gx_expectation": r["gx_expectation"], "gx_unexpected": r["gx_unexpected"],
            "description": rule.description if rule else "", "fix": rule.fix if rule else "",
            "code_list": rule.params.get("codes") if rule and rule.kind == RuleKind.CODES else None,
            "source": rule.source if rule else contract.source,
            "columns": list(_shown_columns(contract, rule)) if rule else [],
            "samples": samples.get(r["rule_id"], []),
        })
    out.sort(key=lambda x: (x["failed"] == 0, SEVERITY_ORDER.get(x["severity"], 9), -x["failed"], x["id"]))
    return out


def _shown_columns(contract: DatasetContract, rule) -> tuple[str, ...]:
    cols = [*contract.business_keys, *rule.columns, *rule.when]
    return tuple(dict.fromkeys(cols))


def _samples(con: duckdb.DuckDBPyConnection, contract: DatasetContract, sub: dict, n: int) -> dict[str, list]:
    """A few failing rows per rule: quarantined rows, then (for warnings) published flagged rows."""
    if n <= 0:
        return {}
    out: dict[str, list] = {}
    rows = con.execute("SELECT rule_id, source_row, reasons, record FROM r_qsamples WHERE submission_id = ? "
                       "ORDER BY rule_id, source_row", [sub["submission_id"]]).fetchall()
    for rule_id, source_row, reasons, rec in rows:
        out.setdefault(rule_id, []).append(_sample(contract, rule_id, source_row, reasons, json.loads(rec)))
    if sub["status"] == Status.ACCEPTED:
        flagged = con.execute("SELECT rule_id, source_row, record FROM r_wsamples WHERE submission_id = ? "
                              "ORDER BY rule_id, source_row", [sub["submission_id"]]).fetchall()
        for rule_id, source_row, rec in flagged:
            have = out.setdefault(rule_id, [])
            if len(have) < n:
                have.append(_sample(contract, rule_id, source_row, [], json.loads(rec),
                                    default_reason="published with this warning (dq_warnings)"))
    return out


def _sample(contract: DatasetContract, rule_id: str, source_row: int, reasons: list, rec: dict,
            default_reason: str = "") -> dict:
    try:
        cols = _shown_columns(contract, contract.rule(rule_id))
    except Exception:
        cols = contract.business_keys
    ident = set(contract.identifier_columns)
    values = {c: short_token(rec.get(c)) if c in ident else rec.get(c) for c in cols}
    reason = next((r.split(": ", 1)[1] for r in (reasons or []) if r.startswith(rule_id + ": ")), default_reason)
    return {"source_row": source_row, "values": {k: None if v is None else str(v) for k, v in values.items()},
            "reason": reason}


def _dec(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def _reconciliation(sub: dict, contract: DatasetContract, schemas_dir: Path, published: dict | None) -> dict:
    rules = load_submission_rules(schemas_dir)
    manifest = json.loads(sub["manifest"] or "{}")
    given = manifest.get("control_totals") or {}
    computed = json.loads(sub["control_totals"] or "{}")
    items = []
    for col in contract.control_totals:
        g, c = _dec(given.get(col)), _dec(computed.get(col))
        tol = Decimal(str(rules.abs_tolerance)) + Decimal(str(rules.rel_tolerance)) * abs(c or 0)
        items.append({"column": col, "given": None if g is None else str(g), "computed": None if c is None else str(c),
                      "difference": None if g is None or c is None else str(g - c),
                      "matches": None if c is None else (g is None or abs(g - c) <= tol),
                      "published": published.get(col) if published else None})
    rc_given = manifest.get("row_count")
    total = sub["rows_total"]
    return {
        "row_count": {"given": rc_given, "computed": total,
                      "matches": None if total is None else (rc_given is None or rc_given == total),
                      "published": published["rows"] if published else None},
        "totals": items,
        "tolerance": {"absolute": rules.abs_tolerance, "relative": rules.rel_tolerance},
    }


def _movement(con: duckdb.DuckDBPyConnection, sub: dict, contract: DatasetContract, band: float) -> dict:
    prev_label = previous_period(sub["period"])
    prev = record(con, "SELECT submission_id, rows_total, control_totals FROM r_subs WHERE member_id = ? "
                       f"AND dataset = ? AND period = ? AND status = {Status.ACCEPTED.sql}",
                  [sub["member_id"], sub["dataset"], prev_label])
    out = {"previous_period": prev_label, "previous_submission": prev["submission_id"] if prev else None,
           "band": band, "items": [], "flagged": 0, "note": None}
    if prev is None or sub["rows_total"] is None:
        out["note"] = (f"No accepted data of {prev_label} to compare with." if prev is None
                       else "The file could not be read, so there is nothing to compare.")
        return out
    cur_totals, prev_totals = json.loads(sub["control_totals"] or "{}"), json.loads(prev["control_totals"] or "{}")
    measures = [("rows", Decimal(sub["rows_total"]), Decimal(prev["rows_total"] or 0))]
    measures += [(c, _dec(cur_totals.get(c)), _dec(prev_totals.get(c))) for c in contract.control_totals]
    for name, cur, before in measures:
        if cur is None or before is None:
            continue
        change = (cur - before) / abs(before) if before else None
        flagged = change is not None and abs(change) > Decimal(str(band))
        out["items"].append({"measure": name, "previous": str(before), "current": str(cur),
                             "change": str(cur - before), "change_share": None if change is None else float(change),
                             "flagged": flagged})
        out["flagged"] += int(flagged)
    return out


def _gx(con: duckdb.DuckDBPyConnection, sub: dict, contract: DatasetContract, row_results: list[dict],
        rules: list[dict]) -> dict:
    """What GX's Data Docs would show, on this page: per expectation its type, arguments, rows
    looked at, unexpected and missing counts and a few unexpected values. GX's own stored result
    when its pandas engine validated the batch; otherwise the contract's expectations with the
    DuckDB engine's counts, which GX agrees with (``tests/validation/test_gx_differential.py``)."""
    ran = record(con, "SELECT engine, success, evaluated, successful, result FROM r_gx WHERE submission_id = ?",
                 [sub["submission_id"]])
    if ran:
        stored = json.loads(ran["result"] or "{}").get("results", [])
        return {"engine": ran["engine"], "ran": True, "success": ran["success"], "evaluated": ran["evaluated"],
                "successful": ran["successful"], "expectations": [_gx_stored(r) for r in stored]}
    expectations = _gx_from_counts(sub, contract, row_results, rules)
    if not expectations:
        return {"engine": None, "ran": False, "success": None, "evaluated": None, "successful": None,
                "expectations": []}
    met = sum(e["success"] for e in expectations)
    return {"engine": "platform counts in GX format", "ran": False, "success": met == len(expectations),
            "evaluated": len(expectations), "successful": met, "expectations": expectations}


SHOWN_VALUES = 20        # a value set (a code list, the member's published ids) is cut to this many
SHOWN_UNEXPECTED = 10    # GX keeps up to 20 unexpected values; the page shows this many
REFERENCES = "<the member's accepted values at validation time>"


def _gx_stored(r: dict) -> dict:
    cfg, res = r.get("expectation_config") or {}, r.get("result") or {}
    kwargs = {k: v for k, v in (cfg.get("kwargs") or {}).items() if k != "batch_id"}
    return {"rule_id": (cfg.get("meta") or {}).get("rule_id"), "expectation": cfg.get("type"),
            "arguments": _arguments(kwargs), "success": bool(r.get("success")),
            "element_count": res.get("element_count"), "unexpected_count": res.get("unexpected_count"),
            "unexpected_percent": res.get("unexpected_percent"), "missing_count": res.get("missing_count"),
            "unexpected_values": [_shown_value(v) for v in (res.get("partial_unexpected_list") or [])[:SHOWN_UNEXPECTED]]}


def _gx_from_counts(sub: dict, contract: DatasetContract, row_results: list[dict], rules: list[dict]) -> list[dict]:
    from pipelines.validation.context import CheckContext
    from pipelines.validation.expectations import expectation_spec

    counts = {r["rule_id"]: r for r in row_results}
    samples = {r["id"]: r["samples"] for r in rules}
    ctx = CheckContext(member_id=sub["member_id"], period=parse_period(sub["period"]))
    references = {r.id: [REFERENCES] for r in contract.rules if r.kind in (RuleKind.EXISTS_IN,
                                                                              RuleKind.UNIQUE_ACROSS_PERIODS)}
    out = []
    for rule in contract.rules:
        got = counts.get(rule.id)
        spec = expectation_spec(rule, contract, ctx, references)
        if got is None or spec is None:
            continue
        kind, kwargs = spec
        if rule.when:
            kwargs["row_condition"] = " and ".join(f"{c} in {', '.join(v)}" for c, v in rule.when.items())
        n, u, m = got["checked"], got["failed"], got["missing"]
        considered = n - m if m is not None and kind != "expect_column_values_to_not_be_null" else n
        columns = kwargs.get("column_list") or [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
        out.append({"rule_id": rule.id, "expectation": kind, "arguments": _arguments(kwargs),
                    "success": considered == 0 or u == 0, "element_count": n, "unexpected_count": u,
                    "unexpected_percent": u / considered * 100 if considered > 0 else None,
                    "missing_count": None if kind == "expect_column_values_to_not_be_null" else m,
                    "unexpected_values": [" / ".join(str(s["values"].get(c)) for c in columns)
                                          for s in samples.get(rule.id, [])][:SHOWN_UNEXPECTED]})
    return out


def _arguments(kwargs: dict) -> dict[str, str]:
    """An expectation's arguments as text: long value sets cut, row conditions in words."""
    out = {}
    for k, v in kwargs.items():
        if v is None:
            continue
        if isinstance(v, list) and k == "value_set":
            shown = [str(x) for x in v[:SHOWN_VALUES]]
            more = f" … and {len(v) - SHOWN_VALUES:,} more" if len(v) > SHOWN_VALUES else ""
            out[k] = ", ".join(shown) + more if shown else "(none)"
        elif k == "row_condition" and isinstance(v, dict):
            out[k] = _condition_words(v)
        else:
            out[k] = _shown_value(v)
    return out


def _condition_words(cond: dict) -> str:
    """GX 1.24's serialised row condition (``{"column": {"name"}, "operator", "parameter"}``, or
    ``{"type": "and", "conditions": [...]}``) as ``transaction_type in NB, RN``."""
    if "conditions" in cond:
        return f" {cond.get('type', 'and')} ".join(_condition_words(c) for c in cond["conditions"])
    name = (cond.get("column") or {}).get("name", "?")
    param = cond.get("parameter")
    value = ", ".join(map(str, param)) if isinstance(param, list) else str(param)
    return f"{name} {str(cond.get('operator', '')).lower()} {value}"


def _shown_value(v: object) -> str:
    if isinstance(v, list | tuple):
        return " / ".join(_shown_value(x) for x in v)
    if hasattr(v, "isoformat"):
        text = v.isoformat()
    else:
        text = "—" if v is None else str(v)
    text = text.removesuffix("T00:00:00")
    return str(short_token(text)) if _PSEUDONYM.fullmatch(text) else text


_PSEUDONYM = re.compile(r"[a-z0-9]{1,4}:[0-9a-f]{20,}")
