"""Disclosure control: which industry cells may be published, and which must be withheld.

**Primary suppression.** A cell is withheld when fewer than ``min_members`` member companies
contribute to it (``members``), or when the largest member holds more than ``max_share`` of
it (``dominance``). A cell to which no member contributes anything (every amount zero) has
nothing to protect and is published. Profiles: ``default`` (3 members, 50%) and ``strict``
(5 members, 25%, the former US "safety zone"); both numbers can be overridden.

**Secondary suppression.** Published cells are linked by additive relations (provinces add up
to their ``ALL`` rollup, quarters to their year, ...): a withheld cell must not be recomputable
from them. ``protect`` models the relations of each additive measure ("system") as a matrix
and withholds more cells until no withheld cell is *determined*: cell ``j`` is determined when
its unit vector lies in the row space of the relations restricted to the unknown cells, i.e.
when every solution of the relations gives it the same value. The attackers considered are the
public (who knows the published cells) and every member, who also knows its own contribution
to every cell: subtracting it changes no relation, but a cell to which it is the only
contributor is then fully known to it. A complement is the cheapest published cell (smallest
amount; a detail cell before a total) of a relation that exposes a cell.

What it does not protect against: members that pool their data (coalitions), bounds that
follow from amounts being non-negative, and a sum of several withheld cells (only each cell
on its own is protected); see the README's section on audiences and products.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from pipelines.errors import ConfigError

MEMBERS, DOMINANCE, SECONDARY, DERIVED = "members", "dominance", "secondary", "derived"
PUBLIC = ""          # the attacker who knows only what is published


@dataclass(frozen=True)
class DisclosureRules:
    """The rules a published industry cell must pass."""

    profile: str
    min_members: int
    max_share: float

    def describe(self) -> str:
        return (f"{self.profile}: at least {self.min_members} members per cell, "
                f"largest member's share at most {self.max_share:.0%}")

    def primary_sql(self, contributors: str, share: str) -> str:
        """SQL: the primary reason to withhold a cell (NULL when it passes)."""
        return (f"CASE WHEN {contributors} > 0 AND {contributors} < {int(self.min_members)} "
                f"THEN '{MEMBERS}' WHEN {contributors} > 0 AND {share} > {float(self.max_share)!r} "
                f"THEN '{DOMINANCE}' END")

    def primary_reason(self, contributors: int, share: float | None) -> str | None:
        """The primary reason to withhold a cell, in Python (the reference for ``primary_sql``)."""
        if contributors <= 0:
            return None
        if contributors < self.min_members:
            return MEMBERS
        if share is not None and share > self.max_share:
            return DOMINANCE
        return None


PROFILES = {"default": DisclosureRules("default", 3, 0.50), "strict": DisclosureRules("strict", 5, 0.25)}


def resolve_rules(profile: str | None = None, *, min_members: int | None = None,
                  max_share: float | None = None) -> DisclosureRules:
    """A profile's rules, with the given numbers overriding it (the profile is then ``custom``)."""
    name = profile or "default"
    if name not in PROFILES:
        raise ConfigError(f"Unknown disclosure profile {name!r}.",
                          hint=f"Use one of {', '.join(PROFILES)}, or give --min-members and --max-share.")
    rules = PROFILES[name]
    if min_members is not None:
        if int(min_members) < 1:
            raise ConfigError(f"--min-members {min_members} is not a positive number of members.")
        rules = replace(rules, min_members=int(min_members))
    if max_share is not None:
        if not 0 < float(max_share) <= 1:
            raise ConfigError(f"--max-share {max_share} is not a share in (0, 1].",
                              hint="Give e.g. 0.5 for 50%.")
        rules = replace(rules, max_share=float(max_share))
    if rules != PROFILES[name]:
        rules = replace(rules, profile="custom")
    return rules


