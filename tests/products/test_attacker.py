"""The attack of issue 5: from everything a member's product holds (its own rows and the
published aggregates), recompute each suppressed industry cell exactly. It must fail for every
cell, for every member and for the public, on a random market and on the generated one; and
it must succeed once the secondary suppressions are undone (so the attacker is not toothless).
"""

from __future__ import annotations

import pytest

from pipelines.products import open_product
from tests.products.attack import attack, mart_cells, published_cells, relations

ATTACKERS = ["M001", "M002", "M003", "M004", "M005", None]


@pytest.fixture(scope="module", params=["market", "generated"])
def lake(request):
    found = request.getfixturevalue(request.param)
    return getattr(found, "settings", found)


def _read(settings, audience, fn):
    con = open_product(settings, audience)
    try:
        return fn(con)
    finally:
        con.close()


@pytest.fixture(scope="module")
def truth(lake):
    """The regulator's industry and member rows (who contributes what)."""
    return _read(lake, "regulator", lambda con: (mart_cells(con, "industry"), mart_cells(con, "member")))


def _view(settings, attacker):
    audience = f"member:{attacker}" if attacker else "public"
    return _read(settings, audience, lambda con: (published_cells(con), mart_cells(con, "member") if attacker else {}))


def test_attacker_relations_hold_on_the_true_values(lake, truth):
    cells, _ = _view(lake, None)
    rels = relations(cells.value, cells.missing)
    kinds = {tuple(sorted({(k[0], k[2]) for k in rel})) for rel in rels}
    expected = {(("x", "quarter"),), (("t", "quarter"),), (("t", "quarter"), ("t", "year")),
                (("t", "quarter"), ("x", "quarter"))}                    # provinces, lines, years, diagonals
    if any(k[0] == "x" and k[2] == "year" for k in cells.value):       # the generated set has no whole year
        expected.add((("x", "quarter"), ("x", "year")))
    assert expected <= kinds
    industry = truth[0]
    wrong = [rel for rel in rels if not any(k in cells.missing for k in rel)
             and abs(sum(c * industry[k][None] for k, c in rel.items())) > 0.011 * len(rel)]
    assert not wrong, wrong[:3]


@pytest.mark.parametrize("attacker", ATTACKERS, ids=[a or "public" for a in ATTACKERS])
def test_attacker_cannot_recompute_any_suppressed_cell(lake, truth, attacker):
    cells, own = _view(lake, attacker)
    assert len(cells.withheld) > 100
    assert attack(cells, truth[1], own, attacker) == {}


def test_attacker_recomputes_cells_when_secondary_suppression_is_undone(lake, truth):
    """Publish the complements with their true values: members then get cells right."""
    industry, members = truth
    recomputed = {}
    for attacker in ATTACKERS:
        cells, own = _view(lake, attacker)
        for key in [k for k, why in cells.reason.items() if why == "secondary"]:
            cells.value[key] = industry[key][None]
            cells.withheld.discard(key)
        recomputed |= attack(cells, members, own, attacker)
    assert recomputed
    assert all(value == pytest.approx(industry[key][None], abs=0.02) for key, value in recomputed.items())
