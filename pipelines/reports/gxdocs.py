"""GX's own Data Docs for every submission, built into ``reports/gx/`` (a GX file context).

A submission that GX's pandas engine validated shows GX's stored result
(``validation_results``); one that GX did not run on (above ``INSURSHARE_GX_MAX_ROWS``, or
with GX turned off) shows the platform's DuckDB counts (``rule_results``) in GX's result
format against the suite the contract compiles to. A file rejected before its rows were read
has no GX page. Pages are built once per processed submission (a stamp file records what was
built), so a second run does not import GX at all. Reference sets in the expectations (the
member's published ids that cross-period and cross-dataset rules look up) are cut to
``SHOWN_VALUES`` values in the pages, which would otherwise grow by megabytes per submission.

Written only on request (``insurshare report --gx-docs``, ``ReportOptions.gx_docs``): GX's
pages load their CSS and JavaScript from CDNs, and offline the index shows nothing at all; and
each submission gets its own copy of the suite. The submission report carries what they show
(each expectation with its arguments, counts and unexpected values; ``submission._gx``), so
these pages are an extra for data teams that are online.

Member-controlled values reach these pages only as the sampled unexpected values of each
result, which GX 1.24 writes into its tables as raw HTML. Before GX renders, every string in
every result is made inert (``inert``: HTML-escaped, quotes included, with invisible and
direction-changing characters shown as ``[U+XXXX]``), and platform tokens in it become the
member's pseudonyms (``pseudonyms``), as on every page a member receives.
"""

from __future__ import annotations

import fcntl
import html
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.contracts import load_contract
from pipelines.core.domain import RuleKind, parse_period
from pipelines.reports.html import visible
from pipelines.reports.pseudonyms import member_scoped_text
from pipelines.validation.context import CheckContext

STAMP_FORMAT = 3       # 3: results made inert and member-scoped (pages of format 2 are rebuilt)
PLACEHOLDER = "<the member's accepted values at validation time>"
SHOWN_VALUES = 20     # a reference set (the member's published ids) is cut to this many values


@dataclass(frozen=True)
class GxPages:
    validation: Path
    suite: Path


def site_dir(root: Path) -> Path:
    return root / "gx" / "uncommitted" / "data_docs" / "local_site"


def build_gx_docs(con: duckdb.DuckDBPyConnection, root: Path, submission_ids: list[str],
                  schemas_dir: Path) -> dict[str, GxPages]:
    """Build (or reuse) the Data Docs pages of ``submission_ids``; return each one's pages."""
    wanted = _fingerprints(con, submission_ids)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as lock:          # one builder of the GX site at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamps_path = root / "insurshare-stamps.json"
        stamps = json.loads(stamps_path.read_text()) if stamps_path.exists() else {}
        todo = [sid for sid, fp in wanted.items() if stamps.get(sid) != fp or _pages(root, sid) is None]
        if todo:
            _build(con, root, todo, schemas_dir)
            stamps.update({sid: wanted[sid] for sid in todo})
            stamps_path.write_text(json.dumps(stamps, indent=1, sort_keys=True))
    return {sid: pages for sid in wanted if (pages := _pages(root, sid)) is not None}


def _fingerprints(con: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, str]:
    rows = con.execute("""
        SELECT s.submission_id, strftime(s.processed_at, '%Y%m%dT%H%M%S.%f'), g.submission_id IS NOT NULL
        FROM r_subs s LEFT JOIN r_gx g USING (submission_id)
        WHERE list_contains(?, s.submission_id) AND s.rows_total IS NOT NULL
          AND EXISTS (SELECT 1 FROM r_rules r WHERE r.submission_id = s.submission_id AND r.kind <> 'submission')""",
                       [ids]).fetchall()
    return {sid: f"{STAMP_FORMAT}|{processed}|{'gx' if ran else 'counts'}" for sid, processed, ran in rows}


def _pages(root: Path, sid: str) -> GxPages | None:
    site = site_dir(root)
    suite = site / "expectations" / f"{sid}.html"
    found = sorted((site / "validations" / sid / sid).glob(f"*/{sid}.html"))
    return GxPages(validation=found[-1], suite=suite) if found and suite.exists() else None


