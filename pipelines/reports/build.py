"""Build the reports from the lake: one per submission, one scorecard per member, the dashboard.

Everything is regenerated from one read-only snapshot of the lake, so the pages agree with
each other and with the lake; a file is rewritten only when its content changed, so running
twice over the same snapshot on the same day writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines import store
from pipelines.config import Settings
from pipelines.contracts import DatasetContract, datasets, load_contract
from pipelines.reports import svg
from pipelines.reports.dashboard import dashboard_facts
from pipelines.reports.gxdocs import GxPages, build_gx_docs, site_dir
from pipelines.reports.html import render, to_json, write_if_changed
from pipelines.reports.layout import Layout
from pipelines.reports.options import ReportOptions
from pipelines.reports.quarantine import csv_text, quarantine_rows, write_xlsx
from pipelines.reports.scorecard import member_ids, scorecard_facts
from pipelines.reports.scoring import DEFINITIONS, DIMENSIONS, SCORES, SLOT_STATUSES, prepare
from pipelines.reports.submission import prepare_submissions, submission_facts, submission_ids
from pipelines.store import reader

PARTS = ("submissions", "scorecards", "dashboard")


@dataclass
class Built:
    """What a run produced: paths by submission and member, the dashboard, files (re)written."""

    root: Path
    snapshot_id: int
    dashboard: Path | None = None
    submissions: dict[str, Path] = field(default_factory=dict)
    scorecards: dict[str, Path] = field(default_factory=dict)
    written: int = 0
    made: list[Path] = field(default_factory=list)   # every file of this build, written or already current
    published: list[str] | None = None    # files copied to <storage>/reports/ (None: no S3 storage)


def build_reports(settings: Settings, options: ReportOptions, *, member: str | None = None,
                  as_of: str | None = None, parts: tuple[str, ...] = PARTS) -> Built:
    """Write the reports of ``parts`` (all members, or only ``member``'s pages) under reports_dir.

    The dashboard is built only when no ``member`` is given.
    """
    layout = Layout(settings.reports_dir)
    contracts = [load_contract(d, None, settings.schemas_dir) for d in datasets(settings.schemas_dir)]
    with reader(settings, as_of) as con:
        snapshot = _snapshot(con, settings, as_of)
        built = Built(root=layout.root, snapshot_id=snapshot)
        _prepare(con, contracts, options, member, settings.schemas_dir)
        meta = {"snapshot_id": snapshot, "today": str(options.today)}
        if "submissions" in parts:
            _submissions(con, settings, options, layout, meta, member, built)
        if "scorecards" in parts:
            for m in [member] if member else member_ids(con):
                _scorecard(con, settings, options, layout, meta, m, built)
        if "dashboard" in parts and member is None:
            _dashboard(con, settings, options, layout, meta, built)
    if settings.storage:
        from pipelines.reports import remote

        built.published = remote.publish(settings, layout.root, built.made)
    return built


def _snapshot(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: str | None) -> int:
    if as_of is not None:
        from pipelines.store import resolve_snapshot

        return resolve_snapshot(settings, as_of)
    return store.current_snapshot(con)


def _prepare(con: duckdb.DuckDBPyConnection, contracts: list[DatasetContract], options: ReportOptions,
             member: str | None, schemas_dir: Path) -> None:
    if member is not None:
        if con.execute("SELECT 1 FROM members WHERE member_id = ?", [member]).fetchone() is None:
            from pipelines.errors import NotFound

            raise NotFound(f"Member {member!r} is not registered.",
                           hint="List members with `insurshare members list`.")
    prepare(con, contracts, options.today, schemas_dir)
    prepare_submissions(con, contracts, options.sample_rows)


def _write(built: Built, path: Path, content: str | bytes) -> None:
    built.written += int(write_if_changed(path, content))
    built.made.append(path)


def _submissions(con: duckdb.DuckDBPyConnection, settings: Settings, options: ReportOptions, layout: Layout,
                 meta: dict, member: str | None, built: Built) -> None:
    ids = submission_ids(con, member)
    gx_pages: dict[str, GxPages] = (build_gx_docs(con, layout.gx_root, ids, settings.schemas_dir)
                                    if options.gx_docs and ids else {})
    if gx_pages:   # the Data Docs site: these submissions' pages and the site's shared files
        built.made += [p for p in site_dir(layout.gx_root).rglob("*")
                       if p.is_file() and ("validations" not in p.parts and "expectations" not in p.parts)]
        built.made += [p for pages in gx_pages.values() for p in (pages.validation, pages.suite)]
    for sid in ids:
        facts = submission_facts(con, sid, options, settings.schemas_dir)
        page = layout.submission(sid)
        links = _submission_links(layout, page, facts, gx_pages.get(sid))
        if facts["rows"]["quarantined"]:
            _quarantine_files(con, settings, layout, facts, built)
        _write(built, layout.submission_json(sid), to_json({**facts, "meta": meta}))
        _write(built, page, render("submission.html.j2", f=facts, meta=meta, links=links))
        built.submissions[sid] = page


def _submission_links(layout: Layout, page: Path, facts: dict, gx: GxPages | None) -> dict:
    s = facts["submission"]
    prev = facts["movement"]["previous_submission"]
    has_quarantine = bool(facts["rows"]["quarantined"])
    return {
        "dashboard": layout.link(page, layout.dashboard),
        "scorecard": layout.link(page, layout.scorecard(s["member_id"])),
        "previous": layout.link(page, layout.submission(prev)) if prev else None,
        "versions": {v["submission_id"]: layout.link(page, layout.submission(v["submission_id"]))
                     for v in facts["versions"]},
        "quarantine_csv": layout.link(page, layout.quarantine_file(s["submission_id"], "csv"))
        if has_quarantine else None,
        "quarantine_xlsx": layout.link(page, layout.quarantine_file(s["submission_id"], "xlsx"))
        if has_quarantine else None,
        "gx_validation": layout.link(page, gx.validation) if gx else None,
        "gx_suite": layout.link(page, gx.suite) if gx else None,
    }


def _quarantine_files(con: duckdb.DuckDBPyConnection, settings: Settings, layout: Layout, facts: dict,
                      built: Built) -> None:
    s = facts["submission"]
    contract = load_contract(s["dataset"], s["contract_version"], settings.schemas_dir)
    header, rows = quarantine_rows(con, s["submission_id"], contract, table="r_quarantine")
    csv_path, xlsx_path = (layout.quarantine_file(s["submission_id"], x) for x in ("csv", "xlsx"))
    changed = write_if_changed(csv_path, csv_text(header, rows))
    built.written += int(changed)
    if changed or not xlsx_path.exists():   # XLSX bytes carry a timestamp: follow the CSV
        write_xlsx(xlsx_path, header, rows, title=s["submission_id"])
        built.written += 1
    built.made += [csv_path, xlsx_path]


def _scorecard(con: duckdb.DuckDBPyConnection, settings: Settings, options: ReportOptions, layout: Layout,
               meta: dict, member_id: str, built: Built) -> None:
    facts = scorecard_facts(con, member_id, options, settings.schemas_dir)
    page = layout.scorecard(member_id)
    targets = {t for s in facts["slots"] for t in (s["current_id"], s["latest_id"]) if t}
    links = {"dashboard": layout.link(page, layout.dashboard),
             "submissions": {t: layout.link(page, layout.submission(t)) for t in targets}}
    _write(built, layout.scorecard_json(member_id), to_json({**facts, "meta": meta}))
    _write(built, page, render("scorecard.html.j2", f=facts, meta=meta, links=links, charts=_scorecard_charts(facts),
                               scores=SCORES, dimensions=DIMENSIONS, definitions=DEFINITIONS,
                               statuses=SLOT_STATUSES))
    built.scorecards[member_id] = page


def _scorecard_charts(facts: dict) -> dict:
    periods = [p["period"] for p in facts["periods"]]
    trend, strips = {}, {}
    for score in SCORES:
        series = [(facts["member"]["member_id"], [p[score] for p in facts["periods"]], "member")]
        median = facts["industry_median"].get(score, {})
        if any(median.get(p) is not None for p in periods):
            series.append(("industry median", [median.get(p) for p in periods], "industry"))
        low = svg.axis_floor([v for _, values, _ in series for v in values])
        trend[score] = svg.line_chart(periods, series, title=f"{score} per period", lo=low)
        pos = facts["positions"].get(score)
        if pos and pos["distribution"]:
            low = svg.axis_floor(pos["distribution"])
            strips[score] = {"low": low, "svg": svg.strip(pos["distribution"], pos["value"], lo=low,
                                                          title=f"{score}: your score among {pos['members']} members")}
    return {"trend": trend, "strip": strips}


def _dashboard(con: duckdb.DuckDBPyConnection, settings: Settings, options: ReportOptions, layout: Layout,
               meta: dict, built: Built) -> None:
    facts = dashboard_facts(con, options, settings.schemas_dir)
    page = layout.dashboard
    links = {"dashboard": layout.link(page, layout.dashboard),
             "scorecards": {m["member_id"]: layout.link(page, layout.scorecard(m["member_id"]))
                            for m in facts["members"]},
             "submissions": {s["submission_id"]: layout.link(page, layout.submission(s["submission_id"]))
                             for s in facts["submissions"]}}
    charts = {"rules": {r["rule_id"]: svg.sparkline([t["per_1000"] for t in r["trend"]],
                                                    title=f"{r['rule_id']} failures per 1,000 rows by period")
                        for r in facts["rules"]}}
    _write(built, layout.dashboard_json, to_json({**facts, "meta": meta}))
    _write(built, page, render("dashboard.html.j2", f=facts, meta=meta, links=links, charts=charts,
                               scores=SCORES, statuses=SLOT_STATUSES))
    built.dashboard = page
