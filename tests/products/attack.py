"""An attacker, written apart from ``pipelines.products``: what can a member (or the public)
recompute exactly from what its product holds?

It reads the published industry cells of a product, writes down the additive relations a competitor
would know (provinces add up to ``ALL``, lines to ``ALL`` in experience and triangles, quarters to
years, triangle accident quarters to accident years, experience losses = the latest triangle
diagonal), moves everything it knows to the right-hand side (published cells, and the cells it
alone contributes to, which it reads from its own rows) and solves. A withheld cell is recomputed
when every solution gives it the same value (its column is not in the span of the other unknowns'
columns, checked with numpy's SVD); the solver's value is then the cell's value.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

EXPERIENCE = ("written_premium", "written_exposure", "earned_premium", "earned_exposure",
              "claim_count", "paid_loss", "incurred_loss")
DIAGONAL = {"claim_count": "reported", "paid_loss": "paid", "incurred_loss": "incurred"}


def system_of(key: tuple) -> str:
    return DIAGONAL.get(key[1], key[1])


@dataclass
class Cells:
    """Industry cells by key: ``('x', measure, grain, period_start, line, province)`` or
    ``('t', measure, grain, line, province, origin_start, valuation_date)``."""

    value: dict[tuple, float | None] = field(default_factory=dict)   # None: withheld or missing
    withheld: set[tuple] = field(default_factory=set)
    missing: set[tuple] = field(default_factory=set)
    reason: dict[tuple, str] = field(default_factory=dict)           # of the withheld cells


def published_cells(con) -> Cells:
    """The industry cells as a product publishes them."""
    cells = Cells()
    for row in con.execute("SELECT * FROM industry_experience").df().itertuples():
        for m in EXPERIENCE:
            key = ("x", m, row.grain, str(row.period_start)[:10], row.line_of_business, row.region_code)
            value = getattr(row, m)
            reasons = dict(p.split(": ") for p in row.suppression.split("; ")) if isinstance(row.suppression, str) else {}
            cells.value[key] = None if m in reasons else float(value)
            if m in reasons:
                cells.withheld.add(key)
                cells.reason[key] = reasons[m]
    for row in con.execute("SELECT * FROM industry_triangle").df().itertuples():
        key = ("t", row.measure, row.grain, row.line_of_business, row.region_code, str(row.origin_start)[:10],
               str(row.valuation_date)[:10])
        cells.value[key] = None if row.suppressed or row.value is None or row.value != row.value else float(row.value)
        if row.suppressed:
            cells.withheld.add(key)
            cells.reason[key] = row.suppression
        elif cells.value[key] is None:
            cells.missing.add(key)
    return cells


def mart_cells(con, scope: str) -> dict[tuple, dict[str | None, float | None]]:
    """key -> {member (None for industry rows): value} from the marts of a product."""
    out: dict[tuple, dict] = defaultdict(dict)
    xp = con.execute(f"SELECT * FROM mart_experience WHERE scope = '{scope}'").df()
    for row in xp.itertuples():
        member = None if scope == "industry" else row.member_id
        for m in EXPERIENCE:
            key = ("x", m, row.grain, str(row.period_start)[:10], row.line_of_business, row.region_code)
            value = getattr(row, m)
            # a member without the cell's valuation has no losses there (NULL): it adds nothing
            out[key][member] = 0.0 if pd.isna(value) and member else None if pd.isna(value) else float(value)
    for row in con.execute(f"SELECT * FROM mart_triangle WHERE scope = '{scope}'").df().itertuples():
        key = ("t", row.measure, row.grain, row.line_of_business, row.region_code, str(row.origin_start)[:10],
               str(row.valuation_date)[:10])
        value = None if row.value is None or row.value != row.value else float(row.value)
        out[key][None if scope == "industry" else row.member_id] = value
    return out


def relations(keys, missing=frozenset()) -> list[dict[tuple, float]]:
    """Every additive relation among the cells (sum of coefficient x value = 0); a missing
    triangle cell (no value: a member's snapshot is missing) is not the experience's twin."""
    keys = set(keys)
    groups: dict[tuple, dict[tuple, float]] = defaultdict(dict)
    for k in keys:
        if k[0] == "x":
            _, m, grain, start, line, region = k
            if line != "ALL":
                groups[("xp", m, grain, start, line)][k] = -1.0 if region == "ALL" else 1.0
            if region == "ALL":
                groups[("xl", m, grain, start)][k] = -1.0 if line == "ALL" else 1.0
            if grain == "year":
                groups[("xy", m, start[:4], line, region)][k] = -1.0
            else:
                groups[("xy", m, start[:4], line, region)][k] = 1.0
        else:
            _, m, grain, line, region, origin, valued = k
            groups[("tp", m, grain, line, origin, valued)][k] = -1.0 if region == "ALL" else 1.0
            groups[("tl", m, grain, region, origin, valued)][k] = -1.0 if line == "ALL" else 1.0
            groups[("ty", m, line, region, origin[:4], valued)][k] = -1.0 if grain == "year" else 1.0
    out = [rel for g, rel in groups.items() if len(rel) > 1 and (g[0] not in ("xy", "ty") or -1.0 in rel.values())]
    latest = max((k[6] for k in keys if k[0] == "t" and k[2] == "quarter"), default=None)
    for k in keys:
        if k[0] == "x" and k[2] == "quarter" and k[1] in DIAGONAL and k[4] != "ALL":
            twin = ("t", DIAGONAL[k[1]], "quarter", k[4], k[5], k[3], latest)
            if twin in keys and twin not in missing:
                out.append({k: 1.0, twin: -1.0})
    return out


def recompute(cells: Cells, known: dict[tuple, float], targets: set[tuple]) -> dict[tuple, float]:
    """The ``targets`` that the relations fix, with the value the solver gives them.

    ``known`` are the cells the attacker knows besides the published ones (the cells it alone
    contributes to, with their values)."""
    value = {k: v for k, v in cells.value.items() if v is not None} | known
    unknown = {k for k in cells.value if k not in value}
    by_system: dict[str, list[dict]] = defaultdict(list)
    for rel in relations(cells.value, cells.missing):
        if any(k in unknown for k in rel):
            by_system[system_of(next(iter(rel)))].append(rel)
    found = {}
    for rels in by_system.values():
        for block_rels, block in _blocks(rels, unknown):
            col = {k: j for j, k in enumerate(block)}
            matrix = np.zeros((len(block_rels), len(block)))
            rhs = np.zeros(len(block_rels))
            for i, rel in enumerate(block_rels):
                for k, c in rel.items():
                    if k in col:
                        matrix[i, col[k]] = c
                    else:
                        rhs[i] -= c * value[k]
            solution = np.linalg.lstsq(matrix, rhs, rcond=None)[0]
            _, s, vt = np.linalg.svd(matrix, full_matrices=True)
            rank = int((s > 1e-9 * max(matrix.shape)).sum())
            null = vt[rank:]
            for k, j in col.items():
                if k in targets and (null.shape[0] == 0 or np.abs(null[:, j]).max() < 1e-9):
                    found[k] = float(solution[j])
    return found


def _blocks(rels: list[dict], unknown: set[tuple]):
    """Groups of unknown cells linked by relations, with their relations."""
    parent: dict[tuple, tuple] = {}

    def find(k):
        parent.setdefault(k, k)
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for rel in rels:
        ks = [k for k in rel if k in unknown]
        for k in ks[1:]:
            parent[find(k)] = find(ks[0])
        find(ks[0])
    blocks: dict[tuple, list] = defaultdict(list)
    for k in parent:
        blocks[find(k)].append(k)
    rows: dict[tuple, list] = defaultdict(list)
    for rel in rels:
        rows[find(next(k for k in rel if k in unknown))].append(rel)
    for root, block in blocks.items():
        yield rows[root], sorted(block)


def contributors(members: dict[str | None, float | None]) -> set[str]:
    return {m for m, v in members.items() if m is not None and v}


def present_members(settings) -> dict[tuple, set[str]]:
    """key -> the members with a value in the cell, zero included, read from the lake's own
    rows: for a triangle cell, the members with a claim of the accident period (and line and
    province, each unless ``ALL``) in their snapshot at the cell's valuation date, from the claim
    table; for an experience measure, the members whose row of the experience mart has it valued."""
    from pipelines import store

    out: dict[tuple, set[str]] = defaultdict(set)
    con = store.connect(settings, read_only=True)
    try:
        rows = con.execute(f"""
            SELECT DISTINCT c.member_id, g.grain, l.line_of_business, r.region_code,
                   date_trunc(g.grain, c.accident_date)::DATE AS origin_start, c.valuation_date
            FROM {store.LAKE}.claim c, (VALUES ('quarter'), ('year')) g(grain),
                 LATERAL (SELECT c.region_code UNION ALL SELECT 'ALL') r(region_code),
                 LATERAL (SELECT c.line_of_business UNION ALL SELECT 'ALL') l(line_of_business)""").fetchall()
        for member, grain, line, region, origin, valued in rows:
            for measure in ("paid", "incurred", "reported", "closed"):
                out[("t", measure, grain, line, region, str(origin)[:10], str(valued)[:10])].add(member)
        xp = con.execute(f"SELECT * FROM {store.LAKE}.mart_experience WHERE scope = 'member'").df()
    finally:
        con.close()
    for row in xp.itertuples():
        for m in EXPERIENCE:
            if not pd.isna(getattr(row, m)):
                out[("x", m, row.grain, str(row.period_start)[:10], row.line_of_business, row.region_code)].add(
                    row.member_id)
    return out


def attack(cells: Cells, truth_members: dict[tuple, dict], own: dict[tuple, dict], attacker: str | None
           ) -> dict[tuple, float]:
    """What ``attacker`` (a member, or None for the public) recomputes of the withheld cells that
    hold someone else's amount. ``truth_members`` (the regulator's member rows) only says which
    cells the attacker alone contributes to; their values come from its own rows ``own``."""
    sole = {k: own[k][attacker] for k in cells.withheld if attacker and k in own
            and contributors(truth_members.get(k, {})) == {attacker}}
    targets = {k for k in cells.withheld if contributors(truth_members.get(k, {})) - {attacker}}
    return recompute(cells, sole, targets)


# --- Over time: an attacker that kept every earlier product and differences the releases. ---

MIN_MEMBERS, MAX_SHARE = 3, 0.5          # the default rules, written down here independently


def fails(change: dict[str, float]) -> bool:
    """Whether a change (member -> amount changed) would fail primary suppression as a cell."""
    total = sum(abs(v) for v in change.values())
    return bool(change) and (len(change) < MIN_MEMBERS or max(abs(v) for v in change.values()) / total > MAX_SHARE)


def true_changes(before: dict[tuple, dict], after: dict[tuple, dict]) -> dict[tuple, dict[str, float]]:
    """key -> {member: change} from the regulator's member rows of two releases (only non-zero)."""
    out = {}
    for key in set(before) | set(after):
        old, new = before.get(key, {}), after.get(key, {})
        change = {m: (new.get(m) or 0.0) - (old.get(m) or 0.0) for m in set(old) | set(new) if m is not None}
        change = {m: v for m, v in change.items() if abs(v) > 0.005}
        if change:
            out[key] = change
    return out


