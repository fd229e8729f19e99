"""Member scorecards: every score recomputed here in Python from the lake's raw rows."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest

from pipelines.contracts import ROW_RULE_KINDS, load_contract
from pipelines.reports.scoring import DIMENSIONS, KIND_DIMENSION, dimension_of
from tests.reports.conftest import REPORT_DAY

# written out again here (not imported) so that a change to the mapping has to be made twice
COMPLETENESS = {"required"}
VALIDITY = {"type", "codes", "pattern", "free_text", "max_length", "range", "check_digit", "identifiers_in_text"}
UNIQUENESS = {"unique", "unique_across_periods"}
CONSISTENCY = {"compare", "resident_id_agrees", "exists_in"}
QUARTER_END = {"1": (3, 31), "2": (6, 30), "3": (9, 30), "4": (12, 31)}


def _dimension(dataset: str, rule_id: str) -> str | None:
    """Required fields: completeness; a check under a condition on another column, or between
    columns, or across datasets: consistency; keys: uniqueness; every other value check: validity."""
    rule = next((r for r in load_contract(dataset).rules if r.id == rule_id), None)
    if rule is None:
        return None
    if rule.kind in COMPLETENESS:
        return "completeness"
    if rule.kind in CONSISTENCY or set(rule.when) - set(rule.columns):
        return "consistency"
    return "uniqueness" if rule.kind in UNIQUENESS else "validity" if rule.kind in VALIDITY else None


def _due(period: str) -> dt.date:
    month, day = QUARTER_END[period[-1]]
    return dt.date(int(period[:4]), month, day) + dt.timedelta(days=45)


def expected_scores(con, member: str, period: str | None = None) -> dict[str, float | None]:
    """The README's definitions, applied to raw rows in plain Python."""
    subs = con.execute("SELECT submission_id, member_id, dataset, period, version, status, verdict, received_at, "
                       "rows_total FROM lake.submissions WHERE status <> 'refused'").fetchall()
    results = con.execute("SELECT submission_id, rule_id, dataset, failed FROM lake.rule_results").fetchall()
    slots = defaultdict(list)
    for s in subs:
        slots[(s[2], s[3])].append(s)
    window = sorted(slots)
    mine = lambda s: s[1] == member and (period is None or s[3] == period)  # noqa: E731
    judged = on_time = processed = first_time = 0
    for dataset, per in window:
        if period is not None and per != period:
            continue
        versions = [s for s in slots[(dataset, per)] if s[1] == member]
        accepted = [s[7].date() for s in versions if s[6] == "accepted"]
        if accepted or _due(per) < REPORT_DAY:
            judged += 1
            on_time += bool(accepted) and min(accepted) <= _due(per)
        if any(s[5] in ("accepted", "rejected", "superseded") for s in versions):
            processed += 1
            first_time += len(versions) == 1 and versions[0][5] == "accepted"
    checked = [s for s in subs if mine(s) and s[5] in ("accepted", "rejected", "superseded") and s[8]]
    ids = {s[0] for s in checked}
    rows = sum(s[8] for s in checked)
    failures = defaultdict(int)
    unreconciled = set()
    for sid, rule_id, dataset, failed in results:
        if sid not in ids:
            continue
        if (name := _dimension(dataset, rule_id)) is not None:
            failures[name] += failed
        if rule_id in ("SUB-ROW-COUNT", "SUB-CONTROL-TOTAL") and failed:
            unreconciled.add(sid)
    out = {"timeliness": 100 * on_time / judged if judged else None,
           "reconciliation": 100 * (len(ids) - len(unreconciled)) / len(ids) if ids else None,
           "resubmissions": 100 * first_time / processed if processed else None}
    for name in ("completeness", "validity", "uniqueness", "consistency"):
        out[name] = 100 * max(0.0, 1 - failures[name] / rows) if rows else None
    known = [v for v in out.values() if v is not None]
    out["overall"] = sum(known) / len(known) if known else None
    return {k: None if v is None else round(v, 2) for k, v in out.items()}


def test_scoring_maps_every_rule_kind_to_one_dimension():
    assert set(KIND_DIMENSION) == set(ROW_RULE_KINDS)
    assert set(KIND_DIMENSION.values()) == {"completeness", "validity", "uniqueness", "consistency"}
    assert {k for k, v in KIND_DIMENSION.items() if v == "validity"} == VALIDITY


@pytest.mark.parametrize(("dataset", "rule_id", "dimension"), [
    ("policy", "POL-REQ-birth_date", "completeness"),   # required when insured_type is P: still completeness
    ("policy", "POL-X02", "validity"),                  # accounting date within the period
    ("policy", "POL-X03", "consistency"),               # premium not negative for new business and renewals
    ("policy", "POL-X06", "validity"),                  # sum insured not negative
    ("policy", "POL-ID03", "consistency"),
    ("policy", "POL-U02", "uniqueness"),
    ("claim", "CLM-X08", "consistency"),                # a closed claim has no reserve left
    ("claim", "CLM-D01", "consistency"),
    ("claim", "CLM-ID01", "validity"),
])
def test_scoring_dimension_of_a_rule(dataset, rule_id, dimension):
    assert dimension_of(load_contract(dataset).rule(rule_id)) == dimension == _dimension(dataset, rule_id)


