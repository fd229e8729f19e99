"""The disclosure rules and the linear algebra of secondary suppression, on small cases."""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pytest

from pipelines.errors import ConfigError
from pipelines.products import open_product
from pipelines.products.disclosure import PRIME, PROFILES, PUBLIC, System, determined, protect, resolve_rules, solve
from tests.products.attack import MIN_MEMBERS, mart_cells, present_members, published_cells


@pytest.mark.parametrize("args, expected", [
    ({}, ("default", 3, 0.5)),
    ({"profile": "strict"}, ("strict", 5, 0.25)),
    ({"profile": "strict", "max_share": 0.25}, ("strict", 5, 0.25)),
    ({"min_members": 4}, ("custom", 4, 0.5)),
    ({"profile": "strict", "max_share": "0.4"}, ("custom", 5, 0.4)),
], ids=["default", "strict", "strict-same-numbers", "custom-members", "custom-share-from-text"])
def test_disclosure_rules_resolve_profiles_and_overrides(args, expected):
    rules = resolve_rules(**args)
    assert (rules.profile, rules.min_members, rules.max_share) == expected


@pytest.mark.parametrize("args, message", [
    ({"profile": "lenient"}, "Unknown disclosure profile 'lenient'"),
    ({"min_members": 0}, "--min-members 0 is not a positive number"),
    ({"max_share": 1.5}, "--max-share 1.5 is not a share in (0, 1]"),
], ids=["profile", "members", "share"])
def test_disclosure_rules_refuse_nonsense(args, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        resolve_rules(**args)


@pytest.mark.parametrize("contributors, share, expected", [
    (0, None, None), (1, 1.0, "members"), (2, 0.5, "members"), (3, 0.5, None), (3, 0.51, "dominance"),
    (5, 0.2, None),
], ids=["empty", "one", "two", "three-at-limit", "three-dominant", "five"])
def test_disclosure_primary_rule_in_python_and_sql_agree(contributors, share, expected):
    rules = PROFILES["default"]
    assert rules.primary_reason(contributors, share) == expected
    sql = rules.primary_sql(str(contributors), "NULL" if share is None else repr(share))
    assert duckdb.sql(f"SELECT {sql}").fetchone()[0] == expected


@pytest.mark.parametrize("contributors, holders, share, expected", [
    (1, 0, None, "members"), (2, 0, None, "members"), (3, 0, None, None), (3, 2, 0.5, "members"),
    (4, 3, 0.4, None), (0, 0, None, None)],
    ids=["zero-of-one", "zero-of-two", "zero-of-three", "two-amounts-and-a-zero", "three-amounts-and-a-zero", "nobody"])
def test_disclosure_a_zero_counts_as_a_members_value(contributors, holders, share, expected):
    """``contributors`` have a value (zero included), ``holders`` a non-zero amount."""
    rules = PROFILES["default"]
    assert rules.primary_reason(contributors, share, holders) == expected
    sql = rules.primary_sql(str(contributors), "NULL" if share is None else repr(share), str(holders))
    assert duckdb.sql(f"SELECT {sql}").fetchone()[0] == expected


@pytest.mark.parametrize("seed", range(12))
def test_disclosure_determined_units_equal_numpys(seed):
    """A unit is determined iff no null vector of the matrix touches it (numpy's SVD)."""
    rnd = random.Random(seed)
    cols, rows = rnd.randint(2, 14), rnd.randint(1, 10)
    relations = [{u: float(rnd.choice([-1, 1, 2])) for u in rnd.sample(range(cols), rnd.randint(1, min(4, cols)))}
                 for _ in range(rows)]
    matrix = np.array([[rel.get(u, 0.0) for u in range(cols)] for rel in relations])
    _, s, vt = np.linalg.svd(matrix, full_matrices=True)
    null = vt[int((s > 1e-9).sum()):]
    expected = {u for u in range(cols) if null.shape[0] == 0 or np.abs(null[:, u]).max() < 1e-9}
    solution = solve(relations, range(cols))
    assert set(solution.fixed) == expected
    for unit, certificate in solution.fixed.items():      # the certificate really isolates the unit
        combined = [sum(c * int(relations[i].get(u, 0)) for i, c in certificate.items()) % PRIME for u in range(cols)]
        assert combined == [int(u == unit) for u in range(cols)]


def _row(total: int, cells: list[int]) -> dict[int, float]:
    return {total: -1.0, **{c: 1.0 for c in cells}}


def test_disclosure_protect_adds_a_complement_to_a_lonely_cell():
    """T = a + b + c + d with only b withheld: the cheapest other detail cell goes too."""
    system = System("x", [_row(0, [1, 2, 3, 4])], {u: frozenset({"A", "B", "C"}) for u in range(5)},
                    cost={0: 100, 1: 10, 2: 30, 3: 20, 4: 40})
    assert protect({2: "members"}, [system]) == {2: "members", 1: "secondary"}


def test_disclosure_protect_counts_what_a_member_knows_alone():
    """T = a + b + c with a only A's and b only B's: A would get b as T - a - c, so c goes too."""
    system = System("x", [_row(0, [1, 2, 3])],
                    {0: frozenset("ABCD"), 1: frozenset("A"), 2: frozenset("B"), 3: frozenset("BCD")},
                    cost={0: 10, 1: 1, 2: 1, 3: 5})
    reasons = protect({1: "members", 2: "members"}, [system])
    assert reasons == {1: "members", 2: "members", 3: "secondary"}
    assert determined(system.relations, {2, 3}) == set() and determined(system.relations, {2}) == {2}


def test_disclosure_protect_follows_a_chain_of_relations():
    """Two tables sharing a total: the complement must break the path through both."""
    relations = [_row(0, [1, 2]), _row(0, [3, 4]), _row(5, [1, 3])]
    system = System("x", relations, {u: frozenset("ABC") for u in range(6)}, cost=dict.fromkeys(range(6), 1.0))
    reasons = protect({1: "dominance"}, [system])
    unknown = set(reasons)
    assert not (determined(relations, unknown) & unknown)
    assert reasons[1] == "dominance" and len(reasons) >= 3


def test_disclosure_protect_waits_for_groups_that_a_complement_links():
    """a1 + c = a2 and b = c, with a1 and b withheld: a1's group takes c as its complement in the
    first round, which links b's group to it while b's group is examined with c already withheld
    (it used to raise "fixed by relations among withheld units only"). The next round sees one
    group: a1, b and c, none of them determined."""
    relations = [_row(2, [1, 3]), _row(3, [4])]
    system = System("x", relations, {u: frozenset("ABC") for u in range(1, 5)}, cost={1: 5, 2: 10, 3: 1, 4: 5})
    reasons = protect({1: "members", 4: "members"}, [system])
    assert reasons == {1: "members", 4: "members", 3: "secondary"}
    assert determined(relations, set(reasons)) == set() and determined(relations, {1, 4}) == {1, 4}


def test_disclosure_zero_cells_are_complements_only_as_a_last_resort():
    """T = a + b + c: a only A's, b zero, c of B and C."""
    system = System("x", [_row(0, [1, 2, 3])], {0: frozenset("ABC"), 1: frozenset("A"), 3: frozenset("BC")},
                    cost={0: 10, 1: 5, 3: 5})
    # c alone would not do: A knows a, so T - a gives c; the zero cell b protects nothing
    assert protect({1: "members"}, [system]) == {1: "members", 3: "secondary", 0: "secondary"}
    assert system.protects(1, PUBLIC) and not system.protects(1, "A") and not system.protects(2, PUBLIC)


@pytest.fixture(scope="module", params=["market", "generated"])
def lake(request):
    found = request.getfixturevalue(request.param)
    return getattr(found, "settings", found)


def test_disclosure_no_published_cell_breaks_the_rules(lake):
    """Every published amount: no member, or at least 3 members and none above 50% (from the
    regulator's member rows, not from the marts' own counts)."""
    con = open_product(lake, "regulator")
    try:
        members = mart_cells(con, "member")
    finally:
        con.close()
    con = open_product(lake, "public")
    try:
        cells = published_cells(con)
    finally:
        con.close()
    checked = 0
    for key, value in cells.value.items():
        if value is None:
            continue
        amounts = {m: abs(v) for m, v in members.get(key, {}).items() if v}
        assert not amounts or (len(amounts) >= 3 and max(amounts.values()) <= 0.5 * sum(amounts.values()) + 1e-9), key
        checked += bool(amounts)
    assert checked > 100
    present = present_members(lake)
    assert all(present.get(k) for k, why in cells.reason.items() if why == "members")


def test_disclosure_no_published_zero_of_fewer_members_than_the_rule(lake):
    """A zero is a value: no published industry cell is 0 with 1 or 2 contributing members,
    counted from the lake's member-level rows (claims in the snapshots; experience rows), and
    the zeros of one or two members that the marts hold are withheld for ``members``."""
    present = present_members(lake)
    con = open_product(lake, "public")
    try:
        cells = published_cells(con)
    finally:
        con.close()
    con = open_product(lake, "regulator")
    try:
        industry = mart_cells(con, "industry")
    finally:
        con.close()
    zeros = {k: len(present.get(k, ())) for k, v in cells.value.items() if v == 0}
    assert zeros and not {k: n for k, n in zeros.items() if 0 < n < MIN_MEMBERS}
    few = {k for k, by in industry.items() if by.get(None) == 0 and 0 < len(present.get(k, ())) < MIN_MEMBERS}
    assert len(few) > 10, len(few)
    assert all(k in cells.withheld for k in few)
    assert {cells.reason[k] for k in few} >= {"members"}
    con = open_product(lake, "regulator")
    try:         # the platform's own count of each triangle cell's contributors is the claim table's
        counted = con.execute("""SELECT measure, grain, line_of_business, region_code, origin_start::VARCHAR,
                                        t.valuation_date::VARCHAR, contributors, holders
                                 FROM disclosure_cells d JOIN industry_triangle t
                                 USING (grain, line_of_business, region_code, measure, origin, age)
                                 WHERE d.mart = 'triangle' AND NOT d.missing""").fetchall()
    finally:
        con.close()
    assert len(counted) > 100
    for measure, grain, line, region, origin, valued, n, holders in counted:
        assert n == len(present.get(("t", measure, grain, line, region, origin, valued), ())) >= holders


def test_disclosure_zero_total_of_cancelling_amounts_is_withheld_when_nothing_else_will_do():
    """T = a + b is zero (A's +5 in a, B's -5 in b): A knows a, so T gives b unless T goes."""
    system = System("x", [_row(0, [1, 2])], {1: frozenset("A"), 2: frozenset("B")}, cost={1: 5, 2: 5})
    assert protect({1: "members", 2: "members"}, [system]) == {1: "members", 2: "members", 0: "secondary"}
