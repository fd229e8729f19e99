"""Disclosure control: which industry cells may be published, and which must be withheld.

**Primary suppression.** A cell is withheld when fewer than ``min_members`` member companies
contribute to it (``members``), or when the largest member holds more than ``max_share`` of
it (``dominance``). A member *contributes* to a cell when it has a value there, zero included:
a zero from one or two members is their value and follows the same rule as any other (and a
non-zero cell also needs ``min_members`` members with a non-zero amount). Only a cell that no
member contributes to (nobody has a row in it) has nothing to protect and is published (as
zero); a zero of at least ``min_members`` members passes (there is no share to dominate). Profiles: ``default`` (3 members, 50%) and ``strict``
(5 members, 25%, the former US "safety zone"); both numbers can be overridden.

**Secondary suppression.** Published cells are linked by additive relations (provinces add up
to their ``ALL`` rollup, quarters to their year, ...): a withheld cell must not be recomputable
from them. ``protect`` takes the relations of each additive measure (a ``System``) and withholds
more cells until no withheld cell is *determined*: cell ``j`` is determined when its unit vector
lies in the row space of the relations restricted to the unknown cells, i.e. when every
solution of the relations gives it the same value. ``solve`` finds them by exact sparse
elimination, with a *certificate* for each: the combination of relations that isolates it.

The attackers are the public (it knows the published cells) and every member, which also knows
its own contribution to every cell: subtracting it changes no relation, but a cell to which it
is the only contributor (its zero included) is then fully known to it, which can expose its
neighbours. A cell that holds only the attacker's own value, or no member's, needs no
protection from it.

For each exposed cell, the complement is the cheapest published cell (a detail cell before a
total, then the smallest amount) that its certificate does not cancel and that no dependency
among the relations would fix once withheld; a cell whose amount is zero is a complement only
when nothing else will do (anyone may guess it), and never for a withheld zero (zeros protecting
a zero would be guessed too: such a zero stays withheld but can be inferred, as can a zero the
relations fix by themselves, e.g. an experience quarter's claims where the triangle has no row). Rounds repeat until every group of linked unknown cells is safe for every attacker.

**Disclosure over time.** Every build is a *release*, and whoever kept an earlier product can
difference the two: a cell republished with a new value discloses the *change*, which is a
cell too: its contributors are the members whose contributions changed since the value that
was published (one member's late or corrected file: that member alone). ``pipelines.products
.releases`` keeps a ledger of every published value in the lake, with the contributions it was
made of, and decides each build in two spaces with the same relations (``System``):

- the *values* of this release (primary rules on the cells, then secondary suppression), and
- the *changes* since each cell's last publication (a ``revision``): primary rules on the
  change's contributors; a cell whose change fails, or whose change the relations would let
  anyone recompute, is *held*: it keeps showing the value of the release it was last published
  in, flagged ``revision held`` with that release, and everything derived from it is withheld.

The two are repeated until neither adds a unit (a held cell's new value is an unknown of the
value space, a withheld cell's change an unknown of the change space). A cell published earlier
and unchanged since is ``known`` to everyone whatever is published now: it is never chosen as a
complement in either space. Revisions are published once the accumulated change passes the
rules (e.g. when enough members have revised the cell); until then the published figure is a
flagged, older, consistent-with-itself value, the practice of statistical agencies that hold a
revision rather than let it reveal one respondent. The regulator sees every current value.

What it does not protect against: members that pool their data (coalitions), bounds that
follow from amounts being non-negative, and a sum of several withheld cells (each cell on its
own is protected); see the README's section on audiences and products.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from pipelines.errors import ConfigError

MEMBERS, DOMINANCE, SECONDARY, DERIVED = "members", "dominance", "secondary", "derived"
REVISION = "revision held"   # a published cell whose change may not be published yet: it keeps its old value
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

    def primary_sql(self, contributors: str, share: str, holders: str | None = None) -> str:
        """SQL: the primary reason to withhold a cell (NULL when it passes); see ``primary_reason``."""
        n, held = contributors, holders or contributors
        return (f"CASE WHEN {n} > 0 AND ({n} < {int(self.min_members)} OR ({held} > 0 AND {held} < "
                f"{int(self.min_members)})) THEN '{MEMBERS}' WHEN {n} > 0 AND {share} > {float(self.max_share)!r} "
                f"THEN '{DOMINANCE}' END")

    def primary_reason(self, contributors: int, share: float | None, holders: int | None = None) -> str | None:
        """The primary reason to withhold a cell, in Python (the reference for ``primary_sql``).

        ``contributors`` are the members with a value in the cell, zero included, ``holders``
        those with a non-zero amount (default: all of them). Too few members of either kind
        withholds the cell: a zero of one member is its value, and two members' amounts next
        to a third's zero are still two members' amounts. A cell nobody contributes to passes."""
        if contributors <= 0:
            return None
        holders = contributors if holders is None else holders
        if contributors < self.min_members or 0 < holders < self.min_members:
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
    members with a value in unit ``u``, zero included (none: nothing to protect, published),
    ``amounts[u]`` those of them with a non-zero amount;
    ``missing`` units have no value at all (nobody knows them); ``cost`` is the information lost
    by withholding a unit, the sum of its amounts (zero: a complement only as a last resort); ``known``
    units were published in an earlier release and have not changed since, so withholding them
    now would protect nothing: they are never complements."""

    name: str
    relations: list[dict[int, float]]
    contributors: Mapping[int, frozenset[str]]
    missing: frozenset[int] = frozenset()
    cost: Mapping[int, float] = field(default_factory=dict)
    known: frozenset[int] = frozenset()     # known to all from an earlier release: never a complement
    amounts: Mapping[int, frozenset[str]] | None = None   # members with a non-zero amount (None: contributors)

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
        """member -> the units it knows whole: those it contributes to where no other member has
        a non-zero amount (the others' zeros do not change the value it can work out)."""
        out: dict[str, set[int]] = defaultdict(set)
        for unit, members in self.contributors.items():
            held = members if self.amounts is None else self.amounts.get(unit, frozenset())
            if len(held) == 1 and held <= members:
                out[next(iter(held))].add(unit)
            elif not held and self.amounts is not None:
                for member in members:
                    out[member].add(unit)
        return {m: frozenset(u) for m, u in out.items()}

    def protects(self, unit: int, attacker: str) -> bool:
        """Whether ``unit`` holds a value (zero included) of someone other than ``attacker``."""
        return unit not in self.missing and bool(self.contributors.get(unit, frozenset()) - {attacker})

    def others_amounts(self, unit: int, attacker: str) -> bool:
        """Whether ``unit`` holds a non-zero amount of someone other than ``attacker``."""
        held = self.contributors if self.amounts is None else self.amounts
        return bool(held.get(unit, frozenset()) - {attacker})