@pytest.mark.parametrize("member", ["M001", "M002", "M003"])
def test_scorecard_scores_equal_the_definitions_applied_to_the_lake(scenario, member):
    got = scenario.scorecard(member)["scores"]
    want = expected_scores(scenario.lake(), member)
    assert got == pytest.approx(want, abs=0.011)


@pytest.mark.parametrize("member", ["M001", "M002", "M003"])
def test_scorecard_period_scores_equal_the_definitions_applied_to_the_lake(scenario, member):
    periods = scenario.scorecard(member)["periods"]
    assert [p["period"] for p in periods] == ["2024Q1", "2024Q2", "2024Q3"]
    for p in periods:
        want = expected_scores(scenario.lake(), member, p["period"])
        assert {k: p[k] for k in want} == pytest.approx(want, abs=0.011), p["period"]


@pytest.mark.parametrize(("member", "timeliness", "reconciliation", "resubmissions"), [
    ("M001", 100.0, 100.0, 75.0),    # four slots on time; policy 2024Q2 needed a second file
    ("M002", 0.0, 100.0, 33.33),     # late, rejected twice; one slot right first time; 2024Q3 not due
    ("M003", 33.33, 50.0, 0.0),      # 2024Q1 on time via v2; policy 2024Q2 missing, claims pending
], ids=["on-time", "late-rejected", "resubmitted-missing-pending"])
def test_scorecard_scores_of_the_scenario(scenario, member, timeliness, reconciliation, resubmissions):
    got = scenario.scorecard(member)["scores"]
    assert (got["timeliness"], got["reconciliation"], got["resubmissions"]) == (timeliness, reconciliation,
                                                                                resubmissions)
    assert set(got) == {*DIMENSIONS, "overall"}


def test_scorecard_position_in_the_industry_without_naming_anyone(scenario):
    card = scenario.scorecard("M001")
    overall = card["positions"]["overall"]
    all_overall = sorted(scenario.scorecard(m)["scores"]["overall"] for m in ("M001", "M002", "M003"))
    assert overall["distribution"] == all_overall
    assert (overall["rank"], overall["members"], overall["better_than"]) == (1, 3, 2)
    assert overall["industry_median"] == all_overall[1]
    timeliness = card["positions"]["timeliness"]
    assert (timeliness["rank"], timeliness["distribution"]) == (1, [0.0, 33.33, 100.0])
    assert scenario.scorecard("M002")["positions"]["timeliness"]["better_than"] == 0
    for path in (scenario.built.scorecards["M001"], scenario.built.scorecards["M001"].with_name("scorecard.json")):
        text = path.read_text()
        assert "M002" not in text and "M003" not in text and "Member Two" not in text


def test_scorecard_shows_each_slot_status_with_its_report(scenario):
    slots = {(s["dataset"], s["period"]): s for s in scenario.scorecard("M003")["slots"]}
    assert {k: v["status"] for k, v in slots.items()} == {
        ("policy", "2024Q1"): "accepted", ("policy", "2024Q2"): "missing", ("policy", "2024Q3"): "open",
        ("claim", "2024Q1"): "pending"}
    assert slots[("policy", "2024Q1")]["rejected"] == 1 and slots[("policy", "2024Q1")]["versions"] == 2
    assert slots[("policy", "2024Q2")]["days_late"] == (REPORT_DAY - dt.date(2024, 8, 14)).days
    html = scenario.built.scorecards["M003"].read_text()
    assert 'href="../../submissions/M003-policy-2024Q1-v2/report.html"' in html
    assert "missing 18d" in html and "rejected ×1" in html and ">open<" in html and ">pending<" in html
    assert html.count("<svg") == 8 + 8          # a trend chart and a distribution strip per score


def test_scorecard_lists_the_members_most_broken_rules_with_fixes(scenario):
    rules = scenario.scorecard("M002")["rules"]
    con = scenario.lake()
    want = con.execute("""
        SELECT r.rule_id, sum(r.failed) FROM lake.rule_results r JOIN lake.submissions s USING (submission_id)
        WHERE s.member_id = 'M002' AND r.kind <> 'submission' GROUP BY 1 HAVING sum(r.failed) > 0
        ORDER BY 2 DESC, 1""").fetchall()
    assert [(r["rule_id"], r["failed"]) for r in rules] == want
    assert rules[0]["fix"] and rules[0]["source"].startswith("schemas/policy.yaml")
