"""Defects injected into clean rows, each with the exact rule ids the validator must report.

A file's rows are a list of ``Marked`` entries: the row and its ``Truth`` (None for a clean
row). ``inject`` gives chosen clean rows exactly one defect each, never touching protected
rows (premium transactions that are the evidence of a policy with claims), and keeps the
share of rows with error-severity defects under a budget so that the file's verdict is the
one intended. A duplicated row adds a copy of itself; both carry the duplicate's truth.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipelines.contracts import DatasetContract


@dataclass(frozen=True)
class Truth:
    rule_ids: frozenset[str]
    defect: str


@dataclass
class Marked:
    row: dict
    truth: Truth | None = None


@dataclass(frozen=True)
class DefectContext:
    contract: DatasetContract
    file_format: str
    r: random.Random
    orphan_policy_no: Callable[[dt.date, str], str] = lambda day, region: "UNUSED"


@dataclass(frozen=True)
class DefectKind:
    """One kind of defect: where it applies and what it does (``apply`` returns the truth)."""

    name: str
    weight: float
    applies: Callable[[dict, DefectContext], bool]
    apply: Callable[[dict, DefectContext], Truth]
    warning: bool = False          # the row is kept and flagged, not quarantined
    duplicate: bool = False        # the row is repeated


def is_error(truth: Truth | None, contract: DatasetContract) -> bool:
    """True when the truth names a rule that quarantines the row."""
    return truth is not None and any(contract.rule(r).severity != "warn" for r in truth.rule_ids)


def error_rows(marked: Sequence[Marked], contract: DatasetContract) -> int:
    return sum(is_error(m.truth, contract) for m in marked)


def error_budget(rows: int, contract: DatasetContract) -> int:
    """How many error rows a file of ``rows`` rows may have and still be accepted."""
    return max(0, math.floor(contract.max_error_row_share * rows * 0.999))


def defect_count(r: random.Random, rows: int, rate: float) -> int:
    """About ``rate`` x ``rows`` (rounded at random, so small files get defects on average too)."""
    expected = rate * rows
    return int(expected) + (r.random() < expected - int(expected))


def inject(marked: list[Marked], kinds: Sequence[DefectKind], ctx: DefectContext, *, count: int,
           max_errors: int, protected: Callable[[dict], bool] = lambda row: False,
           duplicates: bool = True) -> list[Marked]:
    """A new list with ``count`` more clean rows made defective (fewer if none qualify)."""
    out = [Marked(dict(m.row), m.truth) for m in marked]
    errors = error_rows(out, ctx.contract)
    order = [i for i, m in enumerate(out) if m.truth is None and not protected(m.row)]
    ctx.r.shuffle(order)
    copies: list[int] = []
    for i in order:
        if count <= 0:
            break
        room = max_errors - errors
        usable = [k for k in kinds if (k.warning or room >= (2 if k.duplicate else 1))
                  and (duplicates or not k.duplicate) and k.applies(out[i].row, ctx)]
        if not usable:
            continue
        kind = ctx.r.choices(usable, weights=[k.weight for k in usable])[0]
        out[i].truth = kind.apply(out[i].row, ctx)
        count -= 1
        errors += (2 if kind.duplicate else 1) * is_error(out[i].truth, ctx.contract)
        if kind.duplicate:
            copies.append(i)
    return _with_copies(out, copies, ctx.r)


def _with_copies(out: list[Marked], copies: list[int], r: random.Random) -> list[Marked]:
    """Insert a copy of each duplicated row somewhere after it (often right after it)."""
    inserts: dict[int, list[Marked]] = {}
    for i in copies:
        after = i if r.random() < 0.5 else r.randint(i, len(out) - 1)
        inserts.setdefault(after, []).append(Marked(dict(out[i].row), out[i].truth))
    result = []
    for i, m in enumerate(out):
        result.append(m)
        result.extend(inserts.get(i, []))
    return result


def impossible_date(day: dt.date) -> str:
    """A calendar date that does not exist, near ``day`` (``2025-02-30``, ``2025-04-31`` ...)."""
    months = {2: 30, 4: 31, 6: 31, 9: 31, 11: 31}
    month = min(months, key=lambda m: (abs(m - day.month), m))
    return f"{day.year}-{month:02d}-{months[month]}"