def protect(primary: Mapping[int, str], systems: Iterable[System], *, max_rounds: int = 100) -> dict[int, str]:
    """Every withheld unit with its reason: the ``primary`` ones, plus ``secondary`` complements
    until no withheld unit is determined for any attacker in any system."""
    reasons = dict(primary)
    for system in systems:
        settled: set[frozenset[int]] = set()
        for _ in range(max_rounds):
            added = _complements(system, set(reasons), settled)
            if not added:
                break
            for unit in added:
                reasons.setdefault(unit, SECONDARY)
        else:
            raise RuntimeError(f"secondary suppression of {system.name} did not settle in {max_rounds} rounds")
    return reasons


def _complements(system: System, withheld: set[int], settled: set[frozenset[int]]) -> set[int]:
    """Units to withhold next so that the exposed units of ``system`` get protected; a group
    of unknown units found safe for every attacker is remembered in ``settled``."""
    unknown = ((withheld | system.missing) - system.known) & set(system.index)
    added: set[int] = set()
    for component, rows in _components(system, unknown):
        key = frozenset(component)
        if key in settled:
            continue
        units = set(component)
        attackers = [(PUBLIC, frozenset())] + [(m, s & units) for m, s in sorted(system.sole.items()) if s & units]
        for attacker, known in attackers:
            new = _fix(system, attacker, known, units, rows, unknown | added)
            if new:
                added |= new
                units |= new
                rows = sorted(set(rows) | {r for c in new for r in system.index[c]})
        if units == set(component):
            settled.add(key)
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
    for u in sorted(unknown):
        groups[find(u)].append(u)
    rows: dict[int, list[int]] = defaultdict(list)
    for r in touched:
        first = next(u for u in system.relations[r] if u in parent)
        rows[find(first)].append(r)
    for root, units in sorted(groups.items()):
        if rows[root]:
            yield units, rows[root]


