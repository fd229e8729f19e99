"""The platform dashboard: the grid, the most broken rules, and a link to every report."""

from __future__ import annotations

import re

import pytest

GRID = {
    ("policy", "M001"): ["accepted", "accepted", "accepted"],
    ("policy", "M002"): ["late", "rejected", "open"],
    ("policy", "M003"): ["accepted", "missing", "open"],
    ("claim", "M001"): ["accepted"],
    ("claim", "M002"): ["rejected"],
    ("claim", "M003"): ["pending"],
}


def test_dashboard_grid_shows_late_missing_rejected_and_superseded(scenario):
    grids = {g["dataset"]: g for g in scenario.dashboard()["grids"]}
    assert grids["policy"]["periods"] == ["2024Q1", "2024Q2", "2024Q3"] and grids["claim"]["periods"] == ["2024Q1"]
    got = {(d, row["member_id"]): [c["status"] for c in row["cells"]] for d, g in grids.items() for row in g["rows"]}
    assert got == GRID
    m1_q2 = grids["policy"]["rows"][0]["cells"][1]
    assert (m1_q2["versions"], m1_q2["superseded"], m1_q2["current_id"]) == (2, 1, "M001-policy-2024Q2-v2")
    assert grids["policy"]["rows"][1]["cells"][0]["days_late"] == 46


def test_dashboard_html_grid_cells_carry_their_status_and_link(scenario):
    html = scenario.built.dashboard.read_text()
    statuses = re.findall(r'<td data-status="([a-z]+)">', html)
    assert statuses == [s for v in GRID.values() for s in v]
    assert "late 46d" in html and "missing 18d" in html and "↻1" in html and "✕1" in html
    assert 'href="submissions/M002-policy-2024Q2-v1/report.html"' in html


def test_dashboard_totals_equal_the_lake(scenario):
    con = scenario.lake()
    got = scenario.dashboard()["totals"]
    by_status = dict(con.execute("SELECT status, count(*) FROM lake.submissions GROUP BY 1").fetchall())
    published = sum(con.execute(f"SELECT count(*) FROM lake.{t}").fetchone()[0] for t in ("policy", "claim"))
    quarantined = con.execute("SELECT count(*) FROM lake.quarantine").fetchone()[0]
    assert (got["accepted"], got["rejected"], got["superseded"]) == (
        by_status["accepted"], by_status["rejected"], by_status["superseded"])
    assert (got["rows_published"], got["rows_quarantined"]) == (published, quarantined)
    assert got["slots"] == {"accepted": 5, "late": 1, "rejected": 2, "pending": 1, "missing": 1, "open": 2,
                            "nil": 0, "exempt": 0, "not_owed": 0}   # no calendar, no declaration here
    assert (got["pending"], got["submissions"]) == (by_status["received"], sum(by_status.values()))


def test_dashboard_ranks_the_most_broken_rules_with_their_trend(scenario):
    rules = scenario.dashboard()["rules"]
    con = scenario.lake()
    want = con.execute("""
        SELECT rule_id, sum(failed), count(DISTINCT s.member_id) FILTER (WHERE failed > 0)
        FROM lake.rule_results r JOIN lake.submissions s USING (submission_id)
        WHERE kind <> 'submission' GROUP BY 1 HAVING sum(failed) > 0 ORDER BY 2 DESC, 1 LIMIT 10""").fetchall()
    assert [(r["rule_id"], r["failed"], r["members"]) for r in rules] == want
    top = rules[0]
    assert top["rule_id"] == "POL-CODE-region_code" and top["failed"] == 21
    # 2024Q1: 1 of 52 + 20 + 20 + 20 rows checked; 2024Q2: 20 of 50 + 30 + 20; 2024Q3: 0 of 10
    assert top["trend"] == [{"period": "2024Q1", "per_1000": pytest.approx(1000 / 112, abs=1e-3)},
                            {"period": "2024Q2", "per_1000": pytest.approx(20000 / 100, abs=1e-3)},
                            {"period": "2024Q3", "per_1000": 0.0}]
    assert top["fix"] and "<svg" in scenario.built.dashboard.read_text()


def test_dashboard_links_every_report(scenario):
    html = scenario.built.dashboard.read_text()
    for sid, path in scenario.built.submissions.items():
        assert f'href="{path.relative_to(scenario.built.root).as_posix()}"' in html, sid
    for member in ("M001", "M002", "M003"):
        assert f'href="members/{member}/scorecard.html"' in html