@dataclass(frozen=True)
class System:
    """The additive relations of one measure: ``relations[r]`` maps unit -> coefficient
    (sum of coefficient x value = 0 holds for every relation). ``contributors[u]`` are the
    members with a non-zero amount in unit ``u`` (none: the unit is zero, nothing to protect,
    published and never chosen as a complement); ``missing`` units have no value at all
    (nobody knows them); ``cost`` is the information lost by withholding a unit."""

    name: str
    relations: list[dict[int, float]]
    contributors: Mapping[int, frozenset[str]]
    missing: frozenset[int] = frozenset()
    cost: Mapping[int, float] = field(default_factory=dict)

    @cached_property
    def index(self) -> dict[int, list[int]]:
        """unit -> the relations it appears in."""
        out: dict[int, list[int]] = defaultdict(list)
        for r, rel in enumerate(self.relations):
            for unit in rel:
                out[unit].append(r)
        return out

    @cached_property
    def sole(self) -> dict[str, frozenset[int]]:
        """member -> the units it is the only contributor to (it knows them whole)."""
        out: dict[str, set[int]] = defaultdict(set)
        for unit, members in self.contributors.items():
            if len(members) == 1:
                out[next(iter(members))].add(unit)
        return {m: frozenset(u) for m, u in out.items()}

    @cached_property
    def fingerprint(self) -> str:
        """Equal for systems with the same relations (the measures of the same cells)."""
        text = repr([sorted(rel.items()) for rel in self.relations])
        return hashlib.blake2b(text.encode("ascii"), digest_size=16).hexdigest()

    def protects(self, unit: int, attacker: str) -> bool:
        """Whether ``unit`` holds an amount of someone other than ``attacker``."""
        return unit not in self.missing and bool(self.contributors.get(unit, frozenset()) - {attacker})


def protect(primary: Mapping[int, str], systems: Iterable[System], *, max_rounds: int = 200) -> dict[int, str]:
    """Every withheld unit with its reason: the ``primary`` ones, plus ``secondary`` complements
    until no withheld unit is determined for any attacker in any system."""
    reasons = dict(primary)
    systems = list(systems)
    settled: set[tuple[str, frozenset[int]]] = set()
    cache: dict[tuple, set[int]] = {}
    for _ in range(max_rounds):
        added: set[int] = set()
        for system in systems:
            added |= _complements(system, set(reasons), settled, cache)
        if not added:
            return reasons
        for unit in added:
            reasons.setdefault(unit, SECONDARY)
    raise RuntimeError(f"secondary suppression did not settle in {max_rounds} rounds")


def _complements(system: System, withheld: set[int], settled: set, cache: dict) -> set[int]:
    """Units to withhold next so that the exposed units of ``system`` get protected."""
    unknown = (withheld | system.missing) & set(system.index)
    added: set[int] = set()
    for component, rows in _components(system, unknown):
        key = (system.name, frozenset(component))
        if key in settled:
            continue
        exposed = exposed_units(system, component, rows, withheld, cache)
        if not exposed:
            settled.add(key)
            continue
        for unit, attacker in exposed:
            more = _choose(system, unit, attacker, unknown | added, rows)
            if not more and not added:
                raise RuntimeError(f"unit {unit} of {system.name} is determined by relations among "
                                   "withheld cells only; there is nothing left to withhold")
            added |= more
    return added


def _components(system: System, unknown: set[int]):
    """Groups of unknown units linked through relations, each with the relations touching it."""
    parent = {u: u for u in unknown}

    def find(u: int) -> int:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    touched = sorted({r for u in unknown for r in system.index[u]})
    for r in touched:
        members = [u for u in system.relations[r] if u in parent]
        for u in members[1:]:
            parent[find(u)] = find(members[0])
    groups: dict[int, list[int]] = defaultdict(list)
    for u in unknown:
        groups[find(u)].append(u)
    rows: dict[int, list[int]] = defaultdict(list)
    for r in touched:
        first = next(u for u in system.relations[r] if u in parent)
        rows[find(first)].append(r)
    for root, units in groups.items():
        if rows[root]:
            yield sorted(units), rows[root]


def exposed_units(system: System, component: list[int], rows: list[int], withheld: set[int],
                  cache: dict | None = None) -> list[tuple[int, str]]:
    """The withheld units of ``component`` that some attacker can recompute, with the attacker
    (``PUBLIC`` or a member id)."""
    relations = [system.relations[r] for r in rows]
    out: list[tuple[int, str]] = []
    attackers = [(PUBLIC, frozenset())] + [(m, units & set(component)) for m, units in system.sole.items()]
    for attacker, known in attackers:
        if attacker and not known:
            continue
        unknown = frozenset(component) - known
        key = (system.fingerprint, unknown)
        found = cache.get(key) if cache is not None else None
        if found is None:
            found = determined(relations, unknown)
            if cache is not None:
                cache[key] = found
        out += [(u, attacker) for u in sorted(found) if u in withheld and system.protects(u, attacker)]
    return out


PRIME = (1 << 61) - 1


