"""Per-submission reports: their numbers are the lake's, their advice is the contract's."""

from __future__ import annotations

import csv
import json
import re
from decimal import Decimal

import pytest

from pipelines.contracts import load_contract
from tests.conftest import resident_id, vin
from tests.reports.conftest import FORMULA, REPORT_DAY

NAMES = ["m1_pol_q1", "m1_pol_q2_v1", "m1_pol_q2_v2", "m1_clm_q1", "m2_pol_q1", "m2_pol_q2",
         "m3_pol_q1_v1", "m3_pol_q1_v2", "m1_pol_q3", "m2_clm_q1", "m3_clm_q1"]


@pytest.mark.parametrize("name", NAMES)
def test_submission_report_counts_equal_the_lake(scenario, name):
    sid = scenario.ids[name]
    got = scenario.submission(name)
    con = scenario.lake()
    status, total, accepted, warned, dataset = con.execute(
        "SELECT status, rows_total, rows_accepted, rows_warned, dataset FROM lake.submissions "
        "WHERE submission_id = ?", [sid]).fetchone()
    quarantined = con.execute("SELECT count(*) FROM lake.quarantine WHERE submission_id = ?", [sid]).fetchone()[0]
    in_lake = con.execute(f"SELECT count(*) FROM lake.{dataset} WHERE submission_id = ?", [sid]).fetchone()[0]
    assert got["submission"]["status"] == status
    assert got["rows"] == {**got["rows"], "total": total, "accepted": accepted, "warned": warned,
                           "in_lake_now": in_lake}
    assert (got["rows"]["quarantined"] or 0) == quarantined
    failed = dict(con.execute("SELECT rule_id, failed FROM lake.rule_results WHERE submission_id = ? "
                              "AND kind <> 'submission'", [sid]).fetchall())
    assert {r["id"]: r["failed"] for r in got["rules"]} == failed


@pytest.mark.parametrize("name", ["m1_pol_q1", "m1_pol_q2_v2", "m1_clm_q1", "m3_pol_q1_v2"])
def test_submission_report_published_totals_equal_the_lake(scenario, name):
    sid = scenario.ids[name]
    got = scenario.submission(name)["reconciliation"]
    dataset = scenario.submission(name)["submission"]["dataset"]
    columns = load_contract(dataset).control_totals
    con = scenario.lake()
    sums = con.execute(f"SELECT {', '.join(f'sum({c})' for c in columns)} FROM lake.{dataset} "
                       "WHERE submission_id = ?", [sid]).fetchone()
    assert {t["column"]: Decimal(t["published"]) for t in got["totals"]} == dict(zip(columns, sums, strict=True))


def test_submission_report_explains_a_rejection_with_the_check_and_its_fix(scenario):
    got = scenario.submission("m2_pol_q2")
    assert got["verdict"]["status"] == "rejected"
    assert [c["id"] for c in got["verdict"]["failed_checks"]] == ["SUB-ERROR-SHARE"]
    assert got["verdict"]["failed_checks"][0]["fix"].startswith("Correct the quarantined rows")
    assert got["verdict"]["reasons"][0].startswith("SUB-ERROR-SHARE: 100.0% of the rows")
    region = next(r for r in got["rules"] if r["id"] == "POL-CODE-region_code")
    assert (region["failed"], region["checked"], region["severity"]) == (20, 20, "error")
    assert region["source"] == "schemas/policy.yaml: columns.region_code"
    assert region["fix"] == "Use a code of the 'region' code list; each submission report lists every code with its name under Code lists."
    assert region["code_list"] == "region"
    assert [s["values"]["region_code"] for s in region["samples"]] == ["999999"] * 3
    assert region["samples"][0]["reason"] == "region_code '999999' is not in code list region"
    html = scenario.built.submissions[scenario.ids["m2_pol_q2"]].read_text()
    assert "SUB-ERROR-SHARE" in html and "Use a code of the &#39;region&#39; code list" in html
    assert '<a href="#codes-region">See the region codes and their names.</a>' in html