def changes(before: Cells, after: Cells) -> Cells:
    """The change of every cell of ``after`` since ``before``: known where both releases show
    the cell's current value (a cell that ``before`` did not have was zero); unknown where
    either withholds it or holds an older value; missing where either has no value at all."""
    out = Cells()
    for key, value in after.value.items():
        if key in after.missing or key in before.missing:
            out.value[key] = None
            out.missing.add(key)
        elif value is None or (key in before.value and before.value[key] is None):
            out.value[key] = None
            out.withheld.add(key)
        else:
            out.value[key] = value - before.value.get(key, 0.0)
    return out


def difference_attack(before: Cells, after: Cells, truth: tuple[dict, dict], own: tuple[dict, dict],
                      attacker: str | None) -> dict[tuple, float]:
    """The changes between two releases that ``attacker`` learns (read straight off the two
    products, or recomputed through the relations, which hold for changes as for values) and
    that it must not: a change that fails the primary rules and is not only its own, or the
    change of a cell withheld now whose earlier value was published (it gives the new value).

    ``truth`` are the regulator's member rows of both releases; ``own`` the attacker's own rows
    in its two products (its own changes are known to it)."""
    delta = changes(before, after)
    changed = true_changes(*truth)
    sensitive = {k for k, c in changed.items() if k in delta.value and set(c) - {attacker} and fails(c)}
    sensitive |= {k for k in after.withheld if k in changed and before.value.get(k) is not None
                  and contributors(truth[1].get(k, {})) - {attacker}}
    direct = {k: delta.value[k] for k in sensitive if delta.value.get(k) is not None}
    mine = {k: (own[1].get(k, {}).get(attacker) or 0.0) - (own[0].get(k, {}).get(attacker) or 0.0)
            for k in delta.withheld if attacker and set(changed.get(k, {})) == {attacker}}
    return direct | recompute(delta, mine, sensitive & delta.withheld)
