"""Disclosure control over time (issue 10, finding 2): three releases of the products, the
second after one member's late file, the third after two members' corrected files. An attacker
that kept every earlier product differences them: it must learn no change that fails the
primary rules and no withheld value, for every member and the public, and every single
release must still stand on its own. Undo the held revisions (publish current values, as the
code before the release ledger did) and the same attacker recovers members' exact amounts.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from pipelines import store
from pipelines.config import Settings
from pipelines.lake import write_transaction
from pipelines.marts.build import build_marts
from pipelines.products import build_products, open_product
from tests.marts.conftest import insert_rows, policy
from tests.products.attack import attack, difference_attack, fails, mart_cells, published_cells, true_changes
from tests.products.conftest import REGIONS, built, market_rows

D = dt.date
REVISERS = {"M001": 5.0, "M002": 3.0, "M004": 1.0, "M005": 1.0}

ATTACKERS = ["M001", "M002", "M003", "M004", "M005", None]
PAIRS = [(0, 1), (0, 2), (1, 2), (2, 3), (0, 3)]
LATE = ("M003", "MCOM")            # M003's MCOM premium file arrives after release 1
HELD = "revision held"


def _keep(settings: Settings, folder) -> Settings:
    """A copy of the products as they were published (what an attacker keeps)."""
    shutil.copytree(settings.home / "products", folder / "products")
    return Settings(home=folder)


def _update(settings: Settings, sql: str) -> None:
    con = store.connect(settings, read_only=False)
    try:
        write_transaction(con, settings, lambda c: c.execute(sql), message="test correction")
    finally:
        con.close()


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> list[Settings]:
    """Release 1 without M003's MCOM premiums; release 2 with them (a late file); release 3
    after M002 corrected its HLTH premiums (+25%) and M004 its EPROP paid amounts (+20%);
    release 4 after four members sent late MCOM premiums of 2023 (sizes 5:3:1:1, none over half)."""
    root = tmp_path_factory.mktemp("releases")
    policies, claims = market_rows()
    late = [p for p in policies if (p["member_id"], p["line_of_business"]) == LATE]
    settings = built(root / "home", [p for p in policies if (p["member_id"], p["line_of_business"]) != LATE], claims)
    kept = [_keep(settings, root / "r1")]
    insert_rows(settings, "policy", late)
    build_marts(settings)
    build_products(settings)
    kept.append(_keep(settings, root / "r2"))
    _update(settings, f"UPDATE {store.LAKE}.policy SET written_premium = written_premium * 1.25 "
                      "WHERE member_id = 'M002' AND line_of_business = 'HLTH'")
    _update(settings, f"UPDATE {store.LAKE}.claim SET paid_to_date = paid_to_date * 1.2 "
                      "WHERE member_id = 'M004' AND line_of_business = 'EPROP'")
    build_marts(settings)
    build_products(settings)
    kept.append(_keep(settings, root / "r3"))
    insert_rows(settings, "policy", [policy(m, D(2023, 2, 1), D(2024, 2, 1), size * 1000.0, size, line="MCOM",
                                            region=r) for m, size in REVISERS.items() for r in REGIONS])
    build_marts(settings)
    build_products(settings)
    kept.append(_keep(settings, root / "r4"))
    return kept


def _read(settings, audience, fn):
    con = open_product(settings, audience)
    try:
        return fn(con)
    finally:
        con.close()


@pytest.fixture(scope="module")
def truth(releases):
    """Per release: the regulator's industry and member rows."""
    return [_read(s, "regulator", lambda con: (mart_cells(con, "industry"), mart_cells(con, "member")))
            for s in releases]


@pytest.fixture(scope="module")
def views(releases):
    """Per release and attacker: the published cells and the attacker's own rows."""
    def view(settings, attacker):
        audience = f"member:{attacker}" if attacker else "public"
        return _read(settings, audience,
                     lambda con: (published_cells(con), mart_cells(con, "member") if attacker else {}))
    return [{a: view(s, a) for a in ATTACKERS} for s in releases]