def test_submission_report_reconciliation_shows_the_control_total_that_failed(scenario):
    got = scenario.submission("m3_pol_q1_v1")
    premium = next(t for t in got["reconciliation"]["totals"] if t["column"] == "written_premium")
    assert premium == {"column": "written_premium", "given": "1.00", "computed": "24000.00",
                       "difference": "-23999.00", "matches": False, "published": None}
    assert got["reconciliation"]["row_count"] == {"given": None, "computed": 20, "matches": True, "published": None}
    assert [c["id"] for c in got["verdict"]["failed_checks"]] == ["SUB-CONTROL-TOTAL"]


def test_submission_report_of_an_unreadable_file_says_what_to_do(scenario):
    got = scenario.submission("m2_clm_q1")
    assert got["verdict"]["reasons"][0].startswith("SUB-FILE: File 'm2_clm_q1.csv' is named as CSV but is a binary")
    assert [c["id"] for c in got["verdict"]["failed_checks"]] == ["SUB-FILE"]
    assert got["rules"] == [] and got["rows"]["total"] is None and got["gx"]["ran"] is False
    html = scenario.built.submissions[scenario.ids["m2_clm_q1"]].read_text()
    assert "The file was not read row by row: fix the submission check above" in html
    pending = scenario.submission("m3_clm_q1")
    assert (pending["submission"]["status"], pending["verdict"]["summary"]) == (
        "received", "Received and waiting to be processed.")


def test_submission_report_late_submission_counts_days_after_the_due_date(scenario):
    assert scenario.submission("m2_pol_q1")["timeliness"] == {
        "period_end": "2024-03-31", "due_date": "2024-05-15", "received_on": "2024-06-30",
        "days_late": 46, "on_time": False}
    assert scenario.submission("m1_pol_q1")["timeliness"]["on_time"] is True


def test_submission_report_superseded_version_names_its_successor(scenario):
    old = scenario.submission("m1_pol_q2_v1")
    new_id = scenario.ids["m1_pol_q2_v2"]
    assert old["submission"]["status"] == "superseded" and old["submission"]["superseded_by"] == new_id
    assert old["rows"]["in_lake_now"] == 0 and old["rows"]["accepted"] == 50
    assert [v["status"] for v in old["versions"]] == ["superseded", "accepted"]
    html = scenario.built.submissions[scenario.ids["m1_pol_q2_v1"]].read_text()
    assert f'href="../{new_id}/report.html"' in html and "SUPERSEDED" in html.upper()


def test_submission_report_movement_is_flagged_outside_the_band(scenario):
    got = scenario.submission("m1_pol_q2_v2")["movement"]
    assert got["previous_submission"] == scenario.ids["m1_pol_q1"] and got["band"] == 0.25
    rows = next(i for i in got["items"] if i["measure"] == "rows")
    assert (rows["previous"], rows["current"], rows["flagged"]) == ("52", "30", True)
    assert rows["change_share"] == pytest.approx(-22 / 52)
    premium = next(i for i in got["items"] if i["measure"] == "written_premium")
    assert (premium["previous"], premium["current"]) == ("61195.00", "24000.00")   # 51 x 1200 - 5, 30 x 800


def test_submission_report_movement_band_is_configurable(scenario):
    from pipelines.contracts import datasets
    from pipelines.reports import ReportOptions, scoring
    from pipelines.reports.submission import prepare_submissions, submission_facts
    from pipelines.store import reader

    contracts = [load_contract(d) for d in datasets()]
    with reader(scenario.settings) as con:
        scoring.prepare(con, contracts, REPORT_DAY, scenario.settings.schemas_dir)
        prepare_submissions(con, contracts, 3)
        wide = submission_facts(con, scenario.ids["m1_pol_q2_v2"], ReportOptions(today=REPORT_DAY, movement_band=0.5),
                                scenario.settings.schemas_dir)
    flags = {i["measure"]: i["flagged"] for i in wide["movement"]["items"]}
    assert flags == {"rows": False, "written_premium": True, "written_exposure": False}