def _fix(system: System, attacker: str, known: frozenset[int], units: set[int], rows: list[int],
         unknown: set[int]) -> set[int]:
    """Complements that stop ``attacker`` from recomputing any withheld unit of this group.

    For each exposed unit, its certificate (the combination of relations that isolates it)
    says which published units would break it: those the combination does not cancel. Of
    these, the cheapest is chosen that is *safe*, i.e. that no other combination of relations
    (a dependency among them) would fix once withheld; failing that, the cheapest."""
    hidden = units - known
    solution = solve([system.relations[r] for r in rows], hidden)
    exposed = [u for u in sorted(solution.fixed) if system.protects(u, attacker)]
    if not exposed:
        return set()
    position = {r: i for i, r in enumerate(rows)}
    candidates = sorted({c for r in rows for c in system.relations[r] if c not in unknown and c not in system.known},
                        key=lambda c: _rank(system, c))
    column = {c: {position[r]: int(system.relations[r][c]) % PRIME for r in system.index[c] if r in position}
              for c in candidates}
    chosen: list[int] = []
    for unit in exposed:
        certificate = solution.fixed[unit]
        if any(_dot(certificate, column[c]) for c in chosen):
            continue
        breaking = [c for c in candidates if _dot(certificate, column[c])]
        if not breaking and system.known:
            continue        # fixed by units everyone knows from earlier releases: nothing to withhold helps
        if not system.cost.get(unit) and not any(system.cost.get(c) for c in breaking):
            # a zero that only zeros would hide: anyone guesses a withheld zero (e.g. a province's
            # claims in a quarter without claims anywhere), so withholding them protects nothing
            continue
        if not breaking and not system.others_amounts(unit, attacker):
            # what the attacker's own amounts fix: that the others' values are zero. Nothing
            # withheld hides it.
            continue
        if not breaking and any(u in unknown and u not in units for i in certificate for u in system.relations[rows[i]]):
            # it rests on units withheld this round in another group: the groups merge and are
            # examined together in the next round
            continue
        if not breaking:
            raise RuntimeError(f"unit {unit} of {system.name} is fixed by relations among withheld units only")
        safe = next((c for c in breaking if _safe(system, c, column[c], solution, position, unknown - known)), None)
        chosen.append(safe if safe is not None else breaking[0])
    return set(chosen)


def _dot(combination: Mapping[int, int], column: Mapping[int, int]) -> int:
    return sum(combination.get(i, 0) * v for i, v in column.items()) % PRIME


def _safe(system: System, unit: int, column: Mapping[int, int], solution: Solution,
          position: Mapping[int, int], hidden: set[int]) -> bool:
    """Whether withholding ``unit`` leaves it undetermined: no dependency among the group's
    relations involves it, and each of its other relations holds another hidden unit."""
    if any(_dot(dependency, column) for dependency in solution.dependencies):
        return False
    return all(any(u in hidden for u in system.relations[r] if u != unit)
               for r in system.index[unit] if r not in position)