def test_releases_are_numbered_and_the_late_file_is_held_back(releases, truth):
    """Release 2 holds the cells M003's late file changed at their release-1 value."""
    info = [_read(s, "public", lambda con: con.execute("SELECT release FROM product_info").fetchone()[0])
            for s in releases]
    assert info == [1, 2, 3, 4]
    r2 = _read(releases[1], "public", lambda con: con.execute(
        "SELECT * FROM industry_experience WHERE suppression LIKE '%revision held%'").df())
    assert len(r2) > 0
    assert r2["suppressed"].all()
    assert r2["suppression"].str.contains("revision held from release 1").all()
    old = _read(releases[0], "public", lambda con: con.execute("SELECT * FROM industry_experience").df())
    key = ["grain", "period", "line_of_business", "region_code"]
    both = r2.merge(old, on=key, suffixes=("", "_old"))
    held = both[both["suppression"].str.contains("written_premium: revision held")]
    assert len(held) > 0
    assert (held["written_premium"] == held["written_premium_old"]).all()      # the old value, unchanged
    industry = truth[1][0]
    changed = [r for r in held.itertuples()
               if industry[("x", "written_premium", r.grain, str(r.period_start)[:10], r.line_of_business,
                            r.region_code)][None] != float(r.written_premium)]
    assert changed                                                           # ... though the truth moved on


def test_regulator_sees_current_values_and_the_ledger(releases):
    ledger = _read(releases[3], "regulator", lambda con: con.execute(
        "SELECT release, units_revised, units_held FROM release_ledger ORDER BY release").fetchall())
    assert [r[0] for r in ledger] == [1, 2, 3]         # the fourth release is recorded after its products
    assert ledger[1][2] > 0                           # release 2 held revisions back
    assert ledger[1][1] == 0                          # ... and revised nothing: only M003 changed


def test_a_revision_is_published_once_enough_members_changed_it(releases, truth):
    """Release 4: cells held since M003's late file (all-lines rollups: its MCOM cells are
    withheld anyway), changed since by four more members, pass the rules and show their
    current value again."""
    def held(settings, release):
        cells = _read(settings, "public", published_cells)
        return cells, {k for k, why in cells.reason.items() if why.startswith(HELD)}
    (_, held3), (cells4, held4) = held(releases[2], 3), held(releases[3], 4)
    revised = [k for k in held3 if k not in held4 and cells4.value.get(k) is not None]
    assert len(revised) >= 2
    for key in revised:
        assert cells4.value[key] == pytest.approx(truth[3][0][key][None], abs=0.005)
        assert set(true_changes(truth[0][1], truth[3][1])[key]) >= set(REVISERS)


@pytest.mark.parametrize("release", [0, 1, 2])
@pytest.mark.parametrize("attacker", ATTACKERS, ids=[a or "public" for a in ATTACKERS])
def test_each_release_stands_on_its_own(views, truth, release, attacker):
    cells, own = views[release][attacker]
    assert attack(cells, truth[release][1], own, attacker) == {}


@pytest.mark.parametrize("pair", PAIRS, ids=[f"r{a + 1}-r{b + 1}" for a, b in PAIRS])
@pytest.mark.parametrize("attacker", ATTACKERS, ids=[a or "public" for a in ATTACKERS])
def test_differencing_releases_reveals_nothing(views, truth, pair, attacker):
    a, b = pair
    changed = true_changes(truth[a][1], truth[b][1])
    assert sum(fails(c) for c in changed.values()) > 20       # the late and corrected files changed cells
    found = difference_attack(views[a][attacker][0], views[b][attacker][0], (truth[a][1], truth[b][1]),
                              (views[a][attacker][1], views[b][attacker][1]), attacker)
    assert found == {}


def test_attacker_recovers_changes_when_revisions_are_published(views, truth):
    """Publishing every cell's current value (no held revisions, the old code) lets every
    attacker read a member's exact change off two releases."""
    recovered = {}
    for a, b in PAIRS:
        for attacker in ATTACKERS:
            after = views[b][attacker][0]
            after = type(after)(value=dict(after.value), withheld=set(after.withheld), missing=set(after.missing),
                                reason=dict(after.reason))
            for key in [k for k, why in after.reason.items() if why.startswith(HELD)]:
                after.value[key] = truth[b][0][key][None]
                after.withheld.discard(key)
            before = views[a][attacker][0]
            found = difference_attack(before, after, (truth[a][1], truth[b][1]),
                                      (views[a][attacker][1], views[b][attacker][1]), attacker)
            changed = true_changes(truth[a][1], truth[b][1])
            for key, value in found.items():
                assert value == pytest.approx(sum(changed[key].values()), abs=0.05)
                recovered[(a, b, attacker, key)] = value
    lone = {k for k in recovered if len(true_changes(truth[k[0]][1], truth[k[1]][1])[k[3]]) == 1}
    assert len(lone) > 20                  # one member's exact change (its late file: its whole amount)