def test_submission_report_shows_failing_rows_with_tokens_and_warnings(scenario):
    rules = {r["id"]: r for r in scenario.submission("m1_pol_q1")["rules"]}
    phone = rules["POL-FMT-phone"]
    assert phone["severity"] == "warn" and phone["failed"] == 1
    assert phone["samples"][0]["source_row"] == 4
    assert re.fullmatch(r"m:[0-9a-f]{10}…", phone["samples"][0]["values"]["phone"])   # the member's pseudonym
    safe = rules["POL-SAFE-product_name"]["samples"][0]
    assert safe["values"]["product_name"] == FORMULA and safe["source_row"] == 52
    failing = [r["id"] for r in scenario.submission("m1_pol_q1")["rules"] if r["failed"]]
    assert failing == ["POL-CODE-region_code", "POL-SAFE-product_name", "POL-FMT-phone"]


def _raw_identifiers(scenario) -> set[str]:
    """Every identifier value the scenario's members wrote into their files (as written)."""
    columns = {c for d in ("policy", "claim") for c in load_contract(d).identifier_columns}
    values = set()
    for path in scenario.files.glob("*.csv"):
        try:
            rows = list(csv.DictReader(open(path, encoding="utf-8")))
        except UnicodeDecodeError:        # the binary file sent as a CSV
            continue
        values |= {r[c] for r in rows for c in columns & set(r) if r[c]}
    return values


def test_reports_never_hold_raw_identifiers(scenario):
    raw = _raw_identifiers(scenario)
    assert raw >= {resident_id(), vin(), "13812345678", "1381234567X"}
    assert min(len(r) for r in raw) >= 11       # long enough not to turn up by chance in a number or hash
    files = [p for p in scenario.built.root.rglob("*") if p.is_file() and p.suffix in (".html", ".json", ".csv")]
    assert len(files) > 20
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert not [r for r in raw if r in text], path