def determined(relations: Iterable[Mapping[int, float]], unknown: Iterable[int]) -> set[int]:
    """The ``unknown`` units that the relations fix, whatever the known units' values are.

    Unit ``j`` is fixed when its unit vector lies in the row space of the relations restricted
    to the unknown units (no dependency among their columns involves ``j``). Sparse
    Gauss-Jordan elimination modulo the prime ``2**61 - 1``, exact for integer coefficients
    (the answer over the rationals differs only if that prime divides a minor of the matrix):
    the fixed units are the pivots whose reduced row holds nothing else.
    """
    unknown = set(unknown)
    rows = [r for r in ({u: int(c) % PRIME for u, c in rel.items() if u in unknown and c}
                        for rel in relations) if r]
    where: dict[int, set[int]] = defaultdict(set)
    for i, row in enumerate(rows):
        for u in row:
            where[u].add(i)
    pending = set(range(len(rows)))
    pivots: dict[int, int] = {}
    while pending:
        i = min(pending, key=lambda k: (len(rows[k]), k))
        pending.discard(i)
        row = rows[i]
        if not row:
            continue
        pivot = min(row, key=lambda u: (len(where[u]), u))
        scale = pow(row[pivot], PRIME - 2, PRIME)
        for u in row:
            row[u] = row[u] * scale % PRIME
        for k in where[pivot] - {i}:
            _eliminate(rows[k], row, rows[k][pivot], k, where)
        where[pivot] = {i}
        pivots[pivot] = i
    return {u for u, i in pivots.items() if len(rows[i]) == 1}


def _eliminate(target: dict[int, int], row: dict[int, int], factor: int, k: int,
               where: dict[int, set[int]]) -> None:
    """``target -= factor * row`` (mod the prime), keeping the column index ``where`` current."""
    for u, v in row.items():
        value = (target.get(u, 0) - factor * v) % PRIME
        if value:
            if u not in target:
                where[u].add(k)
            target[u] = value
        elif u in target:
            del target[u]
            where[u].discard(k)


def _choose(system: System, unit: int, attacker: str, unknown: set[int], rows: list[int]) -> set[int]:
    """Published units to withhold so that ``unit`` is no longer determined: a complement in
    every relation where it is the only cell the attacker does not know; otherwise (it is
    determined through several relations) the cheapest published unit near it that, once
    withheld, leaves it undetermined. Zero cells are never complements: anyone may guess them."""
    known = system.sole.get(attacker, frozenset()) if attacker else frozenset()
    chosen: set[int] = set()
    for r in system.index[unit]:
        hidden = [u for u in system.relations[r] if u in unknown and u not in known]
        found = _candidates(system, r, unknown)
        if hidden == [unit] and found:
            chosen.add(min(found)[1])
    return chosen or _breaking(system, unit, known, unknown, rows)


def _candidates(system: System, r: int, unknown: set[int]) -> list[tuple[tuple, int]]:
    """The published, non-zero units of relation ``r`` with their order of preference."""
    rel = system.relations[r]
    return [(_rank(rel, u, system.cost), u) for u in rel if u not in unknown and system.contributors.get(u)]


def _breaking(system: System, unit: int, known: frozenset[int], unknown: set[int], rows: list[int],
              *, tries: int = 6, rings: int = 4) -> set[int]:
    """The cheapest published unit whose withholding makes ``unit`` undetermined, searched ring
    by ring outwards from ``unit`` through the relations of unknown units; the cheapest of all
    rings if no tried one does."""
    seen: set[int] = set()
    frontier = {unit}
    fallback: list[tuple[tuple, int]] = []
    for _ in range(rings):
        rels = {r for u in frontier for r in system.index[u]} - seen
        if not rels:
            break
        seen |= rels
        ring = sorted({c for r in rels for c in _candidates(system, r, unknown)})
        for _, c in ring[:tries]:
            test = [system.relations[r] for r in sorted(set(rows) | set(system.index[c]))]
            if unit not in determined(test, (unknown - known) | {c}):
                return {c}
        fallback += ring
        frontier = {u for r in rels for u in system.relations[r] if u in unknown and u not in known}
    return {min(fallback)[1]} if fallback else set()


def _rank(relation: dict[int, float], unit: int, cost: Mapping[int, float]) -> tuple[int, float, int]:
    """Order of preference of a complement: a detail cell before the relation's total, then
    the smallest amount."""
    is_total = relation[unit] < 0 and sum(1 for c in relation.values() if c < 0) == 1
    return (int(is_total), abs(cost.get(unit, 0.0)), unit)