def _rank(system: System, unit: int) -> tuple[bool, int, float, int]:
    """Order of preference of a complement: a cell of zero amount last (anyone may guess it,
    whoever contributes to it; it is taken only when nothing else breaks a certificate, e.g.
    where amounts of opposite signs cancel), detail cells before totals (a unit counts once per relation it is the total of), then the
    smallest amount."""
    totals = sum(1 for r in system.index[unit]
                 if system.relations[r][unit] < 0 and sum(1 for c in system.relations[r].values() if c < 0) == 1)
    return (not system.cost.get(unit), totals, abs(system.cost.get(unit, 0.0)), unit)


PRIME = (1 << 61) - 1


@dataclass(frozen=True)
class Solution:
    """What relations tell about unknown units: ``fixed`` maps each unit they determine to its
    certificate (row index -> coefficient: that combination of the relations is the unit
    alone); ``dependencies`` are combinations that cancel every unknown (they only check
    published values). Coefficients are modulo ``PRIME``."""

    fixed: dict[int, dict[int, int]]
    dependencies: list[dict[int, int]]


def solve(relations: Sequence[Mapping[int, float]], unknown: Iterable[int]) -> Solution:
    """Sparse Gauss-Jordan elimination of the relations restricted to the unknown units,
    tracking which combination of the relations each reduced row is.

    Arithmetic is modulo the prime ``2**61 - 1``: exact for integer coefficients (the answer
    over the rationals differs only if that prime divides a minor of the matrix). A unit is
    determined when its unit vector lies in the row space, i.e. when its reduced row holds
    nothing else."""
    unknown = set(unknown)
    rows = [{u: int(c) % PRIME for u, c in rel.items() if u in unknown and c} for rel in relations]
    combos = [{i: 1} for i in range(len(rows))]
    where: dict[int, set[int]] = defaultdict(set)
    for i, row in enumerate(rows):
        for u in row:
            where[u].add(i)
    queue = [(len(row), i) for i, row in enumerate(rows) if row]   # shortest row first
    heapq.heapify(queue)
    done: set[int] = set()
    pivots: dict[int, int] = {}
    while queue:
        size, i = heapq.heappop(queue)
        if i in done or not rows[i]:
            continue
        if size != len(rows[i]):
            heapq.heappush(queue, (len(rows[i]), i))
            continue
        done.add(i)
        pivot = min(rows[i], key=lambda u: (len(where[u]), u))
        _scale(rows[i], combos[i], pow(rows[i][pivot], PRIME - 2, PRIME))
        for k in where[pivot] - {i}:
            factor = rows[k][pivot]
            _subtract(rows[k], rows[i], factor, k, where)
            _subtract(combos[k], combos[i], factor)
        where[pivot] = {i}
        pivots[pivot] = i
    return Solution(fixed={u: combos[i] for u, i in pivots.items() if len(rows[i]) == 1},
                    dependencies=[combos[i] for i, row in enumerate(rows) if not row])


def determined(relations: Sequence[Mapping[int, float]], unknown: Iterable[int]) -> set[int]:
    """The ``unknown`` units that the relations fix, whatever the known units' values are."""
    return set(solve(relations, unknown).fixed)


def _scale(row: dict[int, int], combo: dict[int, int], factor: int) -> None:
    for target in (row, combo):
        for u in target:
            target[u] = target[u] * factor % PRIME


def _subtract(target: dict[int, int], row: Mapping[int, int], factor: int, k: int = -1,
              where: dict[int, set[int]] | None = None) -> None:
    """``target -= factor * row`` (mod the prime), keeping the column index ``where`` current."""
    for u, v in row.items():
        value = (target.get(u, 0) - factor * v) % PRIME
        if value:
            if where is not None and u not in target:
                where[u].add(k)
            target[u] = value
        elif u in target:
            del target[u]
            if where is not None:
                where[u].discard(k)