@pytest.mark.parametrize("page", ["dashboard", "scorecard", "submission"])
def test_report_pages_are_self_contained(scenario, page):
    path = {"dashboard": scenario.built.dashboard, "scorecard": scenario.built.scorecards["M001"],
            "submission": scenario.built.submissions[scenario.ids["m1_pol_q1"]]}[page]
    html = path.read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<script" not in html and "@import" not in html and "url(" not in html
    assert not re.findall(r'<link[^>]+rel="stylesheet"', html)
    external = [u for u in re.findall(r'(?:src|href)="([^"]+)"', html) if re.match(r"[a-z]+:", u)]
    assert external == ["data:,"]          # the empty favicon; every other link is relative
    for link in re.findall(r'href="([^"#:]+)"', html):
        assert (path.parent / link).resolve().exists(), link


def test_submission_report_json_and_html_agree(scenario):
    got = scenario.submission("m1_clm_q1")
    html = scenario.built.submissions[scenario.ids["m1_clm_q1"]].read_text()
    assert got["rows"]["total"] == 26 and got["rows"]["quarantined"] == 1
    assert '<div class="v">26</div>' in html and '<div class="v">1</div>' in html
    assert "CLM-D01" in html and got["rules"][0]["id"] == "CLM-D01"
    assert json.loads(scenario.built.submissions[scenario.ids["m1_clm_q1"]].with_name("report.json")
                      .read_text())["meta"]["today"] == str(REPORT_DAY)


def _gx_rows(scenario, name: str) -> dict[str, dict]:
    return {e["rule_id"]: e for e in scenario.submission(name)["gx"]["expectations"]}


def test_report_shows_gx_own_result_as_data_docs_would(scenario):
    got = scenario.submission("m1_pol_q1")["gx"]
    assert {k: got[k] for k in ("engine", "ran", "success", "evaluated", "successful")} == {
        "engine": "gx-pandas", "ran": True, "success": False, "evaluated": 29, "successful": 27}
    con = scenario.lake()
    stored = json.loads(con.execute("SELECT result FROM lake.validation_results WHERE submission_id = ?",
                                    [scenario.ids["m1_pol_q1"]]).fetchone()[0])["results"]
    rows = _gx_rows(scenario, "m1_pol_q1")
    assert len(rows) == len(stored) == 29
    for r in stored:       # every expectation GX evaluated, with GX's own counts
        e = rows[r["expectation_config"]["meta"]["rule_id"]]
        assert (e["expectation"], e["success"], e["element_count"], e["unexpected_count"]) == (
            r["expectation_config"]["type"], r["success"], r["result"]["element_count"],
            r["result"]["unexpected_count"])
    assert rows["POL-CODE-region_code"] == {
        "rule_id": "POL-CODE-region_code", "expectation": "expect_column_values_to_be_in_set",
        "arguments": {"column": "region_code", "value_set": ", ".join(load_contract("policy").codes_of("region_code")
                                                                      [:20]) + " … and 11 more"},
        "success": False, "element_count": 52, "unexpected_count": 1, "unexpected_percent": 100 / 52,
        "missing_count": 0, "unexpected_values": ["999999"]}
    assert rows["POL-X03"]["arguments"] == {"column": "written_premium", "min_value": "0.0",
                                            "row_condition": "transaction_type in NB, RN"}
    assert rows["POL-SAFE-product_name"]["unexpected_values"] == [FORMULA]
    html = scenario.built.submissions[scenario.ids["m1_pol_q1"]].read_text()
    assert "<details><summary>29 expectations, 2 not met</summary>" in html
    assert "<td class=\"n\">1.92%</td>" in html


def test_report_shows_the_contract_expectations_with_platform_counts_when_gx_did_not_run(scenario):
    got = scenario.submission("m2_pol_q2")["gx"]
    rows = _gx_rows(scenario, "m2_pol_q2")
    con = scenario.lake()
    counts = {r: (c, f) for r, c, f in con.execute(
        "SELECT rule_id, checked, failed FROM lake.rule_results WHERE submission_id = ?",
        [scenario.ids["m2_pol_q2"]]).fetchall()}
    assert got["ran"] is False and got["engine"] == "platform counts in GX format"
    assert (got["evaluated"], got["successful"], got["success"]) == (29, 27, False)   # the same suite as GX's
    assert {r: (e["element_count"], e["unexpected_count"]) for r, e in rows.items()} == {
        r: counts[r] for r in rows}
    assert rows["POL-CODE-region_code"]["unexpected_values"] == ["999999"] * 3
    assert rows["POL-U02"]["arguments"] == {"column": "transaction_id",
                                            "value_set": "<the member's accepted values at validation time>"}
    assert rows["POL-U02"]["expectation"] == "expect_column_values_to_not_be_in_set"
    assert (rows["POL-U02"]["unexpected_percent"], rows["POL-U02"]["success"]) == (100.0, False)
    assert set(rows) == set(_gx_rows(scenario, "m1_pol_q1"))
    assert scenario.submission("m2_clm_q1")["gx"]["expectations"] == []


def test_gx_data_docs_are_not_written_unless_asked(scenario):
    assert not (scenario.built.root / "gx").exists()
    html = scenario.built.submissions[scenario.ids["m1_pol_q1"]].read_text()
    assert "Data Docs" not in html


def test_reports_second_run_writes_nothing(scenario):
    from pipelines.reports import ReportOptions, build_reports

    again = build_reports(scenario.settings, ReportOptions(today=REPORT_DAY))
    assert again.written == 0
    assert again.snapshot_id == scenario.built.snapshot_id
    assert sorted(again.submissions) == sorted(scenario.ids.values())


def _summary_rows(html: str) -> list[tuple[str, str, str, str]]:
    """(anchor, severity, rows failing, share) of each row of the report's summary table."""
    table = html.split('aria-label="Summary of failing rules"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr><td class="id"><a href="#([^"]+)"><code>[^<]+</code></a></td><td><span class="badge b-(\w+)">\w+</span>'
                      r'</td><td class="n">([^<]+)</td><td class="n">([^<]+)</td>', table)


def test_submission_report_starts_with_a_summary_of_failing_rules(scenario):
    sid = scenario.ids["m1_pol_q1"]
    html = scenario.built.submissions[sid].read_text()
    con = scenario.lake()
    lake = con.execute("SELECT rule_id, severity, failed, checked FROM lake.rule_results WHERE submission_id = ? "
                       "AND kind <> 'submission' AND failed > 0", [sid]).fetchall()
    order = {"fatal": 0, "error": 1, "warn": 2}
    lake.sort(key=lambda r: (order[r[1]], -r[2], r[0]))
    assert _summary_rows(html) == [(f"rule-{rid}", sev, f"{failed:,}", f"{failed / checked:.2%}")
                                   for rid, sev, failed, checked in lake]
    assert _summary_rows(html) == [("rule-POL-CODE-region_code", "error", "1", "1.92%"),
                                   ("rule-POL-SAFE-product_name", "error", "1", "1.92%"),
                                   ("rule-POL-FMT-phone", "warn", "1", "1.92%")]
    # the summary comes before the first rule card, and the jump links before the verdict
    assert html.index('id="summary"') < html.index('id="rule-') and html.index('class="jump"') < html.index(
        'class="verdict')
    rejected = scenario.built.submissions[scenario.ids["m2_pol_q2"]].read_text()
    assert _summary_rows(rejected) == [("rule-POL-CODE-region_code", "error", "20", "100.00%"),
                                       ("rule-POL-U02", "error", "20", "100.00%")]   # its ids were in 2024Q1
    assert 'id="summary"' not in scenario.built.submissions[scenario.ids["m2_pol_q1"]].read_text()


@pytest.mark.parametrize("name", NAMES)
def test_submission_report_jump_links_resolve(scenario, name):
    html = scenario.built.submissions[scenario.ids[name]].read_text()
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "an id is used twice"
    targets = re.findall(r'href="#([^"]*)"', html)
    assert targets and not [t for t in targets if t not in ids]
    failing = [r["id"] for r in scenario.submission(name)["rules"] if r["failed"]]
    assert {f"rule-{r}" for r in failing} <= set(targets)          # every card is reachable from the summary


def test_submission_report_carries_the_code_lists_with_their_names(scenario):
    import yaml

    from pipelines.config import SCHEMAS_DIR

    raw = yaml.safe_load((SCHEMAS_DIR / "codes.yaml").read_text(encoding="utf-8"))
    got = scenario.submission("m2_pol_q2")["code_lists"]
    used = {c["name"]: c["codes"] for c in yaml.safe_load((SCHEMAS_DIR / "policy.yaml").read_text())["columns"]
            if c.get("codes")}
    assert [cl["name"] for cl in got] == list(dict.fromkeys(used.values()))
    region = next(cl for cl in got if cl["name"] == "region")
    assert region["codes"] == [{"code": c["code"], "en": c["en"], "zh": c["zh"]} for c in raw["region"]["codes"]]
    assert len(region["codes"]) == 31 and region["columns"] == ["region_code"]
    html = scenario.built.submissions[scenario.ids["m2_pol_q2"]].read_text()
    appendix = html.split('<h2 id="codes">', 1)[1]
    assert "<tr><td><code>440000</code></td><td>Guangdong</td><td>广东省</td></tr>" in appendix
    # the list a failing rule names is open, the others are folded
    assert re.findall(r'<details id="codes-([a-z_]+)" open>', html) == ["region"]
    assert len(re.findall(r'<details id="codes-', html)) == len(got)
    claim = scenario.submission("m1_clm_q1")["code_lists"]
    assert {cl["name"] for cl in claim} == {"line_of_business", "coverage", "region", "claim_status", "cause"}
    assert scenario.submission("m2_clm_q1")["code_lists"] == claim      # even for a file never read


def test_submission_template_renders_facts_made_before_the_appendix_and_gx_table(scenario):
    """Callers that build their own facts (a pre-check) need not know the newer keys."""
    from pipelines.reports.html import render

    got = scenario.submission("m2_pol_q2")
    meta = got.pop("meta")
    del got["code_lists"], got["business_keys"], got["gx"]["expectations"]
    for r in got["rules"]:
        del r["code_list"]
    html = render("submission.html.j2", f=got, meta=meta, links={
        "dashboard": "d.html", "scorecard": "s.html", "previous": None, "versions": {got["submission"]["submission_id"]: ""},
        "quarantine_csv": "q.csv", "quarantine_xlsx": "q.xlsx", "gx_validation": None, "gx_suite": None})
    assert 'id="summary"' in html and 'id="codes"' not in html and "No GX result" in html