def _build(con: duckdb.DuckDBPyConnection, root: Path, ids: list[str], schemas_dir: Path) -> None:
    from pipelines.validation.expectations import import_gx

    gx = import_gx()
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = gx.get_context(mode="file", project_root_dir=str(root))
    keys = []
    for sid in ids:
        sub = con.execute("SELECT member_id, dataset, period, contract_version, processed_at FROM r_subs "
                          "WHERE submission_id = ?", [sid]).fetchone()
        stored = con.execute("SELECT result FROM validation_results WHERE submission_id = ?", [sid]).fetchone()
        suite, result = (_from_gx(member_scoped_text(con, sub[0], stored[0]), sid) if stored else
                         _from_counts(con, sid, sub, schemas_dir))
        for evr in result.results:
            evr.result = inert(evr.result)
        context.suites.add_or_update(suite)
        suite_key = ExpectationSuiteIdentifier(name=sid)
        key = ValidationResultIdentifier(expectation_suite_identifier=suite_key,
                                         run_id=RunIdentifier(run_name=sid, run_time=sub[4]), batch_identifier=sid)
        context.validation_results_store.set(key, result)
        keys += [suite_key, key]
    context.build_data_docs(resource_identifiers=keys)


def inert(value: object) -> object:
    """``value`` with every string in it safe to paste into HTML as text or an attribute value.

    GX inserts sampled values into its pages without escaping them; escaped here, the browser
    shows exactly the text the member sent. Characters that are invisible or reorder text
    (bidirectional overrides, zero-width spaces, controls) are shown as ``[U+XXXX]``.
    """
    if isinstance(value, str):
        return html.escape(visible(value), quote=True)
    if isinstance(value, list | tuple):
        return [inert(v) for v in value]
    if isinstance(value, dict):
        return {k: inert(v) for k, v in value.items()}
    return value


def _suite_from_results(name: str, configs: list) -> object:
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=name)
    for cfg in configs:
        suite.add_expectation_configuration(cfg)
    return suite


def _from_gx(text: str, sid: str) -> tuple[object, object]:
    """GX's own stored result, and its suite rebuilt from the expectation configurations in it."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    data = json.loads(text)
    data["suite_name"] = sid
    for r in data["results"]:
        _shorten(r["expectation_config"]["kwargs"])
    result = ExpectationSuiteValidationResultSchema().load(data)
    configs = [ExpectationConfiguration(type=r["expectation_config"]["type"],
                                        kwargs={k: v for k, v in r["expectation_config"]["kwargs"].items()
                                                if k != "batch_id"},
                                        meta=r["expectation_config"].get("meta"))
               for r in data["results"]]
    return _suite_from_results(sid, configs), result


def _shorten(kwargs: dict) -> None:
    """Cut a long ``value_set`` (reference values, e.g. every published transaction id) for display."""
    values = kwargs.get("value_set")
    if isinstance(values, list) and len(values) > SHOWN_VALUES:
        kwargs["value_set"] = [*values[:SHOWN_VALUES], f"... and {len(values) - SHOWN_VALUES:,} more"]


def _from_counts(con: duckdb.DuckDBPyConnection, sid: str, sub: tuple, schemas_dir: Path) -> tuple[object, object]:
    """The contract's suite, and a GX result made of the DuckDB engine's counts (see RECIPES.md):
    checked, failed and missing (NULL) rows per rule, as ``rule_results`` keeps them
    (``pipelines.validation.gx_results``; submissions published before missing rows were kept
    get a result without GX's missing fields)."""
    from pipelines.validation.gx_results import result_from_counts

    member, dataset, period, version, processed_at = sub
    contract = load_contract(dataset, version, schemas_dir)
    references = {r.id: [PLACEHOLDER] for r in contract.rules if r.kind in (RuleKind.EXISTS_IN, RuleKind.UNIQUE_ACROSS_PERIODS)}
    rows = con.execute("SELECT rule_id, checked, failed, missing FROM r_rules WHERE submission_id = ?",
                       [sid]).fetchall()
    counts = {rid: (checked, failed) for rid, checked, failed, _ in rows}
    missing = {rid: n for rid, _, _, n in rows if n is not None} or None
    samples = _sample_values(con, sid, contract)
    ctx = CheckContext(member_id=member, period=parse_period(period))
    return result_from_counts(contract, ctx, counts, references, name=sid, run_time=processed_at, missing=missing,
                              samples={rid: samples.get(rid, []) for rid in counts})


def _sample_values(con: duckdb.DuckDBPyConnection, sid: str, contract) -> dict[str, list]:
    """A few failing values per rule (of the rule's first column; identifiers are tokens)."""
    out: dict[str, list] = {}
    for rid, record in con.execute("SELECT rule_id, record FROM r_qsamples WHERE submission_id = ? "
                                   "ORDER BY rule_id, source_row", [sid]).fetchall():
        try:
            column = contract.rule(rid).column
        except Exception:
            continue
        out.setdefault(rid, []).append(json.loads(record).get(column))
    return out
